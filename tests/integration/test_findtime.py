"""Find a time: everyone's free/busy side by side, and booking a slot with co-workers.

Co-workers' calendars are real ICS feeds (a local feed server), connected and
refreshed through ``portal.calendars.sync``, so the busy time comes from the same cache
the booking pages read — and the feed's titles and calendar names must never
reach the page.
"""

from __future__ import annotations

import email
import re
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import jobs  # noqa: F401  (registers the outbox handlers)
from jobs.calendar import event_data
from jobs.outbox import run
from portal import clock
from portal.booking import service
from portal.booking.checks import BookingError, SlotTaken
from portal.booking.links import manage_path
from portal.booking.rules import available_slots, existing_bookings
from portal.calendars import sync
from portal.models import (
    Booking,
    BookingAttendee,
    Calendar,
    CalendarEvent,
    Connection,
    Outbox,
    User,
    WeeklyHours,
    db,
)
from portal.org import findtime
from tests.support.app import AuthActions
from tests.support.clock import NOW

BERLIN = ZoneInfo("Europe/Berlin")
SECRET_TITLE = "Confidential merger talk"
SECRET_CALENDAR = "Secret Project Alpha"
BUTTON = re.compile(r'name="start" value="([^"]+)"')


def ics(*spans: tuple[datetime, datetime]) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        f"X-WR-CALNAME:{SECRET_CALENDAR}",
    ]
    for n, (start, end) in enumerate(spans):
        lines += [
            "BEGIN:VEVENT",
            f"UID:busy-{n}@test",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:{SECRET_TITLE}",
            "DESCRIPTION:Board members only",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


def at(day: date, hh: int, mm: int = 0, tz=BERLIN) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=tz).astimezone(UTC)


def next_monday() -> date:
    return findtime.week_start(NOW.date()) + timedelta(weeks=1)


@pytest.fixture
def office(app, hosts, feed_server):
    """Hana (host, Berlin), Ivo (UTC; 11–13 Berlin time) and Jo (Berlin, busy Tuesday 10–11)."""
    hana = hosts.create("hana", name="Hana Host", tz="Europe/Berlin")
    ivo = hosts.create("ivo", name="Ivo Iversen", tz="UTC")
    jo = hosts.create("jo", name="Jo Jansen", tz="Europe/Berlin")
    ivo_type = hosts.meeting_type(ivo, "chat", name="Chat")
    monday = next_monday()
    tuesday = monday + timedelta(days=1)
    url = feed_server.publish("/jo.ics", ics((at(tuesday, 10), at(tuesday, 11))))
    with app.app_context(), db.connection_context():
        # Ivo's 11:00–13:00 Berlin, written in UTC for this week's offset (summer or winter).
        ivo_start, ivo_end = (at(tuesday, hh).strftime("%H:%M") for hh in (11, 13))
        WeeklyHours.update(start=ivo_start, end=ivo_end).where(WeeklyHours.user == ivo.id).execute()
        conn = sync.connect(User.get_by_id(jo.id), "ics", {"url": url})
        assert sync.refresh_connection(conn.id) == "ok"
        # Hana's bookings land in her calendar (a write calendar row is all booking needs).
        mine = Connection.create(user=hana.id, provider="caldav", label="hana@dav.example")
        Calendar.create(
            connection=mine,
            external_id="/hana/cal/",
            name="Hana",
            writable=True,
            write=True,
            conflict=False,
        )
    return {
        "hana": hana,
        "ivo": ivo,
        "jo": jo,
        "ivo_type": ivo_type,
        "monday": monday,
        "tuesday": tuesday,
    }


def grid(app, office, monday=None, duration=30, now=None):
    with app.app_context(), db.connection_context():
        host = User.get_by_id(office["hana"].id)
        others = [User.get_by_id(office["ivo"].id), User.get_by_id(office["jo"].id)]
        return findtime.week_grid(
            host, others, monday or office["monday"], duration, now or clock.now()
        )


