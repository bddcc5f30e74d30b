"""SMTP_URL parsing, header safety and message shape, without network or database."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from flask import Flask

from portal import i18n
from portal.notify.booking_mail import humanize, when_long, when_short
from portal.notify.mail import (
    Attachment,
    address,
    check_headers,
    compose,
    header_text,
    inert,
    message_id,
)
from portal.notify.smtp import SmtpSettings, parse_smtp_url
from tests.support.clock import NOW


@pytest.mark.parametrize(
    "url, expected",
    [
        ("smtp://localhost", SmtpSettings("localhost", 25)),
        ("smtp://mail.example:2525", SmtpSettings("mail.example", 2525)),
        (
            "smtp://user:secret@mail.example:587?starttls=1",
            SmtpSettings("mail.example", 587, "starttls", "user", "secret"),
        ),
        (
            "smtp://user@mail.example?starttls=true&timeout=5",
            SmtpSettings("mail.example", 587, "starttls", "user", "", 5.0),
        ),
        (
            "smtps://me%40example.com:p%40ss%3Aw%2Frd@smtp.example",
            SmtpSettings("smtp.example", 465, "implicit", "me@example.com", "p@ss:w/rd"),
        ),
        (
            "smtps://smtp.example:2465?cafile=/etc/ca.pem",
            SmtpSettings("smtp.example", 2465, "implicit", cafile="/etc/ca.pem"),
        ),
        ("smtp://relay?starttls=0", SmtpSettings("relay", 25)),
    ],
)
def test_smtp_url(url, expected):
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://mail.example", "smtp:// or smtps://"),
        ("mail.example:25", "smtp:// or smtps://"),
        ("smtp://", "no host"),
        ("smtps://mail.example?starttls=1", "already TLS"),
        ("smtp://mail.example:port", "Port"),
        ("smtp://mail.example?timeout=soon", "could not convert"),
        ("smtp://mail.example?timeout=0", "positive"),
        ("smtp://mail.example?tls=1", "unknown option"),
    ],
)
def test_bad_smtp_url(url, problem):
    with pytest.raises(ValueError, match=problem):
        parse_smtp_url(url)


def test_password_stays_out_of_repr():
    assert "secret" not in repr(parse_smtp_url("smtp://u:secret@h"))


def test_header_text_breaks_line_breaks_and_encoded_words():
    assert header_text("Eve\r\nBcc: x@y") == "Eve Bcc: x@y"
    assert header_text("=?utf-8?q?=0D=0ABcc:_x@y?=") == "= ?utf-8?q?=0D=0ABcc:_x@y?="
    assert header_text("\u202eexe.png") == "exe.png"


def test_inert_drops_controls_but_keeps_text():
    assert inert("a\r\nb\rc\td\x00\x1b[31m\u202e") == "a\nb\nc\td[31m"
    assert inert(None) == ""
    assert inert(3) == 3


@pytest.mark.parametrize(
    "minutes, text",
    [(1, "1 minute"), (45, "45 minutes"), (60, "1 hour"), (90, "90 minutes"), (180, "3 hours")]
    + [(1440, "24 hours"), (2880, "2 days"), (10080, "7 days"), (-5, "0 minutes")],
)
def test_humanize(minutes, text):
    assert humanize(timedelta(minutes=minutes)) == text


@pytest.fixture
def babel_app():
    app = Flask("portal")  # its root is the package: the translations sit beside it
    i18n.init_app(app)
    with app.app_context():
        yield app


START = NOW  # a Monday, 08:00 UTC: 09:00 in Berlin in winter, 10:00 in summer
BERLIN = ZoneInfo("Europe/Berlin")


def _expected(template: str, tag: str) -> str:
    """``template`` filled from START in Berlin: {day} is the locale's full date, {h} the
    hour without a leading zero, {hh} with one, {zone} the abbreviation (CET/CEST)."""
    local = START.astimezone(BERLIN)
    return template.format(
        day=format_date(local, "full", locale=tag),
        h=local.hour,
        hh=f"{local.hour:02d}",
        zone=local.tzname(),
        en_short=f"{local:%a}, {local:%b} {local.day}, {local.year}",
        de_short=format_date(local, "EEE, d. MMM y", locale="de"),
    )


@pytest.mark.parametrize(
    ("tag", "long", "short"),
    [
        (
            "en",
            "{day}, {h}:00\u202fAM \u2013 {h}:30\u202fAM (Europe/Berlin)",
            "{en_short}, {h}:00\u202fAM {zone}",
        ),
        ("en_GB", "{day}, {hh}:00\u2013{hh}:30 (Europe/Berlin)", None),
        ("de", "{day}, {hh}:00\u2013{hh}:30 (Europe/Berlin)", "{de_short}, {hh}:00 {zone}"),
        ("fr", "{day}, {hh}:00\u2013{hh}:30 (Europe/Berlin)", None),
        ("es", "{day}, {h}:00\u2013{h}:30 (Europe/Berlin)", None),
    ],
)
def test_dates_in_the_readers_locale(babel_app, tag, long, short):
    with i18n.in_locale(tag):
        assert when_long(START, START + timedelta(minutes=30), BERLIN) == _expected(long, tag)
        if short:
            assert when_short(START, BERLIN) == _expected(short, tag)


@pytest.mark.parametrize(
    ("tag", "minutes", "text"),
    [
        ("de", 1, "1 Minute"),
        ("de", 45, "45 Minuten"),
        ("de", 60, "1 Stunde"),
        ("de", 2880, "2 Tagen"),
        ("fr", 1440, "24 heures"),
        ("es", 60, "1 hora"),
        ("es", 4320, "3 días"),
    ],
)
def test_humanize_in_the_readers_language(babel_app, tag, minutes, text):
    with i18n.in_locale(tag):
        assert humanize(timedelta(minutes=minutes)) == text


@pytest.fixture
def flask_app():
    app = Flask("mail-test")
    app.config.update(SECRET_KEY="k", MAIL_FROM="Kairos <kairos@book.example.org>")
    with app.app_context():
        yield app


NASTY = 'Eve "Evil", Inc; <x@evil.example>, =?utf-8?q?=0D=0ABcc:_v@evil.example?='


def test_compose_round_trips_nasty_names(flask_app):
    msg = compose(
        "key-1",
        address(NASTY, "eve@example.com"),
        f"New booking with {NASTY}",
        "text",
        "<p>html</p>",
        (
            Attachment(
                "invite.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", params={"method": "REQUEST"}
            ),
        ),
        reply_to=address("Jöhn, Jr.", "john@exämple.com"),
        from_name="Alice, the host via Kairos",
    )
    parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["eve@example.com"]
    assert parsed["To"].addresses[0].display_name == header_text(NASTY)
    assert [a.addr_spec for a in parsed["Reply-To"].addresses] == ["john@xn--exmple-cua.com"]
    assert parsed["Reply-To"].addresses[0].display_name == "Jöhn, Jr."
    assert str(parsed["From"]) == '"Alice, the host via Kairos" <kairos@book.example.org>'
    assert parsed["Bcc"] is None
    assert parsed["Message-ID"] == message_id("key-1")
    assert parsed["Message-ID"].endswith("@book.example.org>")
    assert parsed.get_body(("plain",)).get_content().strip() == "text"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>html</p>"
    # The invitation is an alternative of the body (Outlook's buttons) and a file as well.
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, ics = parsed.iter_parts()
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    itip = list(alternative.iter_parts())[2]
    assert itip.get_param("method") == "REQUEST" and itip.get_content_disposition() is None
    assert itip.get_payload(decode=True) == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    assert list(parsed.iter_attachments()) == [ics]
    assert (ics.get_content_type(), ics.get_filename()) == ("text/calendar", "invite.ics")
    assert ics.get_param("method") is None  # the file is no second invitation
    assert ics.get_payload(decode=True) == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"


def test_message_id_is_stable_per_key_and_secret(flask_app):
    first = message_id("a")
    assert message_id("a") == first != message_id("b")
    flask_app.config["SECRET_KEY"] = "another instance"
    assert message_id("a") != first


def test_non_ascii_mailbox_uses_smtputf8(flask_app):
    msg = compose("k", address("Jö", "jö@example.com"), "Hi", "t", "<p>h</p>")
    assert msg.policy.utf8
    assert "jö@example.com".encode() in msg.as_bytes()


def test_check_headers_refuses_a_header_that_reads_back_differently(flask_app):
    msg = compose("k", address("Eve", "eve@example.com"), "Hi", "t", "<p>h</p>")
    del msg["To"]
    msg["To"] = "eve@example.com, other@example.com"
    check_headers(msg)  # as built: two recipients on purpose is consistent
    msg.replace_header("Subject", "fine")
    # A header that decodes to a line break is refused before anything is sent.
    msg.replace_header("Subject", "=?utf-8?q?a=0D=0AX-Evil:_1?=")
    with pytest.raises(ValueError):
        check_headers(msg)
