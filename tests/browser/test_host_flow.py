"""The host's first run in a real browser: create the admin, paint hours, add a meeting type.

The invitee side continues from here (see the public pages' browser tests).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from playwright.sync_api import expect

from portal.models import MeetingType, User, WeeklyHours, db
from tests.browser.conftest import no_horizontal_overflow, sign_in

SETTINGS_PAGES = [
    "/settings/",
    "/settings/appointments",
    "/settings/types",
    "/settings/types/new",
    "/settings/hours",
    "/settings/overrides",
    "/settings/preview",
    "/settings/profile",
    "/settings/embed",
    "/settings/tokens",
]


def weekly(app, slug: str) -> dict[int, list[tuple[str, str]]]:
    with app.app_context(), db.connection_context():
        user = User.get(User.slug == slug)
        rows = WeeklyHours.select().where(WeeklyHours.user == user).order_by(WeeklyHours.start)
        out: dict[int, list[tuple[str, str]]] = {}
        for row in rows:
            out.setdefault(row.weekday, []).append((row.start, row.end))
        return out


def saved(page) -> None:
    """Wait until the page says the latest change is saved (it says so only then)."""
    expect(page.locator("#hours-status")).to_have_text(re.compile(r"^Saved at \d\d:\d\d$"))


def cell(page, day: int, slot: int):
    return page.locator(f'.hours-grid [data-day="{day}"][data-slot="{slot}"]')


def drag(page, start, end) -> None:
    """Press on one cell, move through the grid in small steps, release on another."""
    end.scroll_into_view_if_needed()
    start.scroll_into_view_if_needed()
    a, b = start.bounding_box(), end.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    page.mouse.up()


def test_first_run_hours_and_meeting_type(live_server, page):
    # First run: any host page leads to /setup, and the browser's zone is filled in.
    page.goto(live_server.at("/login"))
    expect(page).to_have_url(re.compile(r"/setup$"))
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    page.get_by_label("Your name").fill("Alice Example")
    page.get_by_label("E-mail").fill("alice@example.com")
    page.get_by_label("Link name").fill("alice")
    page.get_by_label("Password", exact=True).fill("a long password")
    page.get_by_label("Repeat the password").fill("a long password")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/settings/hours$"))
    assert weekly(live_server.app, "alice") == {d: [("09:00", "17:00")] for d in range(5)}

    # The default week is painted; drag Saturday 10:00 → 11:30 on.
    grid = page.get_by_role("grid")
    expect(grid).to_be_visible()
    expect(cell(page, 0, 18)).to_have_attribute("aria-selected", "true")
    expect(cell(page, 5, 20)).to_have_attribute("aria-selected", "false")
    drag(page, cell(page, 5, 20), cell(page, 5, 23))
    saved(page)
    for slot in range(20, 24):
        expect(cell(page, 5, slot)).to_have_attribute("aria-selected", "true")
    assert weekly(live_server.app, "alice")[5] == [("10:00", "12:00")]

    # A rectangle: dragging from Mon 17:00 to Tue 17:30 extends both days by an hour.
    drag(page, cell(page, 0, 34), cell(page, 1, 35))
    saved(page)
    hours = weekly(live_server.app, "alice")
    assert hours[0] == [("09:00", "18:00")] and hours[1] == [("09:00", "18:00")]

    # Dragging from a painted cell erases: Wednesday 09:00–10:00 off.
    drag(page, cell(page, 2, 18), cell(page, 2, 19))
    expect(cell(page, 2, 19)).to_have_attribute("aria-selected", "false")
    saved(page)
    assert weekly(live_server.app, "alice")[2] == [("10:00", "17:00")]

    # Keyboard: focus Sunday 10:00, Space paints it, Shift+ArrowDown carries it along.
    cell(page, 6, 20).focus()
    page.keyboard.press("Space")
    page.keyboard.press("Shift+ArrowDown")
    expect(cell(page, 6, 21)).to_be_focused()
    expect(cell(page, 6, 21)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")  # already at the last day: stays
    expect(cell(page, 6, 21)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")  # Sunday 09:30 on too
    saved(page)
    assert weekly(live_server.app, "alice")[6] == [("09:30", "11:00")]

    # The page was never reloaded, and a reload shows what was saved.
    page.reload()
    expect(cell(page, 5, 20)).to_have_attribute("aria-selected", "true")
    expect(cell(page, 6, 19)).to_have_attribute("aria-selected", "true")

    # A meeting type: a bad duration comes back next to its field, then it is created.
    nav = page.get_by_role("navigation", name="Settings")
    nav.get_by_role("link", name="Meeting types").click()
    expect(page).to_have_url(re.compile(r"/settings/types$"))
    page.get_by_role("link", name="Create your first meeting type").click()
    page.get_by_label("Name", exact=True).fill("Intro call")
    page.get_by_label("Link name").fill("intro")
    page.get_by_label("Duration (minutes)").fill("3")
    page.get_by_label("Buffer after (minutes)").fill("10")
    page.get_by_role("button", name="Create meeting type").click()
    error = page.locator("#duration_minutes-error")
    expect(error).to_contain_text("between 5 and 720")
    expect(page.get_by_label("Duration (minutes)")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Buffer after (minutes)")).to_have_value("10")
    page.get_by_label("Duration (minutes)").fill("45")
    page.get_by_role("button", name="Create meeting type").click()
    expect(page).to_have_url(re.compile(r"/settings/types$"))
    expect(page.get_by_role("heading", name="Intro call")).to_be_visible()
    expect(page.get_by_role("link", name="/alice/intro")).to_be_visible()
    with live_server.app.app_context(), db.connection_context():
        mt = MeetingType.get(MeetingType.slug == "intro")
        assert (mt.duration_minutes, mt.buffer_after_minutes, mt.name) == (45, 10, "Intro call")

    # The preview shows the new type with bookable and explained cells.
    page.get_by_role("link", name="Preview Intro call").click()
    expect(page.locator(".preview-grid")).to_be_visible()
    expect(page.locator(".pv-open").first).to_be_visible()

    # After an htmx-boosted page change the grid still paints and saves.
    page.get_by_role("navigation", name="Availability").get_by_role(
        "link", name="Weekly hours"
    ).click()
    expect(page).to_have_url(re.compile(r"/settings/hours$"))
    drag(page, cell(page, 3, 36), cell(page, 3, 37))
    saved(page)
    assert weekly(live_server.app, "alice")[3] == [("09:00", "17:00"), ("18:00", "19:00")]

    # On a 375-px phone every settings page fits the width.
    page.set_viewport_size({"width": 375, "height": 800})
    for path in SETTINGS_PAGES:
        page.goto(live_server.at(path))
        expect(page.locator("h1")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width}px wide at a 375-px viewport"
        assert no_horizontal_overflow(page), path


def test_settings_work_without_javascript(live_server, new_page):
    live_server.hosts.create("alice")
    page = new_page(java_script_enabled=False)
    sign_in(page, live_server.url, "alice@example.com")
    page.goto(live_server.at("/settings/hours"))
    # Without the script the grid is a form of checkboxes with a save button.
    page.get_by_label("Saturday 10:00–10:30").check()
    page.get_by_label("Monday 09:00–09:30").uncheck()
    page.get_by_role("button", name="Save weekly hours").click()
    expect(page.get_by_text("Weekly hours saved.")).to_be_visible()
    hours = weekly(live_server.app, "alice")
    assert hours[5] == [("10:00", "10:30")] and hours[0] == [("09:30", "17:00")]

    page.goto(live_server.at("/settings/overrides"))
    page.get_by_label("Date").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_label("Special hours").check()
    page.get_by_label("Hours", exact=True).fill("10:00-12:00, 14:00 – 15:30")
    page.get_by_role("button", name="Save date").click()
    expect(page.get_by_text("10:00–12:00, 14:00–15:30")).to_be_visible()

    page.goto(live_server.at("/settings/types/new"))
    page.get_by_label("Name", exact=True).fill("Chat")
    page.get_by_label("Link name").fill("chat")
    page.get_by_role("button", name="Create meeting type").click()
    expect(page.get_by_role("heading", name="Chat")).to_be_visible()
