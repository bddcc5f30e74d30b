"""Where meetings happen: location kinds, the host's personal link, and Meet / Teams links
made by the calendar write-back against the fake Google and Microsoft servers.

The join link is stored on the booking and read through ``ical.meeting_link``
by the confirmation and manage pages, the e-mails and the .ics. A link that
cannot be made never fails the booking: the host is told.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from icalendar import Calendar as ICal

from jobs.calendar import write_back
from jobs.locations import join_link_failed
from jobs.mail import notify
from portal import clock
from portal.booking import locations
from portal.booking import service as booking
from portal.booking.links import manage_path
from portal.calendars.providers import Transient
from portal.calendars.providers.google.events import event_id_for
from portal.models import Booking, MeetingType, Outbox, User, db, utcnow
from portal.notify import booking_mail
from portal.notify.ical import booking_ics, meeting_link
from portal.org.users import create_user
from tests.support.api import Api, at, bookable_monday
from tests.support.app import AuthActions
from tests.support.clock import at as at_utc
from tests.support.clock import iso_z
from tests.support.oauth import ctx_fixture, grant, oauth_app_fixture  # noqa: F401

EMAIL = "test.user@example.com"


def utc(day, hour, minute=0):
    """``hour:minute`` UTC, ``day`` days after the test clock's Monday (1 = Tuesday)."""
    return at_utc(day, hour, minute)


@pytest.fixture
def host(ctx):
    return create_user("alice@example.com", "correct horse", "alice", timezone="Europe/Berlin")


def kind(host, location_kind, slug="call", location=""):
    return MeetingType.create(
        user=host, slug=slug, name="Call", location_kind=location_kind, location=location
    )


def book(host, mt, start, now):
    return booking.book(host, mt, start, "Ada", "ada@example.com", "Europe/Berlin", now=now).booking


def outbox(kind_name: str, booking_id: int) -> list[Outbox]:
    return [
        o
        for o in Outbox.select().where(Outbox.kind == kind_name)
        if o.data()["booking_id"] == booking_id
    ]


@pytest.fixture
def google(host, fake_google):
    fake_google.add_calendar(calendar_id=EMAIL, summary="Work", primary=True)
    return grant(host, "google")


@pytest.fixture
def microsoft(host, fake_microsoft):
    fake_microsoft.add_calendar(name="Calendar", default=True)
    return grant(host, "microsoft")


# ---------------------------------------------------------------- Google Meet


def test_meet_link_is_made_stored_and_shown_everywhere(ctx, host, google, fake_google, now):
    mt = kind(host, "google_meet")
    b = book(host, mt, utc(1, 9), now)
    assert (b.join_status, b.join_url, b.location) == ("pending", "", "")

    # The confirmation e-mail waits for the link (recorded again, a little later) …
    assert notify(b.id, "created") == 0
    [later] = [o for o in outbox("notify", b.id) if o.run_at is not None]
    assert later.run_at > (utcnow() + timedelta(seconds=10)).replace(tzinfo=None)

    # … and the pending page asks for itself again until the link is there.
    client = ctx.test_client()
    page = client.get(manage_path(b) + "&booked=1").text
    assert "Your Google Meet link is being created" in page and 'hx-trigger="load delay:2s"' in page

    assert write_back(b.id) == "written"
    b = Booking.get_by_id(b.id)
    assert b.join_status == "created" and b.join_url.startswith("https://meet.google.com/")
    [event] = fake_google.events(EMAIL)
    assert event["hangoutLink"] == b.join_url
    request_id = event["conferenceData"]["createRequest"]["requestId"]
    assert event["conferenceData"]["createRequest"]["conferenceSolutionKey"] == {
        "type": "hangoutsMeet"
    }
    # The write-back woke the e-mail (and webhooks) at once.
    assert [o for o in outbox("notify", b.id) if o.run_at is None]
    assert outbox("webhooks", b.id)

    page = client.get(manage_path(b) + "&booked=1").text
    assert f'href="{b.join_url}"' in page and "hx-trigger" not in page
    assert meeting_link(b) == b.join_url
    msg = booking_mail.booking_message(b, "created", "invitee", now)
    assert b.join_url in msg.get_body(("plain",)).get_content()
    assert f'href="{b.join_url}"' in msg.get_body(("html",)).get_content()
    event_ics = ICal.from_ical(booking_ics(b)).walk("VEVENT")[0]
    assert str(event_ics["LOCATION"]) == b.join_url

    # A retried write-back and a reschedule keep the one conference.
    assert write_back(b.id) == "written"
    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert (moved.join_url, moved.join_status) == (b.join_url, "created")
    assert write_back(moved.id) == "written"
    [event] = fake_google.events(EMAIL)
    assert event["id"] == event_id_for(b.ical_uid)
    assert event["start"]["dateTime"] == iso_z(utc(2, 10))
    assert event["hangoutLink"] == b.join_url
    assert event["conferenceData"]["createRequest"]["requestId"] == request_id
    assert Booking.get_by_id(moved.id).join_url == b.join_url


