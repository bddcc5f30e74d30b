"""axe-core over every public page state and every settings page: zero violations, any impact.

See ``tests/browser/axe.py`` for the engine (vendored from npm) and the rules that run
(WCAG 2.2 A/AA plus best practice). The public pages are walked the way an invitee walks
them — htmx swaps included, since a swap can break what the full page got right — and
each state is checked once it has settled. All violations of a test are reported
together, with the page state they were found in.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.booking import service
from portal.models import MeetingType, User, db
from tests.browser.axe import Axe
from tests.browser.conftest import sign_in

BERLIN = ZoneInfo("Europe/Berlin")

SETTINGS_PAGES = [
    "/settings/",
    "/settings/appointments",
    "/settings/appointments?tab=past",
    "/settings/appointments?tab=cancelled",
    "/settings/schedule",
    "/settings/schedule?view=week",
    "/settings/types",
    "/settings/types/new",
    "/settings/hours",
    "/settings/overrides",
    "/settings/preview",
    "/settings/profile",
    "/settings/meeting",
    "/settings/connections/",
    "/settings/embed",
    "/settings/feed",
    "/settings/tokens",
    "/settings/webhooks",
    "/settings/find-time/",
    "/settings/exchange",
    "/settings/admin/",
    "/settings/admin/organisation",
    "/settings/admin/exchange",
    "/settings/admin/jobs",
]


def a_weekday_ahead(days: int = 2):
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def axe_page(new_page):
    """``axe_page(**options) -> (page, Axe)``: a tab whose context has axe-core loaded."""

    def open_page(**options):
        page = new_page(**options)
        Axe.install(page.context)
        return page, Axe()

    return open_page


@pytest.fixture
def alice(live_server):
    """An admin host in Berlin with a described meeting type and one booking."""
    hosts = live_server.hosts
    user = hosts.create("alice", name="Alice Example", tz="Europe/Berlin", admin=True)
    hosts.meeting_type(
        user,
        "intro",
        name="Intro call",
        location="https://meet.example/alice",
        description="A first conversation about your project.",
    )
    day = a_weekday_ahead(3)
    with live_server.app.app_context(), db.connection_context():
        mt = MeetingType.get(MeetingType.slug == "intro")
        service.book(
            User.get(User.slug == "alice"),
            mt,
            datetime.combine(day, datetime.min.time().replace(hour=11), BERLIN),
            name="Carol Booked",
            email="carol@example.com",
            now=datetime.now(BERLIN),
        )
    return user


def test_first_run_and_sign_in_pages(live_server, axe_page):
    page, axe = axe_page()
    page.goto(live_server.at("/setup"))
    axe.check(page, "setup (first run)")
    page.get_by_role("button", name="Create account").click()
    axe.check(page, "setup with errors")
    live_server.hosts.create("alice", name="Alice Example")
    page.goto(live_server.at("/login"))
    axe.check(page, "sign in")
    page.get_by_label("E-mail").fill("alice@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.locator("form button[type=submit]").click()
    axe.check(page, "sign in refused")
    page.goto(live_server.at("/password/forgot"))
    axe.check(page, "forgotten password")
    page.goto(live_server.at("/"))
    axe.check(page, "front door")
    axe.assert_clean()


def test_public_pages(live_server, alice, axe_page):
    page, axe = axe_page()
    page.goto(live_server.at("/alice"))
    axe.check(page, "profile")
    page.get_by_role("link", name=re.compile("Intro call")).click()
    expect(page.get_by_role("heading", name="Pick a day and time")).to_be_visible()
    axe.check(page, "booking page: month")

    day = a_weekday_ahead()
    if page.locator(f'a.cal-day[data-date="{day.isoformat()}"]').count() == 0:
        page.get_by_role("link", name="Next month").click()
    page.locator(f'a.cal-day[data-date="{day.isoformat()}"]').click()
    expect(page.locator("#slots .slots-title")).to_contain_text(f"{day:%B %Y}")
    axe.check(page, "booking page: a day's times")

    page.get_by_role("link", name="Next month").click()
    expect(page.get_by_role("link", name="Previous month")).to_be_visible()
    axe.check(page, "booking page: next month")

    page.goto(live_server.at(f"/alice/intro?date={day.isoformat()}&tz=Europe/Berlin"))
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    expect(page).to_have_url(re.compile(r"tz=Asia"))
    axe.check(page, "booking page: another time zone")

    page.goto(live_server.at(f"/alice/intro?date={day.isoformat()}&tz=Europe/Berlin"))
    page.locator("#slots a.slot").first.click()
    expect(page.get_by_label("Your name")).to_be_visible()
    axe.check(page, "booking form")
    page.get_by_label("Your name").fill("Bob Invitee")
    page.get_by_label("E-mail").fill("bob@example")
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.locator(".field-error")).to_be_visible()
    axe.check(page, "booking form with an error")
    page.get_by_label("E-mail").fill("bob@example.com")
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name=re.compile("You are booked"))).to_be_visible()
    axe.check(page, "confirmation")

    manage = re.sub(r"[&?]booked=1", "", page.url)
    page.goto(manage)
    axe.check(page, "manage page")
    page.get_by_role("link", name="Reschedule").click()
    expect(page.get_by_role("heading", name="Pick a new time")).to_be_visible()
    axe.check(page, "reschedule: pick a time")
    later = a_weekday_ahead(4)
    if page.locator(f'a.cal-day[data-date="{later.isoformat()}"]').count() == 0:
        page.get_by_role("link", name="Next month").click()
    page.locator(f'a.cal-day[data-date="{later.isoformat()}"]').click()
    expect(page.locator("#slots .slots-title")).to_contain_text(f"{later:%B %Y}")
    page.locator("#slots a.slot").first.click()
    expect(page.get_by_role("heading", name="Move your booking?")).to_be_visible()
    axe.check(page, "reschedule: confirm")
    page.get_by_role("button", name="Confirm new time").click()
    expect(page.get_by_role("heading", name="Your booking has a new time")).to_be_visible()
    axe.check(page, "rescheduled")
    page.goto(manage)
    axe.check(page, "the old booking, moved")

    page.goto(page.url)
    page.get_by_role("link", name="See the new booking").click()
    page.get_by_role("button", name="Cancel booking").click()
    expect(page.get_by_role("button", name="Yes, cancel booking")).to_be_focused()
    axe.check(page, "cancel: are you sure?")
    page.get_by_role("button", name="Yes, cancel booking").click()
    expect(page.get_by_role("heading", name="This booking was cancelled")).to_be_visible()
    axe.check(page, "cancelled")

    page.goto(live_server.at(f"/embed/alice/intro?date={day.isoformat()}"))
    axe.check(page, "embed page")
    page.goto(live_server.at("/nobody"))
    axe.check(page, "no such host")
    page.goto(live_server.at("/alice/intro/no/such/page"))
    axe.check(page, "no such page")
    axe.assert_clean()


def test_public_pages_on_a_phone(live_server, alice, axe_page):
    page, axe = axe_page(width=375, height=740)
    day = a_weekday_ahead()
    page.goto(live_server.at(f"/alice/intro?date={day.isoformat()}"))
    expect(page.locator("#slots a.slot").first).to_be_visible()
    axe.check(page, "phone: booking page")
    axe.assert_clean()


def test_settings_pages(live_server, alice, axe_page):
    page, axe = axe_page()
    sign_in(page, live_server.url, "alice@example.com")
    for path in SETTINGS_PAGES:
        answer = page.goto(live_server.at(path))
        assert answer.status == 200, path
        axe.check(page, path)

    with live_server.app.app_context(), db.connection_context():
        type_id = MeetingType.get(MeetingType.slug == "intro").id
    for path in (f"/settings/types/{type_id}", f"/settings/types/{type_id}/questions"):
        page.goto(live_server.at(path))
        axe.check(page, path)
    page.goto(live_server.at("/settings/appointments"))
    page.locator("table.appointments tbody a").first.click()
    expect(page).to_have_url(re.compile(r"/settings/appointments/\w+"))
    axe.check(page, "an appointment")

    # A form with errors, reached through the boosted navigation.
    page.goto(live_server.at("/settings/types/new"))
    page.get_by_label("Name", exact=True).fill("Intro call again")
    page.get_by_label("Link name").fill("intro")
    page.get_by_role("button", name="Create meeting type").click()
    expect(page.locator(".field-error").first).to_be_visible()
    axe.check(page, "meeting type form with an error")
    axe.assert_clean()
