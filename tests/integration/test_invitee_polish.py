"""Issue #14's invitee and first-run polish through the test client.

Step titles and accessible names of the booking pages, the zone list's canonical names,
"Add to Google Calendar / Outlook" on the confirmation page and in the e-mail, the
host's "Cancelled" tab without moved bookings, the styled 404 for unknown pages, and
the settings pages that explain what to do (embed sites, Google/Microsoft set-up).
The browser side (focus, keys, axe) is in tests/browser/test_accessibility.py.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.dates import format_date

from portal.booking import links, service
from portal.models import Booking, User, db
from portal.notify import booking_mail
from tests.support.clock import at, day

HX_SLOTS = {"HX-Request": "true", "HX-Target": "slots"}
EN_GB = {"Accept-Language": "en-GB"}
SLOT_AT = at(1, 9, tz="Europe/Berlin")  # Tuesday 09:00 in Berlin: the day's first slot


def spoken(d) -> str:
    """A day as the pages name it in (US) English: "Tuesday, December 1, 2026"."""
    return format_date(d, "full", locale="en")


@pytest.fixture
def site(app, hosts, now, monkeypatch):
    """Alice in Berlin (Mon–Fri 09–17) with a 30-minute type; the app's clock stopped at now."""
    monkeypatch.setattr("portal.clock.now", lambda: now)
    alice = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    mt = hosts.meeting_type(alice, "intro", name="Intro call", location="https://meet.example/a")
    return alice, mt


def booked(app, site, start, now) -> Booking:
    alice, mt = site
    with app.app_context(), db.connection_context():
        return service.book(
            User.get_by_id(alice.id), mt, start, "Bob Invitee", "bob@example.com", now=now
        ).booking


def title(html: str) -> str:
    return re.search(r"<title>([^<]*)</title>", html).group(1)


# ---------------------------------------------------------------- booking page


def test_each_step_has_its_own_title(client, site):
    month = client.get("/alice/intro?tz=Europe/Berlin").text
    assert title(month) == "Pick a day – Intro call with Alice Example"
    chosen = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}").text
    assert title(chosen) == f"Times on {spoken(day(1))} – Intro call with Alice Example"
    # htmx swaps the day's times in: the fragment brings the step's title with it.
    fragment = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}", headers=HX_SLOTS).text
    assert fragment.startswith(f"<title>Times on {spoken(day(1))} – Intro call")
    assert "<html" not in fragment
    start = f"{SLOT_AT:%Y-%m-%dT%H:%MZ}"
    form = client.get(f"/alice/intro?tz=Europe/Berlin&start={start}").text
    assert title(form) == "Your details – Intro call with Alice Example"
    assert re.search(r'<input id="name"[^>]*autofocus', form)


def test_time_buttons_are_named_with_their_date_and_range(client, site):
    page = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}").text
    names = re.findall(r'class="slot" href="[^"]+" aria-label="([^"]+)">([^<]+)<', page)
    d = spoken(day(1))
    assert names[0] == (f"{d}, 9:00\u202fAM – 9:30\u202fAM", "9:00\u202fAM")
    assert names[-1] == (f"{d}, 4:30\u202fPM – 5:00\u202fPM", "4:30\u202fPM")
    # 24-hour times where the reader's English writes them so.
    page = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}", headers=EN_GB).text
    names = re.findall(r'class="slot" href="[^"]+" aria-label="([^"]+)">([^<]+)<', page)
    assert names[0] == (f"{format_date(day(1), 'full', locale='en_GB')}, 09:00 – 09:30", "09:00")


def test_month_is_a_grid_with_named_days(client, site):
    page = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}").text
    assert '<table class="cal"' in page and "cal-keys" in page  # a grid once public.js runs
    assert f'aria-label="{spoken(day(1))}, times available"' in page
    # A weekend day is no link, but still says what it is when the grid focuses it.
    assert f'data-day="{day(5)}"' in page and f"{spoken(day(5))}, no times" in page
    assert 'href="#main"' in page and 'id="main"' in page  # the skip link and its target


def test_zone_aliases_are_shown_under_their_current_name(client, site):
    page = client.get(f"/alice/intro?tz=Asia/Katmandu&date={day(1)}").text
    assert '<option value="Asia/Kathmandu" selected>Kathmandu, Nepal (UTC+05:45, now ' in page
    assert "Asia/Katmandu" not in page and 'value="Asia/Calcutta"' not in page
    assert '<optgroup label="Asia">' in page
    slot = re.search(r'class="slot" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(slot).query)["tz"] == ["Asia/Kathmandu"]


def test_the_zone_form_keeps_the_chosen_day(client, site):
    page = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}").text
    form = re.search(r'<form id="tz-form".*?</form>', page, re.S).group(0)
    assert f'name="date" value="{day(1)}"' in form and "disabled" not in form
    blank = client.get("/alice/intro?tz=Europe/Berlin").text
    form = re.search(r'<form id="tz-form".*?</form>', blank, re.S).group(0)
    assert re.search(r'name="date" value=""\s+disabled', form)  # public.js fills it on a pick


# ---------------------------------------------------------------- confirmation and manage


