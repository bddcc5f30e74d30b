"""The .ics of a booking, built from in-memory rows: escaping, identity, methods.

No database: the booking, its host and its meeting type are unsaved model
instances, and a bare Flask app supplies the secret key that signs the
manage link. Rescheduling and cancelling through the real service (UID kept,
SEQUENCE rising) are covered by tests/integration/test_mail.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from icalendar import Calendar

from portal import i18n
from portal.models import Booking, MeetingType, User
from portal.notify.ical import booking_ics, one_line

START = datetime(2026, 12, 1, 10, 0)  # naive UTC, as stored


@pytest.fixture
def flask_app():
    app = Flask("ical-test")
    app.config.update(SECRET_KEY="k", BASE_URL="https://book.example.org")
    i18n.init_app(app)  # SUMMARY and DESCRIPTION are translated (English here)
    with app.app_context():
        yield app


def make_booking(**fields) -> Booking:
    host = User(id=1, email="alice@example.com", slug="alice", name="Alice\r\nX-Evil: 1")
    mt = MeetingType(id=2, user=host, slug="intro", name="Intro call")
    values = {
        "id": 3,
        "uid": "b" * 32,
        "host": host,
        "meeting_type": mt,
        "start": START,
        "end": START + timedelta(minutes=30),
        "invitee_name": 'Eve "Evil", Inc; <script>',
        "invitee_email": "eve@example.com",
        "notes": "line one\nBEGIN:VEVENT\r\nSUMMARY:injected, yes; \\ back",
        "manage_salt": "salt",
        "ical_uid": "abc@kairos",
        "sequence": 2,
        "location": "https://meet.example/abc?x=1,2",
    }
    return Booking(**(values | fields))


def parse(data: bytes):
    cal = Calendar.from_ical(data)
    (event,) = cal.walk("VEVENT")
    return cal, event


def test_one_line_strips_control_characters():
    assert one_line("Eve\r\nBcc: x@evil\t!") == "Eve Bcc: x@evil !"


def test_request_carries_identity_people_and_links(flask_app):
    cal, event = parse(booking_ics(make_booking()))
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == "abc@kairos"
    assert event["SEQUENCE"] == 2
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event["DTSTART"].dt == START.replace(tzinfo=UTC)
    assert event["DTEND"].dt == START.replace(tzinfo=UTC) + timedelta(minutes=30)
    assert str(event["ORGANIZER"]) == "mailto:alice@example.com"
    assert str(event["ATTENDEE"]) == "mailto:eve@example.com"
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    assert str(event["LOCATION"]) == "https://meet.example/abc?x=1,2"
    assert str(event["URL"]).startswith("https://book.example.org/booking/" + "b" * 32 + "?token=")
    assert str(event["URL"]) in str(event["DESCRIPTION"])
    assert str(event["SUMMARY"]) == 'Intro call: Alice X-Evil: 1 and Eve "Evil", Inc; <script>'


def test_invitee_text_cannot_add_properties_or_components(flask_app):
    data = booking_ics(make_booking())
    lines = data.split(b"\r\n")
    # Folded continuation lines start with a space, so only real ones count here.
    assert sum(line == b"BEGIN:VEVENT" for line in lines) == 1
    assert not any(line.startswith((b"SUMMARY:injected", b"X-Evil")) for line in lines)
    _, event = parse(data)
    assert "BEGIN:VEVENT\nSUMMARY:injected, yes; \\ back" in str(event["DESCRIPTION"])
    assert event["ATTENDEE"].params["CN"] == 'Eve "Evil", Inc; <script>'
    assert event["ORGANIZER"].params["CN"] == "Alice X-Evil: 1"
    assert b"Inc\\; <script>" in data.replace(b"\r\n ", b"")  # escaped in text values


def test_cancel_and_publish(flask_app):
    cal, event = parse(booking_ics(make_booking(status="cancelled"), "CANCEL"))
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert event["ATTENDEE"].params["PARTSTAT"] == "DECLINED"
    cal, event = parse(booking_ics(make_booking(), "PUBLISH"))
    assert str(cal["METHOD"]) == "PUBLISH"
    assert str(event["STATUS"]) == "CONFIRMED"
    # RFC 5546 §3.2.1: a published event has an organizer and no attendees.
    assert str(event["ORGANIZER"]) == "mailto:alice@example.com"
    assert "ATTENDEE" not in event


def test_link_can_point_elsewhere(flask_app):
    _, event = parse(booking_ics(make_booking(), url="https://book.example.org/settings/x"))
    assert str(event["URL"]) == "https://book.example.org/settings/x"
    assert "token=" not in str(event["DESCRIPTION"])


def test_deleted_meeting_type_falls_back_to_slug(flask_app):
    _, event = parse(booking_ics(make_booking(meeting_type=None, type_slug="intro")))
    assert str(event["SUMMARY"]).startswith("intro: ")


def test_no_location_no_location_property(flask_app):
    _, event = parse(booking_ics(make_booking(location="")))
    assert "LOCATION" not in event


def test_links_fall_back_to_localhost_without_base_url(flask_app):
    flask_app.config["BASE_URL"] = ""
    _, event = parse(booking_ics(make_booking()))
    assert str(event["URL"]).startswith("http://localhost:5000/booking/")


def test_unknown_method_refused(flask_app):
    with pytest.raises(ValueError):
        booking_ics(make_booking(), "REFRESH")