def test_a_meet_link_created_on_the_second_look(ctx, host, google, fake_google, now):
    fake_google.conferences("pending_once")
    b = book(host, kind(host, "google_meet"), utc(1, 9), now)
    assert write_back(b.id) == "written"
    assert Booking.get_by_id(b.id).join_url.startswith("https://meet.google.com/")


def test_a_meet_link_still_pending_is_retried(ctx, host, google, fake_google, now):
    fake_google.conferences("pending")
    b = book(host, kind(host, "google_meet"), utc(1, 9), now)
    with pytest.raises(Transient):
        write_back(b.id)
    assert Booking.get_by_id(b.id).join_status == "pending"


def test_when_google_makes_no_link_the_booking_stands_and_the_host_is_told(
    ctx, host, google, fake_google, now
):
    fake_google.conferences("failure")
    b = book(host, kind(host, "google_meet"), utc(1, 9), now)
    assert write_back(b.id) == "written"
    b = Booking.get_by_id(b.id)
    assert (b.status, b.join_status, b.join_url) == ("confirmed", "failed", "")
    assert "Google could not create a Google Meet link" in b.join_error
    assert outbox("join_link_failed", b.id)
    assert join_link_failed(b.id) == 1
    assert join_link_failed(b.id) == 0  # once
    msg = booking_mail.booking_message(b, "created", "host", now)
    assert "No video link: Google could not create" in msg.get_body(("plain",)).get_content()
    invitee = (
        booking_mail.booking_message(b, "created", "invitee", now)
        .get_body(("plain",))
        .get_content()
    )
    assert "No video link" not in invitee  # the invitee is not told about our trouble

    client = ctx.test_client()
    page = client.get(manage_path(b)).text
    assert "Online (Google Meet). alice will send you the link to join." in page


def test_a_meet_type_without_a_google_calendar_fails_at_booking_time(ctx, host, microsoft, now):
    b = book(host, kind(host, "google_meet"), utc(1, 9), now)
    assert b.join_status == "failed" and "Google Calendar" in b.join_error
    assert "Microsoft 365" in b.join_error
    assert outbox("join_link_failed", b.id)


def test_no_calendar_for_new_bookings(ctx, host, now):
    b = book(host, kind(host, "teams"), utc(1, 9), now)
    assert b.join_status == "failed" and "no calendar receives new bookings" in b.join_error


# ---------------------------------------------------------------- Microsoft Teams


def test_teams_link_from_graph(ctx, host, microsoft, fake_microsoft, now):
    b = book(host, kind(host, "teams"), utc(1, 9), now)
    assert b.join_status == "pending"
    assert write_back(b.id) == "written"
    b = Booking.get_by_id(b.id)
    assert b.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    [event] = fake_microsoft.events(_calendar_id())
    assert event["isOnlineMeeting"] is True and event["onlineMeetingProvider"] == "teamsForBusiness"
    assert event["onlineMeeting"]["joinUrl"] == b.join_url
    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert write_back(moved.id) == "written"
    assert Booking.get_by_id(moved.id).join_url == b.join_url


