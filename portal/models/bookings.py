"""Bookings, the co-workers on them, and the work and e-mails a booking change causes."""

from __future__ import annotations

import json
from datetime import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from portal.models.base import BaseModel, from_db, to_db, utcnow
from portal.models.meeting_types import MeetingType
from portal.models.users import User


class Booking(BaseModel):
    uid = CharField(unique=True)
    host = ForeignKeyField(User, backref="bookings", on_delete="CASCADE")
    meeting_type = ForeignKeyField(MeetingType, backref="bookings", null=True, on_delete="SET NULL")
    start = DateTimeField(index=True)  # naive UTC
    end = DateTimeField()
    # Buffers copied from the type at booking time, so editing a type later
    # does not change what an existing booking blocks.
    buffer_before_minutes = IntegerField(default=0)
    buffer_after_minutes = IntegerField(default=0)
    type_slug = CharField(default="")
    invitee_name = CharField()
    invitee_email = CharField()
    invitee_timezone = CharField(default="UTC")
    # The language the invitee booked in: their e-mails and reminders are written in it.
    locale = CharField(default="")
    notes = TextField(default="")
    status = CharField(default="confirmed", index=True)  # confirmed | cancelled | rescheduled
    manage_token_hash = CharField(unique=True)
    # Random per-booking salt; the manage token is HMAC(secret key, uid + salt), so jobs
    # (e-mails) can rebuild the link while the database only holds its hash.
    manage_salt = CharField(default="")
    idempotency_key = CharField(null=True)
    # The calendar identity survives reschedules: same iCalendar UID, rising SEQUENCE.
    ical_uid = CharField()
    sequence = IntegerField(default=0)
    rescheduled_from = ForeignKeyField("self", null=True, backref="rescheduled_to")
    cancel_reason = TextField(default="")
    cancelled_by = CharField(default="")  # invitee | host
    location = CharField(default="")
    # Subject of a meeting a host set up with co-workers ("find a time"); those have no type.
    title = CharField(default="")
    location_kind = CharField(default="custom")  # the type's kind at booking time
    # The link to join: the host's personal link, or the Meet/Teams link the calendar made.
    join_url = TextField(default="")
    join_status = CharField(default="")  # "" (none needed) | pending | created | failed
    join_error = TextField(default="")  # why no link could be made, for the host
    answers = TextField(
        default="[]"
    )  # JSON [{"key", "label", "kind", "value"}] (portal.booking.questions)
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    cancelled_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("host", "idempotency_key"), True),)

    @property
    def start_utc(self) -> datetime:
        return from_db(self.start)  # type: ignore[return-value]

    @property
    def end_utc(self) -> datetime:
        return from_db(self.end)  # type: ignore[return-value]

    def answer_list(self) -> list[dict]:
        """The invitee's answers as stored (label and kind copied at booking time)."""
        try:
            value = json.loads(self.answers or "[]")
        except ValueError:
            return []
        return value if isinstance(value, list) else []


class BookingAttendee(BaseModel):
    """A co-worker on a meeting another host booked for them both; their time is blocked too."""

    booking = ForeignKeyField(Booking, backref="attendees", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    name = CharField(default="")
    email = CharField()

    class Meta:
        table_name = "booking_attendee"
        indexes = ((("booking", "user"), True), (("user",), False))


class Outbox(BaseModel):
    """Work caused by a state change, committed in the same transaction.

    A relay moves pending rows to RQ; the job marks the row done, so a row
    enqueued twice still runs its work once.
    """

    kind = CharField()  # name of a handler in jobs.outbox.HANDLERS
    payload = TextField(default="{}")
    status = CharField(default="pending", index=True)  # pending | enqueued | done | failed
    run_at = DateTimeField(null=True)  # naive UTC; None = as soon as possible
    attempts = IntegerField(default=0)
    last_error = TextField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    enqueued_at = DateTimeField(null=True)
    done_at = DateTimeField(null=True)
    # The lease of whoever is responsible for the row now (portal.runtime.outbox): naive UTC.
    lease_until = DateTimeField(null=True)
    lease_owner = CharField(null=True)  # the run holding it (jobs.outbox.run)

    @classmethod
    def add(cls, kind: str, run_at: datetime | None = None, **payload: object) -> Outbox:
        return cls.create(kind=kind, payload=json.dumps(payload), run_at=to_db(run_at))

    def data(self) -> dict:
        return json.loads(self.payload)


class SentEmail(BaseModel):
    """One row per message handed to SMTP/outbox, so a rerun sends nothing twice.

    The row is claimed ("sending") before delivery and marked "sent" after it;
    see portal.notify.mail.send_once for the crash window.
    """

    key = CharField(unique=True)
    booking = ForeignKeyField(Booking, null=True, backref="emails", on_delete="CASCADE")
    to = CharField()
    subject = CharField(default="")
    status = CharField(default="sent")  # sending | sent
    sent_at = DateTimeField(default=lambda: to_db(utcnow()))  # claim time while "sending"
