"""Where a meeting happens: the location kinds of a meeting type and a booking's join link.

A meeting type's ``location_kind`` says how its ``location`` is read:

``custom``      the text as written (what types made before kinds existed mean)
``link``        a fixed http(s) link, the same for every booking
``phone``       a phone number invitees call
``address``     a place to meet in person
``personal``    the host's personal meeting link (Zoom, Teams, …) from their profile
``google_meet`` a Google Meet link created on each booking's event in Google Calendar
``teams``       a Microsoft Teams meeting created on the event in Microsoft 365

At booking time the kind is copied onto the booking; the personal link is
copied into ``Booking.join_url``. For Meet and Teams the booking starts with
``join_status = "pending"``; the calendar write-back (``jobs.calendar``)
asks the provider for a conference and records what came back
(:func:`record_written`), or the reason there is none (:func:`record_failed`).
A missing link never fails a booking: the host is told (a flag on the
appointment and an e-mail, ``jobs.locations``) and may send a link by hand.

The confirmation e-mail and webhooks wait a little for a pending link
(:func:`wait_for_link`) so invitees get the link in the first message; the
write-back settling the link wakes them at once. ``portal.notify.ical.meeting_link``
is where every message reads the link from.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.models import Booking, Calendar, Connection, MeetingType, Outbox, User, from_db

KINDS: dict[str, Any] = {  # labels translated when shown
    "custom": _l("Other (as written)"),
    "link": _l("A fixed link"),
    "phone": _l("Phone call"),
    "address": _l("In person"),
    "personal": _l("My personal meeting link"),
    "google_meet": _l("Google Meet (a link per booking)"),
    "teams": _l("Microsoft Teams (a meeting per booking)"),
}
#: conference kind → the provider whose write calendar can create it
CONFERENCE_PROVIDERS = {"google_meet": "google", "teams": "microsoft"}
CONFERENCE_NAMES = {"google_meet": "Google Meet", "teams": "Microsoft Teams"}
PROVIDER_TITLES = {"google": "Google Calendar", "microsoft": "Microsoft 365 / Outlook"}
MAX_LOCATION = 255  # the column's size (varchar on PostgreSQL)
MAX_MEETING_LINK = 1000
MAX_SIGNATURE = 2000
#: how long the first e-mail and webhooks wait for a link being made, and how often they look
LINK_WAIT = timedelta(minutes=2)
LINK_RECHECK = timedelta(seconds=20)
#: how long a confirmation page keeps asking for a link being made
LINK_POLL = timedelta(minutes=10)
#: outbox kinds that wait for the link and are woken when it is settled
WAITS_FOR_LINK = ("notify", "webhooks")


class LocationError(ValueError):
    """Bad location input; ``field`` names it (``location``, ``location_kind`` …)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def check_link(value: str, field: str, limit: int = MAX_MEETING_LINK) -> str:
    """An http(s) URL people can click: one line, a host, no spaces, within ``limit``."""
    value = (value or "").strip()
    if len(value) > limit:
        raise LocationError(field, f"at most {limit} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise LocationError(field, "a link cannot contain spaces or line breaks")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise LocationError(field, "enter a link starting with https:// (or http://)")
    return value


def clean_meeting_link(value: str) -> str:
    """The host's personal meeting link: empty, or an http(s) URL."""
    value = (value or "").strip()
    return check_link(value, "meeting_link") if value else ""


def clean_signature(value: str) -> str:
    """Plain text, kept as typed (line breaks too); shown escaped under e-mails."""
    value = (value or "").replace("\r\n", "\n").strip()
    if len(value) > MAX_SIGNATURE:
        raise LocationError("email_signature", f"at most {MAX_SIGNATURE} characters")
    if "\x00" in value:
        raise LocationError("email_signature", "this text contains a NUL character")
    return value


def save_meeting_details(
    user: User, meeting_link: str | None = None, email_signature: str | None = None
) -> None:
    """Store the host's personal meeting link and/or e-mail signature (None: unchanged).

    The link cannot be cleared while meeting types of the "personal" kind send
    invitees to it: the settings page and the API both save through here.
    """
    if meeting_link is not None:
        link = clean_meeting_link(meeting_link)
        in_use = (
            MeetingType.select()
            .where(MeetingType.user == user.id, MeetingType.location_kind == "personal")
            .count()
        )
        if not link and in_use:
            raise LocationError(
                "meeting_link",
                f"{in_use} meeting type(s) use your personal link; choose another location "
                "for them first",
            )
        user.meeting_link = link
    if email_signature is not None:
        user.email_signature = clean_signature(email_signature)
    User.update(meeting_link=user.meeting_link, email_signature=user.email_signature).where(
        User.id == user.id
    ).execute()


def clean_location(kind: str, value: str, host: User) -> tuple[str, str]:
    """A meeting type's (kind, location) checked together; LocationError names the field."""
    from portal.booking.questions import normalize_phone

    if not isinstance(kind, str) or kind not in KINDS:  # an object is unhashable: TypeError
        raise LocationError("location_kind", "expected one of " + ", ".join(KINDS))
    value = (value or "").strip()
    if len(value) > MAX_LOCATION:
        raise LocationError("location", f"at most {MAX_LOCATION} characters")
    if any(ch in value for ch in "\r\n\x00"):
        raise LocationError("location", "use a single line")
    if kind == "link":
        return kind, check_link(value, "location", MAX_LOCATION)
    if kind == "phone":
        phone = normalize_phone(value)
        if phone is None:
            raise LocationError("location", "enter the phone number to call, e.g. +49 30 1234567")
        return kind, phone
    if kind == "address":
        if not value:
            raise LocationError("location", "enter the address")
        return kind, value
    if kind == "personal" and not host.meeting_link:
        raise LocationError(
            "location_kind", "set your personal meeting link first (Settings → Meeting link)"
        )
    if kind in ("personal", *CONFERENCE_PROVIDERS):
        return kind, ""  # the link comes from the profile or the provider, per booking
    return kind, value


def write_calendar_provider(host: User | int) -> tuple[Calendar | None, str]:
    """The host's calendar for new bookings and its provider name ("" when there is none)."""
    row = (
        Calendar.select(Calendar, Connection.provider)
        .join(Connection)
        .where(Connection.user == host, Calendar.write == True)  # noqa: E712
        .first()
    )
    return (row, row.connection.provider) if row is not None else (None, "")


def calendar_problem(host: User | int, kind: str) -> str:
    """Why a Meet/Teams link cannot be made for this host now, or "" when it can."""
    wanted = CONFERENCE_PROVIDERS.get(kind)
    if wanted is None:
        return ""
    name = CONFERENCE_NAMES[kind]
    calendar, provider = write_calendar_provider(host)
    if calendar is None:
        return (
            f"{name} links are created in your calendar, and no calendar receives new "
            f"bookings: connect {PROVIDER_TITLES[wanted]} and choose it for new bookings"
        )
    if provider != wanted:
        return (
            f"{name} links are created by {PROVIDER_TITLES[wanted]}, but your calendar for "
            f"new bookings is in {PROVIDER_TITLES.get(provider, provider)}"
        )
    return ""


def for_booking(host: User, mt: MeetingType, previous: Booking | None = None) -> dict[str, Any]:
    """The location fields of a new booking of ``mt`` (``previous``: the booking it moves).

    A moved booking keeps its conference link: the write-back moves the same
    calendar event, which keeps its Meet or Teams meeting.
    """
    kind = mt.location_kind or "custom"
    fields: dict[str, Any] = {
        "location_kind": kind,
        "location": mt.location,
        "join_url": "",
        "join_status": "",
        "join_error": "",
    }
    if kind == "personal":
        fields["location"] = ""
        fields["join_url"] = host.meeting_link
        if not host.meeting_link:
            fields["join_status"] = "failed"
            fields["join_error"] = "your profile has no personal meeting link"
    elif kind in CONFERENCE_PROVIDERS:
        fields["location"] = ""
        if previous is not None and previous.location_kind == kind and previous.join_url:
            fields["join_url"] = previous.join_url
            fields["join_status"] = "created"
        else:
            problem = calendar_problem(host, kind)
            fields["join_status"] = "failed" if problem else "pending"
            fields["join_error"] = problem
    return fields


def booked(booking: Booking) -> None:
    """After a booking is inserted (same transaction): tell the host when no link is possible."""
    if booking.join_status == "failed":
        Outbox.add("join_link_failed", booking_id=booking.id)


def conference_for(booking: Booking) -> str:
    """The conference the booking's calendar event should carry ("" for none)."""
    return booking.location_kind if booking.location_kind in CONFERENCE_PROVIDERS else ""


def record_written(booking_id: int, join_url: str, error: str = "") -> None:
    """What the provider answered when it wrote the event: store the link, or why none came.

    Runs in the write-back job. Only bookings that wait for a conference
    change; a later write (a reschedule) refreshes the stored link.
    """
    booking = Booking.get_or_none(Booking.id == booking_id)
    if booking is None or booking.location_kind not in CONFERENCE_PROVIDERS:
        return
    if join_url:
        was = booking.join_status
        if booking.join_url != join_url or was != "created":
            Booking.update(join_url=join_url, join_status="created", join_error="").where(
                Booking.id == booking_id
            ).execute()
        if was == "pending":
            _wake(booking)
        return
    if booking.join_status in ("pending", ""):
        name = CONFERENCE_NAMES[booking.location_kind]
        record_failed(booking_id, error or f"the calendar did not create a {name} link")


def record_failed(booking_id: int, reason: str) -> None:
    """No link will come (the write-back gave up, or the provider made none): tell the host."""
    booking = Booking.get_or_none(Booking.id == booking_id)
    if booking is None or booking.join_status != "pending":
        return
    Booking.update(join_status="failed", join_error=reason[:2000]).where(
        Booking.id == booking_id
    ).execute()
    Outbox.add("join_link_failed", booking_id=booking_id)
    _wake(booking)


def _wake(booking: Booking) -> None:
    """Record the e-mail and webhooks that waited for the link; they now run at once."""
    from portal.booking.service import BOOKING_EVENT_HANDLERS
    from portal.runtime.outbox import relay_quietly

    if booking.status != "confirmed":
        return
    event = "rescheduled" if booking.rescheduled_from_id else "created"
    for kind in WAITS_FOR_LINK:
        if kind in BOOKING_EVENT_HANDLERS:
            Outbox.add(kind, booking_id=booking.id, event=event)
    relay_quietly()


def wait_for_link(booking: Booking, kind: str, event: str, *, now: datetime) -> bool:
    """True when the outbox job ``kind`` should not run yet: the join link is still being made.

    The job is recorded again for a little later; after ``LINK_WAIT`` it
    runs without the link (which then shows on the manage page), so a slow
    calendar never holds a confirmation back for long.
    """
    if booking.join_status != "pending" or event not in ("created", "rescheduled"):
        return False
    created = from_db(booking.created_at) or now
    if now - created >= LINK_WAIT:
        return False
    Outbox.add(kind, run_at=now + LINK_RECHECK, booking_id=booking.id, event=event)
    return True


def describe(kind: str, location: str) -> str:
    """How the booking page names the place before booking (the link itself comes after)."""
    if kind in CONFERENCE_NAMES:
        return CONFERENCE_NAMES[kind]
    if kind in ("link", "personal"):
        return _("Online meeting")
    if kind == "phone":
        return _("Phone call")
    if kind == "custom" and location.startswith(("https://", "http://")):
        return _("Online meeting")
    return location


def join_link_status(booking: Booking, *, now: datetime) -> str:
    """For pages: "making" (just booked: the page asks again by itself), "pending" (taking
    long: no more asking, the e-mail will bring it), "failed" (none will come), or "".

    ``now`` is on the clock that stamped ``created_at`` (``models.utcnow``).
    """
    if booking.join_status == "failed":
        return "failed"
    if booking.join_status != "pending":
        return ""
    created = from_db(booking.created_at)
    young = created is not None and now - created < LINK_POLL
    return "making" if young else "pending"
