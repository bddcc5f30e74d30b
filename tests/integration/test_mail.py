"""E-mail end to end: bookings → outbox → jobs → a real SMTP server on 127.0.0.1.

Messages are parsed back (headers, both parts, the .ics attachment) the way a
mail client would. Time is a parameter: the relay and the handlers are given
``now``, and the clock the handlers read is a fixture, so nothing sleeps and
nothing depends on today's date.
"""

from __future__ import annotations

import email
import json
import os
import stat
import threading
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from icalendar import Calendar

import jobs  # noqa: F401  (registers the outbox handlers)
from jobs import mail as mail_jobs
from jobs.outbox import run
from portal.booking import links
from portal.booking import service as booking
from portal.models import Booking, Connection, Outbox, SentEmail, db
from portal.models import Calendar as CalendarRow
from portal.notify import booking_mail, mail
from portal.runtime.appconfig import external_url
from portal.runtime.outbox import relay
from portal.runtime.worker import run_worker
from tests.support.app import TEST_DATABASE_URL, Hosts, make_app
from tests.support.clock import at
from tests.support.processes import free_port

BOTH_BACKENDS = pytest.mark.parametrize("mail_app", ["sqlite", "postgresql"], indirect=True)
SLOT = at(1, 10)  # Tuesday after the test clock's Monday; hosts here live in UTC
LATER = at(2, 14)
BERLIN = ZoneInfo("Europe/Berlin")  # the invitee's zone
HOST_ZONE = ZoneInfo("UTC")


def us_clock(moment: datetime) -> str:
    """A US English wall-clock time, as Babel writes it: '11:00\u202fAM'."""
    return f"{moment.hour % 12 or 12}:{moment:%M}\u202f{moment:%p}"


def short(start: datetime, tz: ZoneInfo) -> str:
    """How a subject line names a time (English, no booking locale: en-US):
    'Tue, Dec 1, 2026, 11:00\u202fAM CET' (the zone's own name)."""
    s = start.astimezone(tz)
    return f"{s:%a}, {s:%b} {s.day}, {s:%Y}, {us_clock(s)} {s.tzname()}"


def long(start: datetime, tz: ZoneInfo, minutes: int = 30) -> str:
    """How a body names a meeting (en-US):
    'Tuesday, December 1, 2026, 11:00\u202fAM – 11:30\u202fAM (Europe/Berlin)'."""
    s, e = start.astimezone(tz), (start + timedelta(minutes=minutes)).astimezone(tz)
    return f"{s:%A}, {s:%B} {s.day}, {s:%Y}, {us_clock(s)} \u2013 {us_clock(e)} ({tz.key})"


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(now):
    """The app's clock (``CLOCK``), which the mail jobs read; tests move it."""
    return Clock(now)


def _app(tmp_path, redis_url, monkeypatch, database_url=None, **config):
    """An app that relays only when told (with an explicit ``now``) and whose booking
    events run the e-mail handler alone (no calendar write-back here)."""
    config = {"OUTBOX_RELAY_ON_COMMIT": False, "BASE_URL": "https://book.example.org"} | config
    app = make_app(tmp_path, redis_url, database_url, **config)
    monkeypatch.setattr(booking, "BOOKING_EVENT_HANDLERS", ["notify"])
    return app


@pytest.fixture
def mail_app(request, tmp_path, redis_url, monkeypatch, smtp, clock):
    """SQLite; tests marked ``BOTH_BACKENDS`` run on PostgreSQL too (TEST_DATABASE_URL)."""
    url = None
    if getattr(request, "param", "sqlite") == "postgresql":
        if not TEST_DATABASE_URL:
            pytest.skip("TEST_DATABASE_URL not set")
        url = TEST_DATABASE_URL
    app = _app(tmp_path, redis_url, monkeypatch, url, SMTP_URL=smtp.url, CLOCK=clock)
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture
def setup(mail_app):
    h = Hosts(mail_app)
    host = h.create("alice", name="Alice Host", tz="UTC")
    mt = h.meeting_type(host, "intro", name="Intro call", location="https://meet.example/alice")
    return host, mt


def drain(app, now: datetime) -> int:
    """What the worker does: relay the rows due at ``now`` and run them through RQ."""
    with app.app_context(), db.connection_context():
        n = relay(now=now)
    if n:
        run_worker(app, burst=True)
    return n


