"""Keyboard only, in Chromium: book within a budget of key presses, focus asserted after each swap.

The month is one Tab stop moved with arrow keys (static/public.js); picking a day puts
focus on its first time, "Next month" keeps it on the month controls, the time-zone
select loads only a choice made, and the settings pages send focus to the new heading
or the first refused field. Typing text is free; every other key press counts.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.models import Booking, db
from tests.browser.conftest import sign_in

BERLIN = ZoneInfo("Europe/Berlin")
BUDGET = 15  # from the meeting type page to the submitted form, typing excluded


@pytest.fixture
def alice(live_server):
    hosts = live_server.hosts
    user = hosts.create("alice", name="Alice Example", tz="Europe/Berlin", admin=True)
    hosts.meeting_type(user, "intro", name="Intro call", location="https://meet.example/alice")
    return user


def a_weekday_ahead(days: int = 2) -> date:
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


class Keys:
    """The keyboard, counting every press (``type`` is free: it is the user's text)."""

    def __init__(self, page):
        self.page = page
        self.presses: list[str] = []

    def press(self, key: str, times: int = 1) -> None:
        for _ in range(times):
            self.page.keyboard.press(key)
            self.presses.append(key)

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)


def focused(page) -> dict:
    """What has focus: tag, id, classes, date, accessible-name hints and text."""
    return page.evaluate(
        """() => {
          const e = document.activeElement;
          return {tag: e.tagName.toLowerCase(), id: e.id, cls: e.className,
                  date: e.dataset.date || e.dataset.day || "",
                  label: e.getAttribute("aria-label") || "",
                  name: e.getAttribute("name") || "", text: e.textContent.trim()};
        }"""
    )


def watch_status(page) -> None:
    """Record every text the picker's status line shows (it is replaced with #picker)."""
    page.evaluate(
        """() => {
          window.__status = [];
          new MutationObserver(() => {
            const s = document.getElementById("slots-status");
            if (s && s.textContent) window.__status.push(s.textContent);
            const slots = document.getElementById("slots");
            if (slots && slots.getAttribute("aria-busy") === "true") window.__status.push("busy");
          }).observe(document.body, {subtree: true, childList: true, characterData: true,
                                     attributes: true, attributeFilter: ["aria-busy"]});
        }"""
    )


