"""The host's settings pages through the test client: what each form saves and refuses."""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_skeleton, format_time, get_day_names

from portal import clock
from portal.booking import service
from portal.models import (
    ApiToken,
    Booking,
    BusyBlock,
    Calendar,
    Connection,
    DateOverride,
    MeetingType,
    User,
    WeeklyHours,
    db,
    to_db,
)
from tests.support.clock import at, day
from tests.support.clock import day as clock_day

HX = {"HX-Request": "true"}
BERLIN = ZoneInfo("Europe/Berlin")
GB = {"Accept-Language": "en-GB"}


@pytest.fixture
def alice(hosts, auth):
    user = hosts.create("alice", name="Alice")
    assert auth.login().status_code == 302
    return user


@pytest.fixture
def q(app):
    """Run a query function inside an app context with a connection."""

    def run(fn):
        with app.app_context(), db.connection_context():
            return fn()

    return run


def html(response) -> str:
    return response.get_data(as_text=True)


def medium(value) -> str:
    """A date as the pages write it in (US) English: "Dec 14, 2026"."""
    return format_date(value, "medium", locale="en_US")


def error_for(page: str, field: str) -> str:
    match = re.search(rf'id="{field}-error">([^<]*)<', page)
    return match.group(1) if match else ""


# ---------------------------------------------------------------- pages and navigation


