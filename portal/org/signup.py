"""Joining the organisation: the details a new account needs, and self-signup.

Invitations (``portal.org.invites``) and self-signup create accounts the same way:
the same checks on name, link name and password, and the organisation's
defaults for new members (``portal.org.member_defaults``).
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from peewee import IntegrityError

from portal.models import User, db
from portal.org.domains import clean_email
from portal.org.errors import AdminError
from portal.org.member_defaults import member_defaults
from portal.org.passwords import password_problem
from portal.org.settings import signup_allowed
from portal.org.users import slug_problem


def account_problem(name: str, slug: str, password: str, confirm: str) -> tuple[str, str] | None:
    """(field, message) for the first thing wrong with a new account's details."""
    name = (name or "").strip()
    if not name:
        return "name", _("enter your name")
    if len(name) > 200 or any(ch in name for ch in "\r\n\x00"):
        return "name", _("use one line of at most 200 characters")
    problem = slug_problem(slug or "")
    if problem:
        return "slug", problem
    if User.get_or_none(User.slug == slug) is not None:
        return "slug", _("another member has this link name")
    return password_problem(password, confirm)


def create_member(email: str, name: str, slug: str, password: str, admin: bool) -> User:
    """The account, with the organisation's defaults for new members."""
    from portal.org.users import create_user

    try:
        return create_user(
            email, password, slug, admin=admin, name=name.strip(), defaults=member_defaults()
        )
    except ValueError as exc:  # the slug rule, already checked; kept for safety
        raise AdminError(str(exc).removeprefix("slug: "), "slug") from exc


def sign_up(
    email: str, name: str, slug: str, password: str, confirm: str, now: datetime | None = None
) -> User:
    """Self-signup, when the admin allows it and the address is in an allowed domain."""
    email = clean_email(email)
    if not signup_allowed(email):
        raise AdminError(_("sign-up is not open to this e-mail address"), "email")
    if User.by_email(email) is not None:
        raise AdminError(_("an account with this e-mail address exists; sign in instead"), "email")
    slug = (slug or "").strip().lower()
    problem = account_problem(name, slug, password, confirm)
    if problem:
        raise AdminError(problem[1], problem[0])
    try:
        with db.atomic():
            return create_member(email, name, slug, password, False)
    except IntegrityError:
        raise AdminError(_("this e-mail address or link name was just taken"), "slug") from None