def book(app, host, mt, now, start=SLOT, name="Eve Invitee", notes="See you", **kw):
    with app.test_request_context(), db.connection_context():
        return booking.book(
            host, mt, start, name, "eve@example.com", "Europe/Berlin", notes, now=now, **kw
        ).booking


def ics_of(msg: EmailMessage):
    (part,) = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    cal = Calendar.from_ical(part.get_payload(decode=True))
    (event,) = cal.walk("VEVENT")
    return part, cal, event


def subject(msg: EmailMessage) -> str:
    # A folded header may unfold with its folding space first; clients trim it.
    return str(msg["Subject"]).strip()


def bodies(msg: EmailMessage) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


# ---------------------------------------------------------------- confirmation


def test_confirmation_reaches_invitee_and_host(mail_app, setup, smtp, now):
    host, mt = setup
    b = book(mail_app, host, mt, now)
    assert drain(mail_app, now) == 1  # the reminders are not due yet

    (to_invitee,) = smtp.to("eve@example.com")
    (to_host,) = smtp.to("alice@example.com")
    with mail_app.app_context():
        manage = external_url(links.manage_path(b))
    assert manage.startswith("https://book.example.org/booking/")

    assert to_invitee["To"].addresses[0].display_name == "Eve Invitee"
    assert to_invitee["From"].addresses[0].display_name == "Alice Host via Kairos"
    assert str(to_invitee["Reply-To"]) == "Alice Host <alice@example.com>"
    assert str(to_host["Reply-To"]) == "Eve Invitee <eve@example.com>"
    # Each side reads the time in their own zone.
    assert subject(to_invitee) == (
        f"Confirmed: Intro call with Alice Host on {short(SLOT, BERLIN)}"
    )
    assert subject(to_host) == (
        f"New booking: Intro call with Eve Invitee on {short(SLOT, HOST_ZONE)}"
    )
    assert to_invitee["Auto-Submitted"] == "auto-generated"
    # The invitee gets their secret manage link; the host the booking in their settings,
    # never the invitee's token (acting through it would pass for the invitee).
    settings_link = f"https://book.example.org/settings/appointments/{b.uid}"
    token = manage.split("token=")[1]
    for msg, link in ((to_invitee, manage), (to_host, settings_link)):
        text, html = bodies(msg)
        assert link in text and f'href="{link}"' in html.replace("&amp;", "&")
        assert "https://meet.example/alice" in text and 'href="https://meet.example/alice"' in html
        assert "See you" in text and "See you" in html
        part, cal, event = ics_of(msg)
        assert part.get_filename() == "invite.ics"
        # The invitation is the body's third alternative; the file is only a copy.
        (itip,) = [p for p in msg.walk() if p.get_param("method")]
        assert itip.get_param("method") == "REQUEST" and part.get_param("method") is None
        assert str(cal["METHOD"]) == "REQUEST"
        assert str(event["UID"]) == b.ical_uid
        assert event["SEQUENCE"] == 0
        assert event["DTSTART"].dt == SLOT
        assert str(event["URL"]) == link
    assert token not in to_host.as_string()
    assert long(SLOT, BERLIN) in bodies(to_invitee)[0]
    assert long(SLOT, HOST_ZONE) in bodies(to_host)[0]

    with mail_app.app_context(), db.connection_context():
        rows = {r.key: r.status for r in SentEmail.select()}
    assert rows == {
        f"booking:{b.id}:created:invitee:seq0": "sent",
        f"booking:{b.id}:created:host:seq0": "sent",
    }


