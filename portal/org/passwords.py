"""Password resets for hosts: single-use, expiring links sent by e-mail.

The link's token is ``HMAC(secret key, salt + the user's current password
hash)``: the database stores only the token's SHA-256 and the random salt, so
neither a database leak alone nor a log line gives a working link; the e-mail
job rebuilds the token from the salt (like the invitee manage links); and
any password change — through this reset or elsewhere — silently invalidates
every outstanding link. ``used_at`` makes each link single-use even between
two requests racing with the same token.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask_babel import gettext as _

from portal.i18n import request_locale
from portal.models import Outbox, PasswordReset, User, db, from_db, hash_token, to_db, utcnow
from portal.tokens import derived_token, find_by_token

RESET_VALID_FOR = timedelta(hours=1)
# More requests than this per account and hour send nothing (no mail bombing).
MAX_RESETS_PER_HOUR = 3
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def reset_token(reset: PasswordReset, user: User) -> str:
    """The link token (256 bits, URL-safe) of ``reset`` for ``user`` as they are now."""
    return derived_token("password-reset", reset.salt, user.password_hash)


def request_reset(email: str, now: datetime | None = None) -> PasswordReset | None:
    """Record a reset and its e-mail for an active host; None (and nothing sent) otherwise.

    The caller answers the same either way, so the form does not reveal which
    addresses have accounts.
    """
    now = now or utcnow()
    user = User.by_email(email or "")
    if user is None or not user.is_active:
        return None
    recent = (
        PasswordReset.select()
        .where(
            PasswordReset.user == user,
            PasswordReset.created_at > to_db(now - timedelta(hours=1)),
        )
        .count()
    )
    if recent >= MAX_RESETS_PER_HOUR:
        return None
    with db.atomic():
        reset = PasswordReset(
            user=user,
            salt=secrets.token_hex(16),
            created_at=to_db(now),
            expires_at=to_db(now + RESET_VALID_FOR),
        )
        reset.token_hash = hash_token(reset_token(reset, user))
        reset.save(force_insert=True)
        Outbox.add("password_reset", reset_id=reset.id, locale=request_locale())
    return reset


def is_live(reset: PasswordReset, now: datetime) -> bool:
    """Not used yet and not expired."""
    expires = from_db(reset.expires_at)
    return reset.used_at is None and expires is not None and now < expires


def live_token(reset: PasswordReset, now: datetime) -> str:
    """The link token while ``reset`` is live and its user active; "" otherwise.

    Rebuilt from the user's password as it is now, so it no longer matches the
    stored hash once the password changed.
    """
    if not is_live(reset, now):
        return ""
    user = User.get_or_none(User.id == reset.user_id)
    if user is None or not user.is_active:
        return ""
    return reset_token(reset, user)


def find_reset(token: str, now: datetime | None = None) -> PasswordReset | None:
    """The unused, unexpired reset behind ``token`` whose user's password is unchanged."""
    when = now or utcnow()
    return find_by_token(
        PasswordReset, PasswordReset.token_hash, token, lambda r: live_token(r, when)
    )


def password_problem(password: str, confirm: str) -> tuple[str, str] | None:
    """(field, message) when the new password is not acceptable."""
    if len(password or "") < MIN_PASSWORD:
        return "password", _("use at least %(num)d characters", num=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        return "password", _("use at most %(num)d characters", num=MAX_PASSWORD)
    if password != confirm:
        return "confirm", _("the two passwords differ")
    return None


def redeem(token: str, password: str, now: datetime | None = None) -> User | None:
    """Set the new password if ``token`` is still good; the link and its siblings die."""
    now = now or utcnow()
    with db.atomic():
        reset = find_reset(token, now)
        if reset is None:
            return None
        used = (
            PasswordReset.update(used_at=to_db(now))
            .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_null())
            .execute()
        )
        if not used:
            return None  # a concurrent request redeemed it first
        user = User.get_by_id(reset.user_id)
        user.set_password(password)
        user.save()
        PasswordReset.update(used_at=to_db(now)).where(
            PasswordReset.user == user, PasswordReset.used_at.is_null()
        ).execute()
    return user
