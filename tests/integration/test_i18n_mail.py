"""Every e-mail in English, German, French and Spanish: no English left in the subject,
the text body, the HTML body or the ``.ics`` description, and dates the reader's way.

Who reads which language: the invitee the booking's (``Booking.locale``), the host and
co-workers their own setting (``User.locale``), an invitation or a reset link the
language of the page that asked for it when the person has no setting.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_time
from icalendar import Calendar

import jobs  # noqa: F401  (registers the outbox handlers)
from jobs import admin as admin_jobs
from jobs import locations as location_jobs
from jobs import mail as mail_jobs
from portal.booking import service as booking
from portal.models import (
    Booking,
    BookingAttendee,
    Connection,
    Invite,
    Outbox,
    PasswordReset,
    User,
    db,
)
from portal.models import Calendar as CalendarRow
from portal.notify import booking_mail
from portal.notify import mail as mail_module
from portal.org import invites, passwords
from tests.support.app import Hosts, make_app
from tests.support.clock import at
from tests.support.i18n import LOCALES, english_leaks, visible_text

SLOT = at(1, 10)  # a Tuesday, 10:00 UTC
LATER = at(2, 14)  # a Wednesday


def clock(zone: str, lang: str, minutes: int = 0) -> str:
    """SLOT (+ minutes) on a wall clock in ``zone``, the locale's way ("11:00 AM", "12:00")."""
    local = (SLOT + timedelta(minutes=minutes)).astimezone(ZoneInfo(zone))
    return format_time(local, "short", locale=lang)


# What people typed (never translated) and the attachment's file name; URLs are dropped
# before looking for English.
NAMES = ("Ada Nakamura", "Eve Lindqvist", "Noor Haddad", "Kickoff", "quota exceeded", "cancel.ics")
URL = re.compile(r"https?://\S+|mailto:\S+")
# The weekday of SLOT in each language.
TUESDAY = {"en": "Tuesday", "de": "Dienstag", "fr": "mardi", "es": "martes"}
EVENTS = ("created", "rescheduled", "cancelled", "reminder")


@pytest.fixture
def app(tmp_path, redis_url, monkeypatch):
    app = make_app(
        tmp_path,
        redis_url,
        OUTBOX_RELAY_ON_COMMIT=False,
        BASE_URL="https://book.example.org",
        MAIL_FROM="Kairos <kairos@book.example.org>",
    )
    monkeypatch.setattr(booking, "BOOKING_EVENT_HANDLERS", ["notify"])
    return app


@pytest.fixture
def sent(monkeypatch) -> list[EmailMessage]:
    """The messages handed to SMTP (a fake relay: delivery is not what is tested here)."""
    outbox: list[EmailMessage] = []

    def deliver(msg: EmailMessage) -> str:
        outbox.append(msg)
        return "fake"

    monkeypatch.setattr(mail_module, "deliver", deliver)
    return outbox


@pytest.fixture
def host(app):
    h = Hosts(app)
    user = h.create("ada", name="Ada Nakamura", tz="UTC")
    h.meeting_type(user, "kickoff", name="Kickoff", location="https://meet.example/ada")
    return user


def set_locale(app, model, row_id: int, tag: str) -> None:
    with app.app_context(), db.connection_context():
        model.update(locale=tag).where(model.id == row_id).execute()


def book(app, host, now, start=SLOT) -> Booking:
    from portal.models import MeetingType

    with app.test_request_context(), db.connection_context():
        mt = MeetingType.get(MeetingType.user == host.id)
        return booking.book(
            host,
            mt,
            start,
            "Eve Lindqvist",
            "eve@example.com",
            "Europe/Berlin",
            "Bis bald",
            now=now,
        ).booking


def parts(msg: EmailMessage) -> tuple[str, str, str, str]:
    """Subject, text body, the HTML's visible text and the .ics DESCRIPTION + SUMMARY."""
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    ics = ""
    for part in msg.iter_attachments():
        if part.get_content_type() == "text/calendar":
            (event,) = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
            ics = f"{event['SUMMARY']}\n{event['DESCRIPTION']}"
    return str(msg["Subject"]).strip(), text, visible_text(html), ics


def leaks(msg: EmailMessage, lang: str, ignore: tuple[str, ...] = ()) -> dict[str, list[str]]:
    found = {}
    for name, text in zip(("subject", "text", "html", "ics"), parts(msg), strict=True):
        problems = english_leaks(URL.sub(" ", text), lang, ignore=NAMES + ignore)
        if problems:
            found[name] = problems
    return found