def test_reschedule_and_cancel_keep_uid_with_rising_sequence(mail_app, setup, smtp, now):
    host, mt = setup
    first = book(mail_app, host, mt, now)
    drain(mail_app, now)
    with mail_app.test_request_context(), db.connection_context():
        moved = booking.reschedule(first, LATER, now=now)
    drain(mail_app, now)
    with mail_app.test_request_context(), db.connection_context():
        booking.cancel(moved, by="host", reason="Sorry, <b>ill</b>", now=now)
    drain(mail_app, now)

    invitee = smtp.to("eve@example.com")
    kinds = [subject(m).split(":")[0] for m in invitee]
    assert kinds == ["Confirmed", "Rescheduled", "Cancelled"]
    events = [ics_of(m) for m in invitee]
    assert {str(event["UID"]) for _, _, event in events} == {first.ical_uid}
    assert [event["SEQUENCE"] for _, _, event in events] == [0, 1, 2]
    assert [str(cal["METHOD"]) for _, cal, _ in events] == ["REQUEST", "REQUEST", "CANCEL"]
    assert events[2][0].get_filename() == "cancel.ics"
    assert str(events[2][2]["STATUS"]) == "CANCELLED"
    assert events[1][2]["DTSTART"].dt == LATER

    text, html = bodies(invitee[1])
    assert f"Previously: {long(SLOT, BERLIN)}" in text
    assert long(LATER, BERLIN) in text
    with mail_app.app_context():
        assert external_url(links.manage_path(moved)) in text
    text, html = bodies(invitee[2])
    assert "Alice Host cancelled this meeting." in text
    assert "Sorry, <b>ill</b>" in text
    assert "Sorry, &lt;b&gt;ill&lt;/b&gt;" in html
    assert "https://book.example.org/alice/intro" in text  # book another time
    assert [subject(m).split(":")[0] for m in smtp.to("alice@example.com")] == [
        "New booking",
        "Rescheduled",
        "Cancelled",
    ]


def test_stale_confirmation_is_skipped_when_booking_changed_before_the_job(
    mail_app, setup, smtp, now
):
    """A "created" job that runs after the booking was cancelled sends no confirmation."""
    host, mt = setup
    b = book(mail_app, host, mt, now)
    with mail_app.test_request_context(), db.connection_context():
        booking.cancel(b, now=now)
        created = Outbox.get(Outbox.kind == "notify", Outbox.payload.contains('"created"'))
        assert run(created.id) == "done"
    assert smtp.messages == []
    drain(mail_app, now)
    assert sorted(subject(m).split(":")[0] for _, m in smtp.messages) == [
        "Cancelled",
        "Cancelled",
    ]


# ---------------------------------------------------------------- exactly once


@BOTH_BACKENDS
def test_job_run_twice_sends_once(mail_app, setup, smtp, now):
    host, mt = setup
    b = book(mail_app, host, mt, now)
    with mail_app.app_context(), db.connection_context():
        row = Outbox.get(Outbox.kind == "notify")
        assert mail_jobs.notify(b.id, "created") == 2
        assert mail_jobs.notify(b.id, "created") == 0  # a retry of the same job
        assert run(row.id) == "done"  # the outbox row itself, as RQ would run it
        Outbox.update(status="enqueued").where(Outbox.id == row.id).execute()
        assert run(row.id) == "done"  # even when the row's own bookkeeping was lost
    assert len(smtp.messages) == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_failed_delivery_releases_the_claim_and_the_retry_sends(
    backend, tmp_path, redis_url, monkeypatch, smtp, clock, now
):
    if backend == "postgresql" and not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL not set")
    dead = f"smtp://127.0.0.1:{free_port()}?timeout=2"
    app = _app(
        tmp_path,
        redis_url,
        monkeypatch,
        TEST_DATABASE_URL if backend == "postgresql" else None,
        SMTP_URL=dead,
    )
    h = Hosts(app)
    host = h.create("alice", tz="UTC")
    mt = h.meeting_type(host, "intro")
    b = book(app, host, mt, now)
    try:
        with app.app_context(), db.connection_context():
            row = Outbox.get(Outbox.kind == "notify")
            with pytest.raises(OSError):
                run(row.id)
            assert SentEmail.select().count() == 0  # released: the retry may send
            assert Outbox.get_by_id(row.id).status == "enqueued"  # RQ backs off and retries
            app.config["SMTP_URL"] = smtp.url
            assert run(row.id) == "done"
            assert run(row.id) == "skipped"
            assert {r.status for r in SentEmail.select()} == {"sent"}
        assert len(smtp.messages) == 2
        with app.app_context():
            expected = {
                mail.message_id(f"booking:{b.id}:created:{r}:seq0") for r in booking_mail.ROLES
            }
        assert {m["Message-ID"] for _, m in smtp.messages} == expected
    finally:
        if not db.is_closed():
            db.close()