def _calendar_id() -> str:
    from portal.models import Calendar

    return Calendar.get(Calendar.write == True).external_id  # noqa: E712


def test_a_mailbox_without_teams(ctx, host, microsoft, fake_microsoft, now):
    fake_microsoft.teams(EMAIL, False)
    b = book(host, kind(host, "teams"), utc(1, 9), now)
    assert write_back(b.id) == "written"
    b = Booking.get_by_id(b.id)
    assert b.join_status == "failed" and "Teams" in b.join_error
    assert outbox("join_link_failed", b.id)


# ---------------------------------------------------------------- fixed kinds


def test_personal_link_phone_and_address(ctx, host, now):
    User.update(meeting_link="https://zoom.us/j/123456789?pwd=abc").where(
        User.id == host.id
    ).execute()
    host = User.get_by_id(host.id)
    b = book(host, kind(host, "personal"), utc(1, 9), now)
    assert (b.join_url, b.join_status, b.location) == (
        "https://zoom.us/j/123456789?pwd=abc",
        "",
        "",
    )
    assert str(ICal.from_ical(booking_ics(b)).walk("VEVENT")[0]["LOCATION"]) == b.join_url
    phone = book(host, kind(host, "phone", "tel", "+49 30 1234567"), utc(1, 10), now)
    assert meeting_link(phone) == "+49 30 1234567"
    client = ctx.test_client()
    assert 'href="tel:+49301234567"' in client.get(manage_path(phone)).text
    place = book(host, kind(host, "address", "visit", "Main St 1, Berlin"), utc(1, 11), now)
    assert meeting_link(place) == "Main St 1, Berlin"
    page = client.get("/alice/visit").text
    assert "Main St 1, Berlin" in page
    assert "Phone call" in client.get("/alice/tel").text


@pytest.mark.parametrize(
    "kind_, location, field, message",
    [
        ("link", "meet.example/x", "location", "https://"),
        ("link", "javascript:alert(1)", "location", "https://"),
        ("phone", "ring ring", "location", "phone number"),
        ("address", "", "location", "address"),
        ("personal", "", "location_kind", "personal meeting link first"),
        ("zoom", "", "location_kind", "expected one of"),
        ("custom", "two\nlines", "location", "single line"),
    ],
)
def test_location_rules(ctx, host, kind_, location, field, message):
    with pytest.raises(locations.LocationError) as caught:
        locations.clean_location(kind_, location, host)
    assert caught.value.field == field and message in caught.value.message


def test_meet_and_teams_clear_the_location(ctx, host):
    assert locations.clean_location("google_meet", "https://x.example", host) == ("google_meet", "")
    assert locations.clean_location("link", " https://x.example/a ", host) == (
        "link",
        "https://x.example/a",
    )


# ---------------------------------------------------------------- settings and API


def test_api_meeting_type_location_kind(oauth_app):
    with oauth_app.app_context(), db.connection_context():
        alice = create_user("alice@example.com", "correct horse", "alice", timezone="UTC")
        from portal.models import ApiToken

        token = ApiToken.issue(alice, "t")[1]
    api = Api(oauth_app.test_client(), token)
    r = api.post(
        "/api/v1/meeting-types",
        json={
            "slug": "meet",
            "name": "Meet",
            "duration_minutes": 30,
            "location_kind": "google_meet",
        },
    )
    assert r.status_code == 201 and r.json["location_kind"] == "google_meet", r.json
    r = api.patch("/api/v1/meeting-types/meet", json={"location_kind": "phone"})
    assert r.status_code == 422 and r.json["error"]["field"] == "location"
    r = api.patch(
        "/api/v1/meeting-types/meet", json={"location_kind": "phone", "location": "+1 555 0100"}
    )
    assert r.status_code == 200 and r.json["location"] == "+1 555 0100"
    r = api.patch("/api/v1/meeting-types/meet", json={"location_kind": "personal"})
    assert r.status_code == 422 and r.json["error"]["field"] == "location_kind"
    r = api.patch("/api/v1/me/meeting-details", json={"meeting_link": "zoom.us/j/1"})
    assert r.status_code == 422 and r.json["error"]["field"] == "meeting_link"
    r = api.patch(
        "/api/v1/me/meeting-details",
        json={"meeting_link": "https://zoom.us/j/1", "email_signature": "Alice\n<b>CEO</b>"},
    )
    assert r.status_code == 200 and r.json["meeting_link"] == "https://zoom.us/j/1"
    assert (
        api.patch("/api/v1/meeting-types/meet", json={"location_kind": "personal"}).json[
            "location_kind"
        ]
        == "personal"
    )
    r = api.patch("/api/v1/me/meeting-details", json={"meeting_link": ""})
    assert r.status_code == 422  # a type still uses it
    assert api.get("/api/v1/me/meeting-details").json["email_signature"] == "Alice\n<b>CEO</b>"


