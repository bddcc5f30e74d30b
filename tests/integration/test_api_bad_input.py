"""A table of bad inputs: each gets a JSON 4xx naming the field at fault, never a 5xx.

The cases share one app per database backend (module scope): none of them may
change anything, and the last test checks that nothing did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from portal.models import Booking, MeetingType, User, db
from tests.support import clock
from tests.support.api import BERLIN, at, book, bookable_monday, make_env
from tests.support.app import TEST_DATABASE_URL, make_app

MONDAY = bookable_monday()
SLOTS = "/api/v1/hosts/alice/intro/slots"
BOOK = "/api/v1/hosts/alice/intro/bookings"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory, redis_url):
    """One app per backend: PostgreSQL refuses some text SQLite stores (NUL, long varchar)."""
    database_url = None
    if request.param == "postgresql":
        if not TEST_DATABASE_URL:
            pytest.skip("TEST_DATABASE_URL not set")
        database_url = TEST_DATABASE_URL
    app = make_app(tmp_path_factory.mktemp("bad"), redis_url, database_url)
    env = make_env(app)
    env.uid = book(env, at(MONDAY, "10:00")).json["uid"]
    yield env
    if not db.is_closed():
        db.close()


def good_booking(**change) -> dict:
    body = {
        "start": at(MONDAY, "11:00"),
        "name": "Carol",
        "email": "carol@example.com",
        "timezone": "America/Chicago",
        "notes": "",
    }
    for key, value in change.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


# A day off ahead of the test clock: a past date would be refused for another reason.
OVERRIDE_DAY = clock.day(24).isoformat()


def good_availability(**change) -> dict:
    body = {
        "timezone": BERLIN,
        "weekly": {"mon": [["09:00", "17:00"]]},
        "overrides": [{"date": OVERRIDE_DAY, "intervals": []}],
        "lead_time_minutes": 0,
    }
    for key, value in change.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


def new_type(**change) -> dict:
    body = {"slug": "new", "name": "New", "duration_minutes": 30}
    for key, value in change.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


DROP = object()
LAST_MONDAY = MONDAY - timedelta(days=14)


def days(first: date, count: int) -> str:
    return f"start={first}&end={first + timedelta(days=count - 1)}"


def raw(text: str, content_type: str = "application/json") -> dict:
    return {"data": text.encode("utf-8", "surrogatepass"), "content_type": content_type}


@dataclass
class Case:
    name: str
    method: str
    path: str  # "{uid}" → a booking of alice
    status: int
    field: str | None
    send: Callable[[], dict] = dict  # keyword arguments for the test client
    token: str = "alice"  # alice | none


def slots(name, query, field, status=422):
    return Case(name, "get", f"{SLOTS}?{query}", status, field, token="none")


def booking(name, body, field, status=422):
    return Case(name, "post", BOOK, status, field, lambda: {"json": body}, "none")


def availability(name, body, field):
    return Case(name, "put", "/api/v1/availability", 422, field, lambda: {"json": body})


def meeting_type(name, body, field, method="post", path="/api/v1/meeting-types", status=422):
    return Case(name, method, path, status, field, lambda: {"json": body})


CASES = [
    # ---- public slots
    slots("unknown zone", f"{days(MONDAY, 1)}&tz=Mars/Olympus_Mons", "tz"),
    slots("zone is a folder", f"{days(MONDAY, 1)}&tz=Europe", "tz"),
    slots("zone path escape", f"{days(MONDAY, 1)}&tz=../../etc/passwd", "tz"),
    slots("zone with NUL", f"{days(MONDAY, 1)}&tz=Europe/Berlin%00", "tz"),
    slots("month 13", "start=2026-13-01&end=2026-12-31", "start"),
    slots("not a date", "start=tomorrow", "start"),
    slots("unpadded date", "start=2026-1-5&end=2026-01-06", "start"),
    slots("compact date", "start=20261201", "start"),
    slots("30 February", f"start={MONDAY}&end=2027-02-30", "end"),
    slots("reversed range", f"start={MONDAY}&end={MONDAY - timedelta(days=1)}", "end"),
    slots("63 days", days(MONDAY, 63), "end"),
    slots("a year", days(MONDAY, 366), "end"),
    slots("year 9999", "start=9999-12-30&end=9999-12-31", "start"),
    slots("year 1", "start=0001-01-01&end=0001-01-02", "start"),
    Case("unknown host slots", "get", "/api/v1/hosts/nobody/intro/slots", 404, None),
    Case("unknown type slots", "get", "/api/v1/hosts/alice/nothing/slots", 404, None),
    Case("type the host lacks", "get", "/api/v1/hosts/bob/deep/slots", 404, None),
    Case("uppercase host", "get", "/api/v1/hosts/ALICE/intro/slots", 404, None),
    Case("NUL host", "get", "/api/v1/hosts/al%00ice/intro/slots", 404, None),
    # ---- public booking
    booking("start not offered (evening)", good_booking(start=at(MONDAY, "20:00")), "start"),
    booking("start off the grid", good_booking(start=at(MONDAY, "11:10")), "start"),
    booking("start on a Saturday", good_booking(start=at(MONDAY - timedelta(2), "11:00")), "start"),
    booking("past start", good_booking(start=at(LAST_MONDAY, "11:00")), "start"),
    booking("start without offset", good_booking(start=f"{MONDAY}T11:00:00"), "start"),
    booking("start malformed", good_booking(start="soon"), "start"),
    booking("start is a number", good_booking(start=1767261600), "start"),
    booking("start missing", good_booking(start=DROP), "start"),
    booking("start null", good_booking(start=None), "start"),
    booking("bad e-mail", good_booking(email="not-an-email"), "email"),
    booking("e-mail without domain dot", good_booking(email="a@b"), "email"),
    booking("e-mail missing", good_booking(email=DROP), "email"),
    booking("e-mail is a list", good_booking(email=["a@example.com"]), "email"),
    booking("e-mail too long", good_booking(email="a" * 400 + "@example.com"), "email"),
    booking("name missing", good_booking(name=DROP), "name"),
    booking("name empty", good_booking(name=""), "name"),
    booking("name blank", good_booking(name="   "), "name"),
    booking("name oversized", good_booking(name="N" * 201), "name"),
    booking("name with a line break", good_booking(name="Carol\r\nBcc: x@y.z"), "name"),
    booking("name is a number", good_booking(name=5), "name"),
    booking("notes oversized", good_booking(notes="n" * 5001), "notes"),
    booking("notes is an object", good_booking(notes={"a": 1}), "notes"),
    booking("notes with NUL", good_booking(notes="a\x00b"), "notes"),
    booking("invitee zone unknown", good_booking(timezone="Nowhere/Land"), "timezone"),
    booking("invitee zone is a folder", good_booking(timezone="America"), "timezone"),
    booking("invitee zone is a number", good_booking(timezone=1), "timezone"),
    booking("empty idempotency key", good_booking(idempotency_key=""), "idempotency_key"),
    booking("long idempotency key", good_booking(idempotency_key="k" * 201), "idempotency_key"),
    booking("numeric idempotency key", good_booking(idempotency_key=7), "idempotency_key"),
    booking("unknown field", good_booking(coupon="FREE"), "coupon"),
    Case(
        "lone surrogate in name",
        "post",
        BOOK,
        422,
        "name",
        lambda: raw(json.dumps(good_booking(name="X")).replace('"X"', '"\\ud800"')),
        "none",
    ),
    Case("form body", "post", BOOK, 422, "body", lambda: raw("start=x", "text/plain"), "none"),
    Case("broken JSON", "post", BOOK, 422, "body", lambda: raw('{"start": '), "none"),
    Case("JSON array", "post", BOOK, 422, "body", lambda: {"json": [good_booking()]}, "none"),
    Case("JSON string", "post", BOOK, 422, "body", lambda: {"json": "hello"}, "none"),
    Case("empty JSON body", "post", BOOK, 422, "body", lambda: raw(""), "none"),
    Case("NaN body", "post", BOOK, 422, "body", lambda: raw("NaN"), "none"),
    Case("deep nesting", "post", BOOK, 422, "body", lambda: raw("[" * 30000 + "]" * 30000), "none"),
    Case(
        "huge integer",
        "post",
        BOOK,
        422,
        "body",
        lambda: raw('{"start": ' + "9" * 5000 + "}"),
        "none",
    ),
    Case(
        "body over the cap",
        "post",
        BOOK,
        413,
        "body",
        lambda: {"json": good_booking(notes="n" * 70_000)},
        "none",
    ),
    Case(
        "unknown host booking",
        "post",
        "/api/v1/hosts/nobody/intro/bookings",
        404,
        None,
        lambda: {"json": good_booking()},
        "none",
    ),
    Case(
        "unknown type booking",
        "post",
        "/api/v1/hosts/alice/nope/bookings",
        404,
        None,
        lambda: {"json": good_booking()},
        "none",
    ),
    # ---- availability
    availability("unknown host zone", good_availability(timezone="Europe/Atlantis"), "timezone"),
    availability("zone missing", good_availability(timezone=DROP), "timezone"),
    availability("zone is a number", good_availability(timezone=1), "timezone"),
    availability("weekly missing", good_availability(weekly=DROP), "weekly"),
    availability("weekly a string", good_availability(weekly="9-5"), "weekly"),
    availability("unknown weekday", good_availability(weekly={"monday": []}), "weekly.monday"),
    availability("day not a list", good_availability(weekly={"mon": "09:00"}), "weekly.mon"),
    availability(
        "interval a string", good_availability(weekly={"mon": ["09-17"]}), "weekly.mon[0]"
    ),
    availability(
        "interval of three",
        good_availability(weekly={"mon": [["09:00", "12:00", "17:00"]]}),
        "weekly.mon[0]",
    ),
    availability(
        "unpadded time", good_availability(weekly={"mon": [["9:00", "17:00"]]}), "weekly.mon[0]"
    ),
    availability(
        "minute 60", good_availability(weekly={"tue": [["09:60", "17:00"]]}), "weekly.tue[0]"
    ),
    availability(
        "24:30 end", good_availability(weekly={"mon": [["09:00", "24:30"]]}), "weekly.mon[0]"
    ),
    availability(
        "24:00 as start", good_availability(weekly={"mon": [["24:00", "24:00"]]}), "weekly.mon[0]"
    ),
    availability(
        "end before start", good_availability(weekly={"mon": [["17:00", "09:00"]]}), "weekly.mon[0]"
    ),
    availability(
        "empty window", good_availability(weekly={"fri": [["09:00", "09:00"]]}), "weekly.fri[0]"
    ),
    availability(
        "overlapping windows",
        good_availability(weekly={"mon": [["11:00", "13:00"], ["09:00", "12:00"]]}),
        "weekly.mon[0]",
    ),
    availability(
        "too many windows",
        good_availability(
            weekly={
                "mon": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(24)]
                + [[f"{h:02d}:30", f"{h + 1:02d}:00"] for h in range(23)]
                + [["23:30", "24:00"], ["23:45", "24:00"]]
            }
        ),
        "weekly.mon",
    ),
    availability(
        "trailing newline time",
        good_availability(weekly={"mon": [["09:00\n", "17:00"]]}),
        "weekly.mon[0]",
    ),
    availability("overrides missing", good_availability(overrides=DROP), "overrides"),
    availability("overrides an object", good_availability(overrides={}), "overrides"),
    availability(
        "override not an object", good_availability(overrides=[OVERRIDE_DAY]), "overrides[0]"
    ),
    availability(
        "override 30 February",
        good_availability(overrides=[{"date": "2027-02-30", "intervals": []}]),
        "overrides[0].date",
    ),
    availability(
        "override date missing",
        good_availability(overrides=[{"intervals": []}]),
        "overrides[0].date",
    ),
    availability(
        "override intervals missing",
        good_availability(overrides=[{"date": OVERRIDE_DAY}]),
        "overrides[0].intervals",
    ),
    availability(
        "override bad interval",
        good_availability(overrides=[{"date": OVERRIDE_DAY, "intervals": [["10:00", "09:00"]]}]),
        "overrides[0].intervals[0]",
    ),
    availability(
        "duplicate override date",
        good_availability(overrides=[{"date": OVERRIDE_DAY, "intervals": []}] * 2),
        "overrides[1].date",
    ),
    availability(
        "override unknown key",
        good_availability(overrides=[{"date": OVERRIDE_DAY, "intervals": [], "note": "x"}]),
        "overrides[0].note",
    ),
    availability(
        "negative lead time", good_availability(lead_time_minutes=-1), "lead_time_minutes"
    ),
    availability(
        "lead time a string", good_availability(lead_time_minutes="60"), "lead_time_minutes"
    ),
    availability(
        "lead time boolean", good_availability(lead_time_minutes=True), "lead_time_minutes"
    ),
    availability(
        "lead time fraction", good_availability(lead_time_minutes=1.5), "lead_time_minutes"
    ),
    availability(
        "lead time huge", good_availability(lead_time_minutes=10**30), "lead_time_minutes"
    ),
    availability("availability unknown key", good_availability(holidays=[]), "holidays"),
    Case(
        "availability not JSON",
        "put",
        "/api/v1/availability",
        422,
        "body",
        lambda: raw("tz=UTC", "application/x-www-form-urlencoded"),
    ),
    # ---- meeting types
    meeting_type("slug with space", new_type(slug="new type"), "slug"),
    meeting_type("slug uppercase", new_type(slug="New"), "slug"),
    meeting_type("slug reserved", new_type(slug="settings"), "slug"),
    meeting_type("slug too long", new_type(slug="a" * 41), "slug"),
    meeting_type("slug trailing newline", new_type(slug="new\n"), "slug"),
    meeting_type("slug a number", new_type(slug=5), "slug"),
    meeting_type("slug missing", new_type(slug=DROP), "slug"),
    meeting_type("type name empty", new_type(name=" "), "name"),
    meeting_type("type name oversized", new_type(name="n" * 201), "name"),
    meeting_type("type name missing", new_type(name=DROP), "name"),
    meeting_type("duration missing", new_type(duration_minutes=DROP), "duration_minutes"),
    meeting_type("duration 4", new_type(duration_minutes=4), "duration_minutes"),
    meeting_type("duration 721", new_type(duration_minutes=721), "duration_minutes"),
    meeting_type("duration a string", new_type(duration_minutes="30"), "duration_minutes"),
    meeting_type("duration fraction", new_type(duration_minutes=30.5), "duration_minutes"),
    meeting_type("duration null", new_type(duration_minutes=None), "duration_minutes"),
    meeting_type("duration boolean", new_type(duration_minutes=True), "duration_minutes"),
    meeting_type("negative buffer", new_type(buffer_before_minutes=-5), "buffer_before_minutes"),
    meeting_type("buffer too long", new_type(buffer_after_minutes=721), "buffer_after_minutes"),
    meeting_type("window 0", new_type(window_days=0), "window_days"),
    meeting_type("window 731", new_type(window_days=731), "window_days"),
    meeting_type("interval 4", new_type(slot_interval_minutes=4), "slot_interval_minutes"),
    meeting_type("daily limit 0", new_type(daily_limit=0), "daily_limit"),
    meeting_type(
        "lead time a year and a day", new_type(lead_time_minutes=527_041), "lead_time_minutes"
    ),
    meeting_type("location too long", new_type(location="l" * 256), "location"),
    meeting_type("active a string", new_type(active="yes"), "active"),
    meeting_type("type unknown key", new_type(colour="red"), "colour"),
    meeting_type("booking_url on create", new_type(booking_url="x"), "booking_url"),
    meeting_type("duplicate slug", new_type(slug="intro"), "slug", status=409),
    meeting_type(
        "patch duration 0",
        {"duration_minutes": 0},
        "duration_minutes",
        "patch",
        "/api/v1/meeting-types/intro",
    ),
    meeting_type(
        "patch slug reserved", {"slug": "api"}, "slug", "patch", "/api/v1/meeting-types/intro"
    ),
    meeting_type(
        "patch unknown type", {"name": "x"}, None, "patch", "/api/v1/meeting-types/nope", status=404
    ),
    Case("get type with NUL", "get", "/api/v1/meeting-types/in%00tro", 404, None),
    Case("delete unknown type", "delete", "/api/v1/meeting-types/nope", 404, None),
    # ---- the host's bookings
    Case("status unknown", "get", "/api/v1/bookings?status=soon", 422, "status"),
    Case("limit 0", "get", "/api/v1/bookings?limit=0", 422, "limit"),
    Case("limit 101", "get", "/api/v1/bookings?limit=101", 422, "limit"),
    Case("limit words", "get", "/api/v1/bookings?limit=ten", 422, "limit"),
    Case("offset negative", "get", "/api/v1/bookings?offset=-1", 422, "offset"),
    Case("offset huge", "get", "/api/v1/bookings?offset=" + "9" * 40, 422, "offset"),
    Case("booking uid with NUL", "get", "/api/v1/bookings/ab%00cd", 404, None),
    Case("booking uid unknown", "get", "/api/v1/bookings/" + "0" * 32, 404, None),
    Case(
        "cancel reason oversized",
        "post",
        "/api/v1/bookings/{uid}/cancel",
        422,
        "reason",
        lambda: {"json": {"reason": "r" * 5001}},
    ),
    Case(
        "cancel reason a number",
        "post",
        "/api/v1/bookings/{uid}/cancel",
        422,
        "reason",
        lambda: {"json": {"reason": 1}},
    ),
    Case(
        "cancel unknown key",
        "post",
        "/api/v1/bookings/{uid}/cancel",
        422,
        "notify",
        lambda: {"json": {"notify": False}},
    ),
    Case(
        "cancel body not JSON",
        "post",
        "/api/v1/bookings/{uid}/cancel",
        422,
        "body",
        lambda: raw("reason=x", "text/plain"),
    ),
    Case(
        "reschedule start missing",
        "post",
        "/api/v1/bookings/{uid}/reschedule",
        422,
        "start",
        lambda: {"json": {}},
    ),
    Case(
        "reschedule start malformed",
        "post",
        "/api/v1/bookings/{uid}/reschedule",
        422,
        "start",
        lambda: {"json": {"start": "2026-12-07 25:00"}},
    ),
    Case(
        "reschedule into the past",
        "post",
        "/api/v1/bookings/{uid}/reschedule",
        422,
        "start",
        lambda: {"json": {"start": at(LAST_MONDAY, "11:00")}},
    ),
    Case(
        "reschedule body empty",
        "post",
        "/api/v1/bookings/{uid}/reschedule",
        422,
        "body",
        lambda: raw(""),
    ),
    Case(
        "reschedule unknown booking",
        "post",
        f"/api/v1/bookings/{'0' * 32}/reschedule",
        404,
        None,
        lambda: {"json": {"start": at(MONDAY, "11:00")}},
    ),
    # ---- routing
    Case("unknown API path", "get", "/api/v1/nope", 404, None, token="none"),
    Case("unknown deeper API path", "get", "/api/v1/hosts/alice/intro/slots/more", 404, None),
    Case("unknown API version", "get", "/api/v2/me", 404, None),
    Case("DELETE /me", "delete", "/api/v1/me", 405, None),
    Case("POST to the document", "post", "/api/v1/openapi.json", 405, None, token="none"),
    Case("PUT to slots", "put", SLOTS, 405, None, lambda: {"json": {}}, "none"),
    Case("GET the booking action", "get", "/api/v1/bookings/{uid}/cancel", 405, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_4xx_naming_the_field(world, case):
    api = world.alice_api if case.token == "alice" else world.public
    path = case.path.replace("{uid}", world.uid)
    r = getattr(api, case.method)(path, **case.send())
    assert r.status_code == case.status, r.get_data(as_text=True)[:300]
    assert r.is_json, r.get_data(as_text=True)[:300]
    error = r.json["error"]
    assert error["code"] and error["message"]
    assert error.get("field") == case.field, error


def test_no_bad_input_changed_anything(world):
    with db.connection_context():
        assert Booking.select().count() == 1
        assert Booking.get().status == "confirmed"
        assert MeetingType.select().count() == 2
        alice = User.get(User.slug == "alice")
        assert (alice.timezone, alice.lead_time_minutes) == (BERLIN, 0)
        assert [t.duration_minutes for t in MeetingType.select().order_by(MeetingType.id)] == [
            30,
            30,
        ]
