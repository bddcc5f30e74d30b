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

from portal.api.base import invalid, json_errors, not_found, operation, require_token
from portal.api.schemas.exchange import (
    ExchangeMailboxRequest,
    ExchangeMember,
    ExchangeOrganisation,
    ExchangeOrganisationRequest,
    ExchangeRoleRequest,
)
from portal.calendars import exchange_org
from portal.calendars.providers import InvalidSetup
from portal.models import User

bp = json_errors(Blueprint("api_exchange", __name__, url_prefix="/api/v1/exchange"))

ORG_FIELDS = tuple(ExchangeOrganisationRequest.model_fields)


def _admin() -> User:
    user = g.api_user
    if not user.is_admin:
        raise not_found()
    return user


def _strings(body: ExchangeOrganisationRequest) -> dict[str, str]:
    """The body as the domain takes it: a left-out or null field is blank."""
    return {name: getattr(body, name) or "" for name in ORG_FIELDS}


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
@operation(
    "The Exchange organisation mailbox and its members (admin)",
    "exchange",
    {200: ("the organisation mailbox", ExchangeOrganisation)},
    errors=(404,),
    description="404 for anyone but an admin, and when none is set up.",
)
def get_organisation():
    _admin()
    return jsonify(organisation_dict())


@bp.route("/organisation", methods=["PUT"])
@require_token
@operation(
    "Set up or change the Exchange organisation mailbox (admin)",
    "exchange",
    {200: ("the organisation mailbox", ExchangeOrganisation)},
    body=ExchangeOrganisationRequest,
    errors=(404,),
    description="Kairos signs in to Exchange first (Autodiscover when `ews_url` is blank); "
    "a failure is 422 naming the field to change, with what to try next.",
)
def put_organisation(body: ExchangeOrganisationRequest):
    """Set up or change the organisation mailbox; Exchange is asked before anything is stored."""
    _admin()
    fields = _strings(body)
    if not fields["email"]:
        raise invalid("email", "the organisation mailbox's e-mail address is required")
    try:
        exchange_org.configure(fields)
    except InvalidSetup as exc:
        raise _setup_error(exc, "ews_url") from exc
    return jsonify(organisation_dict())


@bp.route("/organisation", methods=["DELETE"])
@require_token
@operation(
    "Remove the organisation mailbox; members' calendars through it are disconnected",
    "exchange",
    {204: ("removed", None)},
    errors=(404,),
)
def delete_organisation():
    _admin()
    if exchange_org.organisation() is None:
        raise not_found("no organisation mailbox is set up")
    exchange_org.remove()
    return "", 204


@bp.route("/organisation/members/<int:user_id>", methods=["PUT"])
@require_token
@operation(
    "Map a member to their Exchange address (admin)",
    "exchange",
    {200: ("the member", ExchangeMember)},
    body=ExchangeMailboxRequest,
)
def put_member(user_id: int, body: ExchangeMailboxRequest):
    _admin()
    user = User.get_or_none(User.id == user_id, User.is_active == True)  # noqa: E712
    if user is None:
        raise not_found("no such member")
    try:
        exchange_org.set_member_mailbox(user, body.mailbox or "")
    except InvalidSetup as exc:
        raise _setup_error(exc, "mailbox") from exc
    return jsonify(_member_dict(user, exchange_org.membership(user)))


@bp.route("/membership", methods=["GET"])
@require_token
@operation(
    "How your Exchange calendar is used through the organisation mailbox",
    "exchange",
    {200: ("your membership", ExchangeMember)},
    errors=(404,),
)
def get_membership():
    user = g.api_user
    if exchange_org.organisation() is None:
        raise not_found("your organisation has not set up an Exchange mailbox")
    return jsonify(_member_dict(user, exchange_org.membership(user)))


@bp.route("/membership", methods=["PUT"])
@require_token
@operation(
    "Choose the role of your Exchange calendar",
    "exchange",
    {200: ("your membership", ExchangeMember)},
    body=ExchangeRoleRequest,
    errors=(404,),
    description="`main`: the main booking calendar; `busy`: a busy-time source; "
    "`additional`: every booking is copied there too; `none`: disconnect it.",
)
def put_membership(body: ExchangeRoleRequest):
    """Choose the role of the member's own Exchange calendar (``none`` disconnects it)."""
    user = g.api_user
    if exchange_org.organisation() is None:
        raise not_found("your organisation has not set up an Exchange mailbox")
    try:
        member = exchange_org.set_role(user, body.role)
    except InvalidSetup as exc:
        raise _setup_error(exc, "role") from exc
    return jsonify(_member_dict(user, member))