def cell(week, day: date, label: str):
    """The cell of ``day`` at wall-clock ``label`` ("10:00") in the host's zone."""
    return week.rows[week.times.index(time.fromisoformat(label))][week.days.index(day)]


# ---------------------------------------------------------------- intervals


def test_interval_helpers():
    t = lambda h: datetime(2026, 12, 1, h, tzinfo=UTC)  # noqa: E731
    assert findtime.merge([(t(9), t(10)), (t(10), t(11)), (t(13), t(14)), (t(12), t(12))]) == [
        (t(9), t(11)),
        (t(13), t(14)),
    ]
    assert findtime.subtract([(t(8), t(17))], [(t(9), t(10)), (t(12), t(18))]) == [
        (t(8), t(9)),
        (t(10), t(12)),
    ]
    assert findtime.covers([(t(8), t(12))], t(9), t(12)) and not findtime.covers(
        [(t(8), t(12))], t(11), t(13)
    )
    assert findtime.overlaps([(t(8), t(9))], t(8), t(10)) and not findtime.overlaps(
        [(t(8), t(9))], t(9), t(10)
    )


# ---------------------------------------------------------------- the grid


def test_grid_merges_hours_calendars_and_zones(app, office):
    week = grid(app, office)
    tue = office["tuesday"]
    assert week.zone == "Europe/Berlin" and len(week.days) == 5  # nobody works weekends
    assert [p.id for p in week.people] == [office["hana"].id, office["ivo"].id, office["jo"].id]
    # Rows cover everyone's hours in the host's zone: Hana and Jo 09–17, Ivo 11–13 Berlin.
    assert week.times[0] == time(9, 0) and week.times[-1] == time(16, 30)
    c = cell(week, tue, "10:00")
    assert c.states == ("free", "off", "busy") and not c.everyone  # Ivo not yet at work, Jo busy
    c = cell(week, tue, "11:00")
    assert c.states == ("free", "free", "free") and c.everyone
    assert cell(week, tue, "12:30").everyone and not cell(week, tue, "13:00").everyone
    # A longer meeting must fit everyone's whole span.
    long = grid(app, office, duration=60)
    assert cell(long, tue, "12:00").everyone and not cell(long, tue, "12:30").everyone
    assert long.free_count == 5 * 3  # 11:00, 11:30 and 12:00 Berlin on each weekday


def test_grid_never_offers_the_past(app, office):
    monday = office["monday"]
    now = at(monday, 11, 15)
    week = grid(app, office, now=now)
    assert not cell(week, monday, "11:00").everyone
    assert cell(week, monday, "11:30").everyone


def test_existing_bookings_and_their_buffers_are_busy(app, hosts, office):
    mt = hosts.meeting_type(office["ivo"], "long", name="Long", buffer_after_minutes=30)
    wed = office["monday"] + timedelta(days=2)
    with app.app_context(), db.connection_context():
        ivo = User.get_by_id(office["ivo"].id)
        service.book(ivo, mt, at(wed, 11), "Zed Secret", "zed@secret.example", now=clock.now())
    week = grid(app, office)
    assert cell(week, wed, "11:00").states[1] == "busy"
    assert cell(week, wed, "11:30").states[1] == "busy"  # the booking's own buffer
    assert cell(week, wed, "12:00").states[1] == "free"