def test_confirmation_offers_google_outlook_and_a_copy_button(client, app, site, now):
    booking = booked(app, site, SLOT_AT, now)
    with app.app_context():
        manage = links.manage_path(booking)
    page = client.get(manage + "&booked=1").text
    assert title(page) == "Booked: Intro call with Alice Example"
    google = re.search(r'href="(https://calendar\.google\.com/[^"]+)"', page).group(1)
    query = parse_qs(urlsplit(google.replace("&amp;", "&")).query)
    end = SLOT_AT + timedelta(minutes=30)
    assert query["dates"] == [f"{SLOT_AT:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}"]
    assert query["text"] == ["Intro call with Alice Example"]
    assert "Add to Outlook" in page and "https://outlook.live.com/" in page
    assert 'data-copy="#manage-link"' in page
    assert "data-confirm=" in page  # cancelling asks once (static/public.js)


def test_a_cancelled_booking_offers_to_book_again(client, app, site, now):
    booking = booked(app, site, SLOT_AT, now)
    with app.app_context(), db.connection_context():
        service.cancel(Booking.get_by_id(booking.id), now=now)
        manage = links.manage_path(booking)
    page = client.get(manage).text
    assert title(page) == "Cancelled: Intro call with Alice Example"
    assert re.search(r'<a class="button" href="/alice/intro\?tz=[^"]*">Book again</a>', page)


def test_confirmation_mail_has_the_calendar_links(app, site, now):
    booking = booked(app, site, SLOT_AT, now)
    with app.app_context(), db.connection_context():
        b = Booking.get_by_id(booking.id)
        invitee = booking_mail.booking_message(b, "created", "invitee", now)
        host = booking_mail.booking_message(b, "created", "host", now)
        gone = booking_mail.booking_message(b, "cancelled", "invitee", now)

    def bodies(msg):
        return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()

    text, html = bodies(invitee)
    assert "Add to Google Calendar:\nhttps://calendar.google.com/" in text
    assert "Add to Outlook:\nhttps://outlook.live.com/" in text
    assert ">Add to Google Calendar</a>" in html and ">Add to Outlook</a>" in html
    for other in (host, gone):  # the host's calendar has it already; a cancelled one is gone
        assert "calendar.google.com" not in "".join(bodies(other))


# ---------------------------------------------------------------- host pages


def test_the_cancelled_tab_leaves_moved_bookings_out(client, app, site, auth, now):
    moved = booked(app, site, SLOT_AT, now)
    gone = booked(app, site, at(2, 10, tz="Europe/Berlin"), now)
    with app.app_context(), db.connection_context():
        service.reschedule(Booking.get_by_id(moved.id), at(3, 11, tz="Europe/Berlin"), now=now)
        service.cancel(Booking.get_by_id(gone.id), now=now)
    assert auth.login().status_code == 302
    page = client.get("/settings/appointments?tab=cancelled").text
    assert re.search(r'Cancelled <span class="count">1</span>', page)
    assert page.count("Bob Invitee") == 1 and "Moved" not in page
    upcoming = client.get("/settings/appointments").text
    assert re.search(r'Upcoming <span class="count">1</span>', upcoming)


def test_embed_page_warns_until_a_site_is_allowed(client, site, auth):
    assert auth.login().status_code == 302
    page = client.get("/settings/embed").text
    assert "Add your site first." in page and "empty grey box" in page
    token = auth.token("/settings/embed")
    saved = client.post(
        "/settings/embed",
        data={"origins": "https://www.example.com", "csrf_token": token},
        headers={"HX-Request": "true"},
    ).text
    # The answer to the htmx save also clears the warning (out of band).
    assert '<div id="embed-first" hx-swap-oob="true">' in saved
    assert "Add your site first." not in saved
    assert "Add your site first." not in client.get("/settings/embed").text


def test_calendars_page_says_how_to_offer_google_and_microsoft(client, hosts, auth):
    hosts.create("alice", name="Alice", admin=True)
    assert auth.login().status_code == 302
    page = client.get("/settings/connections/").text
    help_box = re.search(r'<div class="setup-help".*?</div>', page, re.S).group(0)
    for name in ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "MS_CLIENT_ID", "MS_CLIENT_SECRET"):
        assert f"<code>{name}</code>" in help_box
    assert "/oauth/google/callback" in help_box and "restart Kairos" in help_box


def test_calendars_page_hides_the_help_once_both_are_configured(app, client, hosts, auth):
    app.config.update(
        GOOGLE_CLIENT_ID="g", GOOGLE_CLIENT_SECRET="s", MS_CLIENT_ID="m", MS_CLIENT_SECRET="s"
    )
    hosts.create("alice", name="Alice")
    assert auth.login().status_code == 302
    assert "setup-help" not in client.get("/settings/connections/").text


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("path", ["/alice/intro/no/such/page", "/settings/nothing-here", "/x/y/z"])
def test_unknown_pages_get_the_styled_404(client, site, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "<title>Page not found</title>" in response.text
    assert 'href="/static/style.css' in response.text and 'id="main"' in response.text


def test_unknown_api_paths_still_answer_json(client, site):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
