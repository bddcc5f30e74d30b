"""Invitations: an admin's single-use, expiring link for a co-worker to make an account.

The link's token is ``HMAC(secret key, "invite:" + salt)`` over a 256-bit random
salt, like the password-reset links (``portal.tokens``): the database keeps only
its SHA-256 and the salt, so a database leak alone opens nothing, and the e-mail
job rebuilds the link.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask_babel import gettext as _
from peewee import IntegrityError

from portal.i18n import request_locale
from portal.models import Invite, Outbox, User, db, from_db, hash_token, to_db, utcnow
from portal.org.domains import clean_email
from portal.org.errors import AdminError
from portal.org.signup import account_problem, create_member
from portal.tokens import derived_token, find_by_token

INVITE_VALID_FOR = timedelta(days=7)


def invite_token(invite: Invite) -> str:
    """The link token (256 bits, URL-safe) of ``invite``, rebuilt from its salt."""
    return derived_token("invite", invite.salt)


def invite_path(invite: Invite) -> str:
    return f"/invite/{invite_token(invite)}"


def is_open(invite: Invite, now: datetime) -> bool:
    """Not accepted, not revoked, not expired."""
    expires = from_db(invite.expires_at)
    return (
        invite.accepted_at is None
        and invite.revoked_at is None
        and expires is not None
        and now < expires
    )


def open_token(invite: Invite, now: datetime) -> str:
    """The link token while ``invite`` is open; "" once accepted, revoked or expired."""
    return invite_token(invite) if is_open(invite, now) else ""


def create_invite(
    email: str, invited_by: User | None, is_admin: bool = False, now: datetime | None = None
) -> Invite:
    """Record an invitation and its e-mail (one outbox row, same transaction).

    A new invitation for the same address replaces any still open, so only
    the newest link works.
    """
    now = now or utcnow()
    email = clean_email(email)
    if User.by_email(email) is not None:
        raise AdminError(_("someone with this e-mail address already has an account"), "email")
    with db.atomic():
        Invite.update(revoked_at=to_db(now)).where(
            Invite.email == email, Invite.accepted_at.is_null(), Invite.revoked_at.is_null()
        ).execute()
        invite = Invite(
            email=email,
            salt=secrets.token_hex(32),
            is_admin=is_admin,
            invited_by=invited_by,
            created_at=to_db(now),
            expires_at=to_db(now + INVITE_VALID_FOR),
        )
        invite.token_hash = hash_token(invite_token(invite))
        invite.save(force_insert=True)
        Outbox.add("invite_email", invite_id=invite.id, locale=request_locale())
    return invite


def find_invite(token: str, now: datetime | None = None) -> Invite | None:
    """The open invitation behind ``token``, or None (also once the secret key changed)."""
    when = now or utcnow()
    return find_by_token(Invite, Invite.token_hash, token, lambda i: open_token(i, when))


def revoke_invite(invite: Invite, now: datetime | None = None) -> bool:
    return bool(
        Invite.update(revoked_at=to_db(now or utcnow()))
        .where(Invite.id == invite.id, Invite.accepted_at.is_null(), Invite.revoked_at.is_null())
        .execute()
    )


def open_invites(now: datetime | None = None) -> list[Invite]:
    now = now or utcnow()
    return list(
        Invite.select()
        .where(
            Invite.accepted_at.is_null(),
            Invite.revoked_at.is_null(),
            Invite.expires_at > to_db(now),
        )
        .order_by(Invite.created_at.desc())
    )


def accept_invite(
    token: str, name: str, slug: str, password: str, confirm: str, now: datetime | None = None
) -> User:
    """Turn an open invitation into an account; the link is spent in the same transaction.

    Raises :class:`AdminError` (field set) for bad details, and with
    ``field=None`` when the link is no longer good (used, revoked, expired, or
    accepted by a concurrent request a moment ago).
    """
    now = now or utcnow()
    slug = (slug or "").strip().lower()
    problem = account_problem(name, slug, password, confirm)
    if problem:
        raise AdminError(problem[1], problem[0])
    gone = AdminError("this invitation is no longer valid", None)
    try:
        with db.atomic():
            invite = find_invite(token, now)
            if invite is None:
                raise gone
            claimed = (
                Invite.update(accepted_at=to_db(now))
                .where(
                    Invite.id == invite.id,
                    Invite.accepted_at.is_null(),
                    Invite.revoked_at.is_null(),
                )
                .execute()
            )
            if not claimed:
                raise gone
            if User.by_email(invite.email) is not None:
                raise AdminError(_("an account with this e-mail address exists; sign in instead"))
            user = create_member(invite.email, name, slug, password, invite.is_admin)
            Invite.update(user=user).where(Invite.id == invite.id).execute()
    except IntegrityError:
        # A concurrent sign-up took the link name (or the address) after the checks above;
        # the whole transaction, including spending the link, was rolled back.
        raise AdminError(_("another member has this link name"), "slug") from None
    return user