def booking_mails(app, host, now, lang: str) -> dict[tuple[str, str], EmailMessage]:
    """Every booking e-mail (event × role), host and bookings in ``lang``."""
    set_locale(app, User, host.id, lang)
    first = book(app, host, now)
    set_locale(app, Booking, first.id, lang)
    with app.test_request_context(), db.connection_context():
        moved = booking.reschedule(Booking.get_by_id(first.id), LATER, now=now)
    set_locale(app, Booking, moved.id, lang)
    other = book(app, host, now, start=at(3, 9))
    set_locale(app, Booking, other.id, lang)
    with app.test_request_context(), db.connection_context():
        booking.cancel(Booking.get_by_id(other.id), by="host", reason="Leider krank", now=now)
    ids = {"created": first.id, "rescheduled": moved.id, "cancelled": other.id}
    messages = {}
    with app.app_context(), db.connection_context():
        for event in EVENTS:
            b = Booking.get_by_id(ids.get(event, moved.id))
            b.join_status, b.join_error = "failed", "quota exceeded"  # the host's warning row
            for role in booking_mail.ROLES:
                messages[(event, role)] = booking_mail.booking_message(b, event, role, now)
    return messages


@pytest.mark.parametrize("lang", LOCALES)
def test_booking_mails_speak_the_readers_language(app, host, now, lang):
    messages = booking_mails(app, host, now, lang)
    for (event, role), msg in messages.items():
        assert leaks(msg, lang, ignore=("Leider krank", "Bis bald")) == {}, (event, role)
        subject, text, html, ics = parts(msg)
        assert msg["Content-Language"] is None  # nothing added to the headers
        if event == "created":
            assert TUESDAY[lang] in text and TUESDAY[lang] in html
        assert f'lang="{lang}"' in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    created_host = parts(messages[("created", "host")])
    created_invitee = parts(messages[("created", "invitee")])
    # The host (UTC) reads 10:00, the invitee (Berlin) 11:00 or 12:00, the locale's way.
    berlin = clock("Europe/Berlin", lang), clock("Europe/Berlin", lang, 30)
    if lang == "en":
        assert "10:00\u202fAM \u2013 10:30\u202fAM (UTC)" in created_host[1]
        assert f"{berlin[0]} \u2013 {berlin[1]} (Europe/Berlin)" in created_invitee[1]
        assert created_invitee[0].startswith("Confirmed: Kickoff with Ada Nakamura on Tue, ")
    else:
        assert "10:00\u201310:30 (UTC)" in created_host[1]
        assert f"{berlin[0]}\u2013{berlin[1]} (Europe/Berlin)" in created_invitee[1]
        assert "AM" not in created_host[0] + created_host[1]
    local = {
        "en": ("Hello Eve Lindqvist,", "Reminder:", "Manage this booking:"),
        "de": ("Hallo Eve Lindqvist,", "Erinnerung:", "Diese Buchung verwalten:"),
        "fr": ("Bonjour Eve Lindqvist,", "Rappel :", "Gérer cette réservation :"),
        "es": ("Hola, Eve Lindqvist:", "Recordatorio:", "Gestionar esta reserva:"),
    }[lang]
    assert local[0] in created_invitee[1]
    assert parts(messages[("reminder", "invitee")])[0].startswith(local[1])
    assert local[2] in created_invitee[3]


def test_invitee_reads_the_booking_language_and_host_their_own(app, host, now):
    set_locale(app, User, host.id, "de")
    b = book(app, host, now)
    set_locale(app, Booking, b.id, "fr")
    with app.app_context(), db.connection_context():
        b = Booking.get_by_id(b.id)
        to_invitee = booking_mail.booking_message(b, "created", "invitee", now)
        to_host = booking_mail.booking_message(b, "created", "host", now)
    subject, text, html, ics = parts(to_invitee)
    assert subject.startswith("Confirmé : Kickoff avec Ada Nakamura le mar. ")
    assert "mardi" in text and "Dienstag" not in text
    assert "Gérer cette réservation :" in ics and "Kickoff : Ada Nakamura et Eve Lindqvist" in ics
    assert to_invitee["From"].addresses[0].display_name == "Ada Nakamura via Kairos"
    assert leaks(to_invitee, "fr", ignore=("Bis bald",)) == {}
    subject, text, html, ics = parts(to_host)
    assert subject.startswith("Neue Buchung: Kickoff mit Eve Lindqvist am Di., ")
    assert "Dienstag" in text and "10:00\u201310:30 (UTC)" in text
    assert "Notizen von Eve Lindqvist:" in text and "Notizen von Eve Lindqvist:" in ics
    assert leaks(to_host, "de", ignore=("Bis bald",)) == {}


def test_no_language_is_english_with_us_times(app, host, now):
    b = book(app, host, now)
    set_locale(app, Booking, b.id, "")
    with app.app_context(), db.connection_context():
        msg = booking_mail.booking_message(Booking.get_by_id(b.id), "created", "invitee", now)
    subject, text, _html, ics = parts(msg)
    assert subject.startswith("Confirmed: ") and clock("Europe/Berlin", "en") in subject
    assert "Tuesday, " in text and "Manage this booking:" in ics


