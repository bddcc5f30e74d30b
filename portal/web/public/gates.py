"""What every public page checks first: a bookable host and type (or a booking behind its
secret link), where the page may be framed, and for a POST its ``Origin`` and form token.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from flask import abort, current_app, g, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.booking import checks, links, meeting_types, service
from portal.models import Booking, MeetingType, User
from portal.web import formtoken, timezones

ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")


def host_or_404(slug: str) -> User:
    """A host whose public pages are on; anyone else is indistinguishable from no one."""
    user = User.get_or_none(User.slug == slug)
    if user is None or not user.is_active or not user.allow_booking:
        abort(404)
    return user


def host_and_type_or_404(host_slug: str, type_slug: str) -> tuple[User, MeetingType]:
    """An active meeting type of a bookable host (this runs on every page view)."""
    found = meeting_types.bookable(host_slug, type_slug)
    if found is None:
        abort(404)
    return found


def managed_or_404(uid: str, token: str) -> Booking:
    found = links.find_managed(uid, token)
    if found is None:
        abort(404)
    return found


def _allowed_origins(user: User) -> list[str]:
    """The host's embedding sites, re-checked here because they end up in a header."""
    return [o.rstrip("/") for o in user.origins() if ORIGIN_RE.match(o.rstrip("/"))]


def allow_framing(user: User) -> None:
    """Let this page be framed by the app itself and the host's allowed sites only."""
    g.frame_ancestors = " ".join(["'self'", *_allowed_origins(user)])


def _own_origins() -> set[str]:
    own = {request.host_url.rstrip("/")}
    base = current_app.config.get("BASE_URL") or ""
    if base:
        parts = urlsplit(base)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return own


def _check_origin(user: User) -> None:
    """Refuse a POST whose ``Origin`` is neither this app nor one of the host's sites.

    Browsers send ``Origin`` on every cross-site form POST, so a page elsewhere
    cannot drive the booking form; clients that send none still need the form token.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin == "null" and request.headers.get("Sec-Fetch-Site") == "same-origin":
        # Our own manage pages send "Referrer-Policy: no-referrer", under which browsers
        # post an opaque origin; Sec-Fetch-Site, which pages cannot set, vouches for them.
        return
    if origin.rstrip("/") not in _own_origins() | set(_allowed_origins(user)):
        abort(403, _("This form cannot be sent from that site."))


def _check_form_token(host_id: int, type_id: int, booking_uid: str = "") -> None:
    try:
        formtoken.verify(request.form.get("form_token"), host_id, type_id, booking_uid)
    except formtoken.FormTokenError as exc:
        if exc.expired:
            abort(403, _("This form has expired. Nothing was sent."))
        abort(403, _("This form's security check failed. Nothing was sent."))


def guard_post(host: User, type_id: int, booking_uid: str = "") -> None:
    """The gate of every public POST: framing allowed, ``Origin``, then the form token."""
    allow_framing(host)
    _check_origin(host)
    _check_form_token(host.id, type_id, booking_uid)


def no_referrer(response: Response) -> Response:
    """Manage pages carry a secret in their URL: never leak it to linked sites.

    Nor keep the page or its .ics in a shared or back-button cache: they hold the
    invitee's details and the manage token.
    """
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def zone_name(value: str | None, fallback: str) -> str:
    value = (value or "").strip()
    if value and len(value) < 64 and checks.is_valid_zone(value):
        return timezones.canonical(value)  # "Asia/Calcutta" from a browser → "Asia/Kolkata"
    return fallback


def parse_start(value: str | None) -> datetime | None:
    if not value or len(value) > 64:
        return None
    try:
        return checks.parse_start(value)
    except service.BookingError:
        return None


def sentence(message: str) -> str:
    """A service's message ("this time is taken") opening a sentence on the page."""
    return message[0].upper() + message[1:]


def page_endpoint(embed: bool) -> str:
    return "public.embed" if embed else "public.book"