def test_every_page_renders_with_navigation(client, alice):
    for path in (
        "/settings/",
        "/settings/profile",
        "/settings/hours",
        "/settings/overrides",
        "/settings/types",
        "/settings/types/new",
        "/settings/preview",
        "/settings/appointments",
        "/settings/tokens",
        "/settings/embed",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        page = html(response)
        assert 'aria-label="Settings"' in page and 'aria-current="page"' in page, path
        assert response.headers["Cache-Control"] == "no-store"
        # Every input has a label (hidden inputs and the grid's checkboxes excepted).
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", page):
            if 'type="hidden"' in tag or 'name="cell"' in tag:
                continue
            ident = re.search(r'id="([^"]+)"', tag)
            assert ident and f'for="{ident.group(1)}"' in page, (path, tag)


def test_htmx_gets_the_named_block_only(client, alice):
    full = html(client.get("/settings/appointments"))
    part = html(client.get("/settings/appointments", headers=HX))
    assert "<html" in full and "<html" not in part
    assert part.lstrip().startswith('<div id="appointments">')
    assert "HX-Request" in client.get("/settings/appointments", headers=HX).headers["Vary"]


# ---------------------------------------------------------------- profile


def test_profile_saves_and_validates(client, auth, alice, q, hosts):
    hosts.create("bob")
    ok = auth.post(
        "/settings/profile",
        {
            "name": "Alice A.",
            "slug": "alice-a",
            "timezone": "America/New_York",
            "lead_time_minutes": "90",
        },
    )
    assert ok.status_code == 302
    user = q(lambda: User.get_by_id(alice.id))
    assert (user.name, user.slug, user.timezone, user.lead_time_minutes) == (
        "Alice A.",
        "alice-a",
        "America/New_York",
        90,
    )
    assert user.allow_booking is False  # an unticked checkbox is "off"

    bad = auth.post(
        "/settings/profile",
        {"name": "", "slug": "bob", "timezone": "Nowhere/City", "lead_time_minutes": "-5"},
        headers=HX,
    )
    page = html(bad)
    assert bad.status_code == 200 and "<html" not in page
    assert error_for(page, "name")
    assert error_for(page, "slug") == "another host has this link name"
    assert "time zone" in error_for(page, "timezone")
    assert error_for(page, "lead_time_minutes")
    assert q(lambda: User.get_by_id(alice.id).slug) == "alice-a"

    saved = auth.post(
        "/settings/profile",
        {
            "name": "Alice",
            "slug": "alice",
            "timezone": "Europe/Berlin",
            "lead_time_minutes": "0",
            "allow_booking": "y",
        },
        headers=HX,
    )
    assert "Saved." in html(saved)
    assert q(lambda: User.get_by_id(alice.id).allow_booking) is True


def test_profile_offers_every_time_zone_as_a_datalist(client, alice):
    page = html(client.get("/settings/profile"))
    assert 'list="tz-names"' in page
    assert '<option value="Europe/Berlin" label="Berlin, Germany (UTC' in page
    assert '<option value="UTC"' in page
    assert page.count("<option value=") > 300
    # Canonical names only: an alias is not suggested beside the zone it stands for.
    assert '<option value="Asia/Kathmandu"' in page and 'value="Asia/Katmandu"' not in page
    assert 'value="US/Eastern"' not in page
    german = html(client.get("/settings/profile", headers={"Accept-Language": "de"}))
    assert '<option value="Europe/Berlin" label="Berlin, Deutschland (UTC' in german


def test_an_alias_is_saved_as_the_zone_it_names(client, auth, alice, q):
    form = {"name": "Alice", "slug": "alice", "timezone": "Asia/Katmandu", "lead_time_minutes": "0"}
    assert auth.post("/settings/profile", form).status_code == 302
    assert q(lambda: User.get_by_id(alice.id).timezone) == "Asia/Kathmandu"


def test_password_change_needs_the_current_password(client, auth, alice, q):
    wrong = auth.post(
        "/settings/password",
        {"current_password": "nope", "new_password": "new password 1", "confirm": "new password 1"},
        headers=HX,
    )
    assert "this is not your current password" in html(wrong)
    ok = auth.post(
        "/settings/password",
        {
            "current_password": "correct horse",
            "new_password": "new password 1",
            "confirm": "new password 1",
        },
        headers=HX,
    )
    assert "Password changed." in html(ok)
    assert q(lambda: User.get_by_id(alice.id).check_password("new password 1"))


# ---------------------------------------------------------------- weekly hours


def test_hours_grid_shows_the_default_week(client, alice):
    page = html(client.get("/settings/hours"))
    assert 'role="grid"' in page
    assert page.count('role="gridcell"') == 7 * 48
    assert page.count('aria-selected="true"') == 5 * 16
    assert 'value="0-18" checked' in page and 'value="0-17"' in page
    assert 'value="0-17" checked' not in page and 'value="5-20" checked' not in page


def _hours(q, user):
    return q(
        lambda: sorted(
            (r.weekday, r.start, r.end)
            for r in WeeklyHours.select().where(WeeklyHours.user == user.id)
        )
    )


def test_posting_cells_merges_them_into_windows(app, client, auth, alice, q):
    cells = ["0-18", "0-19", "0-20", "0-24", "6-46", "6-47", "2-0"]
    response = auth.post("/settings/hours", {"cell": cells}, headers=HX)
    assert response.status_code == 200
    # The app's clock in the host's zone, as en-US writes a time ("9:00 AM").
    saved_at = format_time(app.config["CLOCK"]().astimezone(BERLIN), "short", locale="en_US")
    assert html(response).strip() == (
        f'<span id="hours-status" class="save-state saved">Saved at {saved_at}</span>'
    )
    assert _hours(q, alice) == [
        (0, "09:00", "10:30"),
        (0, "12:00", "12:30"),
        (2, "00:00", "00:30"),
        (6, "23:00", "24:00"),
    ]
    # The same endpoint without htmx: post/redirect/get, and the grid shows it.
    plain = auth.post("/settings/hours", {"cell": ["3-0"]})
    assert plain.status_code == 302 and plain.headers["Location"] == "/settings/hours"
    assert _hours(q, alice) == [(3, "00:00", "00:30")]
    # No cells at all means no hours at all.
    auth.post("/settings/hours", {}, headers=HX)
    assert _hours(q, alice) == []


@pytest.mark.parametrize("bad", ["7-0", "0-48", "x", "0-1-2", "-1-3", "01-3 "])
def test_malformed_cells_change_nothing(client, auth, alice, q, bad):
    response = auth.post("/settings/hours", {"cell": ["1-20", bad]}, headers=HX)
    assert response.status_code == 422
    assert "nothing was saved" in html(response)
    assert len(_hours(q, alice)) == 5


def test_hours_off_the_half_hour_grid_are_rounded_inwards_and_flagged(client, alice, q):
    def ragged():
        WeeklyHours.delete().where(WeeklyHours.user == alice.id).execute()
        WeeklyHours.create(user=alice.id, weekday=1, start="09:15", end="10:45")

    q(ragged)
    page = html(client.get("/settings/hours"))
    assert "do not start or end on a half hour" in page
    assert 'value="1-19" checked' in page and 'value="1-20" checked' in page
    assert 'value="1-18" checked' not in page and 'value="1-21" checked' not in page


# ---------------------------------------------------------------- date overrides


def test_overrides_add_replace_list_and_delete(client, auth, alice, q):
    day = clock_day(10)
    off = auth.post(
        "/settings/overrides", {"date": day.isoformat(), "mode": "off", "hours": "junk"}, headers=HX
    )
    assert off.status_code == 200 and "Day off" in html(off)
    rows = q(lambda: list(DateOverride.select().where(DateOverride.user == alice.id)))
    assert [(r.date, r.interval_list()) for r in rows] == [(day, [])]

    special = auth.post(
        "/settings/overrides",
        {"date": day.isoformat(), "mode": "hours", "hours": "14:00-18:00, 9:00 – 12:30"},
    )
    assert special.status_code == 302
    rows = q(lambda: list(DateOverride.select().where(DateOverride.user == alice.id)))
    assert len(rows) == 1
    assert json.loads(rows[0].intervals) == [["09:00", "12:30"], ["14:00", "18:00"]]
    listed = html(client.get("/settings/overrides"))
    assert "9:00\u202fAM–12:30\u202fPM, 2:00\u202fPM–6:00\u202fPM" in listed  # en-US
    gb = html(client.get("/settings/overrides", headers={"Accept-Language": "en-GB"}))
    assert "09:00–12:30, 14:00–18:00" in gb

    gone = auth.post(f"/settings/overrides/{rows[0].id}/delete", headers=HX)
    assert gone.status_code == 200 and "No upcoming overrides" in html(gone)
    assert q(lambda: DateOverride.select().count()) == 0


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"date": "", "mode": "off"}, "date", "pick a date"),
        ({"date": "2020-01-01", "mode": "off"}, "date", "in the past"),
        ({"date": "{soon}", "mode": "hours", "hours": ""}, "hours", "at least one range"),
        ({"date": "{soon}", "mode": "hours", "hours": "9-12"}, "hours", "HH:MM"),
        ({"date": "{soon}", "mode": "hours", "hours": "12:00-09:00"}, "hours", "ends before"),
        (
            {"date": "{soon}", "mode": "hours", "hours": "09:00-12:00, 11:00-13:00"},
            "hours",
            "overlap",
        ),
        ({"date": "{soon}", "mode": "hours", "hours": "09:00-24:30"}, "hours", "HH:MM"),
    ],
)
def test_override_errors_are_shown_next_to_the_field(client, auth, alice, q, data, field, message):
    soon = clock_day(3).isoformat()
    data = {k: v.replace("{soon}", soon) for k, v in data.items()}
    page = html(auth.post("/settings/overrides", data, headers=HX))
    assert message in error_for(page, field)
    assert q(lambda: DateOverride.select().count()) == 0


