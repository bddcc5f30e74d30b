"""iCalendar (.ics) for a booking: the invitation in e-mails and the "add to calendar" file.

One VEVENT per booking, built with ``icalendar`` so every text value is
escaped by the library (commas, semicolons, backslashes, line breaks) and
parameter values such as ``CN`` are quoted (RFC 6868) — invitee-supplied
names and notes cannot add properties or components.

Calendar clients match updates by ``UID`` and order them by ``SEQUENCE``:
``Booking.ical_uid`` survives a reschedule (the new booking copies it) and
``Booking.sequence`` rises on every cancel and reschedule, so a client that
imported the first invitation moves or removes that same event.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import gettext as _
from icalendar import Calendar, Event, vCalAddress, vText

from portal.booking.links import manage_path
from portal.booking.questions import answers_text
from portal.models import Booking, MeetingType, User, utcnow
from portal.runtime.appconfig import external_url

PRODID = "-//Kairos//Kairos booking portal//EN"
METHODS = ("REQUEST", "CANCEL", "PUBLISH")
# Control characters, and bidi overrides that would make a name read backwards.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]+")


def one_line(value: str) -> str:
    """Collapse control characters (CR, LF, TAB, bidi overrides) to one space: for headers."""
    return _CONTROL.sub(" ", value or "").strip()


def meeting_link(booking: Booking) -> str:
    """Where the meeting happens (a URL, phone number or address) as the booking recorded it.

    The one place e-mails, the .ics, pages and webhooks read it from: the
    join link (a Meet/Teams link the calendar created, or the host's personal
    link; see ``portal.booking.locations``) when there is one, else the type's location.
    """
    return booking.join_url or booking.location or ""


def manage_url(booking: Booking) -> str:
    """Absolute link to the invitee's manage page (cancel / reschedule)."""
    return external_url(manage_path(booking))


def host_url(booking: Booking) -> str:
    """Absolute link to the booking in the host's settings (sign-in and ownership checked).

    The host never gets the invitee's secret link: acting through it would be
    recorded, and announced, as the invitee's doing.
    """
    return external_url(f"/settings/appointments/{booking.uid}")


def meeting_title(booking: Booking) -> str:
    """The meeting type's name; its slug once the type was deleted; a co-worker meeting's title."""
    if booking.title:
        return booking.title
    mt: MeetingType | None = booking.meeting_type
    return mt.name if mt is not None else (booking.type_slug or _("Meeting"))


def summary(booking: Booking, host: User) -> str:
    """The event's title in the current locale: "Intro call: Alice and Bob"."""
    return one_line(
        _(
            "%(title)s: %(host)s and %(invitee)s",
            title=meeting_title(booking),
            host=host.display_name,
            invitee=booking.invitee_name,
        )
    )


def _address(email: str, name: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    address.params["CN"] = vText(one_line(name) or email)
    for key, value in params.items():
        address.params[key.replace("_", "-").upper()] = value
    return address


def booking_event(
    booking: Booking, method: str = "REQUEST", now: datetime | None = None, url: str | None = None
) -> Event:
    """The VEVENT of ``booking``; ``method`` CANCEL marks it cancelled.

    ``url`` replaces the invitee's manage link (the host's copy points at
    their settings instead). REQUEST and CANCEL are scheduling messages and
    name the invitee as ATTENDEE; PUBLISH (a download, the private feed) is
    not, and RFC 5546 §3.2.1 allows it no ATTENDEE — clients that find one
    treat the copy as an invitation to answer.

    SUMMARY and DESCRIPTION are written in the current locale (``i18n.in_locale`` around
    the call: the reader's language); every other property is for machines.
    """
    if method not in METHODS:
        raise ValueError(f"unsupported iTIP method {method!r}")
    host: User = booking.host
    link = meeting_link(booking)
    manage = url or manage_url(booking)
    cancelled = method == "CANCEL" or booking.status == "cancelled"

    event = Event()
    event.add("uid", booking.ical_uid)
    event.add("sequence", booking.sequence)
    event.add("dtstamp", now or utcnow())
    event.add("dtstart", booking.start_utc)
    event.add("dtend", booking.end_utc)
    event.add("summary", summary(booking, host))
    lines = []
    if link:
        lines.append(_("Where: %(link)s", link=link))
    if booking.notes:
        name = one_line(booking.invitee_name)
        lines.append(_("Notes from %(name)s:", name=name) + f"\n{booking.notes}")
    answers = answers_text(booking.answer_list())
    if answers:
        lines.append(answers)
    lines.append(_("Manage this booking: %(url)s", url=manage))
    event.add("description", "\n\n".join(lines))
    if link:
        event.add("location", link)
    event.add("url", manage)
    event.add("organizer", _address(host.email, host.display_name))
    if method != "PUBLISH":
        event.add(
            "attendee",
            _address(
                booking.invitee_email,
                booking.invitee_name,
                role="REQ-PARTICIPANT",
                partstat="DECLINED" if cancelled else "ACCEPTED",
                rsvp="FALSE",
            ),
        )
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event


def booking_calendar(
    booking: Booking, method: str = "REQUEST", now: datetime | None = None, url: str | None = None
):
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    cal.add_component(booking_event(booking, method, now, url))
    return cal


def booking_ics(
    booking: Booking, method: str = "REQUEST", now: datetime | None = None, url: str | None = None
) -> bytes:
    """The booking as an ``.ics`` file (CRLF lines, UTF-8).

    ``REQUEST`` for a new or moved booking, ``CANCEL`` once it is cancelled,
    ``PUBLISH`` for a plain "add to calendar" download; ``url`` overrides the
    URL (default: the invitee's manage link). Needs an app context
    (the manage link is signed with the secret key); links are absolute, from
    ``BASE_URL`` (see :func:`portal.runtime.appconfig.external_url`).
    """
    return booking_calendar(booking, method, now, url).to_ical()