def test_page_shows_free_busy_only(app, client, office, hosts):
    mt = hosts.meeting_type(office["jo"], "deal", name="Deal")
    wed = office["monday"] + timedelta(days=2)
    with app.app_context(), db.connection_context():
        service.book(
            User.get_by_id(office["jo"].id),
            mt,
            at(wed, 14),
            "Zed Secret",
            "zed@secret.example",
            notes="acquisition",
            now=clock.now(),
        )
    AuthActions(client).login("hana@example.com")
    query = {"with": [office["ivo"].id, office["jo"].id], "week": office["monday"].isoformat()}
    answer = client.get("/settings/find-time/", query_string=query)
    assert answer.status_code == 200
    assert (
        answer.headers["X-Frame-Options"] == "DENY"
        and answer.headers["Cache-Control"] == "no-store"
    )
    page = answer.get_data(as_text=True)
    assert "Ivo Iversen" in page and "Jo Jansen" in page and "ft-busy" in page
    for secret in (
        SECRET_TITLE,
        SECRET_CALENDAR,
        "Board members",
        "Zed Secret",
        "zed@secret",
        "acquisition",
        "Deal",
    ):
        assert secret not in page, secret
    starts = BUTTON.findall(page)
    assert at(office["tuesday"], 11).isoformat() in starts
    assert at(office["tuesday"], 10).isoformat() not in starts
    # htmx asks for the section only.
    part = client.get("/settings/find-time/", query_string=query, headers={"HX-Request": "true"})
    assert part.get_data(as_text=True).lstrip().startswith('<div id="findtime">')


def test_picker_lists_active_coworkers_only(app, client, office):
    with app.app_context(), db.connection_context():
        User.update(is_active=False).where(User.id == office["jo"].id).execute()
    AuthActions(client).login("hana@example.com")
    page = client.get("/settings/find-time/").get_data(as_text=True)
    assert "Ivo Iversen" in page and "Jo Jansen" not in page and "Hana Host" not in page
    # A hand-made query cannot bring in an inactive member or yourself.
    page = client.get(
        "/settings/find-time/",
        query_string={"with": [office["jo"].id, office["hana"].id, 9999]},
    ).get_data(as_text=True)
    assert "ft-grid" not in page


# ---------------------------------------------------------------- booking


def book_form(client, office, when: datetime, **extra):
    auth = AuthActions(client)
    data = {
        "with": [office["ivo"].id, office["jo"].id],
        "duration": "30",
        "title": "Quarterly planning",
        "location": "Room 4",
        "start": when.isoformat(),
        "week": office["monday"].isoformat(),
        "csrf_token": auth.token("/settings/"),
    }
    data.update(extra)
    return client.post(
        "/settings/find-time/book", data={k: v for k, v in data.items() if v is not None}
    )


def test_booking_a_common_slot(app, client, office):
    AuthActions(client).login("hana@example.com")
    start = at(office["tuesday"], 11)
    answer = book_form(client, office, start)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with app.app_context(), db.connection_context():
        booking = Booking.get(Booking.host == office["hana"].id)
        assert answer.headers["Location"] == f"/settings/appointments/{booking.uid}"
        assert booking.start_utc == start and booking.end_utc == start + timedelta(minutes=30)
        assert booking.title == "Quarterly planning" and booking.location == "Room 4"
        assert booking.meeting_type_id is None and booking.status == "confirmed"
        assert (booking.invitee_name, booking.invitee_email) == ("Ivo Iversen", "ivo@example.com")
        people = [
            (a.user_id, a.email) for a in BookingAttendee.select().order_by(BookingAttendee.id)
        ]
        assert people == [
            (office["ivo"].id, "ivo@example.com"),
            (office["jo"].id, "jo@example.com"),
        ]
        # Owed to Hana's write calendar, through the same write-back as every booking.
        event = CalendarEvent.get(CalendarEvent.booking == booking)
        assert event.status == "pending" and event.calendar.name == "Hana"
        kinds = sorted(r.kind for r in Outbox.select())
        assert {"write_back", "notify", "meeting_attendees"} <= set(kinds)
        data = event_data(booking)
        assert data.attendees() == (
            ("Ivo Iversen", "ivo@example.com"),
            ("Jo Jansen", "jo@example.com"),
        )
        assert data.summary.startswith("Quarterly planning")
        # The co-workers' own booking pages no longer offer that time.
        ivo = User.get_by_id(office["ivo"].id)
        slots = available_slots(
            ivo,
            office["ivo_type"],
            start - timedelta(hours=2),
            start + timedelta(hours=3),
            now=clock.now(),
        )
        assert start not in slots and start + timedelta(minutes=30) in slots
        manage = manage_path(booking)
    # The invitee (Ivo) gets the usual manage link; the page works for a type-less meeting.
    managed = app.test_client().get(manage)
    assert managed.status_code == 200 and "Hana Host" in managed.get_data(as_text=True)
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Quarterly planning" in page and "Jo Jansen" in page
    # Seen again in the grid: everyone is busy then.
    week = grid(app, office)
    assert cell(week, office["tuesday"], "11:00").states == ("busy", "busy", "busy")