def test_override_until_midnight(client, auth, alice, q):
    soon = clock_day(3).isoformat()
    auth.post("/settings/overrides", {"date": soon, "mode": "hours", "hours": "20:00-24:00"})
    assert q(lambda: DateOverride.get().interval_list()) == [["20:00", "24:00"]]


# ---------------------------------------------------------------- meeting types

FULL_TYPE = {
    "name": "Intro call",
    "slug": "intro",
    "description": "A first chat.",
    "duration_minutes": "45",
    "buffer_before_minutes": "5",
    "buffer_after_minutes": "10",
    "lead_time_minutes": "120",
    "window_days": "30",
    "slot_interval_minutes": "15",
    "daily_limit": "4",
    "location": "https://meet.example.com/alice",
    "is_active": "y",
}


def test_meeting_type_create_edit_delete(client, auth, alice, q):
    created = auth.post("/settings/types/new", FULL_TYPE)
    assert created.status_code == 302 and created.headers["Location"] == "/settings/types"
    mt = q(lambda: MeetingType.get(MeetingType.user == alice.id))
    assert (
        mt.name,
        mt.slug,
        mt.description,
        mt.duration_minutes,
        mt.buffer_before_minutes,
        mt.buffer_after_minutes,
        mt.lead_time_minutes,
        mt.window_days,
        mt.slot_interval_minutes,
        mt.daily_limit,
        mt.location,
        mt.is_active,
    ) == (
        "Intro call",
        "intro",
        "A first chat.",
        45,
        5,
        10,
        120,
        30,
        15,
        4,
        FULL_TYPE["location"],
        True,
    )
    listing = html(client.get("/settings/types"))
    assert "Intro call" in listing and "/alice/intro" in listing

    edit_page = html(client.get(f"/settings/types/{mt.id}"))
    assert 'value="45"' in edit_page and "A first chat." in edit_page
    # Blank interval and limit mean "the duration" and "no limit".
    changed = dict(FULL_TYPE, slot_interval_minutes="", daily_limit="", name="Intro")
    changed.pop("is_active")
    assert auth.post(f"/settings/types/{mt.id}", changed).status_code == 302
    mt = q(lambda: MeetingType.get_by_id(mt.id))
    assert (mt.name, mt.slot_interval_minutes, mt.daily_limit, mt.is_active) == (
        "Intro",
        None,
        None,
        False,
    )

    gone = auth.post(f"/settings/types/{mt.id}/delete", headers=HX)
    assert gone.status_code == 200 and "No meeting types yet" in html(gone)
    assert q(lambda: MeetingType.select().count()) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("slug", "Not A Slug"),
        ("slug", "settings"),
        ("duration_minutes", "4"),
        ("duration_minutes", "721"),
        ("duration_minutes", "abc"),
        ("buffer_before_minutes", "-1"),
        ("buffer_after_minutes", "721"),
        ("lead_time_minutes", "525601"),
        ("window_days", "0"),
        ("window_days", "731"),
        ("slot_interval_minutes", "4"),
        ("slot_interval_minutes", "721"),
        ("daily_limit", "0"),
        ("location", "line\nbreak"),
    ],
)
def test_meeting_type_errors_are_next_to_their_field(client, auth, alice, q, field, value):
    response = auth.post("/settings/types/new", dict(FULL_TYPE, **{field: value}))
    page = html(response)
    assert response.status_code == 200
    assert error_for(page, field), (field, value)
    assert f'aria-describedby="{field}-error"' in page or f"{field}-hint {field}-error" in page
    # The other fields keep what was typed.
    assert 'value="A first chat.' in page or "A first chat." in page
    assert q(lambda: MeetingType.select().count()) == 0


