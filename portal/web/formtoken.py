"""Signed, expiring tokens for the public booking forms.

The booking form is posted from inside third-party iframes, where the session
cookie (and so Flask-WTF's CSRF token) is not available. Instead each form
carries a token signed with the app secret, bound to what it may change (host,
meeting type and, on a manage page, the booking) and valid for a short time:
a forged, replayed-elsewhere or stale form is refused.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "kairos.public-form"


class FormTokenError(Exception):
    """The token is missing, forged, bound to something else, or expired."""

    def __init__(self, message: str, expired: bool = False):
        super().__init__(message)
        self.message = message
        self.expired = expired


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _scope(host_id: int, type_id: int, booking_uid: str = "") -> list:
    return [int(host_id), int(type_id), booking_uid]


def issue(host_id: int, type_id: int, booking_uid: str = "") -> str:
    """A token for one form of one host's meeting type (and booking, when managing)."""
    return _serializer().dumps(_scope(host_id, type_id, booking_uid))


def verify(token: str | None, host_id: int, type_id: int, booking_uid: str = "") -> None:
    """Raise :class:`FormTokenError` unless ``token`` is fresh and bound to this scope."""
    if not token or len(token) > 500:
        raise FormTokenError(_("this form is missing its security token"))
    max_age = current_app.config["FORM_TOKEN_MAX_AGE"]
    try:
        scope = _serializer().loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise FormTokenError(_("this form has expired"), expired=True) from exc
    except BadSignature as exc:
        raise FormTokenError(_("this form's security token is not valid")) from exc
    if scope != _scope(host_id, type_id, booking_uid):
        raise FormTokenError(_("this form's security token belongs to another page"))