def test_the_same_slot_cannot_be_booked_twice(app, client, office):
    AuthActions(client).login("hana@example.com")
    start = at(office["tuesday"], 11)
    assert book_form(client, office, start).status_code == 302
    again = book_form(client, office, start, title="Second")
    assert again.status_code == 409
    assert "is no longer free at this time" in again.get_data(as_text=True)
    with app.app_context(), db.connection_context():
        assert Booking.select().count() == 1


def test_a_busy_coworker_refuses_the_slot(app, client, office):
    AuthActions(client).login("hana@example.com")
    # Jo's calendar (the ICS feed) is busy then; the message names who is not free.
    answer = book_form(client, office, at(office["tuesday"], 10), **{"with": [office["jo"].id]})
    assert answer.status_code == 409
    assert "Jo Jansen is no longer free" in answer.get_data(as_text=True)
    # Outside a co-worker's working hours is refused the same way.
    answer = book_form(client, office, at(office["tuesday"], 15), **{"with": [office["ivo"].id]})
    assert answer.status_code == 409 and "Ivo Iversen is no longer free" in answer.get_data(
        as_text=True
    )
    with app.app_context(), db.connection_context():
        assert Booking.select().count() == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"with": None}, "pick at least one co-worker"),
        ({"duration": "17"}, "pick one of the offered lengths"),
        ({"start": "tomorrow"}, "expected an ISO 8601"),
        ({"start": "2026-12-01T10:00:00"}, "needs a UTC offset"),
        ({"start": "2020-01-06T10:00:00+00:00"}, "in the past"),
        ({"title": "x" * 201}, "at most 200 characters"),
        ({"with": ["9999"]}, "no longer available"),
    ],
)
def test_bad_requests_are_refused_with_a_message(app, client, office, extra, message):
    AuthActions(client).login("hana@example.com")
    answer = book_form(client, office, at(office["tuesday"], 11), **extra)
    assert answer.status_code == 422
    assert message in answer.get_data(as_text=True)
    with app.app_context(), db.connection_context():
        assert Booking.select().count() == 0


def test_booking_needs_csrf_and_a_session(app, client, office):
    start = at(office["tuesday"], 11).isoformat()
    form = {"with": [office["ivo"].id], "duration": "30", "start": start}
    assert client.post("/settings/find-time/book", data=form).status_code == 400
    assert client.get("/settings/find-time/").status_code == 302
    AuthActions(client).login("hana@example.com")
    assert client.post("/settings/find-time/book", data=form).status_code == 400
    with app.app_context(), db.connection_context():
        assert Booking.select().count() == 0


def test_inactive_coworker_cannot_be_booked(app, office, now):
    with app.app_context(), db.connection_context():
        hana = User.get_by_id(office["hana"].id)
        ivo = User.get_by_id(office["ivo"].id)
        User.update(is_active=False).where(User.id == ivo.id).execute()
        ivo.is_active = False
        with pytest.raises(BookingError, match="active co-workers"):
            findtime.book_meeting(hana, [ivo], at(office["tuesday"], 11), 30)


def test_unreachable_calendar_with_a_stale_cache_is_503(app, client, office, feed_server):
    with app.app_context(), db.connection_context():
        Calendar.update(last_synced_at=None).where(Calendar.name == SECRET_CALENDAR).execute()
    feed_server.feeds.clear()  # the feed now answers 404
    AuthActions(client).login("hana@example.com")
    answer = book_form(client, office, at(office["tuesday"], 11))
    assert answer.status_code == 503
    assert "could not check Jo Jansen" in answer.get_data(as_text=True)


