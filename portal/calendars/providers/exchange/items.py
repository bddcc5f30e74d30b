"""Bookings as Exchange calendar items: the fields written, found again by UID, moved, deleted.

The invitee is a required attendee; Exchange sends nothing (``SendToNone``:
Kairos mails the invitation itself). Each item carries the booking's
iCalendar UID twice — as ``UID`` and in a Kairos extended property, which is
searchable — so a retried create finds the item it made before instead of
making a second one. Item id and change key are returned for storage.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from exchangelib import Attendee, Body, CalendarItem, EWSDateTime, EWSTimeZone, ExtendedProperty
from exchangelib import errors as ews
from exchangelib.items import ALWAYS_OVERWRITE, MOVE_TO_DELETED_ITEMS, SEND_TO_NONE
from exchangelib.properties import Mailbox

from portal.calendars.providers.base import EventData, WrittenEvent
from portal.calendars.providers.exchange.session import EwsSession


class KairosBookingUid(ExtendedProperty):
    """The booking's iCalendar UID on the item, in Kairos' own property set.

    ``calendar:UID`` cannot be used in a FindItem restriction; this named
    property can, which is what makes a retried create idempotent.
    """

    property_set_id = "0c2b3c6e-4f0a-4d1e-9a57-2e8f5b6a7d31"
    property_name = "KairosBookingUid"
    property_type = "String"


with suppress(ValueError):  # already registered (module reloaded in the same process)
    CalendarItem.register("kairos_uid", KairosBookingUid)


def ews_time(value: datetime, zone_name: str) -> EWSDateTime:
    """An instant in the host's zone, so Outlook shows the booking in local time."""
    try:
        zone = EWSTimeZone(zone_name or "UTC")
    except (ews.UnknownTimeZone, ValueError, KeyError):
        zone = EWSTimeZone("UTC")
    return EWSDateTime.from_datetime(value.astimezone(UTC)).astimezone(zone)


def item_fields(event: EventData) -> dict[str, Any]:
    """The calendar item's fields for a booking (all of them Kairos' own)."""
    body = event.description
    if event.location and event.location not in body:
        body = f"{body}\n\n{event.location}".strip()
    return {
        "subject": event.summary,
        "body": Body(body),
        "start": ews_time(event.start, event.timezone),
        "end": ews_time(event.end, event.timezone),
        "location": event.location or None,
        "legacy_free_busy_status": "Busy",
        "required_attendees": [
            Attendee(
                mailbox=Mailbox(email_address=email, name=name or email),
                response_type="Accept",
            )
            for name, email in event.attendees()
        ],
        "kairos_uid": event.ical_uid,
    }


def find_booking(session: EwsSession, mailbox: str, ical_uid: str) -> WrittenEvent | None:
    """The item an earlier create left for this booking, if any."""
    with session.errors():
        found = list(
            session.calendar(mailbox).filter(kairos_uid=ical_uid).only("id", "changekey")[:2]
        )
    if not found:
        return None
    return WrittenEvent(str(found[0].id), str(found[0].changekey or ""))


def create(session: EwsSession, mailbox: str, event: EventData) -> WrittenEvent:
    """Save a new item, unless a lost answer's earlier create already did."""
    existing = find_booking(session, mailbox, event.ical_uid)
    if existing is not None:
        return existing
    with session.errors():
        item = CalendarItem(
            account=session.account(mailbox),
            folder=session.calendar(mailbox),
            uid=event.ical_uid,
            **item_fields(event),
        )
        item.save(send_meeting_invitations=SEND_TO_NONE)
    return WrittenEvent(str(item.id), str(item.changekey or ""))


def update(
    session: EwsSession, mailbox: str, item_id: str, event: EventData, changekey: str = ""
) -> WrittenEvent:
    """Overwrite the item's fields; without a change key the current one is read first."""
    account, folder = session.account(mailbox), session.calendar(mailbox)
    with session.errors():
        if not changekey:
            [current] = list(
                account.fetch(ids=[(item_id, None)], folder=folder, only_fields=["changekey"])
            )
            if isinstance(current, Exception):
                raise current
            changekey = str(current.changekey)
        fields = item_fields(event)
        item = CalendarItem(
            account=account, folder=folder, id=item_id, changekey=changekey, **fields
        )
        # Kairos owns the booking's time: a change made in Outlook meanwhile is overwritten
        item.save(
            update_fields=list(fields),
            conflict_resolution=ALWAYS_OVERWRITE,
            send_meeting_invitations=SEND_TO_NONE,
        )
    return WrittenEvent(str(item.id), str(item.changekey or ""))


def delete(session: EwsSession, mailbox: str, item_id: str, changekey: str = "") -> None:
    """Move the item to Deleted Items (recoverable); an item already gone is fine."""
    with session.errors():
        [outcome] = session.account(mailbox).bulk_delete(
            ids=[(item_id, changekey or None)],
            delete_type=MOVE_TO_DELETED_ITEMS,
            send_meeting_cancellations=SEND_TO_NONE,
        )
        if isinstance(outcome, ews.ErrorItemNotFound):
            return
        if isinstance(outcome, Exception):
            raise outcome
