"""The booking page inside another site's iframe: it books, resizes, and refuses strangers.

The embedding pages are served from other local origins by tiny WSGI apps. They are
opened as ``http://localhost:<port>`` while Kairos runs on ``http://127.0.0.1:<port>``,
so the iframe is cross-site, as on a real customer site: no session cookie reaches it.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.models import Booking, User, db


def embedding_site(kairos_url: str):
    """A WSGI app whose one page embeds Alice's intro call with the published snippet."""
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Alice's consulting</title></head>
<body style="margin:0;font-family:sans-serif">
  <h1>Book a call with Alice</h1>
  <div id="booking" style="max-width:720px">
    <script src="{kairos_url}/static/embed.js"
            data-kairos="{kairos_url}/embed/alice/intro" async></script>
  </div>
  <p id="after">Below the booking widget.</p>
</body></html>""".encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html]

    return app


def as_localhost(url: str) -> str:
    return url.replace("http://127.0.0.1:", "http://localhost:")


@pytest.fixture
def alice(live_server):
    hosts = live_server.hosts
    user = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    hosts.meeting_type(user, "intro", name="Intro call")
    return user


def allow(live_server, *origins: str) -> None:
    with live_server.app.app_context(), db.connection_context():
        User.update(embed_origins="\n".join(origins)).where(User.slug == "alice").execute()


def test_embedded_booking_in_an_allowed_site(live_server, alice, serve, new_page):
    site = as_localhost(serve(embedding_site(live_server.url)))
    allow(live_server, site)
    page = new_page(width=1000, height=800)
    page.goto(site + "/")
    iframe = page.locator("#booking iframe")
    expect(iframe).to_have_attribute("src", live_server.url + "/embed/alice/intro")
    expect(iframe).to_have_attribute("title", "Book a meeting")
    frame = page.frame_locator("#booking iframe")
    expect(frame.get_by_role("heading", name="Pick a day and time")).to_be_visible()
    # No site chrome inside the frame.
    expect(frame.locator(".public-top")).to_have_count(0)

    # The frame tells the page its height, and embed.js sizes the iframe to fit.
    def iframe_height() -> float:
        return iframe.bounding_box()["height"]

    def content_height() -> float:
        return frame.locator("body").evaluate("b => b.getBoundingClientRect().height")

    deadline = time.monotonic() + 5
    while abs(iframe_height() - content_height()) > 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert abs(iframe_height() - content_height()) <= 2

    # A weekday two days ahead or later, so no time on it passes during the test.
    day = datetime.now(ZoneInfo("Europe/Berlin")).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    if frame.locator(f'a.cal-day[data-date="{day.isoformat()}"]').count() == 0:
        frame.get_by_role("link", name="Next month").click()
    frame.locator(f'a.cal-day[data-date="{day.isoformat()}"]').click()
    expect(frame.locator("#slots a.slot").first).to_be_visible()
    frame.locator("#slots a.slot").first.click()
    frame.get_by_label("Your name").fill("Erin Embed")
    frame.get_by_label("E-mail").fill("erin@example.com")
    frame.get_by_role("button", name="Confirm booking").click()
    expect(frame.get_by_role("heading", name="You are booked with Alice Example")).to_be_visible()
    expect(page.locator("#after")).to_be_visible()  # the host's page is still there around it

    with live_server.app.app_context(), db.connection_context():
        booking = Booking.get()
        assert booking.invitee_name == "Erin Embed" and booking.status == "confirmed"
    # The confirmation stays inside the frame, on the embed variant of the manage page.
    src = frame.locator("body").evaluate("() => location.pathname")
    assert src.startswith("/embed/booking/")

    # Cancelling from inside the frame works too (the form posts without any cookie).
    frame.get_by_role("button", name="Cancel booking").click()
    # It asks once (static/public.js) before anything is sent.
    frame.get_by_role("button", name="Yes, cancel booking").click()
    expect(frame.get_by_role("heading", name="This booking was cancelled")).to_be_visible()
    assert page.context.cookies(live_server.url) == []


def test_a_site_not_on_the_list_cannot_frame_the_page(live_server, alice, serve, new_page):
    allowed = as_localhost(serve(embedding_site(live_server.url)))
    stranger = as_localhost(serve(embedding_site(live_server.url)))
    allow(live_server, allowed)
    page = new_page()
    refusals: list[str] = []
    page.on("console", lambda msg: refusals.append(msg.text))
    page.goto(stranger + "/")
    iframe = page.locator("#booking iframe")
    expect(iframe).to_have_count(1)
    # The browser blocks the document: nothing of the booking page renders in the frame.
    deadline = time.monotonic() + 15
    while not any("frame-ancestors" in t for t in refusals) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert any("frame-ancestors" in text for text in refusals), refusals
    frame = page.frame_locator("#booking iframe")
    expect(frame.get_by_role("heading", name="Pick a day and time")).to_have_count(0)
    child = next(f for f in page.frames if f != page.main_frame)
    assert not re.search(r"/embed/alice/intro$", child.url) or child.url.startswith("chrome-error")

    # The same page opens fine once that site is allowed.
    allow(live_server, allowed, stranger)
    page.reload()
    expect(
        page.frame_locator("#booking iframe").get_by_role("heading", name="Pick a day and time")
    ).to_be_visible()


def test_a_refused_frame_gives_way_to_a_link(live_server, alice, serve, new_page):
    """No grey box for the visitor: a frame that never reports in becomes a plain link."""
    stranger = as_localhost(serve(embedding_site(live_server.url)))
    page = new_page()
    warnings: list[str] = []
    page.on("console", lambda msg: warnings.append(msg.text) if msg.type == "warning" else None)
    page.goto(stranger + "/")
    link = page.get_by_role("link", name="Open the booking page")
    expect(link).to_be_visible(timeout=15_000)
    expect(link).to_have_attribute("href", live_server.url + "/alice/intro")
    expect(page.locator("#booking iframe")).to_be_hidden()
    assert any("Allowed sites" in w and stranger in w for w in warnings), warnings
