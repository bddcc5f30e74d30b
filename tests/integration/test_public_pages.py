"""Invitee pages through the test client: profile, calendar, slots, booking, manage."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_time

from portal.booking import service
from portal.models import Booking, MeetingType, User, db
from tests.support.clock import NOW, at, day, iso_z

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
# Tuesday 09:00 Berlin, the day after the test clock's Monday; the first slot that day.
SLOT_AT = at(1, 9, tz="Europe/Berlin")
SLOT = iso_z(SLOT_AT)


def spoken(d: date) -> str:
    """How the pages name a day (no Accept-Language: US English): 'Tuesday, December 1, 2026'."""
    return format_date(d, "full", locale="en")


def hhmm(instant: datetime, tz: ZoneInfo) -> str:
    """A time as the pages show it in US English: '3:00\u202fAM'."""
    return format_time(instant.astimezone(tz), "short", locale="en")


def clock(hour: int, minute: int = 0) -> str:
    """'9:00\u202fAM', '4:30\u202fPM': a slot's time on a page in (US) English."""
    return hhmm(at(1, hour, minute, tz="Europe/Berlin"), BERLIN)


def slot_span(instant: datetime, tz: ZoneInfo) -> str:
    """'Tuesday, December 1, 2026, 3:00\u202fAM – 3:30\u202fAM' in ``tz``."""
    end = instant + timedelta(minutes=30)
    return f"{spoken(instant.astimezone(tz).date())}, {hhmm(instant, tz)} – {hhmm(end, tz)}"


@pytest.fixture
def site(app, hosts, now, monkeypatch):
    """Alice in Berlin (Mon–Fri 09–17) with a 30-minute type; the clock is ``now``."""
    freeze_clock(monkeypatch, now)
    alice = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    mt = hosts.meeting_type(
        alice, "intro", name="Intro call", location="https://meet.example/a", description="Hi"
    )
    return alice, mt


