"""Booking rules over HTTP: idempotency, cancel / reschedule transitions, ownership."""

from __future__ import annotations

import pytest

from portal.models import Booking, Outbox, db
from tests.support.api import at, book, bookable_monday, make_env


@pytest.fixture
def env(app):
    return make_env(app)


def _count(model, *where) -> int:
    with db.connection_context():
        query = model.select()
        return (query.where(*where) if where else query).count()


def test_same_idempotency_key_returns_the_same_booking(env):
    start = at(bookable_monday(), "10:00")
    first = book(env, start, idempotency_key="order-17")
    work = _count(Outbox)
    again = book(env, start, idempotency_key="order-17")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json["uid"] == first.json["uid"]
    assert again.json["manage_url"] == first.json["manage_url"]
    assert _count(Booking) == 1
    # The work a booking causes was recorded once, not once per retry.
    assert _count(Outbox) == work


def test_an_idempotent_retry_is_answered_even_after_the_slot_is_gone(env):
    """The retry of a request that succeeded must not turn into 'slot taken'."""
    start = at(bookable_monday(), "10:00")
    first = book(env, start, idempotency_key="k")
    assert book(env, start, email="other@example.com").status_code == 409
    assert book(env, start, idempotency_key="k").json["uid"] == first.json["uid"]


@pytest.mark.parametrize(
    "change",
    [{"start": "11:00"}, {"email": "mallory@example.com"}],
)
def test_a_key_reused_for_another_booking_is_a_conflict(env, change):
    """Otherwise anyone guessing a key would receive someone else's manage link."""
    monday = bookable_monday()
    book(env, at(monday, "10:00"), idempotency_key="k")
    fields = {"idempotency_key": "k"}
    start = at(monday, change.pop("start", "10:00"))
    r = book(env, start, **fields, **change)
    assert r.status_code == 409
    assert r.json["error"]["code"] == "idempotency_conflict"
    assert r.json["error"]["field"] == "idempotency_key"
    assert "manage_url" not in r.json
    assert _count(Booking) == 1


def test_a_key_is_per_host(env):
    from tests.support.app import Hosts

    Hosts(env.app).meeting_type(env.bob, "call", duration_minutes=30)
    monday = bookable_monday()
    a = book(env, at(monday, "10:00"), idempotency_key="shared")
    body = {"start": at(monday, "10:00", "America/New_York"), "idempotency_key": "shared"}
    body |= {"name": "Carol", "email": "carol@example.com"}
    b = env.public.post("/api/v1/hosts/bob/call/bookings", json=body)
    assert a.status_code == b.status_code == 201 and a.json["uid"] != b.json["uid"]


def test_without_a_key_every_request_is_a_new_attempt(env):
    start = at(bookable_monday(), "10:00")
    assert book(env, start).status_code == 201
    assert book(env, start).json["error"]["code"] == "slot_taken"


def test_cancel_twice_is_409(env):
    uid = book(env, at(bookable_monday(), "10:00")).json["uid"]
    assert env.alice_api.post(f"/api/v1/bookings/{uid}/cancel").status_code == 200
    r = env.alice_api.post(f"/api/v1/bookings/{uid}/cancel", json={"reason": "again"})
    assert r.status_code == 409 and r.json["error"]["code"] == "not_allowed"
    assert env.alice_api.get(f"/api/v1/bookings/{uid}").json["cancel_reason"] == ""


def test_cancelled_booking_cannot_be_rescheduled(env):
    monday = bookable_monday()
    uid = book(env, at(monday, "10:00")).json["uid"]
    env.alice_api.post(f"/api/v1/bookings/{uid}/cancel")
    r = env.alice_api.post(
        f"/api/v1/bookings/{uid}/reschedule", json={"start": at(monday, "11:00")}
    )
    assert r.status_code == 409 and r.json["error"]["code"] == "not_allowed"
    assert _count(Booking) == 1


def test_rescheduled_booking_cannot_be_rescheduled_or_cancelled_again(env):
    monday = bookable_monday()
    old = book(env, at(monday, "10:00")).json["uid"]
    r = env.alice_api.post(
        f"/api/v1/bookings/{old}/reschedule", json={"start": at(monday, "11:00")}
    )
    new = r.json["uid"]
    again = env.alice_api.post(
        f"/api/v1/bookings/{old}/reschedule", json={"start": at(monday, "12:00")}
    )
    assert again.status_code == 409 and again.json["error"]["code"] == "not_allowed"
    assert env.alice_api.post(f"/api/v1/bookings/{old}/cancel").status_code == 409
    # The replacement is a normal booking: it can move on.
    r = env.alice_api.post(
        f"/api/v1/bookings/{new}/reschedule", json={"start": at(monday, "12:00")}
    )
    assert r.status_code == 201
    assert _count(Booking, Booking.status == "confirmed") == 1


def test_reschedule_onto_a_taken_slot_is_409(env):
    monday = bookable_monday()
    uid = book(env, at(monday, "10:00")).json["uid"]
    book(env, at(monday, "11:00"), email="dave@example.com")
    r = env.alice_api.post(
        f"/api/v1/bookings/{uid}/reschedule", json={"start": at(monday, "11:00")}
    )
    assert r.status_code == 409 and r.json["error"]["code"] == "slot_taken"
    assert env.alice_api.get(f"/api/v1/bookings/{uid}").json["status"] == "confirmed"


def test_reschedule_to_a_time_never_offered_is_422_start(env):
    monday = bookable_monday()
    uid = book(env, at(monday, "10:00")).json["uid"]
    r = env.alice_api.post(
        f"/api/v1/bookings/{uid}/reschedule", json={"start": at(monday, "20:00")}
    )
    assert r.status_code == 422 and r.json["error"]["field"] == "start"


@pytest.mark.parametrize(
    "method,suffix,body",
    [
        ("get", "", None),
        ("post", "/cancel", {}),
        ("post", "/reschedule", {"start": "__slot__"}),
    ],
)
def test_another_hosts_booking_is_404(env, method, suffix, body):
    monday = bookable_monday()
    uid = book(env, at(monday, "10:00")).json["uid"]
    if body and body.get("start"):
        body = {"start": at(monday, "11:00")}
    r = getattr(env.bob_api, method)(f"/api/v1/bookings/{uid}{suffix}", json=body)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    # Answered exactly like a uid that does not exist, and nothing changed.
    missing = getattr(env.bob_api, method)(f"/api/v1/bookings/{'f' * 32}{suffix}", json=body)
    assert missing.status_code == 404 and missing.json == r.json
    assert env.alice_api.get(f"/api/v1/bookings/{uid}").json["status"] == "confirmed"


def test_public_booking_shares_the_pages_rate_limit(tmp_path, redis_url):
    """The API is no way around the booking form's per-address budget; 429 is JSON too."""
    from tests.support.app import make_app

    app = make_app(tmp_path, redis_url, RATELIMIT_ENABLED=True, BOOKING_RATE_LIMIT="2/minute")
    env = make_env(app)
    monday = bookable_monday()
    answers = [book(env, at(monday, f"{h}:00")).status_code for h in (10, 11, 12)]
    assert answers == [201, 201, 429]
    r = book(env, at(monday, "13:00"))
    assert r.status_code == 429 and r.json["error"]["code"] == "too_many_requests"
    assert r.headers.get("Retry-After")
    assert _count(Booking) == 2
