"""Connect Google in a real browser, end to end.

The host presses "Connect Google Calendar", passes through the (fake)
Google consent page on its own origin, lands back connected, picks the
calendar that receives bookings; an invitee then cannot book over a busy
Google event, books a free time, and the event appears in the fake Google's
store. Jobs run as the worker runs them (``run_worker(burst=True)``).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.models import Calendar, Connection, db
from portal.runtime.worker import run_worker
from tests.browser.conftest import LiveServer, sign_in
from tests.support.app import make_app

BERLIN = ZoneInfo("Europe/Berlin")
ACCOUNT = "alice.example@gmail.test"
BOOKINGS = "kairos.bookings@group.calendar.google.com"


def a_weekday_ahead(days: int = 2):
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def kairos(tmp_path, redis_url, serve, fake_google) -> LiveServer:
    """Kairos on a real socket, configured with the fake Google's URLs and client."""
    holder: dict[str, object] = {}

    def late_bound(environ, start_response):
        return holder["app"](environ, start_response)

    url = serve(late_bound)
    holder["app"] = make_app(
        tmp_path, redis_url, BASE_URL=url, CLOCK=None, **fake_google.config()
    )  # the browser picks days from the real date
    return LiveServer(app=holder["app"], url=url)


@pytest.fixture
def google_account(fake_google):
    """Alice's Google account: her calendar, a family calendar with a busy hour, a bookings one."""
    day = a_weekday_ahead()
    busy_from = datetime.combine(day, time(10), BERLIN)
    fake_google.sign_in_as(ACCOUNT, "Alice Example")
    fake_google.add_calendar(owner=ACCOUNT, calendar_id=ACCOUNT, summary="Alice", primary=True)
    fake_google.add_calendar(
        owner=ACCOUNT, calendar_id="family@group.calendar.google.com", summary="Family"
    )
    fake_google.add_calendar(owner=ACCOUNT, calendar_id=BOOKINGS, summary="Kairos bookings")
    fake_google.put_events(
        "family@group.calendar.google.com",
        [
            {
                "id": "dentist01",
                "summary": "Dentist",
                "start": {"dateTime": busy_from.isoformat(), "timeZone": "Europe/Berlin"},
                "end": {"dateTime": (busy_from + timedelta(hours=1)).isoformat()},
            }
        ],
    )
    fake_google.oauth_settings(consent_page=True)  # show the Allow / Deny page
    return day


def test_connect_google_pick_calendars_and_a_booking_lands_there(
    kairos, google_account, fake_google, new_page
):
    app = kairos.app
    user = kairos.hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    kairos.hosts.meeting_type(user, "intro", name="Intro call", location="https://meet.example/a")
    day = google_account

    page = new_page()
    sign_in(page, kairos.url, "alice@example.com")
    page.goto(kairos.at("/settings/connections/"))
    page.get_by_role("button", name="Connect Google Calendar").click()

    # The provider's own page, on its own origin.
    expect(page).to_have_url(re.compile(re.escape(fake_google.url) + r"/o/oauth2/v2/auth\?"))
    expect(page.get_by_role("heading", name="Google test sign-in")).to_be_visible()
    page.get_by_role("button", name="Allow").click()

    # Back on Kairos, connected; the calendars are listed at once.
    expect(page).to_have_url(re.compile(re.escape(kairos.url) + r"/settings/connections/?$"))
    expect(page.get_by_text(f"Connected Google Calendar ({ACCOUNT})")).to_be_visible()
    card = page.locator("section.connection").filter(has_text=ACCOUNT)
    for name in ("Alice", "Family", "Kairos bookings"):
        expect(card.get_by_role("cell", name=f"{name} (Europe/Berlin)")).to_be_visible()

    # The worker reads the busy times; the card stops polling and says so.
    run_worker(app, burst=True)
    expect(card.get_by_text("Up to date")).to_be_visible()

    # Pick calendars: bookings go to "Kairos bookings", which is not a conflict source.
    card.get_by_role("button", name="Use for new bookings (Kairos bookings)").click()
    row = card.get_by_role("row").filter(has_text="Kairos bookings")
    expect(row.get_by_text("Receives new bookings")).to_be_visible()
    # a click, not uncheck(): htmx replaces the list on "change", so the box that was clicked
    # is gone by the time Playwright would look at it again; wait for the saved answer
    with page.expect_response(lambda r: "/calendars/" in r.url and r.request.method == "POST"):
        row.get_by_role("checkbox").click()
    expect(
        card.get_by_role("row").filter(has_text="Kairos bookings").get_by_role("checkbox")
    ).not_to_be_checked()
    with app.app_context(), db.connection_context():
        conn = Connection.get(Connection.user == user.id, Connection.provider == "google")
        chosen = {c.external_id: c for c in Calendar.select().where(Calendar.connection == conn)}
        assert chosen[BOOKINGS].write and not chosen[BOOKINGS].conflict
        assert not chosen[ACCOUNT].write and chosen["family@group.calendar.google.com"].conflict

    # An invitee: the dentist hour is not offered; 11:00 is, and gets booked.
    invitee = new_page()
    invitee.goto(kairos.at(f"/alice/intro?date={day.isoformat()}"))
    times = invitee.locator("#slots a.slot").all_inner_texts()
    assert "09:30" in times and "11:00" in times
    assert "10:00" not in times and "10:30" not in times
    invitee.locator("#slots a.slot", has_text="11:00").click()
    invitee.get_by_label("Your name").fill("Bob Invitee")
    invitee.get_by_label("E-mail").fill("bob@example.com")
    invitee.get_by_role("button", name="Confirm booking").click()
    expect(invitee.get_by_role("heading", name="You are booked with Alice Example")).to_be_visible()

    # The write-back job puts the event into the chosen Google calendar, once.
    run_worker(app, burst=True)
    [event] = fake_google.events(BOOKINGS)
    start = datetime.combine(day, time(11), BERLIN)
    assert event["start"]["dateTime"] == start.astimezone(ZoneInfo("UTC")).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert [a["email"] for a in event["attendees"]] == ["bob@example.com"]
    assert "https://meet.example/a" in event["location"]
    assert fake_google.events(ACCOUNT) == []
    run_worker(app, burst=True)
    assert len(fake_google.events(BOOKINGS)) == 1