def test_meeting_type_bounds_accept_the_edges(client, auth, alice, q):
    edges = dict(
        FULL_TYPE,
        duration_minutes="720",
        buffer_before_minutes="0",
        buffer_after_minutes="720",
        lead_time_minutes="525600",
        window_days="730",
        slot_interval_minutes="5",
        daily_limit="1",
    )
    assert auth.post("/settings/types/new", edges).status_code == 302
    edges.update(slug="short", duration_minutes="5", window_days="1", slot_interval_minutes="720")
    assert auth.post("/settings/types/new", edges).status_code == 302
    assert q(lambda: MeetingType.select().count()) == 2


def test_meeting_type_slug_is_unique_per_host_only(client, auth, alice, q, hosts):
    bob = hosts.create("bob")
    hosts.meeting_type(bob, "intro")
    assert auth.post("/settings/types/new", FULL_TYPE).status_code == 302
    again = auth.post("/settings/types/new", FULL_TYPE)
    assert "already have a meeting type" in error_for(html(again), "slug")
    other = q(lambda: MeetingType.get(MeetingType.user == alice.id))
    second = dict(FULL_TYPE, slug="second")
    assert auth.post("/settings/types/new", second).status_code == 302
    # Renaming one type to the other's slug is refused too.
    clash = auth.post(f"/settings/types/{other.id}", dict(FULL_TYPE, slug="second", name="Renamed"))
    assert "already have a meeting type" in error_for(html(clash), "slug")


