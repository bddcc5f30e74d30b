"""Connected calendars: accounts, their calendars, cached busy times and written events."""

from __future__ import annotations

import json
from datetime import datetime

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from portal.models.base import BaseModel, EpochField, to_db, to_epoch, utcnow
from portal.models.bookings import Booking
from portal.models.users import User


class Connection(BaseModel):
    """A connected calendar account (Google, Microsoft, Exchange, CalDAV, ICS)."""

    user = ForeignKeyField(User, backref="connections", on_delete="CASCADE")
    provider = CharField()
    label = CharField(default="")  # account e-mail or URL shown to the host
    status = CharField(default="ok")  # ok | syncing | needs_reconnect | error
    # Non-secret settings (URLs, user names, discovered endpoints), JSON.
    settings = TextField(default="{}")
    # Encrypted credentials (MultiFernet), bound to this row; see portal.crypto.
    secret = TextField(default="")
    sync_state = TextField(default="{}")  # provider cursors: sync tokens, ctags, etags
    last_synced_at = DateTimeField(null=True)
    last_error = TextField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    failures = IntegerField(default=0)  # consecutive failed refreshes (backoff)
    next_sync_at = DateTimeField(null=True)  # naive UTC; None = due now

    def settings_dict(self) -> dict:
        return json.loads(self.settings or "{}")


class Calendar(BaseModel):
    connection = ForeignKeyField(Connection, backref="calendars", on_delete="CASCADE")
    external_id = CharField()
    name = CharField(default="")
    writable = BooleanField(default=False)
    timezone = CharField(default="")
    conflict = BooleanField(default=True)  # checked for busy times
    write = BooleanField(default=False)  # receives new bookings (one per host)
    all_busy = BooleanField(default=False)  # treat every event as busy (servers without TRANSP)
    # An "additional booking calendar": gets a copy of every booking (see BookingCopy).
    copy_bookings = BooleanField(default=False)
    sync_state = TextField(default="{}")
    last_synced_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("connection", "external_id"), True),)


# Blocks no longer than this are found by a bounded index range: start ≥ lo − SHORT_SPAN.
SHORT_SPAN = 86400  # seconds; an all-day event is still short


class BusyBlock(BaseModel):
    """Cached busy interval of a calendar (no titles are ever stored).

    Instants are integer epoch seconds (``EpochField``; read as naive UTC) so booking
    pages read a window's rows as plain numbers. ``long_span`` marks blocks that may
    last longer than ``SHORT_SPAN``: a window read finds short ones by a range of the
    covering index over their start alone, and the few long ones separately. It
    defaults to True, which is always correct (only slower to read).
    """

    calendar = ForeignKeyField(Calendar, backref="busy_blocks", on_delete="CASCADE")
    start = EpochField(column_name="start_ts")
    end = EpochField(column_name="end_ts")
    long_span = BooleanField(default=True)
    external_id = CharField(default="")  # source event, for incremental updates

    class Meta:
        table_name = "busy_block"
        indexes = (
            (("calendar", "long_span", "start", "end"), False),
            (("calendar", "external_id"), False),
        )

    @staticmethod
    def row(calendar_id: int, start: datetime, end: datetime, external_id: str = "") -> dict:
        """The column values of a block, for ``insert_many``."""
        start_ts, end_ts = to_epoch(start), to_epoch(end)
        return {
            "calendar": calendar_id,
            "start": start_ts,
            "end": end_ts,
            "long_span": end_ts - start_ts > SHORT_SPAN,
            "external_id": external_id,
        }


class BusyDay(BaseModel):
    """A version per calendar and UTC day (days since 1970) on which busy blocks start.

    Written by the database's own triggers on ``busy_block`` (migration 0170) whenever a
    block is inserted, updated or deleted, with a value that never repeats: booking pages
    compare it to know whether a day they keep is still current, without reading the
    day's blocks. The app never writes it.
    """

    calendar_id = IntegerField()
    day = IntegerField()
    version = BigIntegerField()

    class Meta:
        table_name = "busy_day"
        primary_key = CompositeKey("calendar_id", "day")


class CalendarEvent(BaseModel):
    """The link from a booking to the event written in the host's calendar."""

    booking = ForeignKeyField(Booking, backref="calendar_events", on_delete="CASCADE")
    calendar = ForeignKeyField(Calendar, null=True, backref="events", on_delete="SET NULL")
    status = CharField(default="pending")  # pending | written | failed | deleted
    external_id = CharField(default="")
    etag = CharField(default="")  # etag / change key
    last_error = TextField(default="")
    updated_at = DateTimeField(default=lambda: to_db(utcnow()))
    attempts = IntegerField(default=0)  # write-back runs since the last success or retry


class BookingCopy(BaseModel):
    """A booking's copy in an additional booking calendar (``Calendar.copy_bookings``)."""

    booking = ForeignKeyField(Booking, backref="copies", on_delete="CASCADE")
    calendar = ForeignKeyField(Calendar, null=True, backref="copies", on_delete="SET NULL")
    status = CharField(default="pending")  # pending | written | failed | deleted
    external_id = CharField(default="")
    etag = CharField(default="")  # change key
    last_error = TextField(default="")
    attempts = IntegerField(default=0)
    updated_at = DateTimeField(default=lambda: to_db(utcnow()))

    class Meta:
        table_name = "booking_copy"
        indexes = ((("booking", "calendar"), True),)


class ExchangeOrganisation(BaseModel):
    """The organisation's Exchange mailbox with access to members' calendars (one row).

    Each member who uses it has an ordinary ``exchange`` connection holding a
    sealed copy of this password (``portal.calendars.exchange_org`` keeps them in step),
    so sync and write-back need nothing special for it.
    """

    email = CharField()
    settings = TextField(default="{}")  # EWS URL, user name, access, auth type, version
    secret = TextField(default="")  # sealed {"password"} (portal.crypto)
    status = CharField(default="ok")  # ok | needs_reconnect
    last_error = TextField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    updated_at = DateTimeField(default=lambda: to_db(utcnow()))

    class Meta:
        table_name = "exchange_organisation"

    def settings_dict(self) -> dict:
        return json.loads(self.settings or "{}")
