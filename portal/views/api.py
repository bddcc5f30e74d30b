"""JSON API v1 (bearer tokens). See /api/v1/openapi.json.

Shared pieces used by every API module: ``api_error``, ``require_token`` and
``json_body``. Errors are always ``{"error": {"code", "message", "field"?}}``.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..booking import BookingError
from ..models import ApiToken, to_db, utcnow

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


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return api_error(exc.status, exc.code, exc.message, exc.field)


@bp.errorhandler(BookingError)
def _booking_error(exc: BookingError):
    return api_error(exc.status, exc.code, exc.message, exc.field)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return api_error(exc.code or 500, code, exc.description or exc.name)


def require_token(view):
    """Authenticate ``Authorization: Bearer <token>``; sets ``g.api_user``."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, plain = header.partition(" ")
        if scheme.lower() != "bearer" or not plain.strip():
            return api_error(401, "unauthorized", "a bearer token is required")
        token = ApiToken.lookup(plain.strip())
        if token is None:
            return api_error(401, "unauthorized", "invalid or revoked token")
        ApiToken.update(last_used_at=to_db(utcnow())).where(ApiToken.id == token.id).execute()
        g.api_user = token.user
        return view(*args, **kwargs)

    return wrapper


def json_body() -> dict:
    """The request's JSON object, or a 422 that says what is wrong with it."""
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(422, "invalid_json", "the body must be a JSON object", "body")
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_json", "the body must be a JSON object", "body")
    return data
