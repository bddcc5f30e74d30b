"""The Content-Security-Policy in Chromium: every main page runs with no violation reported.

The policy allows scripts and styles from the site only, so a forgotten inline script,
style attribute or handler shows up here as a ``securitypolicyviolation`` event (listened
for in every frame before any page script runs) or a console error. Each page is used a
little too — htmx swaps, the hours grid, the embed resizing — because a violation can
come from code that only runs on interaction.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.models import User, db
from tests.browser.conftest import sign_in
from tests.browser.test_embed import as_localhost, embedding_site

BERLIN = ZoneInfo("Europe/Berlin")

LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " @" + e.sourceFile
                    + ":" + e.lineNumber);
});
"""

SETTINGS_PAGES = [
    "/settings/",
    "/settings/appointments",
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
    "/settings/admin/",
    "/settings/admin/organisation",
    "/settings/admin/jobs",
]


class Watch:
    """Violations and console errors of one browser context, from every frame."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.context.add_init_script(LISTEN)
        page.on("console", self._console)

    def _console(self, msg) -> None:
        # Chromium reports what the policy blocked as "Refused to …" console errors too.
        if msg.type == "error" and ("Content Security Policy" in msg.text or "Refused" in msg.text):
            self.console.append(msg.text)

    def violations(self) -> list[str]:
        found = list(self.console)
        for frame in self.page.frames:
            try:
                found += frame.evaluate("window.__csp || []")
            except Exception:  # a frame that navigated away meanwhile has nothing to say
                continue
        return found

    def clean(self, where: str) -> None:
        found = self.violations()
        assert found == [], f"{where}: {found}"


def a_weekday_ahead(days: int = 2) -> date:
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def alice(live_server):
    hosts = live_server.hosts
    user = hosts.create("alice", name="Alice Example", tz="Europe/Berlin", admin=True)
    hosts.meeting_type(user, "intro", name="Intro call")
    return user


def pick_a_time(page_or_frame) -> None:
    """Through the picker's htmx swaps: a day two weekdays ahead, then its first time."""
    day = a_weekday_ahead()
    if page_or_frame.locator(f'a.cal-day[data-date="{day.isoformat()}"]').count() == 0:
        page_or_frame.get_by_role("link", name="Next month").click()
    page_or_frame.locator(f'a.cal-day[data-date="{day.isoformat()}"]').click()
    expect(page_or_frame.locator("#slots .slots-title")).to_contain_text(f"{day:%B %Y}")
    page_or_frame.locator("#slots a.slot").first.click()


def test_invitee_pages_book_and_manage_without_a_violation(live_server, alice, new_page):
    page = new_page(timezone_id="America/New_York")
    watch = Watch(page)
    page.goto(live_server.at("/alice"))
    expect(page.get_by_role("heading", name="Alice Example")).to_be_visible()
    watch.clean("profile")
    page.goto(live_server.at("/alice/intro"))
    # public.js ran: the picker follows the browser's zone (the address named none).
    expect(page).to_have_url(re.compile(r"tz=America(%2F|/)New_York"))
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.locator("style").count() == 0  # htmx injected no <style> of its own
    pick_a_time(page)
    page.get_by_label("Your name").fill("Bob Invitee")
    page.get_by_label("E-mail").fill("bob@example.com")
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name="You are booked with Alice Example")).to_be_visible()
    watch.clean("booking")

    manage = page.url
    assert "/booking/" in manage
    page.goto(manage)
    page.get_by_role("link", name=re.compile("Reschedule")).first.click()
    expect(page.locator("a.cal-day").first).to_be_visible()
    watch.clean("manage page")


def test_the_embedded_page_books_and_resizes_without_a_violation(
    live_server, alice, serve, new_page
):
    site = as_localhost(serve(embedding_site(live_server.url)))
    with live_server.app.app_context(), db.connection_context():
        User.update(embed_origins=site).where(User.slug == "alice").execute()
    page = new_page()
    watch = Watch(page)
    page.goto(site)
    frame_element = page.locator("iframe")
    expect(frame_element).to_be_visible()
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="Pick a day and time")).to_be_visible()
    # public.js inside the frame reports its height; embed.js on the site sizes the iframe.
    page.wait_for_function(
        "() => document.querySelector('iframe').getBoundingClientRect().height > 300"
    )
    pick_a_time(frame)
    expect(frame.get_by_label("Your name")).to_be_visible()
    watch.clean("embed")


def test_settings_pages_and_their_scripts_without_a_violation(live_server, alice, new_page):
    page = new_page()
    watch = Watch(page)
    sign_in(page, live_server.url, "alice@example.com")
    for path in SETTINGS_PAGES:
        answer = page.goto(live_server.at(path))
        assert answer.status == 200, path
        assert page.evaluate("document.documentElement.classList.contains('js')"), path
        watch.clean(path)

    # The hours grid: a click saves through htmx and says so.
    page.goto(live_server.at("/settings/hours"))
    page.locator('td[data-day="5"][data-slot="20"]').click()
    expect(page.locator("#hours-status")).to_contain_text("Saved at")
    watch.clean("hours grid")

    # A boosted navigation swaps the page through htmx and runs settings.js again.
    page.get_by_role("link", name=re.compile("^Booking types|^Meeting types|^Types")).first.click()
    expect(page).to_have_url(re.compile(r"/settings/types"))
    watch.clean("boosted navigation")


def test_the_week_grid_places_its_boxes_without_style_attributes(live_server, alice, new_page):
    """The boxes' positions come from classes now: a booking at 10:00 sits 2 hours down."""
    from portal.booking import service

    day = a_weekday_ahead()
    start = datetime.combine(day, datetime.min.time().replace(hour=10), BERLIN)
    with live_server.app.app_context(), db.connection_context():
        from portal.models import MeetingType

        mt = MeetingType.get(MeetingType.slug == "intro")
        service.book(
            User.get(User.slug == "alice"),
            mt,
            start,
            name="Bob Invitee",
            email="bob@example.com",
            now=datetime.now(BERLIN),
        )
    page = new_page()
    watch = Watch(page)
    sign_in(page, live_server.url, "alice@example.com")
    page.goto(live_server.at(f"/settings/schedule?view=week&date={day.isoformat()}"))
    box = page.locator(".week-item.schedule-booking").first
    expect(box).to_be_visible()
    body = page.locator(f'section[aria-labelledby="wk-{day.isoformat()}"] .week-col-body')
    offset = box.evaluate("b => b.getBoundingClientRect().top") - body.evaluate(
        "b => b.getBoundingClientRect().top"
    )
    rem = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    first_hour = 8  # the default start of the hours shown
    assert abs(offset - (10 - first_hour) * 3 * rem) < 1.5
    assert abs(box.evaluate("b => b.getBoundingClientRect().height") - 1.5 * rem) < 1.5
    watch.clean("week grid")
