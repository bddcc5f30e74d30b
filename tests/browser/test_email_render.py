"""A booking e-mail's HTML part as a mail client shows it: links present, nothing runs.

The message is built by the real composer (``portal.notify.booking_mail.booking_message``)
for a booking whose invitee typed markup and script into their name and
notes; Chromium loads the HTML part with JavaScript on, as the laxest mail
client would.
"""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from zoneinfo import ZoneInfo

import pytest

from portal.booking import links
from portal.booking import service as booking
from portal.models import db
from portal.notify import booking_mail
from portal.runtime.appconfig import external_url
from tests.browser.conftest import ARTIFACTS
from tests.support.app import Hosts, make_app

NAME = 'Eve <img src=x onerror="window.__pwned=1"> "Evil", Inc'
NOTES = (
    "<script>window.__pwned = 2</script>\n"
    '<a href="javascript:window.__pwned=3" id="evil">click me</a>\n'
    "<style>body{display:none}</style>Looking forward to it!"
)


@pytest.fixture
def message(tmp_path, redis_url, now):
    app = make_app(tmp_path, redis_url, BASE_URL="https://book.example.org", SMTP_URL="")
    hosts = Hosts(app)
    host = hosts.create("alice", name="Alice Host", tz="Europe/Berlin")
    mt = hosts.meeting_type(host, "intro", name="Intro call", location="https://meet.example/a")
    start = now + timedelta(days=1, hours=2)  # Tuesday, inside her hours
    with app.test_request_context(), db.connection_context():
        b = booking.book(
            host, mt, start, NAME, "eve@example.com", "America/New_York", NOTES, now=now
        ).booking
    with app.app_context(), db.connection_context():
        msg = booking_mail.booking_message(b, "created", "invitee", now)
        manage = external_url(links.manage_path(b))
    # What the recipient's client receives: the bytes, parsed back.
    received = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    if not db.is_closed():
        db.close()
    return received.get_body(("html",)).get_content(), manage, start


def test_html_part_shows_links_and_runs_nothing(new_page, message):
    html, manage, start = message
    page = new_page(width=800, height=1100)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_content(html, wait_until="load")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("script, img, iframe, #evil").count() == 0
    button = page.get_by_role("link", name="Cancel or reschedule")
    assert button.get_attribute("href") == manage
    assert button.is_visible()
    assert page.locator(f'a[href="{manage}"]').count() == 1
    assert page.get_by_role("link", name="https://meet.example/a").is_visible()
    body = page.inner_text("body")
    assert "<script>window.__pwned = 2</script>" in body  # shown as text, not run
    assert NAME in body
    local = start.astimezone(ZoneInfo("America/New_York"))
    until = local + timedelta(minutes=30)
    # No booking language: English, the en-US way (Babel's 12-hour clock).
    clock = [f"{t.hour % 12 or 12}:{t:%M}\u202f{t:%p}" for t in (local, until)]
    when = f"{local:%A}, {local:%B} {local.day}, {local:%Y}, {clock[0]} \u2013 {clock[1]}"
    assert f"{when} (America/New_York)" in body
    assert requests == [] and errors == []  # no remote content, no script at all

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "email-confirmation.png"), full_page=True)


def test_html_part_fits_a_phone(new_page, message):
    html, _, _ = message
    page = new_page(width=375, height=800)
    page.set_content(html, wait_until="load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "email-confirmation-phone.png"), full_page=True)