@BOTH_BACKENDS
def test_claims_of_live_and_dead_runs(mail_app, setup, smtp, now):
    """A claim held by a live run makes a concurrent run retry later; a dead run's is taken over."""
    host, mt = setup
    b = book(mail_app, host, mt, now)
    key = f"booking:{b.id}:created:invitee:seq0"
    with mail_app.app_context(), db.connection_context():
        SentEmail.create(key=key, to="x", status="sending", sent_at=now.replace(tzinfo=None))
        msg = booking_mail.booking_message(b, "created", "invitee", now)
        with pytest.raises(mail.ClaimBusy):
            mail.send_once(key, msg, b.id, now=now + mail.claim_timeout() / 2)
        assert smtp.messages == []
        # The holder died mid-send: after claim_timeout() a rerun sends (at-least-once).
        assert mail.send_once(key, msg, b.id, now=now + mail.claim_timeout() + timedelta(seconds=1))
        assert SentEmail.get(SentEmail.key == key).status == "sent"
        assert not mail.send_once(key, msg, b.id, now=now + timedelta(hours=1))
    assert len(smtp.messages) == 1


# ---------------------------------------------------------------- reminders


def _reminders(app) -> list[Outbox]:
    with app.app_context(), db.connection_context():
        return list(Outbox.select().where(Outbox.kind == "reminder").order_by(Outbox.run_at))


def test_reminders_are_sent_at_their_time_and_only_then(mail_app, setup, smtp, clock, now):
    host, mt = setup
    b = book(mail_app, host, mt, now)
    rows = _reminders(mail_app)
    assert [(r.run_at, r.data()["offset"]) for r in rows] == [
        ((SLOT - timedelta(days=1)).replace(tzinfo=None), 1440),
        ((SLOT - timedelta(hours=1)).replace(tzinfo=None), 60),
    ]
    drain(mail_app, now)  # the confirmation
    smtp.messages.clear()

    assert drain(mail_app, SLOT - timedelta(days=1, seconds=1)) == 0
    clock.now = SLOT - timedelta(days=1) + timedelta(seconds=3)
    assert drain(mail_app, clock.now) == 1
    (day_before,) = smtp.to("eve@example.com")
    assert subject(day_before) == (
        f"Reminder: Intro call with Alice Host in 24 hours ({short(SLOT, BERLIN)})"
    )
    assert "Your meeting starts in 24 hours." in bodies(day_before)[0]
    assert len(smtp.to("alice@example.com")) == 1
    assert ics_of(day_before)[2]["SEQUENCE"] == b.sequence

    assert drain(mail_app, SLOT - timedelta(minutes=61)) == 0
    clock.now = SLOT - timedelta(hours=1) + timedelta(seconds=2)
    assert drain(mail_app, clock.now) == 1
    subjects = [subject(m) for m in smtp.to("eve@example.com")]
    assert subjects[-1].startswith("Reminder: Intro call with Alice Host in 1 hour (")
    _, html = bodies(smtp.to("eve@example.com")[-1])
    assert 'href="https://meet.example/alice"' in html and "Join the meeting" in html
    assert len(smtp.messages) == 4
    assert drain(mail_app, SLOT + timedelta(days=2)) == 0


def test_cancelled_and_moved_bookings_skip_their_reminders(mail_app, setup, smtp, clock, now):
    host, mt = setup
    gone = book(mail_app, host, mt, now)
    moving = book(mail_app, host, mt, now, start=SLOT + timedelta(hours=2), name="Mo Ved")
    with mail_app.test_request_context(), db.connection_context():
        booking.cancel(gone, now=now)
        moved = booking.reschedule(moving, LATER, now=now)
    drain(mail_app, now)
    smtp.messages.clear()

    old = [r for r in _reminders(mail_app) if r.data()["booking_id"] in (gone.id, moving.id)]
    new = [r for r in _reminders(mail_app) if r.data()["booking_id"] == moved.id]
    assert len(old) == 4
    assert [r.run_at for r in new] == [
        (LATER - timedelta(days=1)).replace(tzinfo=None),
        (LATER - timedelta(hours=1)).replace(tzinfo=None),
    ]

    clock.now = SLOT + timedelta(hours=1)  # all old reminders are due
    assert drain(mail_app, clock.now) == 4
    assert smtp.messages == []
    with mail_app.app_context(), db.connection_context():
        assert {Outbox.get_by_id(r.id).status for r in old} == {"done"}

    clock.now = LATER - timedelta(days=1) + timedelta(seconds=1)
    assert drain(mail_app, clock.now) == 1
    assert [subject(m)[:40] for m in smtp.to("eve@example.com")] == [
        "Reminder: Intro call with Alice Host in "
    ]