# ---------------------------------------------------------------- availability preview


@pytest.fixture
def preview_setup(app, hosts, alice, now):
    """Alice (Berlin, Mon–Fri 09–17) on the test clock's Monday at 09:00 local.

    Intro: 30 min, 30 min buffer after, 2 h notice, 3 days ahead, 2 a day. Booked Tue 10:00
    and twice on Wed; her "Work" calendar is busy Tue 14:00–15:00.
    """
    now = at(0, 9, tz="Europe/Berlin")  # whatever Berlin's offset is that week
    app.config["CLOCK"].freeze(now)
    mt = hosts.meeting_type(
        alice,
        "intro",
        name="Intro",
        buffer_after_minutes=30,
        lead_time_minutes=120,
        window_days=3,
        daily_limit=2,
    )
    berlin = at(1, 10, tz="Europe/Berlin")
    with app.app_context(), db.connection_context():
        host = User.get_by_id(alice.id)
        for start in (berlin, berlin + timedelta(days=1), berlin + timedelta(days=1, hours=3)):
            service.book(host, mt, start.astimezone(UTC), "Bob", "bob@example.com", now=now)
        conn = Connection.create(user=host, provider="ics", label="https://cal.example/feed")
        cal = Calendar.create(connection=conn, external_id="work", name="Work")
        BusyBlock.create(
            calendar=cal,
            start=to_db(at(1, 14, tz="Europe/Berlin")),
            end=to_db(at(1, 15, tz="Europe/Berlin")),
        )
    return mt


