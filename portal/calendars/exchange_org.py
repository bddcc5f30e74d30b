"""The Exchange corporate connection: one organisation mailbox, members' calendars through it.

The admin configures one dedicated mailbox that has delegate access (or
``ApplicationImpersonation``) to members' calendars; members then need no
credentials of their own. Each member picks the role of their Exchange
calendar:

``main``
    the main booking calendar — new bookings are written there, and it is
    checked for conflicts;
``busy``
    a busy-time source — checked for conflicts only;
``additional``
    an additional booking calendar — every booking gets a copy there (the
    ``booking_copies`` job), besides the main booking calendar.

A member who uses it gets an ordinary ``exchange`` connection whose settings
name *their* mailbox and the organisation's login, and which holds a sealed
copy of the organisation's password. Sync, live checks and write-back then
work unchanged, and events land in the member's own calendar, owned by the
member. Changing the organisation's password or endpoint re-seals every copy
in the same transaction; removing the organisation disconnects them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask import current_app

from portal import crypto
from portal.calendars import refresh_queue, sync
from portal.calendars.providers import InvalidSetup, ProviderError, provider_config
from portal.calendars.providers.exchange import ExchangeProvider
from portal.calendars.providers.exchange.setup import EMAIL_RE, member_settings
from portal.models import Calendar, Connection, ExchangeOrganisation, User, db, to_db, utcnow

ROLES = {
    "main": "Main booking calendar",
    "busy": "Busy-time source",
    "additional": "Additional booking calendar",
}
ROLE_HELP = {
    "main": "new bookings are written here, and its busy times block slots",
    "busy": "its busy times block slots; bookings go to another calendar",
    "additional": "every booking is copied here as well; it does not block slots",
}
ACCESS_TYPES = {"delegate": "Delegate access", "impersonation": "Impersonation"}


@dataclass(frozen=True)
class Membership:
    """What a member sees: their mailbox, their connection (if any) and its role."""

    mailbox: str
    connection: Connection | None
    calendar: Calendar | None
    role: str  # "" when the member does not use the corporate connection


# ---------------------------------------------------------------- the organisation


def organisation() -> ExchangeOrganisation | None:
    return ExchangeOrganisation.select().order_by(ExchangeOrganisation.id).first()


def password(org: ExchangeOrganisation) -> str:
    return str((crypto.unseal(org, "secret") or {}).get("password") or "")


def configure(fields: dict[str, Any]) -> ExchangeOrganisation:
    """Check the mailbox with Exchange, store it sealed, and bring members' copies in step.

    A blank password keeps the stored one, so the admin can change the
    endpoint without retyping it. Raises :class:`InvalidSetup` naming the
    field at fault, with the adapter's advice on what to try next.
    """
    org = organisation()
    fields = {k: str(v or "").strip() for k, v in fields.items() if k != "password"} | {
        "password": str(fields.get("password") or "")
    }
    if not fields["password"]:
        if org is None:
            raise InvalidSetup("password", "the password is required")
        fields["password"] = password(org)
    fields["access"] = fields.get("access") or "delegate"
    if fields["access"] not in ACCESS_TYPES:
        raise InvalidSetup("access", "choose delegate access or impersonation")
    # The admin runs this server and names their own Exchange, usually on the private network:
    # the guard against hosts probing internal addresses does not apply to them.
    config = provider_config(current_app.config) | {"ALLOW_PRIVATE_URLS": True}
    setup = ExchangeProvider.prepare(fields, config)
    now = cast(datetime, to_db(utcnow()))  # an instant in is an instant out
    with db.atomic():
        if org is None:
            org = ExchangeOrganisation.create(email=setup.label, created_at=now, updated_at=now)
            mailboxes: dict[str, str] = {}
        else:
            mailboxes = dict(org.settings_dict().get("mailboxes") or {})
        org.email = setup.label
        org.settings = json.dumps(dict(setup.settings) | {"mailboxes": mailboxes})
        crypto.seal(org, "secret", dict(setup.credentials))
        org.status, org.last_error, org.updated_at = "ok", "", now
        org.save()
        members = _propagate(org)
    for conn in members:
        refresh_queue.request_refresh(conn)
    return org


def remove() -> int:
    """Forget the organisation mailbox; every member connection through it is disconnected."""
    org = organisation()
    members = corporate_connections()
    with db.atomic():
        for conn in members:
            sync.disconnect(conn)
        if org is not None:
            ExchangeOrganisation.update(secret="").where(
                ExchangeOrganisation.id == org.id
            ).execute()
            org.delete_instance()
    return len(members)


def corporate_connections(user: User | None = None) -> list[Connection]:
    """Connections that reach a member's calendar through the organisation mailbox."""
    query = Connection.select().where(Connection.provider == "exchange")
    if user is not None:
        query = query.where(Connection.user == user)
    return [c for c in query.order_by(Connection.id) if c.settings_dict().get("corporate")]


def _propagate(org: ExchangeOrganisation) -> list[Connection]:
    """Re-seal the organisation's login into every member connection (inside a transaction)."""
    settings = org.settings_dict()
    creds = crypto.unseal(org, "secret") or {}
    members = corporate_connections()
    for conn in members:
        user = User.get_by_id(conn.user_id)
        conn.settings = json.dumps(member_settings(settings, member_mailbox(user, org)))
        crypto.seal(conn, "secret", creds)
        conn.status, conn.last_error, conn.failures, conn.next_sync_at = "syncing", "", 0, None
        conn.save()
    return members


# ---------------------------------------------------------------- members


