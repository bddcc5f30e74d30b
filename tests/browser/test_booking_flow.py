"""The invitee's side in a real browser: book, see it in the host's list, other zones, phones."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.models import Booking, db
from tests.browser.conftest import no_horizontal_overflow, sign_in

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def alice(live_server):
    """Alice in Berlin (default hours Mon–Fri 09–17) with a 30-minute intro call."""
    hosts = live_server.hosts
    user = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    hosts.meeting_type(
        user,
        "intro",
        name="Intro call",
        location="https://meet.example/alice",
        description="A first conversation about your project.",
    )
    return user


def a_weekday_ahead(days: int = 2) -> date:
    """A Monday–Friday date at least ``days`` ahead in Berlin (clear of today's lead time)."""
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def slot_times(page_or_frame) -> list[str]:
    return page_or_frame.locator("#slots a.slot").all_inner_texts()


def test_invitee_books_and_the_host_sees_it(live_server, alice, new_page):
    page = new_page()
    page.goto(live_server.at("/alice"))
    expect(page.get_by_role("heading", name="Alice Example")).to_be_visible()
    page.get_by_role("link", name=re.compile("Intro call")).click()
    expect(page).to_have_url(re.compile(r"/alice/intro"))
    expect(page.get_by_role("heading", name="Pick a day and time")).to_be_visible()

    # Pick a day (two weekdays ahead, so no time on it can pass during the test); htmx
    # swaps in the next month or the day's times without a page load.
    day = a_weekday_ahead()
    if page.locator(f'a.cal-day[data-date="{day.isoformat()}"]').count() == 0:
        page.get_by_role("link", name="Next month").click()
    chosen_day = page.locator(f'a.cal-day[data-date="{day.isoformat()}"]')
    chosen_day.click()
    expect(page.locator("#slots .slots-title")).to_contain_text(f"{day.day} {day:%B %Y}")
    expect(chosen_day).to_have_attribute("aria-current", "true")
    expect(page).to_have_url(re.compile(r"date=\d{4}-\d{2}-\d{2}"))
    chosen = page.locator("#slots a.slot").first
    chosen_time = chosen.inner_text()
    chosen.click()

    # The form: labelled inputs; the browser's own validation holds an empty submit.
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    expect(page.locator(".chosen")).to_contain_text(chosen_time)
    page.get_by_label("Your name").fill("Bob Invitee")
    page.get_by_label("E-mail").fill("bob@example.com")
    page.get_by_label("Anything to share").fill("Looking forward to it.")
    page.get_by_role("button", name="Confirm booking").click()

    expect(page.get_by_role("heading", name="You are booked with Alice Example")).to_be_visible()
    expect(page.locator(".details")).to_contain_text(chosen_time)
    expect(page.locator(".details")).to_contain_text("https://meet.example/alice")
    with page.expect_download() as download:
        page.get_by_role("link", name="Add to calendar (.ics)").click()
    assert download.value.suggested_filename == "invite.ics"
    manage_link = page.get_by_label("Your private link").input_value()
    assert manage_link.startswith(live_server.url + "/booking/") and "token=" in manage_link

    with live_server.app.app_context(), db.connection_context():
        booked = Booking.get()
        assert booked.invitee_name == "Bob Invitee" and booked.status == "confirmed"
        assert booked.invitee_timezone == "Europe/Berlin"

    # The host signs in and finds it among the upcoming appointments.
    host = new_page()
    sign_in(host, live_server.url, "alice@example.com")
    host.goto(live_server.at("/settings/appointments"))
    row = host.locator("table.appointments tbody tr").filter(has_text="Bob Invitee")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("bob@example.com")
    expect(row).to_contain_text("Intro call")
    expect(row).to_contain_text(chosen_time)

    # Back on the manage page the invitee can cancel; the host's list follows.
    page.goto(manage_link)
    page.get_by_label("Reason").fill("Something came up")
    page.get_by_role("button", name="Cancel booking").click()
    # It asks once (static/public.js) before anything is sent.
    page.get_by_role("button", name="Yes, cancel booking").click()
    expect(page.get_by_role("heading", name="This booking was cancelled")).to_be_visible()
    host.goto(live_server.at("/settings/appointments?tab=cancelled"))
    expect(host.locator("table.appointments")).to_contain_text("Bob Invitee")


def test_invitee_in_new_york_sees_shifted_times(live_server, alice, new_page):
    day = a_weekday_ahead()
    berlin_page = new_page(timezone_id="Europe/Berlin")
    berlin_page.goto(live_server.at(f"/alice/intro?date={day.isoformat()}"))
    expect(berlin_page.locator("#slots")).to_contain_text("Times are in Europe/Berlin")
    berlin = slot_times(berlin_page)
    assert berlin[0] == "09:00" and berlin[-1] == "16:30"

    # No tz in the address: the page switches to the browser's zone by itself.
    page = new_page(timezone_id="America/New_York")
    page.goto(live_server.at(f"/alice/intro?date={day.isoformat()}"))
    expect(page.locator("#slots")).to_contain_text("Times are in America/New York")
    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")
    expect(page).to_have_url(re.compile(r"tz=America%2FNew_York|tz=America/New_York"))
    first = datetime.combine(day, time(9), BERLIN).astimezone(NEW_YORK)
    last = datetime.combine(day, time(16, 30), BERLIN).astimezone(NEW_YORK)
    expect(page.locator("#slots a.slot").first).to_have_text(f"{first:%H:%M}")
    times = slot_times(page)
    assert times[-1] == f"{last:%H:%M}" and len(times) == len(berlin) == 16

    # Switching the zone by hand re-renders the calendar and times in that zone.
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    expect(page.locator("#slots")).to_contain_text("Times are in Asia/Tokyo")
    tokyo = datetime.combine(day, time(9), BERLIN).astimezone(ZoneInfo("Asia/Tokyo"))
    expect(page).to_have_url(re.compile(r"tz=Asia"))
    # Berlin's 09:00 is evening in Tokyo, so it now lists under the same or next date.
    page.goto(live_server.at(f"/alice/intro?date={tokyo.date().isoformat()}&tz=Asia/Tokyo"))
    assert f"{tokyo:%H:%M}" in slot_times(page)

    # The booking form and the confirmation keep the invitee's zone.
    page.goto(live_server.at(f"/alice/intro?date={day.isoformat()}&tz=America/New_York"))
    page.locator("#slots a.slot").first.click()
    expect(page.locator(".chosen")).to_contain_text(f"{first:%H:%M}")
    expect(page.locator(".chosen")).to_contain_text("America/New York")
    page.get_by_label("Your name").fill("Nora York")
    page.get_by_label("E-mail").fill("nora@example.com")
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.locator(".details")).to_contain_text(f"{first:%H:%M}")
    with live_server.app.app_context(), db.connection_context():
        assert Booking.get().invitee_timezone == "America/New_York"