def test_preview_explains_every_blocked_cell(client, preview_setup):
    address = f"/settings/preview?type={preview_setup.id}&week={day(2)}"
    response = client.get(address, headers=GB)  # 24-hour times; en-US is checked below
    page = html(response)
    assert response.status_code == 200
    assert f"Week of {format_date(day(0), 'medium', locale='en_GB')}" in page  # its Monday
    expected = {
        "Mon 09:30": "Too soon: inside the minimum notice",
        "Mon 11:00": "Open: invitees can book this time",
        "Tue 09:30": "Buffer next to a booking (Intro)",
        "Tue 10:00": "Booked: Intro",
        "Tue 10:30": "Buffer next to a booking (Intro)",
        "Tue 13:30": "Buffer next to busy time on calendar Work",
        "Tue 14:00": "Busy on calendar Work",
        "Wed 12:00": "Daily limit reached (2 of 2 booked that day)",
        "Thu 09:00": "Open: invitees can book this time",
        "Thu 10:00": "Too far ahead: beyond the booking window",
        "Sat 10:00": "Outside your hours",
        "Fri 16:30": "Too far ahead: beyond the booking window",
    }
    names = get_day_names("wide", locale="en")  # 0 = Monday
    days = {short: names[i] for i, short in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat"))}
    for when, why in expected.items():
        name, clock_time = when.split()
        assert f'<span class="vh">{days[name]} {clock_time}: {why}</span>' in page, when
    # Blocked spans are also listed as text.
    tuesday = format_skeleton("MMMEd", day(1), locale="en_GB")
    assert f"{tuesday}, 14:00–15:00</strong> — Busy on calendar Work" in page
    # Rows outside everyone's hours are folded away and said so.
    assert "Not shown: 00:00–09:00 and 17:00–24:00" in page
    # The same week in US English: 12-hour times, "Dec 15"-style dates.
    us = html(client.get(address))
    assert f"Week of {medium(day(0))}" in us
    assert '<span class="vh">Monday 9:30\u202fAM: Too soon: inside the minimum notice</span>' in us
    tuesday = format_skeleton("MMMEd", day(1), locale="en_US")
    assert f"{tuesday}, 2:00\u202fPM–3:00\u202fPM</strong> — Busy on calendar Work" in us
    assert "Not shown: 12:00\u202fAM–9:00\u202fAM and 5:00\u202fPM–12:00\u202fAM" in us


def test_preview_navigates_by_week_and_type_with_htmx(client, preview_setup, hosts, alice):
    other = hosts.meeting_type(alice, "long", name="Long", duration_minutes=120)
    part = html(client.get(f"/settings/preview?type={other.id}&week={day(7)}", headers=HX))
    assert part.lstrip().startswith('<div id="preview">')
    assert f"Week of {medium(day(7))}" in part
    assert f'<option value="{other.id}" selected>' in part
    assert f"week={day(0)}" in part and f"week={day(14)}" in part


def test_preview_without_types_and_with_bad_input(client, alice, hosts):
    assert "Create a meeting type first" in html(client.get("/settings/preview"))
    mt = hosts.meeting_type(alice, "intro")
    assert client.get(f"/settings/preview?type={mt.id}&week=not-a-date").status_code == 200
    assert client.get("/settings/preview?type=abc").status_code == 404
    assert client.get(f"/settings/preview?type={mt.id + 1000}").status_code == 404


def test_preview_skips_to_next_week_when_nothing_is_left(app, client, alice, hosts):
    friday_evening = at(4, 18, tz="Europe/Berlin")
    app.config["CLOCK"].freeze(friday_evening)
    hosts.meeting_type(alice, "intro")
    assert f"Week of {medium(day(7))}" in html(client.get("/settings/preview"))
    assert f"Week of {medium(day(0))}" in html(client.get(f"/settings/preview?week={day(4)}"))


# ---------------------------------------------------------------- appointments


@pytest.fixture
def booked(app, hosts, alice):
    """One upcoming, one past and one cancelled booking of Alice's."""
    mt = hosts.meeting_type(alice, "intro", name="Intro")
    with app.app_context(), db.connection_context():
        host = User.get_by_id(alice.id)
        rows = {}
        for key, days, status in (
            ("next", 3, "confirmed"),
            ("old", -3, "confirmed"),
            ("off", 4, "cancelled"),
        ):
            start = clock.now().replace(microsecond=0) + timedelta(days=days)
            rows[key] = service._insert(
                host, mt, start, f"Invitee {key}", f"{key}@example.com", "Asia/Tokyo", "Hello", None
            )
            if status == "cancelled":
                Booking.update(status="cancelled", cancelled_by="invitee").where(
                    Booking.id == rows[key].id
                ).execute()
    return rows


def test_appointment_tabs(client, booked):
    upcoming = html(client.get("/settings/appointments"))
    assert "Invitee next" in upcoming and "Invitee old" not in upcoming
    past = html(client.get("/settings/appointments?tab=past", headers=HX))
    assert "Invitee old" in past and "Invitee next" not in past
    cancelled = html(client.get("/settings/appointments?tab=cancelled"))
    assert "Invitee off" in cancelled and "Cancelled by the invitee" in cancelled
    assert client.get("/settings/appointments?tab=bogus&page=x").status_code == 200


def test_appointment_details_and_host_cancel(client, auth, booked, q):
    uid = booked["next"].uid
    page = html(client.get(f"/settings/appointments/{uid}"))
    assert "next@example.com" in page and "Asia/Tokyo" in page and "Cancel meeting" in page
    response = auth.post(
        f"/settings/appointments/{uid}/cancel", {"reason": "Something came up."}, headers=HX
    )
    assert response.status_code == 200
    assert "Cancelled by you" in html(response) and "Something came up." in html(response)
    row = q(lambda: Booking.get(Booking.uid == uid))
    assert (row.status, row.cancelled_by, row.cancel_reason) == (
        "cancelled",
        "host",
        "Something came up.",
    )
    # Cancelling again is refused with a message, not an error page.
    again = auth.post(f"/settings/appointments/{uid}/cancel", {"reason": ""})
    assert again.status_code == 200 and "Cancel meeting" not in html(again)


def test_past_meetings_cannot_be_cancelled(client, auth, booked, q):
    uid = booked["old"].uid
    assert "Cancel meeting" not in html(client.get(f"/settings/appointments/{uid}"))
    response = auth.post(f"/settings/appointments/{uid}/cancel", {"reason": ""})
    assert "This meeting is over" in html(response)
    assert q(lambda: Booking.get(Booking.uid == uid).status) == "confirmed"


def test_cancel_reason_length_is_checked(client, auth, booked, q):
    uid = booked["next"].uid
    page = html(auth.post(f"/settings/appointments/{uid}/cancel", {"reason": "x" * 5001}))
    assert error_for(page, "reason")
    assert q(lambda: Booking.get(Booking.uid == uid).status) == "confirmed"


# ---------------------------------------------------------------- API tokens


def test_tokens_are_shown_once_listed_and_revoked(app, client, auth, alice, q):
    response = auth.post("/settings/tokens", {"name": "website"}, headers=HX)
    page = html(response)
    plain = re.search(r'id="new-token" class="code" type="text" value="(kai_[^"]+)"', page).group(1)
    assert (
        app.test_client()
        .get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
        .status_code
        == 200
    )
    listing = html(client.get("/settings/tokens"))
    assert plain not in listing and plain[:8] in listing and "website" in listing
    token = q(lambda: ApiToken.get(ApiToken.user == alice.id))
    assert token.last_used_at is not None
    assert auth.post(f"/settings/tokens/{token.id}/revoke").status_code == 302
    assert (
        app.test_client()
        .get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
        .status_code
        == 401
    )
    assert "<td>website</td>" not in html(client.get("/settings/tokens"))


def test_token_needs_a_name(client, auth, alice, q):
    page = html(auth.post("/settings/tokens", {"name": " "}))
    assert error_for(page, "name")
    assert q(lambda: ApiToken.select().count()) == 0


# ---------------------------------------------------------------- embed


def test_embed_snippet_uses_the_public_script(client, alice, hosts):
    hosts.meeting_type(alice, "intro", name="Intro")
    hosts.meeting_type(alice, "deep-dive", name="Deep dive")
    page = html(client.get("/settings/embed?type=intro"))
    base = "http://localhost"
    script = (
        f"&lt;script src=&#34;{base}/static/embed.js&#34; "
        f"data-kairos=&#34;{base}/embed/alice/intro&#34; async&gt;&lt;/script&gt;"
    )
    assert script in page
    assert f"&lt;iframe src=&#34;{base}/embed/alice/intro&#34;" in page
    assert 'data-copy="#snippet-script"' in page
    part = html(client.get("/settings/embed?type=deep-dive", headers=HX))
    assert "embed/alice/deep-dive" in part and '<section class="card" id="embed">' in part


def test_embed_origins_are_validated_and_normalised(client, auth, alice, q):
    ok = auth.post(
        "/settings/embed",
        {
            "origins": "https://WWW.Example.com/\nhttp://localhost:8080\n\nhttps://a.example:443\n"
            "https://www.example.com"
        },
        headers=HX,
    )
    assert "Saved." in html(ok)
    assert q(lambda: User.get_by_id(alice.id).origins()) == [
        "https://www.example.com",
        "http://localhost:8080",
        "https://a.example",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ftp://files.example", "only http:// and https://"),
        ("https://a.example/path", "without a path"),
        ("https://a.example?x=1", "without a path"),
        ("www.example.com", "only http:// and https://"),
        ("https://user:pw@a.example", "no user name"),
        ("https://a.example:99999", "port"),
        ("https://", "valid host name"),
        ("https://*.example.com", "scheme://host"),
        ("https://a.example; script-src *", "scheme://host"),
        ("javascript:alert(1)", "only http:// and https://"),
    ],
)
def test_bad_embed_origins_name_the_line(client, auth, alice, q, line, message):
    response = auth.post(
        "/settings/embed", {"origins": f"https://good.example\n{line}"}, headers=HX
    )
    error = error_for(html(response), "origins")
    assert "line 2" in error and message in error, error
    assert q(lambda: User.get_by_id(alice.id).origins()) == []