def test_reminder_job_writes_in_the_booking_language(app, host, now, sent):
    b = book(app, host, now)
    set_locale(app, Booking, b.id, "es")
    with app.app_context(), db.connection_context():
        n = mail_jobs.reminder(b.id, SLOT.isoformat(), 1440, now=SLOT - timedelta(days=1))
    assert n == 2
    to_invitee, to_host = sorted(
        sent, key=lambda m: str(m["To"]) != "Eve Lindqvist <eve@example.com>"
    )
    subject, text, _html, _ics = parts(to_invitee)
    assert subject.startswith("Recordatorio: Kickoff con Ada Nakamura en 24 horas (mar, ")
    assert "Su reunión empieza en 24 horas." in text and "martes" in text
    assert leaks(to_invitee, "es", ignore=("Bis bald",)) == {}
    assert parts(to_host)[0].startswith("Reminder: Kickoff with Eve Lindqvist in 24 hours")


@pytest.mark.parametrize("lang", LOCALES)
def test_account_and_host_mails_in_every_language(app, host, now, sent, lang):
    """Reconnect, no video link, co-worker invitation to a meeting, password reset and
    invitation to Kairos, each in the language its reader gets."""
    set_locale(app, User, host.id, lang)
    coworker = Hosts(app).create("noor", name="Noor Haddad", tz="Europe/Paris")
    set_locale(app, User, coworker.id, lang)
    b = book(app, host, now)
    with app.app_context(), db.connection_context():
        conn = Connection.create(
            user=host.id,
            provider="ics",
            label="Kickoff",
            status="needs_reconnect",
            last_error="quota exceeded",
        )
        CalendarRow.create(connection=conn, external_id="primary", name="Kickoff", write=True)
        assert mail_jobs.host_action_required(conn.id, now=now) == 1
        Booking.update(join_status="failed", join_error="").where(Booking.id == b.id).execute()
        assert location_jobs.join_link_failed(b.id, now=now) == 1
        BookingAttendee.create(
            booking=b.id, user=coworker.id, name="Noor Haddad", email=coworker.email
        )
        assert admin_jobs.meeting_attendees(b.id, "created", now=now) == 1
        Booking.update(status="cancelled").where(Booking.id == b.id).execute()
        assert admin_jobs.meeting_attendees(b.id, "cancelled", now=now) == 1
    # The reset and the invitation are asked for on a page (here in ``lang``): the
    # host has a language; the invited person has none, so the page's is used.
    set_locale(app, User, host.id, "")
    with app.test_request_context(f"/?lang={lang}"), db.connection_context():
        passwords.request_reset("ada@example.com", now=now)
        invites.create_invite("lin@example.com", None, now=now)
    with app.app_context(), db.connection_context():
        for row in Outbox.select().where(Outbox.kind.in_(["password_reset", "invite_email"])):
            handler = (
                mail_jobs.password_reset
                if row.kind == "password_reset"
                else admin_jobs.invite_email
            )
            assert handler(now=now, **row.data()) == 1
        assert PasswordReset.select().count() == 1 and Invite.select().count() == 1
    assert len(sent) == 6
    for msg in sent:
        assert leaks(msg, lang, ignore=("Google Calendar",)) == {}, str(msg["Subject"])
    subjects = [parts(m)[0] for m in sent]
    expected = {
        "en": [
            "Action required",
            "No video link",
            "Invitation:",
            "Cancelled:",
            "Reset",
            "Your team",
        ],
        "de": [
            "Aktion erforderlich",
            "Kein Videolink",
            "Einladung:",
            "Abgesagt:",
            "Passwort",
            "Ihr Team",
        ],
        "fr": [
            "Action requise",
            "Aucun lien vidéo",
            "Invitation :",
            "Annulé :",
            "Réinitialiser",
            "Votre équipe",
        ],
        "es": [
            "Acción necesaria",
            "Sin enlace",
            "Invitación:",
            "Cancelada:",
            "Restablecer",
            "Su equipo",
        ],
    }[lang]
    for subject, start in zip(subjects, expected, strict=True):
        assert subject.startswith(start), (subject, start)
    # The co-worker (Paris) reads 11:00 (12:00 in summer); the reset link's expiry is a
    # localized date.
    attendee_text = parts(sent[2])[1]
    paris = clock("Europe/Paris", lang), clock("Europe/Paris", lang, 30)
    assert (paris[0] if lang == "en" else f"{paris[0]}\u2013{paris[1]}") in attendee_text
    reset_text = parts(sent[4])[1]
    monday = {"en": "Monday", "de": "Montag", "fr": "lundi", "es": "lunes"}[lang]
    assert monday in reset_text
