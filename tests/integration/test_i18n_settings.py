"""The host's settings pages in the host's language: every page of ``portal/web/settings`` in
English, German, French and Spanish, chosen by the profile's Language or, when that is
"Automatic", by the browser; weekday names, dates and times as each language writes them."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_time, get_day_names

from portal.booking import questions, service
from portal.models import (
    BusyBlock,
    Calendar,
    Connection,
    Question,
    User,
    Webhook,
    WebhookDelivery,
    db,
)
from portal.runtime import catalogs
from tests.support.clock import at, day
from tests.support.i18n import TRANSLATED, english_leaks, visible_text

HX = {"HX-Request": "true"}
ZONE = ZoneInfo("Europe/Berlin")
# What the host and the invitee typed: names are never translated.
NAMES = (
    "Alice Example",
    "Intro",
    "Bob Invitee",
    "Work",
    "https://cal.example/feed",
    # Webhook event names are machine names (shown beside their translated labels).
    "booking.created",
    "booking.cancelled",
    "booking.rescheduled",
)
# The endpoints these tests need not open: POST-only ones are listed by the url map too.
SKIP = {"connections.status"}  # polled by htmx only; opened below with the header


def html(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def site(app, hosts, auth):
    """Alice (Berlin) signed in, with something on every page: a meeting type with a
    question, a booking, a busy calendar, an override, a token and a webhook with a delivery."""
    alice = hosts.create("alice", name="Alice Example")
    assert auth.login().status_code == 302
    mt = hosts.meeting_type(alice, "intro", name="Intro")
    hosts.token(alice)
    with app.app_context(), db.connection_context():
        host = User.get_by_id(alice.id)
        spec = questions.clean_spec({"label": "Intro", "kind": "short_text"}, "")
        questions.store(mt, spec, 0)
        question = Question.get(Question.meeting_type == mt.id)
        start = at(2, 10, tz="Europe/Berlin")
        booking = service.book(host, mt, start, "Bob Invitee", "bob@example.com", now=at(0, 8))
        conn = Connection.create(user=host, provider="ics", label="https://cal.example/feed")
        cal = Calendar.create(connection=conn, external_id="work", name="Work")
        BusyBlock.create(
            calendar=cal,
            start=at(1, 14, tz="Europe/Berlin").replace(tzinfo=None),
            end=at(1, 15, tz="Europe/Berlin").replace(tzinfo=None),
        )
        hook = Webhook.create(user=host, url="https://hooks.example/in", events="booking.created")
        delivery = WebhookDelivery.create(
            webhook=hook, uid="d1", event_id="e1", event="booking.created", payload="{}"
        )
    return {
        "user": alice,
        "type": mt.id,
        "question": question.id,
        "booking": booking.booking.uid,
        "connection": conn.id,
        "hook": hook.id,
        "delivery": delivery.id,
    }


def pages(s: dict) -> list[str]:
    """One address for every page a host opens in the settings (GET routes)."""
    t, h = s["type"], s["hook"]
    return [
        "/settings/",
        "/settings/profile",
        "/settings/hours",
        "/settings/overrides",
        "/settings/types",
        "/settings/types/new",
        f"/settings/types/{t}",
        f"/settings/types/{t}/questions",
        f"/settings/types/{t}/questions/{s['question']}",
        f"/settings/preview?type={t}&week={day(0)}",
        "/settings/appointments",
        "/settings/appointments?tab=past",
        "/settings/appointments?tab=cancelled",
        f"/settings/appointments/{s['booking']}",
        "/settings/schedule",
        "/settings/schedule?view=week",
        "/settings/tokens",
        "/settings/embed",
        "/settings/meeting",
        "/settings/feed",
        "/settings/webhooks",
        f"/settings/webhooks/{h}",
        f"/settings/webhooks/{h}/deliveries/{s['delivery']}",
        "/settings/connections/",
        f"/settings/connections/{s['connection']}/reconnect",
        "/settings/exchange",
    ]


def test_the_pages_cover_every_settings_route(app, site):
    """A page added to the settings must be added to ``pages`` (and so be translated)."""
    adapter = app.url_map.bind("localhost")
    opened = {adapter.match(path.split("?")[0])[0] for path in pages(site)}
    routes = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("settings", "connections")
        and "GET" in (rule.methods or ())
    }
    assert routes - opened - SKIP == set()


def _speak(app, user, locale: str) -> None:
    with app.app_context(), db.connection_context():
        User.update(locale=locale).where(User.id == user.id).execute()


def admin_catalogue_ready(lang: str) -> bool:
    """Whether the texts these pages share with the admin catalogue are translated yet:
    the forms of ``portal/web/forms.py`` and the ``templates/details`` pages (schedule,
    meeting link, feed, webhooks, questions) are extracted there (translations/admin.cfg)."""
    admin = catalogs.translations(lang, "admin")
    return all(admin.get(m) for m in ("Link name", "Minimum notice (minutes)", "Date"))


def uses_admin_texts(path: str) -> bool:
    """Pages with a form of ``portal/web/forms.py`` or a ``templates/details`` template."""
    path = path.split("?")[0]
    details = ("/questions", "/schedule", "/meeting", "/feed", "/webhooks", "/appointments/")
    forms = ("/profile", "/overrides", "/types/", "/tokens", "/embed")
    return any(part in path for part in details + forms)


@pytest.mark.parametrize("lang", TRANSLATED)
@pytest.mark.parametrize("chosen_by", ["profile", "browser"])
def test_every_settings_page_speaks_the_hosts_language(app, client, site, lang, chosen_by):
    if chosen_by == "profile":
        _speak(app, site["user"], lang)
        headers = {"Accept-Language": "en-US,en;q=0.9"}  # the profile's choice wins
    else:
        headers = {"Accept-Language": f"{lang},en;q=0.5"}  # locale "" = automatic
    shared = {}
    for path in pages(site):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, path
        page = html(response)
        assert f'<html lang="{lang}">' in page, path
        leaks = english_leaks(visible_text(page), lang, ignore=NAMES)
        if leaks and uses_admin_texts(path):
            shared[path] = leaks
        else:
            assert leaks == [], path
    status = client.get(f"/settings/connections/{site['connection']}/status", headers=HX | headers)
    assert english_leaks(visible_text(html(status)), lang, ignore=NAMES) == []
    if shared and not admin_catalogue_ready(lang):
        pytest.xfail(f"texts of the admin catalogue, not translated on this branch: {shared}")
    assert shared == {}


def test_english_is_the_default_and_keeps_its_12_hour_clock(client, site):
    page = html(client.get("/settings/hours"))
    assert '<html lang="en">' in page
    names = get_day_names("wide", locale="en")
    assert f'<span class="vh">{names[0]}</span>' in page  # Monday first
    assert ">9:00\u202fAM</th>" in page and ">1:00\u202fPM</th>" in page
    assert "09:00</th>" not in page


def test_the_hours_grid_in_german(app, client, site):
    _speak(app, site["user"], "de")
    page = html(client.get("/settings/hours"))
    for name in ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"):
        assert f'<span class="vh">{name}</span>' in page
    assert page.index("Montag") < page.index("Sonntag")
    assert '<span aria-hidden="true">Mo.</span>' in page
    # 24-hour row labels, and each cell's name says the day and its half hour.
    assert ">09:00</th>" in page and ">13:00</th>" in page and "AM" not in page
    assert '<span class="vh">Montag 09:00–09:30</span>' in page
    assert '<span class="vh">Sonntag 23:30–24:00</span>' in page
    assert "Wochenzeiten in Europe/Berlin" in page
    summary = html(client.get("/settings/"))
    assert "<dt>Montag</dt><dd>09:00–17:00</dd>" in summary
    assert "<dt>Samstag</dt><dd>nicht verfügbar</dd>" in summary


def test_the_hours_grid_in_american_and_british_english(client, site):
    us = html(client.get("/settings/hours", headers={"Accept-Language": "en-US"}))
    assert '<span class="vh">Monday 9:00\u202fAM–9:30\u202fAM</span>' in us
    gb = html(client.get("/settings/hours", headers={"Accept-Language": "en-GB"}))
    assert '<span class="vh">Monday 09:00–09:30</span>' in gb and "Weekly hours" in gb


def test_saving_the_grid_says_when_in_the_hosts_language(app, client, auth, site):
    _speak(app, site["user"], "fr")
    saved = html(auth.post("/settings/hours", {"cell": ["0-18"]}, headers=HX))
    now = app.config["CLOCK"]().astimezone(ZONE)
    assert f"Enregistré à {format_time(now, 'short', locale='fr')}</span>" in saved
    assert "Enregistrement…" in html(client.get("/settings/hours"))  # the script's "Saving…"


def test_the_preview_in_spanish(app, client, site):
    _speak(app, site["user"], "es")
    monday = day(0)
    page = html(client.get(f"/settings/preview?type={site['type']}&week={day(3)}"))
    assert f"Semana del {format_date(monday, 'medium', locale='es')}" in page

    def clock(hour: int) -> str:
        return format_time(time(hour), "short", locale="es")  # "9:00", 24-hour

    assert f">{clock(9)}</th>" in page and "a.\xa0m." not in page
    names = get_day_names("wide", locale="es")
    assert f"{names[1]} {clock(14)}: Ocupado en el calendario Work" in page
    assert f"{names[2]} {clock(10)}: Reservado: Intro" in page


def test_the_preview_week_in_german(app, client, site):
    _speak(app, site["user"], "de")
    page = html(client.get(f"/settings/preview?type={site['type']}&week={day(3)}"))
    assert f"Woche vom {format_date(day(0), 'medium', locale='de')}" in page
    assert "Belegt im Kalender Work" in page and "Di., " in page


# ---------------------------------------------------------------- the language setting


def profile_form(**changes) -> dict:
    return {
        "name": "Alice Example",
        "slug": "alice",
        "timezone": "Europe/Berlin",
        "lead_time_minutes": "0",
        "allow_booking": "y",
    } | changes


def stored_locale(app, user) -> str:
    with app.app_context(), db.connection_context():
        return User.get_by_id(user.id).locale


def test_the_profile_offers_each_language_in_itself(client, site):
    page = html(client.get("/settings/profile"))
    assert '<option selected value="">Automatic (your browser&#39;s language)</option>' in page
    for code, name in (("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("es", "Español")):
        assert f'<option value="{code}">{name}</option>' in page


def test_saving_the_language_switches_the_settings(app, client, auth, site):
    answer = auth.post("/settings/profile", profile_form(locale="de"))
    assert answer.status_code == 302
    assert stored_locale(app, site["user"]) == "de"
    page = html(client.get(answer.headers["Location"]))
    assert '<html lang="de">' in page and "Profil gespeichert." in page
    assert '<option selected value="de">Deutsch</option>' in page
    # The browser's language no longer decides; "Automatic" hands it back.
    assert '<html lang="de">' in html(client.get("/settings/", headers={"Accept-Language": "fr"}))
    assert auth.post("/settings/profile", profile_form(locale="")).status_code == 302
    assert stored_locale(app, site["user"]) == ""
    page = html(client.get("/settings/", headers={"Accept-Language": "fr-FR,fr"}))
    assert '<html lang="fr">' in page and "Bonjour, Alice Example" in page


def test_saving_the_language_with_htmx_reloads_the_page(app, auth, site):
    answer = auth.post("/settings/profile", profile_form(locale="es"), headers=HX)
    assert answer.status_code == 200 and answer.headers["HX-Refresh"] == "true"
    assert stored_locale(app, site["user"]) == "es"
    # Saving the same language again swaps the form in place, as before.
    again = auth.post("/settings/profile", profile_form(locale="es"), headers=HX)
    assert "HX-Refresh" not in again.headers and "Guardado." in html(again)


@pytest.mark.parametrize("bad", ["xx", "en-GB", "de_DE", "EN", " de"])
def test_an_unknown_language_is_refused_next_to_its_field(app, auth, site, bad):
    _speak(app, site["user"], "de")
    answer = auth.post("/settings/profile", profile_form(locale=bad, name="Alice Renamed"))
    assert answer.status_code == 200
    page = html(answer)
    assert 'id="locale-error">wählen Sie eine Sprache aus der Liste</p>' in page
    assert 'aria-invalid="true"' in page and 'aria-describedby="locale-hint locale-error"' in page
    with app.app_context(), db.connection_context():
        user = User.get_by_id(site["user"].id)
        assert (user.locale, user.name) == ("de", "Alice Example")  # nothing saved


def test_a_profile_posted_without_the_language_keeps_it(app, auth, site):
    _speak(app, site["user"], "fr")
    assert auth.post("/settings/profile", profile_form()).status_code == 302
    assert stored_locale(app, site["user"]) == "fr"


def test_form_errors_come_back_in_german(app, hosts, auth, site):
    hosts.create("bert", name="Bert")
    _speak(app, site["user"], "de")
    page = html(auth.post("/settings/profile", profile_form(slug="bert")))
    assert 'id="slug-error">ein anderer Gastgeber hat diesen Linknamen</p>' in page
    hours = auth.post("/settings/hours", {"cell": ["0-18"], "timezone": "Mars/Base"}, headers=HX)
    assert "Zeitzone: „Mars/Base“ ist uns nicht bekannt" in html(hours)
    ics = auth.post("/settings/connections/add/ics", {"ics-url": ""})
    assert "geben Sie die Adresse des Feeds ein" in html(ics)


def test_flash_messages_are_in_the_hosts_language(app, client, auth, site):
    _speak(app, site["user"], "es")
    tomorrow = day(1) + timedelta(days=7)
    answer = auth.post("/settings/overrides", {"date": tomorrow.isoformat(), "mode": "off"})
    assert answer.status_code == 302
    page = html(client.get(answer.headers["Location"]))
    assert f"Excepción del {format_date(tomorrow, 'medium', locale='es')} guardada." in page
    assert "Día libre" in page


def test_a_days_end_reads_24_00_in_24_hour_locales(app, client, auth, site):
    _speak(app, site["user"], "de")
    when = day(8)
    auth.post(
        "/settings/overrides", {"date": when.isoformat(), "mode": "hours", "hours": "22:00-24:00"}
    )
    assert "22:00–24:00" in html(client.get("/settings/overrides"))
    _speak(app, site["user"], "en")
    page = html(client.get("/settings/overrides"))
    assert f"{format_time(time(22), 'short', locale='en')}–12:00\u202fAM" in page
