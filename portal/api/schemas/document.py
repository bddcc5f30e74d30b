"""The OpenAPI 3.1 document, generated from the routes and their schemas.

Every ``/api/v1`` view carries an :class:`Op` (set by
``portal.api.base.operation``, which also validates the body and query with
the same models). :func:`document` walks Flask's ``url_map``: the path and its
parameters come from the rule, auth from ``require_token``, bodies, queries and
answers from the pydantic models, and the usual error answers (401, 404, 413,
414, 422, 503) from what the operation takes. Nothing is written twice, so the
document cannot drift from the code; a test checks that every route has an Op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from portal.api.schemas.base import Error

API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Op:
    """What a route's view declares about itself; the rest comes from its URL rule."""

    summary: str
    tag: str
    responses: dict[int, tuple[str, type[BaseModel] | None]]  # status → (description, model)
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = field(default=())  # particular answers, e.g. (409,)
    description: str = ""


_ERROR_TEXT = {
    401: "no or an invalid bearer token",
    404: "not found (or not yours)",
    409: "conflict with the current state",
    413: "body larger than the size cap",
    414: "URL longer than the server accepts",
    422: "invalid input; `error.field` names it",
    429: "too many requests from this address; retry after `Retry-After` seconds",
    503: "the database is briefly unavailable; retry after `Retry-After` seconds",
}
_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def operations(app: Flask) -> list[tuple[str, str, str, Any, Op | None]]:
    """(method, OpenAPI path, rule, view, its Op or None) for every /api/ route."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        view = app.view_functions[rule.endpoint]
        path = _PARAM.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method.lower(), path, rule.rule, view, getattr(view, "api_op", None)))
    return out


def _path_params(app: Flask, rule_text: str) -> list[dict]:
    params = []
    for converter, name in _PARAM.findall(rule_text):
        if converter == "int":
            limit = app.url_map.converters["int"]
            schema = {"type": "integer", "minimum": 0, "maximum": getattr(limit, "MAX", 2**63 - 1)}
        else:
            schema = {"type": "string", "maxLength": 200}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _query_params(model: type[BaseModel]) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = _strip(dict(prop))
        branches = [b for b in prop.pop("anyOf", ()) if b.get("type") != "null"]
        if branches:  # `X | None`: the query either has the parameter or not
            prop = branches[0] | prop
        if prop.get("default", 0) is None:
            del prop["default"]
        description = prop.pop("description", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        params.append(param | ({"description": description} if description else {}))
    return params


def _strip(node: Any, in_properties: bool = False) -> Any:
    """Drop pydantic's generated ``title``s: the names already say it."""
    if isinstance(node, dict):
        return {
            key: _strip(value, key == "properties" and not in_properties)
            for key, value in node.items()
            if in_properties or not (key == "title" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _operation(app: Flask, method: str, path: str, rule_text: str, view: Any, op: Op) -> dict:
    auth = bool(getattr(view, "requires_token", False))
    params = _path_params(app, rule_text)
    if op.query is not None:
        params += _query_params(op.query)
    responses: dict[str, Any] = {}
    for status, (text, model) in sorted(op.responses.items()):
        responses[str(status)] = {"description": text}
        if model is not None:
            schema = {"$ref": REF.format(model=model.__name__)}
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
    errors = set(op.errors)
    if auth or op.body is not None or "{" in path or op.query is not None:
        errors.add(503)  # portal.web.outage: every answer that reads the database
    if auth:
        errors.add(401)
    if "{" in path:
        errors |= {404, 414}
    if op.body is not None:
        errors |= {413, 422}
    if op.query is not None:
        errors |= {414, 422}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    out: dict[str, Any] = {
        "operationId": f"{method}_{re.sub(r'[^a-z0-9]+', '_', path[8:].lower()).strip('_')}",
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}
            },
        }
    out["security"] = [{"bearer": []}] if auth else []
    return out


def build(app: Flask) -> dict:
    paths: dict[str, dict] = {}
    models: set[type[BaseModel]] = {Error}
    for method, path, rule_text, view, op in operations(app):
        if op is None:  # undocumented: the url_map test names it
            continue
        paths.setdefault(path, {})[method] = _operation(app, method, path, rule_text, view, op)
        models |= {m for _, m in op.responses.values() if m is not None}
        if op.body is not None:
            models.add(op.body)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "validation") for m in ordered], ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kairos API",
            "version": API_VERSION,
            "description": (
                "Bearer tokens come from the settings page or `flask --app wsgi tokens create`. "
                'Errors are `{"error": {"code", "message", "field"?}}`; invalid input is 422 '
                "naming the field. Instants are ISO 8601 with an offset."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _strip(dict(sorted(defs.get("$defs", {}).items()))),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def document(app: Flask) -> dict:
    """The app's OpenAPI document, built once per app (routes do not change at runtime)."""
    if "kairos.openapi" not in app.extensions:
        app.extensions["kairos.openapi"] = build(app)
    return app.extensions["kairos.openapi"]
