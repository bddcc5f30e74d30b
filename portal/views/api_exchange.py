"""JSON API for the Exchange corporate connection (``/api/v1/exchange``).

``/organisation`` is the admin's (anyone else gets 404, as if it did not
exist): ``GET`` it, ``PUT`` ``{"email", "password"?, "username"?,
"ews_url"?, "access"?}`` to set it up or change it (checked with Exchange
first; 422 names the field and says what to try next), ``DELETE`` to remove
it, ``PUT /organisation/members/<user_id>`` ``{"mailbox"}`` to map a member.
``/membership`` is each member's: ``GET``, and ``PUT`` ``{"role": "main" |
"busy" | "additional" | "none"}``. Personal Exchange accounts are connected
through ``POST /api/v1/connections`` like every other provider.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from .. import exchange_org
from ..models import User
from ..providers import InvalidSetup
from .api import invalid, json_body, json_errors, not_found, require_token

bp = json_errors(Blueprint("api_exchange", __name__, url_prefix="/api/v1/exchange"))

ORG_FIELDS = ("email", "password", "username", "ews_url", "access")


def _admin() -> User:
    user = g.api_user
    if not user.is_admin:
        raise not_found()
    return user


def _strings(data: dict, names: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise invalid(unknown[0], f"unknown field; send only {', '.join(names)}")
    out = {}
    for name in names:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid(name, "must be a string")
        out[name] = value or ""
    return out


def organisation_dict() -> dict:
    org = exchange_org.organisation()
    if org is None:
        raise not_found("no organisation mailbox is set up")
    settings = org.settings_dict()
    members = []
    for user in User.select().where(User.is_active == True).order_by(User.id):  # noqa: E712
        member = exchange_org.membership(user)
        members.append(_member_dict(user, member))
    return {
        "email": org.email,
        "ews_url": settings.get("ews_url", ""),
        "autodiscovered": bool(settings.get("autodiscovered")),
        "username": settings.get("username", ""),
        "access": settings.get("access", "delegate"),
        "auth_type": settings.get("auth_type", ""),
        "version": settings.get("version", ""),
        "status": org.status,
        "members": members,
    }


def _member_dict(user: User, member: exchange_org.Membership) -> dict:
    return {
        "user_id": user.id,
        "email": user.email,
        "mailbox": member.mailbox,
        "role": member.role or "none",
        "connection_id": member.connection.id if member.connection else None,
        "status": member.connection.status if member.connection else None,
    }


def _setup_error(exc: InvalidSetup, default: str):
    field = exc.field if exc.field in ORG_FIELDS + ("mailbox", "role") else default
    return invalid(field, exc.message)


@bp.route("/organisation", methods=["GET"])
@require_token
def get_organisation():
    _admin()
    return jsonify(organisation_dict())


@bp.route("/organisation", methods=["PUT"])
@require_token
def put_organisation():
    """Set up or change the organisation mailbox; Exchange is asked before anything is stored."""
    _admin()
    fields = _strings(json_body(), ORG_FIELDS)
    if not fields["email"]:
        raise invalid("email", "the organisation mailbox's e-mail address is required")
    try:
        exchange_org.configure(fields)
    except InvalidSetup as exc:
        raise _setup_error(exc, "ews_url") from exc
    return jsonify(organisation_dict())


@bp.route("/organisation", methods=["DELETE"])
@require_token
def delete_organisation():
    _admin()
    if exchange_org.organisation() is None:
        raise not_found("no organisation mailbox is set up")
    exchange_org.remove()
    return "", 204


@bp.route("/organisation/members/<int:user_id>", methods=["PUT"])
@require_token
def put_member(user_id: int):
    _admin()
    user = User.get_or_none(User.id == user_id, User.is_active == True)  # noqa: E712
    if user is None:
        raise not_found("no such member")
    fields = _strings(json_body(), ("mailbox",))
    try:
        exchange_org.set_member_mailbox(user, fields["mailbox"])
    except InvalidSetup as exc:
        raise _setup_error(exc, "mailbox") from exc
    return jsonify(_member_dict(user, exchange_org.membership(user)))


@bp.route("/membership", methods=["GET"])
@require_token
def get_membership():
    user = g.api_user
    if exchange_org.organisation() is None:
        raise not_found("your organisation has not set up an Exchange mailbox")
    return jsonify(_member_dict(user, exchange_org.membership(user)))


@bp.route("/membership", methods=["PUT"])
@require_token
def put_membership():
    """Choose the role of the member's own Exchange calendar (``none`` disconnects it)."""
    user = g.api_user
    fields = _strings(json_body(), ("role",))
    if exchange_org.organisation() is None:
        raise not_found("your organisation has not set up an Exchange mailbox")
    try:
        member = exchange_org.set_role(user, fields["role"])
    except InvalidSetup as exc:
        raise _setup_error(exc, "role") from exc
    return jsonify(_member_dict(user, member))