def read_mail(app) -> list[email.message.EmailMessage]:
    folder = Path(app.config["OUTBOX_MAIL_DIR"])
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]


def test_coworkers_are_emailed_and_hear_of_a_cancellation(app, client, office):
    AuthActions(client).login("hana@example.com")
    assert book_form(client, office, at(office["tuesday"], 11)).status_code == 302

    def run_mail_rows():
        with app.app_context(), db.connection_context():
            ids = [
                r.id
                for r in Outbox.select().where(
                    Outbox.kind.in_(["notify", "meeting_attendees"]), Outbox.status != "done"
                )
            ]
        with app.app_context():
            for row_id in ids:
                run(row_id)

    run_mail_rows()
    sent = {(m["To"].addresses[0].addr_spec, str(m["Subject"])) for m in read_mail(app)}
    jo_mail = [s for to, s in sent if to == "jo@example.com"]
    assert jo_mail and jo_mail[0].startswith("Invitation: Quarterly planning with Hana Host")
    assert any(to == "ivo@example.com" for to, _ in sent)  # the invitee's confirmation
    assert any(to == "hana@example.com" for to, _ in sent)
    [msg] = [m for m in read_mail(app) if m["To"].addresses[0].addr_spec == "jo@example.com"]
    text = msg.get_body(("plain",)).get_content()
    assert "Ivo Iversen" in text and "Jo Jansen" in text and "Room 4" in text
    assert any(part.get_filename() == "invite.ics" for part in msg.iter_attachments())

    with app.app_context(), db.connection_context():
        booking = Booking.get(Booking.host == office["hana"].id)
        service.cancel(booking, by="host", now=clock.now())
    run_mail_rows()
    cancelled = [
        m
        for m in read_mail(app)
        if m["To"].addresses[0].addr_spec == "jo@example.com"
        and str(m["Subject"]).startswith("Cancelled")
    ]
    assert len(cancelled) == 1
    # Their time is free again.
    assert cell(grid(app, office), office["tuesday"], "11:00").everyone


# ---------------------------------------------------------------- races (SQLite and PostgreSQL)

# Tuesday 10:00, the day after the test clock's Monday 08:00; everyone below lives in UTC.
RACE_SLOT = NOW + timedelta(days=1, hours=2)


def test_racing_for_one_coworker_gives_exactly_one_winner(backend_app, now):
    """Two hosts book Ivo, and an invitee books Ivo's own page, for the same half hour.

    Every participant's booking lock is taken (in id order), so exactly one wins
    on either database, and nobody deadlocks.
    """
    import threading

    from tests.support.app import Hosts

    h = Hosts(backend_app)
    hana = h.create("hana", tz="UTC")
    kai = h.create("kai", tz="UTC")
    ivo = h.create("ivo", tz="UTC")
    chat = h.meeting_type(ivo, "chat", duration_minutes=30)
    results: list[str] = []
    barrier = threading.Barrier(6)

    def host_racer(host: User) -> None:
        with backend_app.test_request_context():
            barrier.wait()
            try:
                with db.connection_context():
                    findtime.book_meeting(host, [ivo], RACE_SLOT, 30, now=now)
                results.append("won")
            except SlotTaken:
                results.append("taken")

    def invitee_racer(i: int) -> None:
        with backend_app.test_request_context():
            barrier.wait()
            try:
                with db.connection_context():
                    service.book(ivo, chat, RACE_SLOT, "Pat", f"p{i}@example.com", now=now)
                results.append("won")
            except SlotTaken:
                results.append("taken")

    threads = [threading.Thread(target=host_racer, args=(u,)) for u in (hana, kai, hana)]
    threads += [threading.Thread(target=invitee_racer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["taken"] * 5 + ["won"]
    with backend_app.app_context(), db.connection_context():
        ivo_row = User.get_by_id(ivo.id)
        booked = existing_bookings(ivo_row, RACE_SLOT, RACE_SLOT + timedelta(hours=1))
        assert len(booked) == 1
