"""People: everyone with their calendars, making admins, and deactivating members.

Deactivation keeps bookings and history but ends every way in at once:
sessions (the user loader only loads active users), API tokens (deleted;
``ApiToken.lookup`` also ignores inactive users) and calendar access (sealed
secrets wiped, accounts marked "needs reconnect"). The organisation never loses
its last active admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from peewee import fn

from portal.models import ApiToken, Connection, OAuthFlow, User, db
from portal.org.errors import AdminError


@dataclass
class Person:
    user: User
    connections: list[Connection]

    @property
    def health(self) -> str:
        """ok | attention (a calendar needs the member) | none (no calendar connected)."""
        if not self.connections:
            return "none"
        if any(c.status in ("needs_reconnect", "error") for c in self.connections):
            return "attention"
        return "ok"


def people() -> list[Person]:
    """Everyone, active first, with their calendar connections."""
    users = list(User.select().order_by(User.is_active.desc(), fn.LOWER(User.name), User.id))
    by_user: dict[int, list[Connection]] = {u.id: [] for u in users}
    for conn in Connection.select().order_by(Connection.id):
        by_user.setdefault(conn.user_id, []).append(conn)
    return [Person(u, by_user.get(u.id, [])) for u in users]


def active_admin_count() -> int:
    return (
        User.select()
        .where(User.is_admin == True, User.is_active == True)  # noqa: E712
        .count()
    )


def set_admin(user: User, value: bool) -> User:
    """Make ``user`` an admin or take it back; the last active admin stays one."""
    with db.atomic():
        fresh = User.get_by_id(user.id)
        if not value and fresh.is_admin and fresh.is_active and active_admin_count() <= 1:
            raise AdminError(_("the organisation needs at least one admin"))
        if value and not fresh.is_active:
            raise AdminError(_("reactivate this member first"))
        User.update(is_admin=value).where(User.id == user.id).execute()
        fresh.is_admin = value
    return fresh


def deactivate(actor: User, user: User) -> User:
    """Close a member's account now; their bookings and history stay.

    Sessions end at the next request (only active users load), API tokens are
    deleted, sealed calendar credentials are wiped and every connection is
    marked "needs reconnect" so no job touches the accounts again. Their
    public pages answer 404 because they filter on ``is_active``.
    """
    if user.id == actor.id:
        raise AdminError(_("you cannot deactivate your own account"))
    with db.atomic():
        fresh = User.get_by_id(user.id)
        if fresh.is_admin and fresh.is_active and active_admin_count() <= 1:
            raise AdminError(_("the organisation needs at least one admin"))
        User.update(is_active=False).where(User.id == user.id).execute()
        Connection.update(
            secret="", status="needs_reconnect", last_error="the member was deactivated"
        ).where(Connection.user == user.id).execute()
        OAuthFlow.delete().where(OAuthFlow.user == user.id).execute()  # sealed grants on offer
        ApiToken.delete().where(ApiToken.user == user.id).execute()
        fresh.is_active = False
    return fresh


def reactivate(user: User) -> User:
    """Let a member back in; they reconnect their calendars (the secrets are gone)."""
    User.update(is_active=True).where(User.id == user.id).execute()
    return User.get_by_id(user.id)
