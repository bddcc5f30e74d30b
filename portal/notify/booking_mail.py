"""The e-mails about a booking: to the invitee and to the host, in each reader's time
zone, with the booking as an ``.ics`` invitation (or cancellation).

Composed and sent once by ``portal.notify.mail``; the jobs in ``jobs.mail`` decide
what is still worth sending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_skeleton
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from portal import i18n
from portal.booking.questions import answered
from portal.models import Booking, User, utcnow
from portal.notify import calendar_links
from portal.notify.ical import booking_ics, host_url, manage_url, meeting_link, meeting_title
from portal.notify.mail import Attachment, address, compose, render, send_once, sender
from portal.runtime.appconfig import external_url

ROLES = ("invitee", "host")


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clock_range(start: datetime, end: datetime) -> str:
    """ "9:00 AM – 9:30 AM" (12-hour: spaced dash) or "09:00–09:30", in the current locale."""
    first, last = i18n.time_label(start), i18n.time_label(end)
    spaced = not first[:1].isdigit() or not first[-1:].isdigit()
    return f"{first} \u2013 {last}" if spaced else f"{first}\u2013{last}"


def when_long(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """In the reader's zone and the current locale: "Monday, December 7, 2026, 9:00 AM –
    9:30 AM (Europe/Berlin)" / "Montag, 7. Dezember 2026, 09:00–09:30 (Europe/Berlin)"."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    return f"{i18n.day_label(s)}, {clock_range(s, e)} ({tz.key})"


def when_short(start: datetime, tz: ZoneInfo) -> str:
    """For subject lines: "Mon, Dec 7, 2026, 9:00 AM CET" / "Mo., 7. Dez. 2026, 09:00 CET"."""
    s = start.astimezone(tz)
    locale = i18n._locale()
    day = format_skeleton("yMMMEd", s, locale=locale)
    glue = str(locale.datetime_formats.get("medium", "{1}, {0}")).replace("'", "")
    return f"{glue.replace('{1}', day).replace('{0}', i18n.time_label(s))} {s.tzname()}"


def humanize(delta: timedelta) -> str:
    """How far ahead, in the current locale: "45 minutes", "1 hour", "90 minutes",
    "24 hours", "3 days" / "45 Minuten", "1 Stunde" …"""
    minutes = max(0, round(delta.total_seconds() / 60))
    if minutes < 60 or (minutes < 180 and minutes % 60):
        return ngettext("%(num)d minute", "%(num)d minutes", minutes)
    hours = round(minutes / 60)
    if hours < 48:
        return ngettext("%(num)d hour", "%(num)d hours", hours)
    days = round(hours / 24)
    return ngettext("%(num)d day", "%(num)d days", days)


# Formatted with title, other (the other side's name), when (when_short), ahead (humanize).
SUBJECTS = {
    ("created", "invitee"): _l("Confirmed: %(title)s with %(other)s on %(when)s"),
    ("created", "host"): _l("New booking: %(title)s with %(other)s on %(when)s"),
    ("rescheduled", "invitee"): _l("Rescheduled: %(title)s with %(other)s, now %(when)s"),
    ("rescheduled", "host"): _l("Rescheduled: %(title)s with %(other)s, now %(when)s"),
    ("cancelled", "invitee"): _l("Cancelled: %(title)s with %(other)s on %(when)s"),
    ("cancelled", "host"): _l("Cancelled: %(title)s with %(other)s on %(when)s"),
    ("reminder", "invitee"): _l("Reminder: %(title)s with %(other)s in %(ahead)s (%(when)s)"),
    ("reminder", "host"): _l("Reminder: %(title)s with %(other)s in %(ahead)s (%(when)s)"),
}


def reader_locale(booking: Booking, role: str) -> str:
    """The invitee reads the booking's language; the host their own setting."""
    return booking.locale if role == "invitee" else booking.host.locale


def booking_message(
    booking: Booking, event: str, role: str, now: datetime | None = None, **extra: Any
) -> EmailMessage:
    """The e-mail about ``event`` (created | rescheduled | cancelled | reminder) for ``role``.

    The invitee reads times in their zone and replies to the host; the host
    reads times in theirs and replies to the invitee. Both get the meeting
    link, a link to act on the booking (the invitee their secret manage link,
    the host the booking in their settings) and the booking as an ``.ics``
    (CANCEL once cancelled). Each reads it in their language (:func:`reader_locale`):
    the text, the dates and the ``.ics`` description.
    """
    if (event, role) not in SUBJECTS:
        raise ValueError(f"no message for {event!r} to {role!r}")
    with i18n.in_locale(reader_locale(booking, role)):
        return _booking_message(booking, event, role, now or utcnow(), **extra)