def test_settings_pages_for_kinds_link_and_signature(oauth_app, fake_google):
    with oauth_app.app_context(), db.connection_context():
        alice = create_user("alice@example.com", "correct horse", "alice", timezone="UTC")
        mt = MeetingType.create(user=alice, slug="intro", name="Intro")
    client = oauth_app.test_client()
    auth = AuthActions(client)
    auth.login()
    form = {
        "name": "Intro",
        "slug": "intro",
        "duration_minutes": "30",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "0",
        "lead_time_minutes": "0",
        "window_days": "60",
        "is_active": "y",
    }
    r = auth.post(f"/settings/types/{mt.id}", form | {"location_kind": "phone", "location": "x"})
    assert r.status_code == 200 and 'id="location-error"' in r.text
    r = auth.post(f"/settings/types/{mt.id}", form | {"location_kind": "google_meet"})
    assert r.status_code == 302
    page = client.get(f"/settings/types/{mt.id}").text
    assert "no calendar receives new bookings" in page  # the warning next to the kind

    r = auth.post("/settings/meeting", {"meeting_link": "ftp://x", "email_signature": ""})
    assert 'id="meeting_link-error"' in r.text
    r = auth.post(
        "/settings/meeting",
        {"meeting_link": "https://zoom.us/j/42", "email_signature": "Best,\nAlice <CEO>"},
    )
    assert r.status_code == 302
    with oauth_app.test_request_context(), db.connection_context():
        alice = User.get_by_id(alice.id)
        assert alice.meeting_link == "https://zoom.us/j/42"
        b = booking.book(
            alice,
            MeetingType.get_by_id(mt.id),
            datetime.fromisoformat(at(bookable_monday(), "10:00", "UTC")),
            "Ada",
            "ada@example.com",
            now=clock.now(),
        ).booking
        msg = booking_mail.booking_message(b, "created", "invitee")
        host_msg = booking_mail.booking_message(b, "created", "host")
    assert "Best,\nAlice <CEO>" in msg.get_body(("plain",)).get_content()
    assert "Alice &lt;CEO&gt;" in msg.get_body(("html",)).get_content()
    assert "Alice <CEO>" not in host_msg.get_body(("plain",)).get_content()


def test_the_page_stops_asking_for_a_link_that_takes_long(ctx, host, google, now):
    b = book(host, kind(host, "google_meet"), utc(1, 9), now)
    client = ctx.test_client()
    assert 'hx-trigger="load delay:2s"' in client.get(manage_path(b)).text
    old = (utcnow() - locations.LINK_POLL - timedelta(seconds=1)).replace(tzinfo=None)
    Booking.update(created_at=old).where(Booking.id == b.id).execute()
    page = client.get(manage_path(b)).text
    assert "Your Google Meet link is being created" in page and "hx-trigger" not in page
    # … and the e-mail no longer waits for it either.
    booked = Booking.get_by_id(b.id)
    assert locations.wait_for_link(booked, "notify", "created", now=utcnow()) is False