def member_mailbox(user: User, org: ExchangeOrganisation | None = None) -> str:
    """The member's Exchange address: the admin's mapping, else their Kairos e-mail."""
    org = org or organisation()
    mapped = (org.settings_dict().get("mailboxes") or {}) if org else {}
    return str(mapped.get(str(user.id)) or user.email).lower()


def set_member_mailbox(user: User, mailbox: str) -> None:
    """The admin maps a member to another Exchange address ("" = their Kairos e-mail)."""
    mailbox = mailbox.strip().lower()
    if mailbox and not EMAIL_RE.match(mailbox):
        raise InvalidSetup("mailbox", "enter the member's Exchange e-mail address")
    org = organisation()
    if org is None:
        raise InvalidSetup("mailbox", "set up the organisation mailbox first")
    settings = org.settings_dict()
    mailboxes = dict(settings.get("mailboxes") or {})
    if mailbox and mailbox != user.email.lower():
        mailboxes[str(user.id)] = mailbox
    else:
        mailboxes.pop(str(user.id), None)
    with db.atomic():
        org.settings = json.dumps(settings | {"mailboxes": mailboxes})
        org.save()
        for conn in corporate_connections(user):
            conn.settings = json.dumps(
                member_settings(org.settings_dict(), member_mailbox(user, org))
            )
            conn.status, conn.next_sync_at = "syncing", None
            conn.save()
    for conn in corporate_connections(user):
        refresh_queue.request_refresh(conn)


def role_of(calendar: Calendar | None) -> str:
    if calendar is None:
        return ""
    if calendar.write:
        return "main"
    if calendar.copy_bookings:
        return "additional"
    return "busy" if calendar.conflict else ""


def membership(user: User) -> Membership:
    conns = corporate_connections(user)
    conn = conns[0] if conns else None
    calendar = Calendar.select().where(Calendar.connection == conn).first() if conn else None
    return Membership(member_mailbox(user), conn, calendar, role_of(calendar))


def set_role(user: User, role: str) -> Membership:
    """Use (or stop using) the member's Exchange calendar through the organisation.

    ``role`` is one of :data:`ROLES`, or ``"none"`` to disconnect. Raises
    :class:`InvalidSetup` (field ``role``) when the organisation mailbox
    cannot do what the role needs.
    """
    if role not in ROLES and role != "none":
        raise InvalidSetup("role", "choose how Kairos should use this calendar")
    org = organisation()
    if org is None:
        raise InvalidSetup("role", "your organisation has not set up an Exchange mailbox")
    current = membership(user)
    if role == "none":
        if current.connection is not None:
            sync.disconnect(current.connection)
        return membership(user)
    conn = current.connection or _connect_member(user, org)
    calendar = Calendar.select().where(Calendar.connection == conn).first()
    if calendar is None:
        raise InvalidSetup("role", "the organisation mailbox found no calendar for you")
    if role in ("main", "additional"):
        if not calendar.writable:
            raise InvalidSetup(
                "role",
                "the organisation mailbox may only see the free/busy times of "
                f"{calendar.external_id}; ask your admin to grant it delegate access (Editor) "
                "to write bookings there",
            )
        _refuse_duplicate(user, calendar)
    with db.atomic():
        sync.set_calendar_flags(calendar, conflict=role != "additional", write=role == "main")
        Calendar.update(copy_bookings=role == "additional").where(
            Calendar.id == calendar.id
        ).execute()
    refresh_queue.request_refresh(conn)
    return membership(user)


def _refuse_duplicate(user: User, calendar: Calendar) -> None:
    """The same mailbox connected twice would find one booking's item from both sides."""
    twin = (
        Calendar.select()
        .join(Connection)
        .where(
            Connection.user == user,
            Calendar.external_id == calendar.external_id,
            Calendar.id != calendar.id,
            Connection.provider == "exchange",
        )
        .first()
    )
    if twin is not None:
        raise InvalidSetup(
            "role", f"{calendar.external_id} is also connected as a personal account; use that one"
        )


def _connect_member(user: User, org: ExchangeOrganisation) -> Connection:
    """A member's connection through the organisation, checked by listing their calendar."""
    mailbox = member_mailbox(user, org)
    with db.atomic():
        conn = Connection.create(
            user=user,
            provider="exchange",
            label=f"{mailbox} (via {org.email})"[:255],
            settings=json.dumps(member_settings(org.settings_dict(), mailbox)),
            status="syncing",
        )
        crypto.seal(conn, "secret", crypto.unseal(org, "secret") or {})
        conn.save()
    try:
        sync.with_adapter(conn, lambda p: sync.save_calendars(conn, p.list_calendars()))
    except ProviderError as exc:
        sync.disconnect(conn)
        raise InvalidSetup("role", _member_advice(mailbox, org, exc)) from exc
    return conn


def _member_advice(mailbox: str, org: ExchangeOrganisation, exc: ProviderError) -> str:
    from portal.calendars.providers import CredentialsInvalid, NotFound, PermissionDenied

    if isinstance(exc, PermissionDenied):
        return (
            f"{org.email} may not open the calendar of {mailbox}. Your admin can grant it "
            "delegate access (Editor) to your calendar, or impersonation rights."
        )
    if isinstance(exc, NotFound):
        return f"Exchange has no mailbox {mailbox}; ask your admin to map your Exchange address."
    if isinstance(exc, CredentialsInvalid):
        return "Exchange refused the organisation mailbox's password; tell your admin."
    return f"Exchange could not be reached just now ({exc}); try again in a moment."