def test_reminder_handler_checks_the_start_it_was_scheduled_for(mail_app, setup, smtp, now):
    host, mt = setup
    b = book(mail_app, host, mt, now)
    with mail_app.app_context(), db.connection_context():
        other_start = (SLOT + timedelta(hours=1)).isoformat()
        assert mail_jobs.reminder(b.id, other_start, 60, now=now) == 0
        # Too late: the meeting has begun (a worker that was down for a day).
        assert mail_jobs.reminder(b.id, SLOT.isoformat(), 60, now=SLOT) == 0
        assert mail_jobs.reminder(b.id, SLOT.isoformat(), 60, now=SLOT - timedelta(minutes=60)) == 2
        assert mail_jobs.reminder(b.id, SLOT.isoformat(), 60, now=SLOT - timedelta(minutes=59)) == 0
    assert len(smtp.messages) == 2


def test_offsets_already_past_at_booking_time_are_not_scheduled(mail_app, setup, now):
    host, mt = setup
    with mail_app.app_context(), db.connection_context():
        mt.reminder_offsets = "2880, 1440,60,junk,,60"
        mt.save()
    book(mail_app, host, mt, now, start=now + timedelta(hours=2, minutes=30))
    assert [r.data()["offset"] for r in _reminders(mail_app)] == [60]


# ---------------------------------------------------------------- inert invitee text

# Quotes and commas for address parsing, HTML, an RFC 2047 encoded line break with a
# header after it, and a right-to-left override.
EVIL_NAME = (
    'Eve "Evil", Inc; <img src=x onerror=alert(1)> '
    "=?utf-8?q?=0D=0ABcc:_victim@example.net?= \u202egnp.exe"
)
EVIL_NOTES = (
    "<script>alert(1)</script>\r\nBcc: victim@example.net\r\n\r\n"
    "</td></tr></table><a href=javascript:alert(2)>click</a>\n"
    "BEGIN:VEVENT\nSUMMARY:fake; x, y\\z\n.\n"
)
# What a reader sees: the bidi override that would flip "exe.png" is gone.
SHOWN_NAME = EVIL_NAME.replace("\u202e", " ")
HEADERS = [
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "Content-Type",
    "MIME-Version",
]


