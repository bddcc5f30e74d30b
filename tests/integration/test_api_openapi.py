"""The OpenAPI document and Flask's url_map describe the same API, both ways."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from portal.api.schemas.document import document

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _routes(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every rule under /api/, converters dropped."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - IGNORED_METHODS:
            found.add((method.lower(), path))
    return found


def _documented(app) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in document(app)["paths"].items() for method in ops}


def test_every_api_route_is_documented(app):
    missing = _routes(app) - _documented(app)
    assert not missing, (
        f"routes without an OpenAPI entry (decorate the view with api.operation): {missing}"
    )


def test_every_documented_operation_is_a_route(app):
    extra = _documented(app) - _routes(app)
    assert not extra, f"documented operations without a route: {extra}"


def test_the_served_document_is_the_declared_one_and_valid(app, client):
    served = client.get("/api/v1/openapi.json").get_json()
    assert served == document(app)
    validate(served)  # OpenAPI 3.1 schema, $refs included


def test_each_route_answers_with_what_its_entry_says_about_auth(app, client):
    """Routes documented without security answer without a token; the others refuse."""
    for path, ops in document(app)["paths"].items():
        concrete = re.sub(r"{\w+}", "1", path)  # "1" also fits <int:…> converters
        for method, op in ops.items():
            r = client.open(concrete, method=method.upper(), json={})
            if op["security"]:
                assert r.status_code == 401, (method, path)
            else:
                assert r.status_code != 401, (method, path)
            assert r.status_code < 500
