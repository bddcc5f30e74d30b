"""JSON API v1 (bearer tokens). See /api/v1/openapi.json."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
