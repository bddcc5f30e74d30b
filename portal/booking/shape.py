"""A booking as it is shown outside: its JSON shape (API, webhooks, the schedule), the state
of its calendar event, and where a reschedule took it."""

from __future__ import annotations

from portal.models import Booking, CalendarEvent, from_db
from portal.notify.ical import meeting_link


def latest_booking(booking: Booking) -> Booking:
    """Where a booking went: the end of its chain of reschedules (itself when not moved)."""
    current = booking
    for _hop in range(1000):  # a chain is a list, never a loop; the bound only guards that
        if current.status != "rescheduled":
            break
        nxt = Booking.get_or_none(Booking.rescheduled_from == current)
        if nxt is None:
            break
        current = nxt
    return current


def calendar_event_state(booking: Booking) -> tuple[str, CalendarEvent | None]:
    """The booking's calendar write-back: a status and the ``CalendarEvent`` row, if any.

    A rescheduled booking hands its event to the booking that replaces it (the
    same event, moved), so it owes nothing any more: "superseded", with the
    row where the event now is. Otherwise the row's own status; "pending"
    when none is recorded yet.
    """
    moved = booking.status == "rescheduled"
    owner = latest_booking(booking) if moved else booking
    event = (
        CalendarEvent.select()
        .where(CalendarEvent.booking == owner)
        .order_by(CalendarEvent.id.desc())
        .first()
    )
    if moved:
        return "superseded", event
    return (event.status if event else "pending"), event


def booking_dict(booking: Booking, manage_url: str | None = None) -> dict:
    """The API's JSON shape of a booking; ``manage_url`` (absolute) only for the invitee.

    The invitee's answer (with ``manage_url``) leaves out the calendar write-back, the
    host's business, and so does not read it.
    """
    out: dict = {
        "uid": booking.uid,
        "start": booking.start_utc.isoformat(),
        "end": booking.end_utc.isoformat(),
        "status": booking.status,
        "meeting_type": booking.type_slug,
        "name": booking.invitee_name,
        "email": booking.invitee_email,
        "timezone": booking.invitee_timezone,
        "notes": booking.notes,
        "location": booking.location,
        "location_kind": booking.location_kind,
        "meeting_link": meeting_link(booking),
        "answers": [
            {"key": a.get("key"), "label": a.get("label"), "value": a.get("value")}
            for a in booking.answer_list()
        ],
        "created_at": from_db(booking.created_at).isoformat(),  # type: ignore[union-attr]
    }
    if manage_url is None:
        event_status, event = calendar_event_state(booking)
        out["calendar_event"] = {
            "status": event_status,
            "calendar_id": event.calendar_id if event else None,
        }
    if booking.status == "rescheduled":
        nxt = Booking.get_or_none(Booking.rescheduled_from == booking)
        out["rescheduled_to"] = nxt.uid if nxt else None
    if manage_url is not None:
        out["manage_url"] = manage_url
    return out
