"""The host's private ICS feed: their Kairos bookings for calendars that can only subscribe.

The secret URL is ``/feeds/<token>.ics``. Like the invitees' manage links, the
token is ``HMAC(secret key, "feed:" + user id + salt)`` over a random 128-bit
salt (172 bits of it are used): the database keeps the salt, so settings can
show the URL again, and the token's SHA-256 to find the host. Regenerating
draws a new salt (the old URL stops working at once); revoking clears both.
Changing ``SECRET_KEY`` changes every feed URL, as it does every manage link.

What the feed holds: the host's confirmed bookings from ``PAST_DAYS`` ago to
``FUTURE_DAYS`` ahead, each as the same VEVENT the e-mails attach
(``portal.notify.ical.booking_event``: UID and SEQUENCE survive reschedules), its
URL pointing at the booking in the host's settings. Cancelled and moved-away
bookings are *omitted* rather than sent as ``STATUS:CANCELLED``: subscribing
clients replace the whole feed on every refresh, so an omitted event
disappears, while a cancelled one would linger, struck through, in some
clients.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta

from icalendar import Calendar
from peewee import JOIN

from portal import clock, i18n
from portal.models import Booking, MeetingType, User, hash_token, to_db
from portal.notify import ical
from portal.runtime.appconfig import external_url
from portal.tokens import derived_token, find_by_token

PAST_DAYS = 30
FUTURE_DAYS = 366
MAX_EVENTS = 2000
REFRESH = timedelta(minutes=15)  # what the feed asks clients to poll at


TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_")  # URL-safe base64


def feed_token(user: User) -> str:
    """The token in the host's feed URL ("" when they have no feed)."""
    if not user.feed_salt:
        return ""
    return derived_token("feed", user.id, user.feed_salt)


def feed_url(user: User) -> str:
    token = feed_token(user)
    return external_url(f"/feeds/{token}.ics") if token else ""


def regenerate(user: User) -> str:
    """Issue a new feed URL (the previous one stops working); returns it."""
    user.feed_salt = secrets.token_hex(16)
    user.feed_token_hash = hash_token(feed_token(user))
    User.update(feed_salt=user.feed_salt, feed_token_hash=user.feed_token_hash).where(
        User.id == user.id
    ).execute()
    return feed_url(user)


def revoke(user: User) -> None:
    user.feed_salt, user.feed_token_hash = "", None
    User.update(feed_salt="", feed_token_hash=None).where(User.id == user.id).execute()


def find_host(token: str) -> User | None:
    """The active host whose feed ``token`` opens, or None (looked up by its hash)."""
    if not token or len(token) != 43 or not TOKEN_CHARS.issuperset(token):
        return None
    active = User.is_active == True  # noqa: E712
    return find_by_token(User, User.feed_token_hash, token, feed_token, active)


def feed_bookings(user: User, now: datetime) -> list[Booking]:
    """The bookings the feed lists, with their meeting types read in the same query."""
    rows = list(
        Booking.select(Booking, MeetingType)
        .join(MeetingType, JOIN.LEFT_OUTER)
        .where(
            Booking.host == user,
            Booking.status == "confirmed",
            Booking.end >= to_db(now - timedelta(days=PAST_DAYS)),
            Booking.start <= to_db(now + timedelta(days=FUTURE_DAYS)),
        )
        .order_by(Booking.start, Booking.id)
        .limit(MAX_EVENTS)
    )
    for row in rows:
        row.host = user
    return rows


def feed_ics(user: User, now: datetime | None = None) -> bytes:
    """The feed as iCalendar (METHOD:PUBLISH), built from ``portal.notify.ical``'s VEVENTs,
    their titles and descriptions in the host's language."""
    now = now or clock.now()
    cal = Calendar()
    cal.add("prodid", ical.PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", ical.one_line(f"Kairos: {user.display_name}"))
    cal.add("x-wr-timezone", user.timezone)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", REFRESH)
    with i18n.in_locale(user.locale):
        for booking in feed_bookings(user, now):
            event = ical.booking_event(booking, "PUBLISH", now, url=ical.host_url(booking))
            cal.add_component(event)
    return cal.to_ical()