def test_public_pages_fit_a_phone(live_server, alice, new_page):
    page = new_page(width=375, height=740)
    day = a_weekday_ahead()
    checks = []

    page.goto(live_server.at("/alice"))
    checks.append(("profile", no_horizontal_overflow(page)))
    page.goto(live_server.at("/alice/intro"))
    checks.append(("calendar", no_horizontal_overflow(page)))
    page.goto(live_server.at(f"/alice/intro?date={day.isoformat()}"))
    expect(page.locator("#slots a.slot").first).to_be_visible()
    checks.append(("slots", no_horizontal_overflow(page)))
    page.locator("#slots a.slot").first.click()
    expect(page.get_by_label("Your name")).to_be_visible()
    checks.append(("form", no_horizontal_overflow(page)))
    page.get_by_label("Your name").fill("Bob Invitee With A Rather Long Name")
    page.get_by_label("E-mail").fill("bob.with.a.long.address@subdomain.example.com")
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name=re.compile("You are booked"))).to_be_visible()
    checks.append(("confirmation", no_horizontal_overflow(page)))
    page.get_by_role("link", name="Reschedule").click()
    expect(page.get_by_role("heading", name="Pick a new time")).to_be_visible()
    checks.append(("reschedule", no_horizontal_overflow(page)))
    page.goto(live_server.at(f"/embed/alice/intro?date={day.isoformat()}"))
    checks.append(("embed", no_horizontal_overflow(page)))
    page.goto(live_server.at("/nobody"))
    checks.append(("not found", no_horizontal_overflow(page)))
    assert [name for name, ok in checks if not ok] == []


def test_invitee_switches_to_german_and_books(live_server, alice, new_page):
    """The language switcher, then day, time and booking: all of it in German, kept in the
    booking (issue #14)."""
    from babel.dates import format_date

    page = new_page()  # an English (en-GB) browser
    page.goto(live_server.at("/alice/intro"))
    switcher = page.get_by_role("navigation", name="Language")
    switcher.get_by_role("link", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", name="Tag und Uhrzeit wählen")).to_be_visible()
    expect(page.get_by_role("navigation", name="Sprache").get_by_role("link", name="Deutsch"))
    expect(page.locator("table.cal thead th").first).to_contain_text("Mo.")

    day = a_weekday_ahead()
    if page.locator(f'a.cal-day[data-date="{day.isoformat()}"]').count() == 0:
        page.get_by_role("link", name="Nächster Monat").click()
    page.locator(f'a.cal-day[data-date="{day.isoformat()}"]').click()
    heading = format_date(day, "full", locale="de")  # "Dienstag, 1. Dezember 2026"
    expect(page.locator("#slots .slots-title")).to_have_text(heading)
    expect(page).to_have_url(re.compile(r"lang=de"))
    # The switcher follows the page htmx moved to: English opens the same day.
    english = page.get_by_role("navigation", name="Sprache").get_by_role("link", name="English")
    expect(english).to_have_attribute("href", re.compile(rf"date={day.isoformat()}"))
    expect(english).to_have_attribute("href", re.compile(r"lang=en"))
    first = page.locator("#slots a.slot").first
    expect(first).to_have_text("09:00")
    expect(first).to_have_attribute("aria-label", f"{heading}, 09:00 – 09:30")
    first.click()

    expect(page.get_by_role("heading", name="Ihre Angaben")).to_be_visible()
    page.get_by_label("Ihr Name").fill("Bruno Gast")
    page.get_by_label("E-Mail").fill("bruno@example.com")
    page.get_by_role("button", name="Buchung bestätigen").click()

    expect(page.locator(".status")).to_have_text("Bestätigt")
    expect(
        page.get_by_role("heading", name="Ihr Termin mit Alice Example ist gebucht")
    ).to_be_visible()
    expect(page.locator(".details")).to_contain_text(f"{heading}, 09:00 – 09:30")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    with live_server.app.app_context(), db.connection_context():
        assert Booking.get(Booking.invitee_email == "bruno@example.com").locale == "de"