def test_book_by_keyboard_within_the_budget(live_server, alice, new_page):
    page = new_page()
    keys = Keys(page)
    page.goto(live_server.at("/alice/intro?tz=Europe/Berlin"))
    expect(page).to_have_title("Pick a day – Intro call with Alice Example")

    # Tab reaches the month in a few stops: skip link, host, month controls, the grid.
    while "cal-day" not in focused(page)["cls"]:
        keys.press("Tab")
        assert len(keys.presses) <= 6, f"the month is not reached by Tab: {focused(page)}"
    tabs = len(keys.presses)
    start = date.fromisoformat(focused(page)["date"])

    # Arrow keys to a weekday two or more days ahead (into the next month if need be).
    target = a_weekday_ahead()
    gap = (target - start).days
    assert gap >= 0
    keys.press("ArrowDown", gap // 7)
    keys.press("ArrowRight", gap % 7)
    expect(page.locator(f'a.cal-day[data-date="{target.isoformat()}"]')).to_be_focused()

    # Enter shows the day's times: "Loading times…" is announced, then focus is on the first.
    watch_status(page)
    keys.press("Enter")
    first = page.locator("#slots a.slot").first
    expect(first).to_be_focused()
    label = first.get_attribute("aria-label")
    # The browser reads British English: "Wednesday, 9 December 2026, 09:00 – 09:30".
    assert label.startswith(f"{target:%A}, {target.day} {target:%B %Y}, ")
    assert re.search(r", \d\d:\d\d – \d\d:\d\d$", label), label
    assert "Loading times…" in page.evaluate("window.__status")
    assert "busy" in page.evaluate("window.__status")
    expect(page.locator("#slots")).not_to_have_attribute("aria-busy", "true")
    expect(page).to_have_title(re.compile(rf"^Times on {target:%A}, {target.day} "))

    # Enter on the time opens the form with focus in the first field.
    chosen = first.inner_text()
    keys.press("Enter")
    expect(page).to_have_title("Your details – Intro call with Alice Example")
    expect(page.get_by_label("Your name")).to_be_focused()
    keys.type("Kim Keyboard")
    keys.press("Tab")
    expect(page.get_by_label("E-mail")).to_be_focused()
    keys.type("kim@example.com")
    keys.press("Enter")
    expect(page.get_by_role("heading", name="You are booked with Alice Example")).to_be_visible()
    expect(page.locator(".details")).to_contain_text(chosen)

    print(
        f"\nkeyboard booking: {len(keys.presses)} key presses ({tabs} Tab to the month): "
        f"{' '.join(keys.presses)}"
    )
    assert len(keys.presses) <= BUDGET, keys.presses
    with live_server.app.app_context(), db.connection_context():
        assert Booking.get().invitee_name == "Kim Keyboard"


def test_month_controls_keep_focus(live_server, alice, new_page):
    page = new_page()
    page.goto(live_server.at("/alice/intro?tz=Europe/Berlin"))
    title = page.locator("#cal-title")
    first_month = title.inner_text()
    next_link = page.locator("#cal-next")
    next_link.focus()
    page.keyboard.press("Enter")
    expect(title).not_to_have_text(first_month)
    # The swap replaced the controls; focus is on the new "Next month" (or, in the last
    # bookable month, on "Previous month") — not back at the top of the page.
    expect(page.locator(":focus")).to_have_attribute("id", re.compile(r"^cal-(next|prev)$"))
    expect(page).to_have_url(re.compile(r"month=\d{4}-\d\d"))

    # In the grid, Page Up returns to the first month with focus on the same day number.
    page.locator(".cal .cal-day").first.focus()
    page.keyboard.press("ArrowRight")
    day_number = int(focused(page)["date"][-2:])
    page.keyboard.press("PageUp")
    expect(title).to_have_text(first_month)
    now = datetime.now(BERLIN).date()
    expect(page.locator(".cal-day:focus")).to_have_count(1)
    landed = date.fromisoformat(focused(page)["date"])
    assert (landed.year, landed.month) == (now.year, now.month)
    assert landed.day == day_number or landed.day < day_number  # a shorter month clamps
    # An ARIA grid: only one day of the month is in the Tab order.
    expect(page.locator(".cal")).to_have_attribute("role", "grid")
    no_times = page.locator(".cal td:has(span.cal-day)").first
    expect(no_times).to_have_attribute("aria-disabled", "true")
    assert page.locator('.cal .cal-day[tabindex="0"]').count() == 1
    assert page.locator('.cal a.cal-day:not([tabindex="-1"])').count() <= 1


def test_zone_changes_on_a_choice_and_keeps_the_day(live_server, alice, new_page):
    page = new_page()
    target = a_weekday_ahead()
    page.goto(live_server.at("/alice/intro?tz=Europe/Berlin"))
    if page.locator(f'a.cal-day[data-date="{target.isoformat()}"]').count() == 0:
        page.locator("#cal-next").click()
    page.locator(f'a.cal-day[data-date="{target.isoformat()}"]').click()
    expect(page.locator("#slots a.slot").first).to_be_focused()
    url = page.url

    # Arrow keys on the select step through zones without loading anything …
    select = page.get_by_label("Time zone", exact=True)
    select.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(400)
    assert page.url == url
    assert select.input_value() != "Europe/Berlin"
    # … Enter loads the chosen zone, keeps the chosen day, and focus stays on the select.
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"tz=(?!Europe%2FBerlin|Europe/Berlin)"))
    expect(page.get_by_label("Time zone", exact=True)).to_be_focused()
    expect(page.locator("#slots .slots-title")).to_contain_text(f"{target.day} {target:%B %Y}")

    # The search box narrows the list; Enter takes the first match.
    search = page.get_by_label("Find a city or country in the list")
    search.fill("japan")
    shown = page.evaluate(
        "[...document.querySelectorAll('#tz option')].filter(o => !o.hidden).map(o => o.value)"
    )
    assert "Asia/Tokyo" in shown and len(shown) <= 2, shown  # and the zone chosen now
    search.press("Enter")
    expect(page.locator("#slots")).to_contain_text("Times are in Asia/Tokyo")
    expect(page.get_by_label("Find a city or country in the list")).to_be_focused()
    # Berlin's working hours fall in Tokyo's evening: the chosen date still lists times.
    expect(page.locator("#slots .slots-title")).to_contain_text(f"{target.day} {target:%B %Y}")
    expect(page.locator("#slots a.slot").first).to_be_visible()