class Tags(HTMLParser):
    """Every element a browser would build from the HTML part, with its attributes."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, [(k, v or "") for k, v in attrs]))


def test_invitee_text_is_inert_in_headers_bodies_and_ics(mail_app, setup, smtp, now):
    host, mt = setup
    with mail_app.app_context(), db.connection_context():
        host.name = "Alice\r\nBcc: host-injected@example.net"
        host.save()
    b = book(mail_app, host, mt, now, name=EVIL_NAME, notes=EVIL_NOTES)
    drain(mail_app, now)

    # Only the two intended recipients were ever addressed at the SMTP level.
    assert sorted(r for rcpts, _ in smtp.messages for r in rcpts) == [
        "alice@example.com",
        "eve@example.com",
    ]
    for _, msg in smtp.messages:
        assert sorted(msg.keys()) == sorted(HEADERS)
        (to,) = msg["To"].addresses
        (reply,) = msg["Reply-To"].addresses
        assert to.addr_spec in ("eve@example.com", "alice@example.com")
        assert reply.addr_spec in ("eve@example.com", "alice@example.com")
        text, html = bodies(msg)
        tags = Tags()
        tags.feed(html)
        assert not {"script", "img", "iframe", "object"} & {t for t, _ in tags.seen}
        attrs = [(k, v) for _, a in tags.seen for k, v in a]
        assert not [k for k, _ in attrs if k.startswith("on")]
        assert all(v.startswith("https://") for k, v in attrs if k == "href")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "\u202e" not in html and "\u202e" not in text
        assert "<script>alert(1)</script>" in text  # plain text stays readable, and inert
        _, cal, event = ics_of(msg)
        assert len(cal.walk("VEVENT")) == 1
        assert "SUMMARY:fake; x, y\\z" in str(event["DESCRIPTION"])
        assert event["ATTENDEE"].params["CN"] == SHOWN_NAME

    (to_host,) = smtp.to("alice@example.com")
    assert to_host["Reply-To"].addresses[0].display_name == SHOWN_NAME.replace("=?", "= ?")
    assert "Eve Invitee" not in subject(to_host) and "Bcc" in subject(to_host)  # literal text
    assert to_host["To"].addresses[0].display_name == "Alice Bcc: host-injected@example.net"
    with mail_app.app_context(), db.connection_context():
        assert Booking.get_by_id(b.id).invitee_name == EVIL_NAME


# ---------------------------------------------------------------- host_action_required


def test_reconnect_request_reaches_the_host_once_per_episode(mail_app, setup, smtp, clock, now):
    host, _ = setup
    with mail_app.app_context(), db.connection_context():
        conn = Connection.create(
            user=host,
            provider="google",
            label="alice@gmail.example",
            status="needs_reconnect",
            last_error="invalid_grant: <token revoked>",
        )
        CalendarRow.create(connection=conn, external_id="primary", name="Alice", write=True)
        Outbox.add("host_action_required", connection_id=conn.id)
        Outbox.add("host_action_required", connection_id=conn.id)  # recorded twice
    drain(mail_app, now)
    (msg,) = smtp.to("alice@example.com")
    assert subject(msg) == "Action required: reconnect your calendar"
    text, html = bodies(msg)
    assert "Google Calendar account alice@gmail.example" in text
    assert "https://book.example.org/settings/connections" in text
    assert "&lt;token revoked&gt;" in html
    assert "new bookings are not written" in text
    assert not list(msg.iter_attachments())

    with mail_app.app_context(), db.connection_context():
        # Fixed, synced, then broken again the next day: a new message.
        conn.status = "needs_reconnect"
        conn.last_synced_at = (now + timedelta(hours=23)).replace(tzinfo=None)
        conn.save()
        clock.now = now + timedelta(days=1, hours=1)
        assert mail_jobs.host_action_required(conn.id, now=clock.now) == 1
        assert mail_jobs.host_action_required(conn.id, now=clock.now) == 0
        conn.status = "ok"
        conn.save()
        clock.now = now + timedelta(days=5)  # fixed before the job ran:
        assert mail_jobs.host_action_required(conn.id, now=clock.now) == 0
    assert len(smtp.messages) == 2


# ---------------------------------------------------------------- outbox folder


def test_without_smtp_url_messages_land_in_the_outbox_folder(
    tmp_path, redis_url, monkeypatch, clock, now
):
    app = _app(tmp_path, redis_url, monkeypatch, SMTP_URL="", BASE_URL="")
    h = Hosts(app)
    host = h.create("alice", tz="UTC")
    mt = h.meeting_type(host, "intro")
    b = book(app, host, mt, now)
    drain(app, now)
    folder = app.config["OUTBOX_MAIL_DIR"]
    assert folder == str(tmp_path / "instance" / "outbox")
    files = sorted(f for f in os.listdir(folder) if f.endswith(".eml"))
    assert len(files) == 2 and not [f for f in os.listdir(folder) if f.startswith(".tmp")]
    assert stat.S_IMODE(os.stat(os.path.join(folder, files[0])).st_mode) == 0o600
    parsed = []
    for name in files:
        with open(os.path.join(folder, name), "rb") as fh:
            parsed.append(email.message_from_binary_file(fh, policy=policy.default))
    assert sorted(str(m["To"]) for m in parsed) == [
        "Eve Invitee <eve@example.com>",
        "alice <alice@example.com>",
    ]
    # No BASE_URL and no request in a job: links fall back to the development address.
    text, _ = bodies(parsed[0])
    assert f"http://localhost:5000/booking/{b.uid}?token=" in text
    assert str(ics_of(parsed[0])[1]["METHOD"]) == "REQUEST"


def test_bad_smtp_url_stops_the_start(tmp_path, redis_url):
    with pytest.raises(ValueError, match="smtp:// or smtps://"):
        make_app(tmp_path, redis_url, SMTP_URL="http://mail.example")


def test_corporate_member_is_told_the_admin_repairs_it(mail_app, setup, smtp, clock, now):
    host, _ = setup
    with mail_app.app_context(), db.connection_context():
        conn = Connection.create(
            user=host,
            provider="exchange",
            label="alice@corp.example",
            status="needs_reconnect",
            settings=json.dumps({"corporate": True}),
        )
        Outbox.add("host_action_required", connection_id=conn.id)
    drain(mail_app, now)
    (msg,) = smtp.to("alice@example.com")
    text, html = bodies(msg)
    assert "your Kairos admin has to repair it" in text and "admin has to repair it" in html
    assert "Reconnect in settings" not in text and "Reconnect in settings" not in html
