"""Connect a CalDAV account (real Radicale) and an ICS feed in a real browser, end to end.

The host adds both on Settings → Calendars, watches each card poll from "Reading busy
times…" to "Up to date" while the worker runs the refresh jobs, picks the calendar that
receives bookings; the public slots then leave out the busy times of both sources, and a
booking lands in the Radicale calendar and leaves it again when cancelled.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import niquests
from playwright.sync_api import expect

from portal import clock
from portal.booking import service as booking
from portal.models import Booking, MeetingType, User, db
from portal.runtime.worker import run_worker
from tests.browser.conftest import sign_in

BERLIN = ZoneInfo("Europe/Berlin")


def a_weekday_ahead(days: int = 3):
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def vcal(uid: str, start: datetime, end: datetime, header: str = "") -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n{header}BEGIN:VEVENT\r\nUID:{uid}\r\n"
        f"DTSTAMP:20260101T000000Z\r\nDTSTART:{start.astimezone(ZoneInfo('UTC')):{fmt}}\r\n"
        f"DTEND:{end.astimezone(ZoneInfo('UTC')):{fmt}}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_connect_caldav_and_ics_then_book(live_server, page, radicale, feed_server):
    app = live_server.app
    host = live_server.hosts.create("alice", tz="Europe/Berlin")
    live_server.hosts.meeting_type(
        host, "intro", duration_minutes=60, location="https://meet.example/x"
    )
    day = a_weekday_ahead()
    user, password = radicale.add_user()
    work = radicale.make_calendar(user, "Work")
    bookings = radicale.make_calendar(user, "Bookings")
    radicale.put(
        work,
        "busy.ics",
        vcal(
            "busy", datetime.combine(day, time(10), BERLIN), datetime.combine(day, time(11), BERLIN)
        ),
        user=user,
    )
    feed = feed_server.publish(
        "/team.ics",
        vcal(
            "rota",
            datetime.combine(day, time(14), BERLIN),
            datetime.combine(day, time(15), BERLIN),
            "X-WR-CALNAME:Team rota\r\n",
        ),
    )

    sign_in(page, live_server.url, "alice@example.com")
    page.goto(live_server.at("/settings/connections/"))
    expect(page.get_by_text("No calendar connected yet")).to_be_visible()

    page.locator("summary", has_text="CalDAV / iCloud").click()
    expect(page.get_by_text("app-specific password")).to_be_visible()
    page.fill("#caldav-url", radicale.url)
    page.fill("#caldav-username", user)
    page.fill("#caldav-password", password)
    page.get_by_role("button", name="Connect CalDAV / iCloud").click()
    card = page.locator("section.connection").first
    expect(card).to_contain_text(user)
    expect(card).to_contain_text("Reading busy times")
    run_worker(app, burst=True)  # as `flask worker --burst`
    expect(card).to_contain_text("Up to date", timeout=15_000)  # the poll stopped on 286

    def row(name):
        return page.get_by_role("row", name=re.compile(f"^{name}"))

    # the account's first writable calendar was picked; move it to Work and back
    expect(row("Bookings")).to_contain_text("Receives new bookings")
    row("Work").get_by_role("button", name="Use for new bookings").click()
    expect(row("Work")).to_contain_text("Receives new bookings")
    expect(row("Bookings")).not_to_contain_text("Receives")
    row("Bookings").get_by_role("button", name="Use for new bookings").click()
    expect(row("Bookings")).to_contain_text("Receives new bookings")
    expect(row("Work")).not_to_contain_text("Receives")

    page.locator("summary", has_text="ICS feed").click()
    page.fill("#ics-url", feed)
    page.get_by_role("button", name="Connect ICS feed").click()
    rota = page.locator("section.connection", has_text="Team rota")
    expect(rota).to_contain_text("Reading busy times")
    run_worker(app, burst=True)  # as `flask worker --burst`
    expect(rota).to_contain_text("Up to date", timeout=15_000)
    expect(rota).to_contain_text("read-only")

    slots = niquests.get(
        live_server.at(f"/api/v1/hosts/alice/intro/slots?start={day}&end={day}&tz=Europe/Berlin"),
        timeout=10,
    ).json()["slots"]
    hours = {datetime.fromisoformat(s).hour for s in slots}
    assert 9 in hours and 12 in hours
    assert 10 not in hours and 14 not in hours  # busy on Work and on the team rota

    start = datetime.combine(day, time(9), BERLIN)
    with app.app_context(), db.connection_context():
        alice = User.get(User.slug == "alice")
        made = booking.book(
            alice,
            MeetingType.get(MeetingType.user == alice),
            start,
            "Ada",
            "ada@example.com",
            now=clock.now(),
        )
    run_worker(app, burst=True)  # as `flask worker --burst`
    [name] = radicale.hrefs(bookings, user=user)
    assert "mailto:ada@example.com" in radicale.get(bookings + name, user=user)

    with app.app_context(), db.connection_context():
        booking.cancel(Booking.get_by_id(made.booking.id), now=clock.now())
    run_worker(app, burst=True)  # as `flask worker --burst`
    assert radicale.hrefs(bookings, user=user) == []
