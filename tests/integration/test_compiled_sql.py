"""Statements built once (portal.models.base): the same rows as peewee's own, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.booking import meeting_types
from portal.models import (
    CalendarEvent,
    MeetingType,
    Outbox,
    User,
    compiled_sql,
    db,
    first_row_as,
    insert_instance,
    insert_rows,
    to_db,
)
from portal.models.bookings import Booking
from tests.support.app import Hosts
from tests.support.clock import NOW


def _stored(model, row_id) -> dict:
    """A row as peewee reads it back, without its id."""
    data = dict(model.get_by_id(row_id).__data__)
    data.pop("id")
    return data


def test_insert_rows_matches_peewee_defaults_and_returns_ids_in_order(backend_app):
    due = to_db(NOW + timedelta(hours=1))
    rows = [
        {"kind": "notify", "payload": '{"n": 1}', "run_at": due, "created_at": to_db(NOW)},
        {"kind": "webhooks", "payload": '{"n": 2}', "run_at": None, "created_at": to_db(NOW)},
        {"kind": "notify", "payload": '{"n": 3}', "run_at": due, "created_at": to_db(NOW)},
    ]
    with backend_app.app_context(), db.connection_context():
        with db.atomic():
            ours = insert_rows(Outbox, rows)
            theirs = [Outbox.insert(**row).execute() for row in rows]
        assert len(set(ours)) == 3 and ours == sorted(ours)
        for mine, peewees in zip(ours, theirs, strict=True):
            assert _stored(Outbox, mine) == _stored(Outbox, peewees)
        stored = _stored(Outbox, ours[1])
        assert stored["status"] == "pending" and stored["attempts"] == 0  # the fields' defaults
        assert stored["run_at"] is None and _stored(Outbox, ours[0])["run_at"] == due
        # The same shape again is the same statement; another row count is another.
        assert len(insert_rows(Outbox, rows[:1])) == 1
        assert len(insert_rows(Outbox, rows[:2])) == 2
        assert insert_rows(Outbox, []) == []


def test_insert_instance_stores_what_save_stores(backend_app):
    hosts = Hosts(backend_app)
    host = hosts.create("ines")
    mt = hosts.meeting_type(host)

    def booking(uid: str) -> Booking:
        return Booking(
            uid=uid,
            host=host,
            meeting_type=mt,
            start=to_db(NOW + timedelta(days=1)),
            end=to_db(NOW + timedelta(days=1, minutes=30)),
            type_slug=mt.slug,
            invitee_name="Ada “Lovelace” <ada>",
            invitee_email="ada@example.com",
            invitee_timezone="Europe/Berlin",
            manage_salt="salt",
            manage_token_hash=f"hash-{uid}",
            ical_uid=f"{uid}@kairos",
            idempotency_key=None,
        )

    with backend_app.app_context(), db.connection_context():
        ours = insert_instance(booking("a" * 32))
        theirs = booking("b" * 32)
        theirs.save(force_insert=True)
        assert ours.id and ours.id != theirs.id and not ours.is_dirty()
        mine, peewees = _stored(Booking, ours.id), _stored(Booking, theirs.id)
        own = {
            "uid",
            "ical_uid",
            "manage_token_hash",
            "created_at",
        }  # each its own; created_at is "now" at init
        assert {k: v for k, v in mine.items() if k not in own} == {
            k: v for k, v in peewees.items() if k not in own
        }
        assert mine["created_at"] is not None
        assert mine["host"] == host.id and mine["invitee_name"] == "Ada “Lovelace” <ada>"
        event = insert_instance(CalendarEvent(booking=ours, calendar=None, status="pending"))
        assert CalendarEvent.get_by_id(event.id).booking_id == ours.id


def test_first_row_as_reads_what_peewee_reads(backend_app):
    hosts = Hosts(backend_app)
    host = hosts.create("jo", tz="America/Sao_Paulo")
    mt = hosts.meeting_type(host, "intro", duration_minutes=45, buffer_before_minutes=5)
    with backend_app.app_context(), db.connection_context():
        found = meeting_types.bookable("jo", "intro")
        assert found is not None
        user, kind = found
        assert user.__data__ == User.get_by_id(host.id).__data__
        assert kind.__data__ == MeetingType.get_by_id(mt.id).__data__
        assert kind.user is user and not user.is_dirty()
        assert meeting_types.bookable("jo", "other") is None
        User.update(allow_booking=False).where(User.id == host.id).execute()
        assert meeting_types.bookable("jo", "intro") is None
        # A statement that does not select every column of each model is refused.
        sql = compiled_sql("test-user-only", lambda: User.select().where(User.id == 0))
        with pytest.raises(ValueError):
            first_row_as(sql, (host.id,), User, MeetingType)
