"""Hosts' accounts: the one place a user is created, and the link name a new one suggests.

The CLI (``users create``), the first-run setup page, accepted invitations,
self-signup and "Sign in with Google / Microsoft" all create hosts through
:func:`create_user`, so every new host starts the same way.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l

from portal.models import DEFAULT_WEEKLY, MeetingType, User, WeeklyHours, db, validate_slug

if TYPE_CHECKING:
    from portal.org.member_defaults import MemberDefaults


# validate_slug's refusals (portal.models holds no translations), in the reader's language.
_SLUG_PROBLEMS = {
    "use 1–40 lowercase letters, digits and dashes": _l(
        "use 1–40 lowercase letters, digits and dashes"
    ),
    "this word is reserved": _l("this word is reserved"),
}


def slug_problem(slug: str) -> str | None:
    """What is wrong with ``slug`` as a link name, for a person; None when it is fine."""
    problem = validate_slug(slug)
    return str(_SLUG_PROBLEMS.get(problem, problem)) if problem else None


def create_user(
    email: str,
    password: str,
    slug: str,
    admin: bool = False,
    name: str = "",
    timezone: str | None = None,
    defaults: MemberDefaults | None = None,
) -> User:
    """Create a host with the default weekly hours (Mon–Fri 09:00–17:00).

    ``defaults`` are the organisation's defaults for new members
    (``portal.org.member_defaults.member_defaults()``: time zone, weekly hours, lead time, and
    a first 30-minute meeting type carrying the buffers); the invite, sign-up
    and CLI paths pass them. An explicit ``timezone`` wins over the default one.
    Raises ValueError (``"slug: …"``) for a link name the rules refuse.
    """
    email = email.strip().lower()
    problem = validate_slug(slug)
    if problem:
        raise ValueError(f"slug: {problem}")
    weekly = defaults.weekly if defaults is not None else DEFAULT_WEEKLY
    zone = timezone or (defaults.timezone if defaults is not None else "UTC")
    with db.atomic():
        user = User(email=email, slug=slug, name=name or slug, is_admin=admin, timezone=zone)
        if defaults is not None:
            user.lead_time_minutes = defaults.lead_time_minutes
        user.set_password(password)
        user.save()
        for weekday, windows in weekly.items():
            for start, end in windows:
                WeeklyHours.create(user=user, weekday=weekday, start=start, end=end)
        if defaults is not None:
            MeetingType.create(
                user=user,
                slug="meeting",
                name="30-minute meeting",
                duration_minutes=30,
                buffer_before_minutes=defaults.buffer_before_minutes,
                buffer_after_minutes=defaults.buffer_after_minutes,
            )
    return user


def suggest_slug(email: str) -> str:
    """A free link name from the address's local part (``ada``, ``ada-2`` …)."""
    base = re.sub(r"[^a-z0-9-]+", "-", email.split("@")[0].lower()).strip("-")[:30] or "host"
    for n in range(100):
        slug = base if n == 0 else f"{base}-{n + 1}"
        if validate_slug(slug) is None and User.get_or_none(User.slug == slug) is None:
            return slug
    return f"host-{secrets.token_hex(4)}"