def test_settings_focus_follows_navigation_and_errors(live_server, alice, new_page):
    page = new_page()
    sign_in(page, live_server.url, "alice@example.com")
    page.goto(live_server.at("/settings/appointments"))
    nav = page.locator("nav[aria-label=Settings] a")
    nav.filter(has_text=re.compile("^Meeting types|^Types")).first.click()
    expect(page).to_have_url(re.compile(r"/settings/types"))
    expect(page.locator("main h1")).to_be_focused()

    # A new type's link name follows its name until one is typed.
    page.goto(live_server.at("/settings/types/new"))
    page.get_by_label("Name", exact=True).fill("Intro call")
    expect(page.get_by_label("Link name")).to_have_value("intro-call")
    page.get_by_label("Name", exact=True).fill("Café für Zwei")
    expect(page.get_by_label("Link name")).to_have_value("cafe-fur-zwei")
    # A taken link name comes back as an error, with focus on that field.
    page.get_by_label("Link name").fill("intro")
    page.get_by_role("button", name="Create meeting type").click()
    expect(page.get_by_label("Link name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Link name")).to_be_focused()


def test_hours_grid_cells_fit_a_finger(live_server, alice, new_page):
    for options in ({}, {"width": 375, "height": 740, "has_touch": True, "is_mobile": True}):
        page = new_page(**options)
        sign_in(page, live_server.url, "alice@example.com")
        page.goto(live_server.at("/settings/hours"))
        box = page.locator('.hours-grid td[data-day="2"][data-slot="20"]').bounding_box()
        assert box["width"] >= 24 and box["height"] >= 24, (options, box)
        if page.evaluate("matchMedia('(pointer: coarse)').matches"):
            assert box["height"] >= 32, box


def test_copy_link_and_cancel_once(live_server, alice, new_page):
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    day = a_weekday_ahead()
    page.goto(live_server.at(f"/alice/intro?tz=Europe/Berlin&date={day.isoformat()}"))
    page.locator("#slots a.slot").first.click()
    page.get_by_label("Your name").fill("Bob Invitee")
    page.get_by_label("E-mail").fill("bob@example.com")
    page.get_by_role("button", name="Confirm booking").click()
    expect(page).to_have_title("Booked: Intro call with Alice Example")
    expect(page.get_by_role("link", name="Add to Google Calendar")).to_have_attribute(
        "href", re.compile(r"^https://calendar\.google\.com/calendar/render\?action=TEMPLATE")
    )
    expect(page.get_by_role("link", name="Add to Outlook")).to_be_visible()
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    link = page.get_by_label("Your private link").input_value()
    assert page.evaluate("navigator.clipboard.readText()") == link

    page.goto(link)
    page.get_by_role("button", name="Cancel booking").click()
    question = page.locator("#confirm-question")
    expect(question).to_contain_text("Cancel your Intro call with Alice Example on")
    # "No, keep it" takes it back; nothing was sent.
    page.get_by_role("button", name="No, keep it").click()
    expect(question).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel booking")).to_be_focused()
    with live_server.app.app_context(), db.connection_context():
        assert Booking.get().status == "confirmed"
    page.get_by_role("button", name="Cancel booking").click()
    page.get_by_role("button", name="Yes, cancel booking").click()
    expect(page).to_have_title("Cancelled: Intro call with Alice Example")
    page.get_by_role("link", name="Book again").click()
    expect(page).to_have_title("Pick a day – Intro call with Alice Example")
