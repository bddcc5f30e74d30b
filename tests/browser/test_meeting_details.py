"""An invitee books a meeting type with questions and a Google Meet link, in Chromium.

The host's calendar for new bookings is on the fake Google. The server checks
the answers (a bad phone number comes back next to its question), the
confirmation page shows the answers at once and the Meet link as soon as the
calendar write-back (run as the worker runs it) has made it — the page asks
for it again by itself, no reload.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.booking import questions
from portal.models import Booking, MeetingType, db
from portal.runtime.worker import run_worker
from tests.browser.conftest import LiveServer
from tests.support.app import make_app
from tests.support.oauth import grant

BERLIN = ZoneInfo("Europe/Berlin")
ACCOUNT = "test.user@example.com"


def a_weekday_ahead(days: int = 2):
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def kairos(tmp_path, redis_url, serve, fake_google) -> LiveServer:
    holder: dict[str, object] = {}

    def late_bound(environ, start_response):
        return holder["app"](environ, start_response)

    url = serve(late_bound)
    holder["app"] = make_app(
        tmp_path, redis_url, BASE_URL=url, CLOCK=None, **fake_google.config()
    )  # the browser picks days from the real date
    return LiveServer(app=holder["app"], url=url)


def test_book_with_questions_and_get_a_meet_link(kairos, fake_google, new_page):
    app = kairos.app
    alice = kairos.hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    mt = kairos.hosts.meeting_type(
        alice, "intro", name="Intro call", location_kind="google_meet", duration_minutes=30
    )
    fake_google.add_calendar(calendar_id=ACCOUNT, summary="Work", primary=True)
    with app.app_context(), db.connection_context():
        grant(alice, "google")  # the primary calendar receives new bookings
        specs = questions.clean_specs(
            [
                {"label": "Company", "kind": "short_text", "required": True},
                {"label": "Topic", "kind": "single_choice", "options": ["Sales", "Support"]},
                {"label": "Phone", "kind": "phone"},
            ]
        )
        questions.replace_all(MeetingType.get_by_id(mt.id), specs)
    day = a_weekday_ahead()

    page = new_page()
    page.goto(kairos.at(f"/alice/intro?date={day.isoformat()}"))
    expect(page.locator(".facts li", has_text="Where Google Meet")).to_be_visible()
    page.locator("#slots a.slot", has_text="11:00").click()
    page.get_by_label("Your name").fill("Bob Invitee")
    page.get_by_label("E-mail").fill("bob@example.com")
    page.get_by_label("Company").fill("Acme <GmbH>")
    page.get_by_label("Support").check()
    page.get_by_label("Phone").fill("not a number")
    page.get_by_role("button", name="Confirm booking").click()

    # The server refuses the phone number; the message sits by that question, all else kept.
    error = page.locator("#q-phone-error")
    expect(error).to_have_text(re.compile("Enter a phone number"))
    expect(page.get_by_label("Phone")).to_have_attribute("aria-describedby", "q-phone-error")
    expect(page.get_by_label("Company")).to_have_value("Acme <GmbH>")
    expect(page.get_by_label("Support")).to_be_checked()
    page.get_by_label("Phone").fill("+49 30 1234567")
    page.get_by_role("button", name="Confirm booking").click()

    # The confirmation page: booked, the answers, and the link on its way.
    expect(page.get_by_role("heading", name="You are booked with Alice Example")).to_be_visible()
    details = page.locator("dl.details")
    expect(details.locator("dd", has_text="Acme <GmbH>")).to_be_visible()
    expect(details.locator("dd", has_text="Support")).to_be_visible()
    expect(details.locator("dd", has_text="+49 30 1234567")).to_be_visible()
    expect(page.get_by_text("Your Google Meet link is being created")).to_be_visible()

    # The worker writes the event to Google, which makes the Meet link; the page picks it up.
    run_worker(app, burst=True)
    link = page.locator("a.join-link")
    expect(link).to_have_attribute("href", re.compile(r"^https://meet\.google\.com/[a-z-]+$"))
    with app.app_context(), db.connection_context():
        booking = Booking.get()
        assert booking.join_status == "created"
        expect(link).to_have_text(booking.join_url)
        [event] = fake_google.events(ACCOUNT)
        assert event["hangoutLink"] == booking.join_url
        assert "Company: Acme &lt;GmbH&gt;" in event["description"]  # escaped for Google's HTML
    expect(page.get_by_text("being created")).to_have_count(0)
