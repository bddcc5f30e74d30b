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


def when_long(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """'Tuesday 1 December 2026, 11:00–11:30 (Europe/Berlin)' in the reader's zone."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    day = f"{s:%A} {s.day} {s:%B %Y}"
    return f"{day}, {s:%H:%M}–{e:%H:%M} ({tz.key})"


def when_short(start: datetime, tz: ZoneInfo) -> str:
    """'Tue 1 Dec 2026, 11:00 CET' for subject lines."""
    s = start.astimezone(tz)
    return f"{s:%a} {s.day} {s:%b %Y}, {s:%H:%M} {s.tzname()}"


def humanize(delta: timedelta) -> str:
    """'45 minutes', '1 hour', '90 minutes', '24 hours', '3 days' — how far ahead."""
    minutes = max(0, round(delta.total_seconds() / 60))
    if minutes < 60 or (minutes < 180 and minutes % 60):
        return f"{minutes} minute{'s' * (minutes != 1)}"
    hours = round(minutes / 60)
    if hours < 48:
        return f"{hours} hour{'s' * (hours != 1)}"
    days = round(hours / 24)
    return f"{days} days"


SUBJECTS = {
    ("created", "invitee"): "Confirmed: {title} with {other} on {when}",
    ("created", "host"): "New booking: {title} with {other} on {when}",
    ("rescheduled", "invitee"): "Rescheduled: {title} with {other}, now {when}",
    ("rescheduled", "host"): "Rescheduled: {title} with {other}, now {when}",
    ("cancelled", "invitee"): "Cancelled: {title} with {other} on {when}",
    ("cancelled", "host"): "Cancelled: {title} with {other} on {when}",
    ("reminder", "invitee"): "Reminder: {title} with {other} in {ahead} ({when})",
    ("reminder", "host"): "Reminder: {title} with {other} in {ahead} ({when})",
}


def booking_message(
    booking: Booking, event: str, role: str, now: datetime | None = None, **extra: Any
) -> EmailMessage:
    """The e-mail about ``event`` (created | rescheduled | cancelled | reminder) for ``role``.

    The invitee reads times in their zone and replies to the host; the host
    reads times in theirs and replies to the invitee. Both get the meeting
    link, a link to act on the booking (the invitee their secret manage link,
    the host the booking in their settings) and the booking as an ``.ics``
    (CANCEL once cancelled).
    """
    if (event, role) not in SUBJECTS:
        raise ValueError(f"no message for {event!r} to {role!r}")
    now = now or utcnow()
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
    subject = SUBJECTS[(event, role)].format(
        title=context["title"],
        other=context["other_name"],
        when=when_short(booking.start_utc, tz),
        ahead=context["ahead"],
    )
    text, html = render(f"booking_{event}", subject=subject, **context)
    method = "CANCEL" if event == "cancelled" else "REQUEST"
    ics = ics_attachment(booking, method, now, context["manage_url"])
    if role == "invitee":
        to = address(booking.invitee_name, booking.invitee_email)
        reply_to = address(host.display_name, host.email)
        from_name = f"{host.display_name} via {context['brand']}"
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
