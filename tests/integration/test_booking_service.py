"""The booking service on a real database: rules, idempotency, races, reschedule."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from portal.booking import service as booking
from portal.booking.checks import BookingError, NotAllowed, SlotTaken
from portal.booking.links import find_managed, manage_token
from portal.models import Booking, Calendar, Connection, Outbox, Webhook, db
from tests.support.clock import at


@pytest.fixture
def setup(backend_app, now):
    """Host in Berlin (Mon–Fri 09–17) with a 30-minute type; returns (app, host, type)."""
    from tests.support.app import Hosts

    h = Hosts(backend_app)
    host = h.create("alice", tz="Europe/Berlin")
    mt = h.meeting_type(host, "intro", duration_minutes=30)
    return backend_app, host, mt


# Tuesday 10:00 Berlin (the day after the test clock's Monday), inside the default hours.
SLOT = at(1, 10, tz="Europe/Berlin")


def _book(host, mt, now, start=SLOT, **kw):
    args = {"name": "Bob", "email": "bob@example.com", "timezone": "America/New_York"} | kw
    return booking.book(host, mt, start, now=now, **args)


def test_book_creates_confirmed_booking_with_hashed_manage_token(setup, now):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        result = _book(host, mt, now)
        b = result.booking
        assert result.created and b.status == "confirmed"
        assert b.start_utc == SLOT and b.end_utc == SLOT + timedelta(minutes=30)
        token = manage_token(b)
        assert len(token) >= 32 and token not in b.manage_token_hash
        assert find_managed(b.uid, token).id == b.id
        assert find_managed(b.uid, token[:-1] + "x") is None


def test_same_slot_twice_is_taken(setup, now):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        _book(host, mt, now)
        with pytest.raises(SlotTaken):
            _book(host, mt, now, email="carol@example.com")


def test_start_outside_hours_is_refused_naming_start(setup, now):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        with pytest.raises(BookingError) as err:
            _book(host, mt, now, start=at(1, 21, tz="Europe/Berlin"))
        assert err.value.field == "start" and not isinstance(err.value, SlotTaken)


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("name", {"name": ""}),
        ("name", {"name": "x" * 201}),
        ("name", {"name": "Evil\r\nBcc: x@y.z"}),
        ("email", {"email": "not-an-email"}),
        ("timezone", {"timezone": "Mars/Olympus"}),
        ("notes", {"notes": "n" * 5001}),
    ],
)
def test_invalid_invitee_input_names_the_field(setup, now, field, kw):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        with pytest.raises(BookingError) as err:
            _book(host, mt, now, **kw)
        assert err.value.field == field
        assert Booking.select().count() == 0


def test_idempotency_key_returns_the_same_booking(setup, now):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        first = _book(host, mt, now, idempotency_key="k1")
        again = _book(host, mt, now, idempotency_key="k1")
        assert again.booking.uid == first.booking.uid and not again.created
        assert Booking.select().count() == 1


def test_racing_threads_give_exactly_one_winner(setup, now):
    app, host, mt = setup
    results: list[str] = []
    barrier = threading.Barrier(12)

    def racer(i: int) -> None:
        with app.test_request_context():
            barrier.wait()
            try:
                with db.connection_context():
                    _book(host, mt, now, email=f"r{i}@example.com")
                results.append("won")
            except SlotTaken:
                results.append("taken")

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["taken"] * 11 + ["won"]
    with app.app_context(), db.connection_context():
        assert Booking.select().where(Booking.status == "confirmed").count() == 1


def test_overlapping_bookings_of_different_lengths(setup, now):
    app, host, mt = setup
    from tests.support.app import Hosts

    long_type = Hosts(app).meeting_type(host, "long", duration_minutes=90, slot_interval_minutes=30)
    with app.test_request_context(), db.connection_context():
        _book(host, long_type, now)  # 09:00–10:30 UTC
        with pytest.raises(SlotTaken):
            _book(host, mt, now, start=SLOT + timedelta(minutes=60))
        assert _book(host, mt, now, start=SLOT + timedelta(minutes=90)).created


def test_cancel_then_reschedule_is_refused(setup, now):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        b = _book(host, mt, now).booking
        booking.cancel(b, by="invitee", now=now)
        with pytest.raises(NotAllowed, match="is cancelled"):
            booking.reschedule(b, SLOT + timedelta(hours=1), now=now)
        with pytest.raises(NotAllowed, match="already cancelled"):
            booking.cancel(b, now=now)


def test_reschedule_moves_and_cannot_be_replayed(setup, now):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        b = _book(host, mt, now).booking
        moved = booking.reschedule(b, SLOT + timedelta(minutes=15 * 2), now=now)
        assert moved.uid != b.uid and moved.ical_uid == b.ical_uid
        assert moved.sequence == b.sequence + 1
        assert Booking.get_by_id(b.id).status == "rescheduled"
        with pytest.raises(NotAllowed):
            booking.reschedule(b, SLOT + timedelta(hours=2), now=now)
        # The old slot is free again, the new one is taken.
        assert _book(host, mt, now, email="z@example.com").created


def test_reschedule_may_overlap_its_own_old_time(setup, now):
    app, host, mt = setup
    from tests.support.app import Hosts

    long_type = Hosts(app).meeting_type(host, "long", duration_minutes=60, slot_interval_minutes=30)
    with app.test_request_context(), db.connection_context():
        b = _book(host, long_type, now).booking
        moved = booking.reschedule(b, SLOT + timedelta(minutes=30), now=now)
        assert moved.start_utc == SLOT + timedelta(minutes=30)


def test_booking_and_its_work_commit_together(setup, now, monkeypatch):
    app, host, mt = setup
    monkeypatch.setattr(booking, "BOOKING_EVENT_HANDLERS", ["probe"])
    with app.test_request_context(), db.connection_context():
        b = _book(host, mt, now).booking
        rows = list(Outbox.select().where(Outbox.kind == "probe"))
        assert [r.data() for r in rows] == [{"booking_id": b.id, "event": "created"}]


def test_jobs_that_would_find_nothing_to_do_are_not_recorded(setup, now):
    """No webhook, no copy calendar: a booking records its write-back and e-mail only."""
    app, host, mt = setup

    def work_of(b) -> list[str]:
        rows = Outbox.select().where(Outbox.kind != "reminder")
        return sorted(r.kind for r in rows if r.data().get("booking_id") == b.id)

    with app.test_request_context(), db.connection_context():
        first = _book(host, mt, now).booking
        assert work_of(first) == ["notify", "write_back"]
        hook = Webhook.create(user=host, url="https://hooks.example/k", events="booking.created")
        conn = Connection.create(user=host, provider="caldav", label="copies")
        Calendar.create(connection=conn, external_id="c", conflict=False, copy_bookings=True)
        second = _book(host, mt, now, start=SLOT + timedelta(hours=1)).booking
        assert work_of(second) == ["booking_copies", "notify", "webhooks", "write_back"]
        # An inactive webhook is none; a changed booking may have copies to bring in line.
        Webhook.update(is_active=False).where(Webhook.id == hook.id).execute()
        Calendar.update(copy_bookings=False).execute()
        Outbox.delete().execute()
        booking.cancel(second, by="host", now=now)
        assert work_of(second) == ["booking_copies", "notify", "write_back"]


def test_invitee_cannot_cancel_or_move_a_started_meeting(setup, now):
    app, host, mt = setup
    with app.test_request_context(), db.connection_context():
        b = _book(host, mt, now).booking
        later = SLOT + timedelta(minutes=5)
        with pytest.raises(NotAllowed):
            booking.cancel(b, by="invitee", now=later)
        with pytest.raises(NotAllowed):
            booking.reschedule(b, SLOT + timedelta(days=1), now=later)
        assert booking.cancel(b, by="host", now=later).status == "cancelled"
