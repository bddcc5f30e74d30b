"""JSON API v1 (bearer tokens). See /api/v1/openapi.json, declared in ``portal.openapi``.

This module holds the blueprint, ``/openapi.json``, ``/me`` and the pieces every
API module shares (``ApiError``, ``api_error``, ``require_token``, ``json_body``,
``Fields``); the routes of each resource live beside it: ``api_availability``,
``api_types``, ``api_bookings`` on this blueprint, and ``api_connections``,
``api_details``, ``api_exchange`` on blueprints of their own. Errors are always
``{"error": {"code", "message", "field"?}}``; every invalid input is a 4xx
that names the field, never a 500.

The views only parse and answer: booking rules live in ``portal.booking``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from .. import booking as svc
from .. import openapi
from ..booking import BookingError
from ..models import (
    ApiToken,
    to_db,
    utcnow,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def api_error(status: int, code: str, message: str, field: str | None = None):
    body: dict = {"code": code, "message": message}
    if field:
        body["field"] = field
    return jsonify({"error": body}), status


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, field)


def not_found(what: str = "not found") -> ApiError:
    return ApiError(404, "not_found", what)


def _api_error(exc: ApiError):
    return api_error(exc.status, exc.code, exc.message, exc.field)


def _booking_error(exc: BookingError):
    return api_error(exc.status, exc.code, exc.message, exc.field)


def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    field = None
    message = exc.description or exc.name
    if isinstance(exc, RequestEntityTooLarge):
        field = "body"
        cap = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"the body is larger than {cap} bytes" if cap else message
    response, status = api_error(exc.code or 500, code, message, field)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response, status


@bp.app_errorhandler(HTTPException)
def _app_http_error(exc: HTTPException):
    """Unknown paths and wrong methods fail during routing, before a blueprint is chosen;
    under /api/ they must still answer JSON. Other paths keep Flask's own answer."""
    if request.path.startswith("/api/"):
        return _http_error(exc)
    return exc


def _no_store(response):
    """Answers carry personal data or change with every booking: never cache them."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def json_errors(blueprint: Blueprint) -> Blueprint:
    """Give an /api/v1 blueprint the API's JSON errors and no-store caching.

    Other API modules (e.g. connections) call this on their own blueprint so
    their answers look exactly like these.
    """
    blueprint.register_error_handler(ApiError, _api_error)
    blueprint.register_error_handler(BookingError, _booking_error)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.after_request(_no_store)
    return blueprint


json_errors(bp)


def require_token(view):
    """Authenticate ``Authorization: Bearer <token>``; sets ``g.api_user``."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, plain = header.partition(" ")
        if scheme.lower() != "bearer" or not plain.strip():
            return _unauthorized("a bearer token is required")
        token = ApiToken.lookup(plain.strip())
        if token is None:
            return _unauthorized("invalid or revoked token")
        ApiToken.update(last_used_at=to_db(utcnow())).where(ApiToken.id == token.id).execute()
        g.api_user = token.user
        return view(*args, **kwargs)

    return wrapper


def _unauthorized(message: str):
    response, status = api_error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="kairos"'
    return response, status


def json_body() -> dict:
    """The request's JSON object, or a 422 (field ``body``) that says what is wrong with it.

    Strings are checked here once for what the databases refuse (NUL, lone
    surrogates), so no view can turn such input into a 500.
    """
    request.get_data(cache=True)  # over MAX_CONTENT_LENGTH → 413 before anything else
    if not request.is_json:
        raise ApiError(
            422, "invalid_json", "send a JSON object with Content-Type: application/json", "body"
        )
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # absurdly nested input; json raises this, not ValueError
        data = None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_json", "the body must be a JSON object", "body")
    _check_strings(data)
    return data


def optional_json_body() -> dict:
    """Like ``json_body`` for actions whose body may be left out entirely."""
    if not request.get_data(cache=True):
        return {}
    return json_body()


def _check_strings(data: object) -> None:
    """Refuse NUL characters and unpaired surrogates anywhere in a parsed body."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                sub = f"{path}.{key}" if path else str(key)
                _check_string(key, sub)
                stack.append((sub, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_string(value, path)


def _check_string(value: str, field: str) -> None:
    if "\x00" in value:
        raise invalid(field, "text cannot contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(field, "text is not valid Unicode") from exc


# ---------------------------------------------------------------- reading fields

MISSING: Any = object()


class Fields:
    """Typed, bounded reads from a JSON object; every refusal names its field."""

    def __init__(self, data: dict, prefix: str = ""):
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def only(self, allowed: Iterable[str], ignored: Iterable[str] = ()) -> None:
        """Refuse unknown keys, so a typo is an error rather than a silent no-op."""
        known = set(allowed) | set(ignored)
        for key in self.data:
            if key not in known:
                raise invalid(self.name(key), "unknown field")

    def raw(self, key: str, required: bool) -> Any:
        value = self.data.get(key, MISSING)
        if value is MISSING and required:
            raise invalid(self.name(key), f"{key} is required")
        return value

    def string(
        self, key: str, max_len: int, *, required: bool = False, one_line: bool = False
    ) -> Any:
        value = self.raw(key, required)
        if value is MISSING:
            return value
        if not isinstance(value, str):
            raise invalid(self.name(key), "expected a string")
        if len(value) > max_len:
            raise invalid(self.name(key), f"at most {max_len} characters")
        if one_line and any(ch in value for ch in "\r\n"):
            raise invalid(self.name(key), "cannot contain line breaks")
        return value

    def integer(
        self, key: str, low: int, high: int, *, required: bool = False, nullable: bool = False
    ) -> Any:
        value = self.raw(key, required)
        if value is MISSING or (value is None and nullable):
            return value
        # bool is an int in Python, but `true` is not a number of minutes.
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid(self.name(key), "expected a whole number" + (" or null" * nullable))
        if not low <= value <= high:
            raise invalid(self.name(key), f"must be between {low} and {high}")
        return value

    def boolean(self, key: str) -> Any:
        value = self.raw(key, False)
        if value is not MISSING and not isinstance(value, bool):
            raise invalid(self.name(key), "expected true or false")
        return value


def parse_zone(name: object, field: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise invalid(field, "expected an IANA time zone such as Europe/Berlin")
    try:
        return svc.zone(name)
    except BookingError as exc:
        raise invalid(field, f"unknown time zone {name!r}") from exc


# Dates outside this range are typos, and far ones overflow datetime arithmetic.
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2999, 12, 31)


def parse_date(value: object, field: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise invalid(field, "expected a date as YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise invalid(field, f"{value} is not a calendar date") from exc
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise invalid(field, f"must be between {MIN_DATE} and {MAX_DATE}")
    return parsed


def query_int(key: str, default: int, low: int, high: int) -> int:
    value = request.args.get(key)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"\d{1,9}", value) or not low <= int(value) <= high:
        raise invalid(key, f"expected a whole number between {low} and {high}")
    return int(value)


# ---------------------------------------------------------------- the document and the host


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document; public, so clients can be generated without a token."""
    response = jsonify(openapi.document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/me")
@require_token
def me():
    user = g.api_user
    return jsonify(
        id=user.id,
        email=user.email,
        slug=user.slug,
        name=user.name,
        timezone=user.timezone,
        lead_time_minutes=user.lead_time_minutes,
        is_admin=user.is_admin,
        allow_booking=user.allow_booking,
        profile_url=svc.external_url(f"/{user.slug}"),
    )


# The routes live in one module per resource; importing them attaches them to ``bp``.
from . import api_availability, api_bookings, api_types  # noqa: E402, F401