def freeze_clock(monkeypatch, now) -> None:
    """Stop the app's clock (``portal.clock``, which the pages read) at ``now`` for this test."""
    monkeypatch.setattr("portal.clock.now", lambda: now)


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the first POST form (what a browser would send back)."""
    form = re.search(r'<form method="post".*?</form>', html, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def open_form(client, start=SLOT, tz="Europe/Berlin", prefix=""):
    resp = client.get(f"{prefix}/alice/intro", query_string={"start": start, "tz": tz})
    assert resp.status_code == 200 and 'name="form_token"' in resp.text
    return form_fields(resp.text)


def submit(client, fields, prefix="", **answers):
    data = fields | {"name": "Bob Invitee", "email": "bob@example.com", "notes": ""} | answers
    return client.post(f"{prefix}/alice/intro", data=data)


def count(model) -> int:
    with db.connection_context():
        return model.select().count()


# ---------------------------------------------------------------- profile and calendar


def test_profile_lists_active_types_only(client, site, hosts):
    alice, _ = site
    hosts.meeting_type(alice, "hidden", name="Hidden type", is_active=False)
    resp = client.get("/alice")
    assert resp.status_code == 200
    assert "Alice Example" in resp.text and "Intro call" in resp.text
    assert "Hidden type" not in resp.text
    assert client.get("/alice/hidden").status_code == 404


@pytest.mark.parametrize("change", [{"allow_booking": False}, {"is_active": False}])
def test_host_pages_404_when_booking_is_off(client, site, app, change):
    with app.app_context(), db.connection_context():
        User.update(**change).where(User.slug == "alice").execute()
    for path in ("/alice", "/alice/intro", "/embed/alice/intro"):
        assert client.get(path).status_code == 404, path


def test_unknown_host_and_type_are_404(client, site):
    assert client.get("/nobody").status_code == 404
    assert client.get("/alice/nothing").status_code == 404
    assert "Page not found" in client.get("/nobody").text


def bookable_days(year: int, month: int) -> list[str]:
    """Alice's days with slots in a month: weekdays from the clock's Monday on."""
    _, last = calendar.monthrange(year, month)
    days = (date(year, month, d) for d in range(1, last + 1))
    return [d.isoformat() for d in days if d.weekday() < 5 and d >= NOW.date()]


def test_month_calendar_links_only_days_with_slots(client, site):
    # The month after the clock's: every weekday in it is bookable (60-day window).
    later = (NOW.date().replace(day=1) + timedelta(days=32)).replace(day=1)
    month = f"{later:%Y-%m}"
    resp = client.get("/alice/intro", query_string={"month": month, "tz": "Europe/Berlin"})
    assert resp.status_code == 200
    days = re.findall(r'data-date="([^"]+)"', resp.text)
    # Weekdays only: weekends are not links.
    assert days == bookable_days(later.year, later.month) and len(days) >= 20
    assert f"{later:%B %Y}" in resp.text
    assert 'aria-live="polite"' in resp.text
    assert "Pick a highlighted day" in resp.text


def test_month_day_links_keep_the_page_and_are_escaped(client, site):
    """The grid's links (built in Python, portal.web.picker.month_rows) carry the zone and
    language, escape their ``&``, and mark the chosen day."""
    later = (NOW.date().replace(day=1) + timedelta(days=32)).replace(day=1)
    chosen = bookable_days(later.year, later.month)[2]
    query = {"month": f"{later:%Y-%m}", "tz": "America/New_York", "lang": "de", "date": chosen}
    page = client.get("/alice/intro", query_string=query).text
    links = re.findall(r'<a class="cal-day available" href="([^"]+)" hx-get="([^"]+)"', page)
    assert len(links) == len(bookable_days(later.year, later.month))
    assert all(href == hx for href, hx in links)
    href = links[0][0]
    assert "&amp;" in href and "&" not in href.replace("&amp;", "")
    args = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
    assert args["tz"] == ["America/New_York"] and args["lang"] == ["de"]
    first = bookable_days(later.year, later.month)[0]
    assert args["month"] == [f"{later:%Y-%m}"] and args["date"] == [first]
    current = re.findall(r'data-date="([^"]+)" aria-current="true"', page)
    assert current == [chosen]
    # A day without times is a labelled cell, in the page's language.
    weekend = next(
        date(later.year, later.month, n)
        for n in range(1, 8)
        if date(later.year, later.month, n).weekday() == 5
    )
    spoken = format_date(weekend, "full", locale="de")
    assert f'data-day="{weekend.isoformat()}"' in page and f"{spoken}, keine Zeiten" in page


def test_default_month_is_the_current_one_and_no_past_months(client, site):
    resp = client.get("/alice/intro")
    assert f"{NOW:%B %Y}" in resp.text
    days = re.findall(r'data-date="([^"]+)"', resp.text)
    assert days == bookable_days(NOW.year, NOW.month) and days[0] == NOW.date().isoformat()
    assert 'aria-label="Previous month"' not in resp.text
    assert 'aria-label="Next month"' in resp.text
    # Asking for a past month shows the current one.
    assert f"{NOW:%B %Y}" in client.get("/alice/intro?month=2025-01").text


def test_slots_fragment_for_htmx_is_the_named_block(client, site):
    resp = client.get(
        "/alice/intro",
        query_string={"date": day(1).isoformat(), "tz": "Europe/Berlin"},
        headers={"HX-Request": "true", "HX-Target": "slots"},
    )
    assert resp.status_code == 200
    assert "<html" not in resp.text and "<table" not in resp.text
    times = re.findall(r'class="slot"[^>]*>([^<]+)<', resp.text)
    assert times[0] == clock(9) and times[-1] == clock(16, 30) and len(times) == 16
    assert "HX-Request" in resp.headers.get("Vary", "")


def test_picker_fragment_for_month_navigation(client, site):
    resp = client.get(
        "/alice/intro",
        query_string={"month": f"{day(1):%Y-%m}", "tz": "Europe/Berlin"},
        headers={"HX-Request": "true", "HX-Target": "picker"},
    )
    assert "<html" not in resp.text and f"{day(1):%B %Y}" in resp.text and "<table" in resp.text


def test_times_follow_the_invitee_zone(client, site):
    query = {"date": day(1).isoformat(), "tz": "America/New_York"}
    resp = client.get("/alice/intro", query_string=query)
    times = re.findall(r'class="slot"[^>]*>([^<]+)<', resp.text)
    # Berlin's 09:00–16:30 starts, read in New York (5 or 6 hours behind, by season).
    assert times[0] == hhmm(SLOT_AT, NEW_YORK)
    assert times[-1] == hhmm(at(1, 16, 30, tz="Europe/Berlin"), NEW_YORK)
    assert "Times are in America/New York" in resp.text
    # The zone list names the place, country and offset (portal/timezones.py).
    option = '<option value="America/New_York" selected>New York, United States (UTC\u2212'
    assert option in resp.text


def test_full_page_without_javascript_shows_the_chosen_day(client, site):
    resp = client.get(f"/alice/intro?date={day(1)}&tz=Europe/Berlin")
    assert "<html" in resp.text and spoken(day(1)) in resp.text
    assert 'aria-current="true"' in resp.text
    slot_links = re.findall(r'class="slot" href="([^"]+)"', resp.text)
    query = parse_qs(urlsplit(slot_links[0].replace("&amp;", "&")).query)
    assert query == {"tz": ["Europe/Berlin"], "start": [f"{SLOT_AT:%Y-%m-%dT%H:%MZ}"]}


@pytest.mark.parametrize(
    "query",
    [
        "month=garbage&date=2026-13-45&tz=Nowhere/Land",
        "date=1999-01-01",
        "date=2999-01-01&month=2999-01",
        "start=not-a-time",
        "start=2026-12-01T08:00",
        "tz=" + "x" * 300,
    ],
)
def test_bad_query_parameters_never_fail(client, site, query):
    resp = client.get(f"/alice/intro?{query}")
    assert resp.status_code == 200
    assert "Pick a day and time" in resp.text


# ---------------------------------------------------------------- the booking form


def test_form_for_an_offered_slot(client, site):
    resp = client.get("/alice/intro", query_string={"start": SLOT, "tz": "America/New_York"})
    assert resp.status_code == 200
    assert slot_span(SLOT_AT, NEW_YORK) in resp.text
    for label in ('for="name"', 'for="email"', 'for="notes"'):
        assert label in resp.text
    fields = form_fields(resp.text)
    assert set(fields) == {"form_token", "idempotency_key", "start", "tz"}
    assert fields["tz"] == "America/New_York"


def test_form_for_a_slot_no_longer_offered_shows_that_day(client, site):
    saturday = at(5, 9, tz="Europe/Berlin")
    resp = client.get("/alice/intro", query_string={"start": iso_z(saturday)})
    assert resp.status_code == 200
    assert "no longer available" in resp.text and 'name="form_token"' not in resp.text
    assert spoken(day(5)) in resp.text


def test_book_then_confirmation_and_ics(client, site, app):
    fields = open_form(client, tz="America/New_York")
    resp = submit(client, fields, notes="About the roadmap")
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location.startswith("/booking/") and "booked=1" in location
    with app.app_context(), db.connection_context():
        b = Booking.get()
        assert b.status == "confirmed" and b.invitee_timezone == "America/New_York"
        assert b.start_utc == SLOT_AT
        assert b.notes == "About the roadmap" and b.idempotency_key == fields["idempotency_key"]
    page = client.get(location)
    assert page.status_code == 200
    assert "You are booked with Alice Example" in page.text
    assert slot_span(SLOT_AT, NEW_YORK) in page.text
    assert "https://meet.example/a" in page.text and "Intro call" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    ics_url = re.search(r'href="(/booking/[^"]+/invite\.ics[^"]*)"', page.text).group(1)
    ics = client.get(ics_url.replace("&amp;", "&"))
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert b"BEGIN:VEVENT" in ics.data
    assert f"DTSTART:{SLOT_AT:%Y%m%dT%H%M%SZ}".encode() in ics.data
    assert "attachment" in ics.headers["Content-Disposition"]


def test_double_submit_makes_one_booking(client, site):
    fields = open_form(client)
    first = submit(client, fields)
    second = submit(client, fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count(Booking) == 1


@pytest.mark.parametrize(
    "answers, field, message",
    [
        ({"name": "  "}, "name", "Name is required"),
        ({"email": "not-an-email"}, "email", "Invalid e-mail address"),
        ({"notes": "x" * 5001}, "notes", "Notes are longer"),
    ],
)
def test_bad_input_rerenders_the_form_with_the_message_by_the_field(
    client, site, answers, field, message
):
    fields = open_form(client)
    resp = submit(client, fields, **answers)
    assert resp.status_code == 422
    assert f'id="{field}-error"' in resp.text and message in resp.text
    assert f'aria-describedby="{field}-error"' in resp.text
    assert 'value="bob@example.com"' in resp.text or field == "email"
    # The same idempotency key comes back, so fixing the input still books once.
    assert form_fields(resp.text)["idempotency_key"] == fields["idempotency_key"]
    assert count(Booking) == 0


def test_lost_race_says_just_taken_and_shows_fresh_slots(client, site, app, now):
    alice, mt = site
    fields = open_form(client)
    with app.test_request_context(), db.connection_context():
        service.book(alice, mt, SLOT_AT, "Carol", "c@example.com", now=now)
    resp = submit(client, fields)
    assert resp.status_code == 409
    assert "This time was just taken" in resp.text
    assert spoken(day(1)) in resp.text
    times = re.findall(r'class="slot"[^>]*>([^<]+)<', resp.text)
    assert clock(9) not in times and times[0] == clock(9, 30)
    assert count(Booking) == 1


def test_unreachable_calendar_keeps_the_form_with_a_try_again_message(client, site, app):
    """The live re-check fails and the cache is too old: 503, the answers kept, no booking."""
    from portal.models import Calendar, Connection

    alice, _ = site
    fields = open_form(client)
    with app.app_context(), db.connection_context():
        conn = Connection.create(user=alice, provider="ics", label="feed")
        Calendar.create(connection=conn, external_id="c1", name="Work", last_synced_at=None)
    resp = submit(client, fields, name="Bob Invitee")
    assert resp.status_code == 503
    assert "could not check the host" in resp.text and 'value="Bob Invitee"' in resp.text
    assert form_fields(resp.text)["idempotency_key"] == fields["idempotency_key"]
    assert count(Booking) == 0


def test_missing_start_is_refused_without_booking(client, site):
    fields = open_form(client)
    resp = submit(client, fields | {"start": "yesterday"})
    assert resp.status_code == 422 and "Please pick a time" in resp.text
    assert count(Booking) == 0


def test_embed_flow_stays_in_embed_pages(client, site):
    page = client.get(f"/embed/alice/intro?date={day(1)}&tz=Europe/Berlin")
    assert page.status_code == 200
    assert 'class="public embed"' in page.text and "public-top" not in page.text
    assert "/embed/alice/intro?" in page.text
    fields = open_form(client, prefix="/embed")
    resp = submit(client, fields, prefix="/embed")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/embed/booking/")
    manage = client.get(resp.headers["Location"])
    assert manage.status_code == 200 and 'class="public embed"' in manage.text
    assert "/embed/booking/" in re.search(r'action="([^"]+/cancel)"', manage.text).group(1)


# ---------------------------------------------------------------- manage: cancel, reschedule


@pytest.fixture
def booked(client, site, app):
    """A booking made through the page; returns (manage path, token, booking uid)."""
    resp = submit(client, open_form(client))
    location = resp.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    return location.split("?")[0], query["token"][0], location.split("/")[2].split("?")[0]


def test_manage_page_with_wrong_token_is_404(client, booked):
    path, token, uid = booked
    wrong = token[:-2] + ("aa" if not token.endswith("aa") else "bb")
    for url in (f"{path}?token={wrong}", path, f"{path}/invite.ics?token={wrong}"):
        assert client.get(url).status_code == 404, url
    assert client.get("/booking/nope?token=" + token).status_code == 404
    page = client.get(f"{path}?token={token}")
    fields = form_fields(page.text)
    for action in ("cancel", "reschedule"):
        resp = client.post(f"{path}/{action}", data=fields | {"token": wrong, "start": SLOT})
        assert resp.status_code == 404
    with db.connection_context():
        assert Booking.select().where(Booking.status != "confirmed").count() == 0


def test_cancel_with_reason(client, booked, app):
    path, token, uid = booked
    page = client.get(f"{path}?token={token}")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    fields = form_fields(page.text)
    resp = client.post(f"{path}/cancel", data=fields | {"reason": "Something came up"})
    assert resp.status_code == 303 and resp.headers["Referrer-Policy"] == "no-referrer"
    with app.app_context(), db.connection_context():
        b = Booking.get(Booking.uid == uid)
        assert b.status == "cancelled" and b.cancel_reason == "Something came up"
        assert b.cancelled_by == "invitee"
    after = client.get(resp.headers["Location"])
    assert "This booking was cancelled" in after.text and "Something came up" in after.text
    assert "Cancel booking" not in after.text and "Reschedule" not in after.text
    again = client.post(f"{path}/cancel", data=fields)
    assert again.status_code == 409 and "already cancelled" in again.text


def test_reschedule_to_a_new_slot(client, booked, app):
    path, token, uid = booked
    page = client.get(f"{path}?token={token}&reschedule=1&date={day(1)}&tz=Europe/Berlin")
    assert page.status_code == 200 and "Pick a new time" in page.text
    links = re.findall(r'class="slot" href="([^"]+)"', page.text)
    times = re.findall(r'class="slot"[^>]*>([^<]+)<', page.text)
    # The booking being moved (09:00) does not block its neighbours, and is not offered
    # as its own new time.
    assert times[0] == clock(9, 30) and clock(9) not in times
    confirm = client.get(links[1].replace("&amp;", "&"))
    assert "Move your booking?" in confirm.text and clock(10) in confirm.text
    assert "Cancel this booking" not in confirm.text
    fields = form_fields(confirm.text)
    resp = client.post(f"{path}/reschedule", data=fields)
    assert resp.status_code == 303
    new_location = resp.headers["Location"]
    assert "rescheduled=1" in new_location and uid not in new_location
    with app.app_context(), db.connection_context():
        old = Booking.get(Booking.uid == uid)
        new = Booking.get(Booking.rescheduled_from == old)
        assert old.status == "rescheduled" and new.status == "confirmed"
        assert new.start_utc == at(1, 10, tz="Europe/Berlin")
    assert "Your booking has a new time" in client.get(new_location).text
    old_page = client.get(f"{path}?token={token}")
    assert "This booking was moved to another time" in old_page.text
    successor = re.search(r'href="(/booking/[^"]+)">See the new booking', old_page.text).group(1)
    assert successor.split("?")[0] == new_location.split("?")[0]
    # The old link cannot move it again.
    again = client.post(f"{path}/reschedule", data=fields)
    assert again.status_code == 409


def test_reschedule_fragment_and_lost_race(client, booked, site, app, now):
    path, token, uid = booked
    frag = client.get(
        f"{path}?token={token}&reschedule=1&date={day(2)}&tz=Europe/Berlin",
        headers={"HX-Request": "true", "HX-Target": "slots"},
    )
    assert "<html" not in frag.text and spoken(day(2)) in frag.text
    link = re.findall(r'class="slot" href="([^"]+)"', frag.text)[0].replace("&amp;", "&")
    fields = form_fields(client.get(link).text)
    alice, mt = site
    with app.test_request_context(), db.connection_context():
        service.book(alice, mt, at(2, 9, tz="Europe/Berlin"), "Dan", "d@example.com", now=now)
    resp = client.post(f"{path}/reschedule", data=fields)
    assert resp.status_code == 409 and "This time was just taken" in resp.text
    assert spoken(day(2)) in resp.text
    with app.app_context(), db.connection_context():
        assert Booking.get(Booking.uid == uid).status == "confirmed"


def test_a_started_meeting_can_no_longer_be_changed(client, booked, monkeypatch):
    path, token, uid = booked
    fields = form_fields(client.get(f"{path}?token={token}").text)  # a tab left open
    freeze_clock(monkeypatch, SLOT_AT + timedelta(minutes=10))  # 10 minutes in
    page = client.get(f"{path}?token={token}")
    assert "can no longer be changed" in page.text
    assert "Cancel booking" not in page.text and ">Reschedule<" not in page.text
    resp = client.post(f"{path}/cancel", data=fields)
    assert resp.status_code == 409 and "already started" in resp.text


def test_manage_page_of_a_deleted_type_still_cancels(client, booked, app):
    path, token, uid = booked
    with app.app_context(), db.connection_context():
        MeetingType.delete().execute()
    page = client.get(f"{path}?token={token}")
    assert page.status_code == 200 and "Reschedule" not in page.text
    resp = client.post(f"{path}/cancel", data=form_fields(page.text))
    assert resp.status_code == 303


def test_healthz(client, site):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.text == "ok"