def _booking_message(
    booking: Booking, event: str, role: str, now: datetime, **extra: Any
) -> EmailMessage:
    host: User = booking.host
    invitee_zone = zone_of(booking.invitee_timezone)
    host_zone = zone_of(host.timezone)
    tz = invitee_zone if role == "invitee" else host_zone
    previous = booking.rescheduled_from if event == "rescheduled" else None
    context = {
        "event": event,
        "role": role,
        "title": meeting_title(booking),
        "host_name": host.display_name,
        "host_email": host.email,
        "invitee_name": booking.invitee_name,
        "invitee_email": booking.invitee_email,
        "other_name": booking.invitee_name if role == "host" else host.display_name,
        "recipient_name": host.display_name if role == "host" else booking.invitee_name,
        "when": when_long(booking.start_utc, booking.end_utc, tz),
        "previous_when": when_long(previous.start_utc, previous.end_utc, tz) if previous else "",
        "meeting_link": meeting_link(booking),
        "manage_url": host_url(booking) if role == "host" else manage_url(booking),
        "book_again_url": external_url(
            f"/{host.slug}/{booking.type_slug}" if booking.meeting_type_id else f"/{host.slug}"
        ),
        # The invitee's one-click copies for Google Calendar and Outlook, beside the .ics.
        "calendar_links": calendar_links.for_booking(booking)
        if role == "invitee" and event != "cancelled"
        else {},
        "notes": booking.notes,
        # Invitee questions (portal.booking.questions): (label, answer) pairs, shown escaped.
        "answers": answered(booking.answer_list()),
        # The host's signature closes messages to the invitee (plain text, escaped in HTML).
        "signature": host.email_signature if role == "invitee" else "",
        # Only the host hears that no Meet/Teams link could be made (portal.booking.locations).
        "link_problem": booking.join_error
        if role == "host" and booking.join_status == "failed"
        else "",
        "cancel_reason": booking.cancel_reason,
        "cancelled_by": booking.cancelled_by,
        "ahead": humanize(booking.start_utc - now),
        "brand": sender().display_name or "Kairos",
    } | extra
    subject = str(SUBJECTS[(event, role)]) % {
        "title": context["title"],
        "other": context["other_name"],
        "when": when_short(booking.start_utc, tz),
        "ahead": context["ahead"],
    }
    text, html = render(f"booking_{event}", subject=subject, **context)
    method = "CANCEL" if event == "cancelled" else "REQUEST"
    ics = ics_attachment(booking, method, now, context["manage_url"])
    if role == "invitee":
        to = address(booking.invitee_name, booking.invitee_email)
        reply_to = address(host.display_name, host.email)
        from_name = _("%(name)s via %(brand)s", name=host.display_name, brand=context["brand"])
    else:
        to = address(host.display_name, host.email)
        reply_to = address(booking.invitee_name, booking.invitee_email)
        from_name = None
    return compose(
        booking_key(booking, event, role, extra.get("offset")),
        to,
        subject,
        text,
        html,
        (ics,),
        reply_to=reply_to,
        from_name=from_name,
        now=now,
    )


def ics_attachment(booking: Booking, method: str, now: datetime, url: str) -> Attachment:
    """The booking as an iTIP ``.ics``: an invitation (REQUEST) or a cancellation (CANCEL)."""
    return Attachment(
        "cancel.ics" if method == "CANCEL" else "invite.ics",
        booking_ics(booking, method, now, url=url),
        params={"method": method, "charset": "utf-8"},
    )


def booking_key(booking: Booking, event: str, role: str, offset: int | None = None) -> str:
    """The once-only key: booking, event (reminders: with their offset), recipient, sequence."""
    name = f"reminder{offset}" if event == "reminder" else event
    return f"booking:{booking.id}:{name}:{role}:seq{booking.sequence}"


def send_booking_message(
    booking: Booking, event: str, role: str, now: datetime | None = None, **extra: Any
) -> bool:
    msg = booking_message(booking, event, role, now, **extra)
    key = booking_key(booking, event, role, extra.get("offset"))
    return send_once(key, msg, booking_id=booking.id, now=now)
