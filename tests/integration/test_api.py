"""The JSON API's contract, endpoint by endpoint; every answer is checked against OpenAPI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.booking import service as svc
from portal.models import Booking, MeetingType, User, db
from tests.support.api import (
    at,
    book,
    bookable_monday,
    document,
    make_env,
    matches_schema,
)
from tests.support.clock import NOW


@pytest.fixture
def env(app):
    return make_env(app)


def _path(template: str) -> str:
    """A concrete path for a documented one; unknown placeholders become 1 (fits <int:…>)."""
    values = {"slug": "intro", "host": "alice", "type": "intro", "uid": "0" * 32}
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "1"), template)


TOKEN_OPS = [
    (method, path)
    for path, ops in document()["paths"].items()
    for method, op in ops.items()
    if op["security"]
]


@pytest.mark.parametrize("method,path", TOKEN_OPS)
@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic YWxpY2U6eA==", "Bearer "])
def test_every_host_route_needs_a_valid_token(env, method, path, header):
    headers = {"Authorization": header} if header else {}
    r = getattr(env.public, method)(_path(path), headers=headers, json={})
    assert r.status_code == 401
    assert r.json["error"]["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    matches_schema(r, method, path)


def test_me(env):
    r = env.alice_api.get("/api/v1/me")
    assert r.status_code == 200
    matches_schema(r, "get", "/api/v1/me")
    assert r.json["slug"] == "alice" and r.json["timezone"] == "Europe/Berlin"
    assert r.json["profile_url"].endswith("/alice")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.json["locale"] == ""  # automatic: each page in its reader's language


def test_me_tells_the_hosts_language(env):
    with env.app.app_context(), db.connection_context():
        User.update(locale="de").where(User.slug == "alice").execute()
    r = env.alice_api.get("/api/v1/me")
    assert r.json["locale"] == "de"
    matches_schema(r, "get", "/api/v1/me")


def test_availability_defaults_to_weekdays_nine_to_five(env):
    r = env.alice_api.get("/api/v1/availability")
    assert r.status_code == 200
    matches_schema(r, "get", "/api/v1/availability")
    assert r.json == {
        "timezone": "Europe/Berlin",
        "weekly": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": [], "sun": []},
        "overrides": [],
        "lead_time_minutes": 0,
    }


def test_put_availability_replaces_everything_and_drives_the_slots(env):
    monday = bookable_monday()
    new = {
        "timezone": "Europe/Berlin",
        "weekly": {"mon": [["14:00", "15:00"], ["09:00", "10:00"]], "sun": [["22:00", "24:00"]]},
        "overrides": [
            {"date": (monday + timedelta(days=1)).isoformat(), "intervals": [["11:00", "12:00"]]},
            {"date": monday.isoformat(), "intervals": []},
        ],
        "lead_time_minutes": 90,
    }
    r = env.alice_api.put("/api/v1/availability", json=new)
    assert r.status_code == 200, r.json
    matches_schema(r, "put", "/api/v1/availability")
    assert r.json["weekly"]["mon"] == [["09:00", "10:00"], ["14:00", "15:00"]]
    assert r.json["weekly"]["sun"] == [["22:00", "24:00"]]
    assert r.json["weekly"]["tue"] == []
    assert [o["date"] for o in r.json["overrides"]] == sorted(o["date"] for o in new["overrides"])
    assert r.json["lead_time_minutes"] == 90
    assert env.alice_api.get("/api/v1/availability").json == r.json

    day, tuesday = monday.isoformat(), (monday + timedelta(days=1)).isoformat()
    slots = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={day}&end={tuesday}").json
    # Monday is overridden to a day off, Tuesday to 11:00–12:00.
    assert slots["slots"] == [
        at(monday + timedelta(days=1), "11:00"),
        at(monday + timedelta(days=1), "11:30"),
    ]

    # A second PUT replaces rather than merges.
    r = env.alice_api.put("/api/v1/availability", json=new | {"overrides": [], "weekly": {}})
    assert r.json["overrides"] == [] and all(v == [] for v in r.json["weekly"].values())


def test_put_availability_changes_the_zone(env):
    body = env.alice_api.get("/api/v1/availability").json | {"timezone": "Asia/Kathmandu"}
    assert env.alice_api.put("/api/v1/availability", json=body).status_code == 200
    assert env.alice_api.get("/api/v1/me").json["timezone"] == "Asia/Kathmandu"
    monday = bookable_monday()
    r = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={monday}&end={monday}")
    assert r.json["timezone"] == "Asia/Kathmandu"
    assert r.json["slots"][0] == f"{monday}T09:00:00+05:45"


def test_meeting_type_lifecycle(env):
    api = env.alice_api
    body = {
        "slug": "deep-dive",
        "name": "Deep dive",
        "duration_minutes": 60,
        "buffer_before_minutes": 10,
        "buffer_after_minutes": 15,
        "lead_time_minutes": 120,
        "window_days": 30,
        "slot_interval_minutes": 30,
        "daily_limit": 2,
        "location": "https://meet.example/alice",
    }
    r = api.post("/api/v1/meeting-types", json=body)
    assert r.status_code == 201, r.json
    matches_schema(r, "post", "/api/v1/meeting-types")
    assert r.headers["Location"].endswith("/api/v1/meeting-types/deep-dive")
    assert {k: r.json[k] for k in body} == body
    assert r.json["active"] is True and r.json["booking_url"].endswith("/alice/deep-dive")

    r = api.get("/api/v1/meeting-types")
    matches_schema(r, "get", "/api/v1/meeting-types")
    assert [t["slug"] for t in r.json["meeting_types"]] == ["intro", "deep-dive"]

    r = api.get("/api/v1/meeting-types/deep-dive")
    matches_schema(r, "get", "/api/v1/meeting-types/{slug}")
    assert r.json["daily_limit"] == 2

    r = api.patch(
        "/api/v1/meeting-types/deep-dive",
        json={"slug": "dive", "daily_limit": None, "active": False, "booking_url": "ignored"},
    )
    assert r.status_code == 200, r.json
    matches_schema(r, "patch", "/api/v1/meeting-types/{slug}")
    assert r.json["slug"] == "dive" and r.json["daily_limit"] is None
    assert r.json["duration_minutes"] == 60  # untouched fields stay
    assert api.get("/api/v1/meeting-types/deep-dive").status_code == 404

    r = api.delete("/api/v1/meeting-types/dive")
    assert r.status_code == 204 and r.data == b""
    matches_schema(r, "delete", "/api/v1/meeting-types/{slug}")
    assert api.get("/api/v1/meeting-types/dive").status_code == 404


def test_meeting_type_slug_conflicts_are_409(env):
    api = env.alice_api
    r = api.post(
        "/api/v1/meeting-types", json={"slug": "intro", "name": "X", "duration_minutes": 30}
    )
    assert r.status_code == 409 and r.json["error"] == {
        "code": "slug_taken",
        "message": r.json["error"]["message"],
        "field": "slug",
    }
    matches_schema(r, "post", "/api/v1/meeting-types")
    api.post("/api/v1/meeting-types", json={"slug": "other", "name": "O", "duration_minutes": 30})
    r = api.patch("/api/v1/meeting-types/other", json={"slug": "intro"})
    assert r.status_code == 409 and r.json["error"]["field"] == "slug"
    # The same slug under another host is fine, and renaming to itself is no conflict.
    r = env.bob_api.post(
        "/api/v1/meeting-types", json={"slug": "other", "name": "O", "duration_minutes": 30}
    )
    assert r.status_code == 201
    assert api.patch("/api/v1/meeting-types/other", json={"slug": "other"}).status_code == 200


def test_meeting_types_are_per_host(env):
    assert (
        env.bob_api.patch("/api/v1/meeting-types/intro", json={"name": "Mine"}).status_code == 200
    )
    assert env.alice_api.get("/api/v1/meeting-types/intro").json["name"] == "Intro"
    env.alice_api.post(
        "/api/v1/meeting-types", json={"slug": "alice-only", "name": "A", "duration_minutes": 30}
    )
    for method in ("get", "patch", "delete"):
        r = getattr(env.bob_api, method)("/api/v1/meeting-types/alice-only", json={"name": "B"})
        assert r.status_code == 404, method
    assert env.alice_api.get("/api/v1/meeting-types/alice-only").json["name"] == "A"


def test_deleting_a_type_keeps_its_bookings(env):
    monday = bookable_monday()
    uid = book(env, at(monday, "10:00")).json["uid"]
    assert env.alice_api.delete("/api/v1/meeting-types/intro").status_code == 204
    r = env.alice_api.get(f"/api/v1/bookings/{uid}")
    assert r.status_code == 200 and r.json["meeting_type"] == "intro"
    assert r.json["status"] == "confirmed"


def test_slots_are_whole_days_in_the_requested_zone(env):
    monday = bookable_monday()
    r = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={monday}&end={monday}")
    assert r.status_code == 200
    matches_schema(r, "get", "/api/v1/hosts/{host}/{type}/slots")
    assert r.json["timezone"] == "Europe/Berlin" and r.json["duration_minutes"] == 30
    assert r.json["slots"][0] == at(monday, "09:00") and r.json["slots"][-1] == at(monday, "16:30")
    assert len(r.json["slots"]) == 16

    # In Tokyo (8 h ahead of Berlin in winter, 7 in summer) Monday 09–17 Berlin
    # straddles two Tokyo days; ask for the Tokyo Monday only.
    r = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={monday}&end={monday}&tz=Asia/Tokyo")
    assert r.json["timezone"] == "Asia/Tokyo"
    assert r.json["slots"], r.json
    for s in r.json["slots"]:
        local = datetime.fromisoformat(s)
        assert local.utcoffset() == timedelta(hours=9) and local.date() == monday
    tokyo = ZoneInfo("Asia/Tokyo")
    assert (
        r.json["slots"][0]
        == datetime.fromisoformat(at(monday, "09:00")).astimezone(tokyo).isoformat()
    )

    # Inclusive of the end day: Monday..Friday is five days of sixteen slots.
    friday = monday + timedelta(days=4)
    r = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={monday}&end={friday}")
    assert len(r.json["slots"]) == 5 * 16 and r.json["slots"][-1] == at(friday, "16:30")


def test_slots_default_to_a_week_from_today_in_the_hosts_zone(env):
    r = env.public.get("/api/v1/hosts/alice/intro/slots")
    assert r.status_code == 200 and r.json["timezone"] == "Europe/Berlin"
    now = NOW  # the test app's clock starts there and has run a few seconds since
    assert r.json["slots"]
    for s in r.json["slots"]:
        instant = datetime.fromisoformat(s)
        assert now <= instant <= now + timedelta(days=8)


def test_sixty_two_days_is_the_longest_range(env):
    monday = bookable_monday()
    last = monday + timedelta(days=61)
    r = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={monday}&end={last}")
    assert r.status_code == 200
    r = env.public.get(
        f"/api/v1/hosts/alice/intro/slots?start={monday}&end={last + timedelta(days=1)}"
    )
    assert r.status_code == 422 and r.json["error"]["field"] == "end"


def _update(model, where, **values):
    with db.connection_context():
        model.update(**values).where(where).execute()


@pytest.mark.parametrize(
    "change",
    ["booking_off", "host_inactive", "type_inactive"],
)
def test_unbookable_hosts_and_types_are_404(env, change):
    if change == "booking_off":
        _update(User, User.slug == "alice", allow_booking=False)
    elif change == "host_inactive":
        _update(User, User.slug == "alice", is_active=False)
    else:
        _update(MeetingType, MeetingType.id == env.intro.id, is_active=False)
    monday = bookable_monday()
    r = env.public.get("/api/v1/hosts/alice/intro/slots")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    matches_schema(r, "get", "/api/v1/hosts/{host}/{type}/slots")
    r = book(env, at(monday, "10:00"))
    assert r.status_code == 404
    matches_schema(r, "post", "/api/v1/hosts/{host}/{type}/bookings")


def test_public_booking_contract(env):
    monday = bookable_monday()
    start = at(monday, "10:00")
    r = book(env, start, timezone="America/Chicago", notes="about the roadmap")
    assert r.status_code == 201, r.json
    matches_schema(r, "post", "/api/v1/hosts/{host}/{type}/bookings")
    body = r.json
    assert datetime.fromisoformat(body["start"]) == datetime.fromisoformat(start)
    assert datetime.fromisoformat(body["end"]) - datetime.fromisoformat(start) == timedelta(
        minutes=30
    )
    assert body["status"] == "confirmed" and body["timezone"] == "America/Chicago"
    assert "/booking/" + body["uid"] + "?token=" in body["manage_url"]
    assert "calendar_event" not in body

    # The slot is gone from the public list, and a second invitee gets 409 slot_taken.
    slots = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={monday}&end={monday}").json
    assert start not in slots["slots"] and at(monday, "10:30") in slots["slots"]
    r = book(env, start, email="dave@example.com")
    assert r.status_code == 409 and r.json["error"]["code"] == "slot_taken"
    matches_schema(r, "post", "/api/v1/hosts/{host}/{type}/bookings")


def test_public_booking_needs_no_csrf_token_even_with_a_session(env):
    """The API is exempt from CSRF: bearer tokens or nothing, never a cookie."""
    client = env.public.client
    client.get("/api/v1/openapi.json")  # any cookie the app may set stays in the jar
    r = book(env, at(bookable_monday(), "11:00"))
    assert r.status_code == 201


def test_get_booking_carries_the_calendar_write_state(env):
    uid = book(env, at(bookable_monday(), "10:00")).json["uid"]
    r = env.alice_api.get(f"/api/v1/bookings/{uid}")
    assert r.status_code == 200
    matches_schema(r, "get", "/api/v1/bookings/{uid}")
    assert r.json["uid"] == uid and r.json["email"] == "carol@example.com"
    assert r.json["calendar_event"] == {"status": "pending", "calendar_id": None}
    assert "manage_url" not in r.json


def _past_booking(env) -> str:
    """A booking last week, made through the service with a matching 'now'."""
    last_monday = bookable_monday() - timedelta(days=14)
    start = datetime.fromisoformat(at(last_monday, "10:00")).astimezone(UTC)
    with env.app.test_request_context(), db.connection_context():
        host = User.get(User.slug == "alice")
        mt = MeetingType.get_by_id(env.intro.id)
        result = svc.book(host, mt, start, "Past", "past@example.com", now=start - timedelta(1))
        return result.booking.uid


def test_list_bookings_filters_and_pages(env):
    monday = bookable_monday()
    uids = [book(env, at(monday, f"{h:02d}:00")).json["uid"] for h in (13, 10, 11, 12)]
    past = _past_booking(env)
    assert env.alice_api.post(f"/api/v1/bookings/{uids[3]}/cancel").status_code == 200

    def listed(query=""):
        r = env.alice_api.get("/api/v1/bookings" + query)
        assert r.status_code == 200, r.json
        matches_schema(r, "get", "/api/v1/bookings")
        return r.json

    upcoming = listed("?status=upcoming")
    assert [b["uid"] for b in upcoming["bookings"]] == [uids[1], uids[2], uids[0]]  # soonest first
    assert upcoming["total"] == 3 and upcoming["next_offset"] is None
    assert [b["uid"] for b in listed("?status=past")["bookings"]] == [past]
    cancelled = listed("?status=cancelled")["bookings"]
    assert [b["uid"] for b in cancelled] == [uids[3]] and cancelled[0]["cancelled_by"] == "host"
    assert listed()["total"] == 5

    page = listed("?status=upcoming&limit=2")
    assert [b["uid"] for b in page["bookings"]] == [uids[1], uids[2]] and page["next_offset"] == 2
    page = listed("?status=upcoming&limit=2&offset=2")
    assert [b["uid"] for b in page["bookings"]] == [uids[0]] and page["next_offset"] is None
    assert listed("?offset=50")["bookings"] == []

    # Another host sees none of them.
    assert env.bob_api.get("/api/v1/bookings").json["total"] == 0


def test_cancel_contract(env):
    uid = book(env, at(bookable_monday(), "10:00")).json["uid"]
    r = env.alice_api.post(f"/api/v1/bookings/{uid}/cancel", json={"reason": "ill"})
    assert r.status_code == 200
    matches_schema(r, "post", "/api/v1/bookings/{uid}/cancel")
    assert r.json["status"] == "cancelled" and r.json["cancel_reason"] == "ill"
    assert r.json["cancelled_by"] == "host" and r.json["cancelled_at"]
    with db.connection_context():
        assert Booking.get(Booking.uid == uid).status == "cancelled"


def test_reschedule_contract(env):
    monday = bookable_monday()
    old = book(env, at(monday, "10:00")).json["uid"]
    r = env.alice_api.post(
        f"/api/v1/bookings/{old}/reschedule", json={"start": at(monday, "15:00")}
    )
    assert r.status_code == 201, r.json
    matches_schema(r, "post", "/api/v1/bookings/{uid}/reschedule")
    new = r.json
    assert new["uid"] != old and new["status"] == "confirmed"
    assert new["rescheduled_from"] == old
    assert r.headers["Location"].endswith(f"/api/v1/bookings/{new['uid']}")
    assert datetime.fromisoformat(new["start"]) == datetime.fromisoformat(at(monday, "15:00"))
    previous = env.alice_api.get(f"/api/v1/bookings/{old}").json
    assert previous["status"] == "rescheduled" and previous["rescheduled_to"] == new["uid"]
    # The old time is free again; the new one is not.
    slots = env.public.get(f"/api/v1/hosts/alice/intro/slots?start={monday}&end={monday}").json
    assert at(monday, "10:00") in slots["slots"] and at(monday, "15:00") not in slots["slots"]


def test_reschedule_does_not_conflict_with_itself(env):
    """The booking being moved is left out of the check, so its own time stays possible."""
    monday = bookable_monday()
    uid = book(env, at(monday, "10:00")).json["uid"]
    r = env.alice_api.post(
        f"/api/v1/bookings/{uid}/reschedule", json={"start": at(monday, "10:00")}
    )
    assert r.status_code == 201, r.json


def test_openapi_document_is_served_publicly(env):
    r = env.public.get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.json["openapi"] == "3.1.0"
    matches_schema(r, "get", "/api/v1/openapi.json")
