"""The invitee's pages in English, German, French and Spanish (issue #14).

Every page and state (profile, month, day, form, refused form, confirmation, manage,
cancelled, embed, 404) in each language with no English left, the dates and times in
the locale's own formats, the language chosen by ``?lang=`` or ``Accept-Language``, the
switcher, the choice kept in every picker link, and the booking's language stored
(web form and API) and used again on its manage page.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_skeleton

from portal.booking import service
from portal.i18n import LANGUAGES
from portal.models import Booking, db
from portal.web.timezones import offset_label
from tests.support.clock import NOW, at, day, iso_z
from tests.support.i18n import LOCALES, english_leaks, visible_text

# What the host and the invitee typed: never translated.
TYPED = ("Alice Example", "Intro call", "Bob Invitee", "bob@example.com", "Hola")
# One Tuesday slot per language, so each can book its own (Berlin time).
SLOTS = {lang: at(1, 9 + i, tz="Europe/Berlin") for i, lang in enumerate(LOCALES)}


@pytest.fixture
def site(app, hosts, now, monkeypatch):
    """Alice in Berlin (Mon–Fri 09–17) with a 30-minute type; the clock stopped at ``now``."""
    monkeypatch.setattr("portal.clock.now", lambda: now)
    alice = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    mt = hosts.meeting_type(
        alice, "intro", name="Intro call", location="https://meet.example/a", description="Hola"
    )
    return alice, mt


def no_english(html: str, lang: str) -> None:
    assert english_leaks(visible_text(html), lang, ignore=TYPED) == [], lang


def slot_times(html: str) -> list[str]:
    return re.findall(r'class="slot"[^>]*>([^<]+)<', html)


def booking_form(client, lang: str, **headers) -> tuple[str, dict[str, str], str]:
    """The form for the language's slot: (action, hidden fields, page)."""
    query = {"start": iso_z(SLOTS[lang]), "tz": "Europe/Berlin", "lang": lang}
    page = client.get("/alice/intro", query_string=query, headers=headers)
    assert page.status_code == 200 and 'name="form_token"' in page.text
    form = re.search(r'<form method="post".*?</form>', page.text, re.S).group(0)
    action = unescape(re.search(r'action="([^"]+)"', form).group(1))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return action, fields, page.text


def book_in(client, lang: str, **fields):
    action, hidden, _page = booking_form(client, lang)
    data = hidden | {"name": "Bob Invitee", "email": "bob@example.com", "notes": ""} | fields
    return client.post(action, data=data)


def stored_locale(app, uid: str) -> str:
    with app.app_context(), db.connection_context():
        return Booking.get(Booking.uid == uid).locale


# ---------------------------------------------------------------- every page, every language


@pytest.mark.parametrize("lang", LOCALES)
def test_every_public_page_is_in_the_language_asked_for(client, site, lang):
    q = f"tz=Europe/Berlin&lang={lang}"
    pages = {
        "profile": client.get(f"/alice?lang={lang}"),
        "month": client.get(f"/alice/intro?{q}"),
        "day": client.get(f"/alice/intro?{q}&date={day(1)}"),
        "day fragment": client.get(
            f"/alice/intro?{q}&date={day(1)}", headers={"HX-Request": "true", "HX-Target": "slots"}
        ),
        "embed": client.get(f"/embed/alice/intro?{q}&date={day(1)}"),
        "form": client.get(
            "/alice/intro",
            query_string={"start": iso_z(SLOTS[lang]), "tz": "Europe/Berlin", "lang": lang},
        ),  # noqa: E501
        "404": client.get(f"/nowhere/at/all?lang={lang}"),
        "404 type": client.get(f"/alice/nope?lang={lang}"),
    }
    refused = book_in(client, lang, email="not-an-address")
    assert refused.status_code == 422
    pages["refused form"] = refused
    booked = book_in(client, lang)
    assert booked.status_code == 303 and f"lang={lang}" in booked.headers["Location"]
    pages["confirmation"] = client.get(booked.headers["Location"])
    manage = urlsplit(booked.headers["Location"])
    token = parse_qs(manage.query)["token"][0]
    pages["manage"] = client.get(f"{manage.path}?token={token}")  # the booking's own language
    pages["reschedule"] = client.get(f"{manage.path}?token={token}&reschedule=1&date={day(2)}")
    pages["manage embed"] = client.get(f"/embed{manage.path}?token={token}")
    # The .ics download, opened without ?lang=, is in the booking's language too.
    ics = client.get(f"{manage.path}/invite.ics?token={token}")
    assert ics.status_code == 200
    description = ics.text.replace("\r\n ", "").split("DESCRIPTION:", 1)[1].split("\r\n")[0]
    words = re.sub(r"https?://\S+", " ", description.replace("\\n", " "))  # links aside
    assert english_leaks(words, lang, ignore=("Alice Example",)) == []
    for name, resp in pages.items():
        assert resp.status_code in (200, 404, 422), name
        no_english(resp.text, lang)
        if name != "day fragment":
            assert f'<html lang="{lang}">' in resp.text, name
    # The refusal is the invitee's language too, next to the field at fault.
    error = re.search(r'id="email-error">([^<]+)<', refused.text).group(1)
    assert (
        error
        == {
            "en": error,  # English adds the validator's own reason
            "de": "Ungültige E-Mail-Adresse",
            "fr": "Adresse e-mail non valide",
            "es": "Dirección de correo electrónico no válida",
        }[lang]
    )
    assert error.startswith("Invalid e-mail address") or lang != "en"
    # Cancelled, seen again from the e-mail's link (no ?lang=): still the booking's language.
    page = pages["manage"].text
    form = re.search(r'<form method="post"[^>]*class="cancel-form".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    action = unescape(re.search(r'action="([^"]+)"', form).group(1))
    assert client.post(action, data=fields).status_code == 303
    cancelled = client.get(f"{manage.path}?token={token}")
    assert 'class="status status-cancelled"' in cancelled.text
    no_english(cancelled.text, lang)
    assert f'<html lang="{lang}">' in cancelled.text


def test_german_dates_weekdays_and_times(client, site):
    page = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}&lang=de").text
    month = format_skeleton("yMMMM", day(1), locale="de")  # "Dezember 2026"
    assert re.fullmatch(r"[A-Z][a-zä]+ 20\d\d", month) and f'id="cal-title">{month}<' in page
    heads = re.findall(r'<th scope="col"><abbr title="([^"]+)">([^<]+)</abbr>', page)
    assert heads[0] == ("Montag", "Mo.") and heads[6] == ("Sonntag", "So.")
    tuesday = format_date(day(1), "full", locale="de")  # "Dienstag, 1. Dezember 2026"
    assert tuesday.startswith("Dienstag, ") and f">{tuesday}<" in page  # the day's heading
    assert slot_times(page)[:2] == ["09:00", "09:30"]
    assert f'aria-label="{tuesday}, 09:00 – 09:30"' in page
    assert f'aria-label="{tuesday}, Zeiten verfügbar"' in page
    # The zone list: CLDR's names and a 24-hour clock, the regions translated.
    vienna = offset_label(NOW.astimezone(ZoneInfo("Europe/Vienna")))  # +01:00 or +02:00
    assert '<optgroup label="Amerika">' in page and f"Wien, Österreich ({vienna}, jetzt " in page
    berlin = offset_label(NOW.astimezone(ZoneInfo("Europe/Berlin")))
    assert f'<option value="Europe/Berlin" selected>Berlin, Deutschland ({berlin}, jetzt' in page


def test_english_times_follow_the_territory(client, site):
    us = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}").text
    assert slot_times(us)[:2] == ["9:00\u202fAM", "9:30\u202fAM"]
    tuesday = format_date(day(1), "full", locale="en")  # "Tuesday, December 1, 2026"
    assert tuesday.startswith("Tuesday, ")
    assert f'aria-label="{tuesday}, 9:00\u202fAM – 9:30\u202fAM"' in us
    assert '<th scope="col"><abbr title="Monday">Mo</abbr>' in us
    gb = client.get(
        f"/alice/intro?tz=Europe/Berlin&date={day(1)}", headers={"Accept-Language": "en-GB"}
    ).text
    assert slot_times(gb)[:2] == ["09:00", "09:30"] and '<html lang="en">' in gb
    assert format_date(day(1), "full", locale="en_GB") in gb  # "Tuesday, 1 December 2026"
    fr = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}&lang=fr").text
    assert slot_times(fr)[0] == "09:00" and format_date(day(1), "full", locale="fr") in fr
    es = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}&lang=es").text
    assert slot_times(es)[0] == "9:00"  # CLDR's Spanish: no leading zero
    assert format_date(day(1), "full", locale="es") in es  # "martes, 1 de diciembre de 2026"


# ---------------------------------------------------------------- choosing the language


@pytest.mark.parametrize(
    ("accept", "lang", "first"),
    [
        ("de-AT,de;q=0.9,en;q=0.5", "de", "09:00"),
        ("en-GB,en;q=0.8", "en", "09:00"),
        ("en-US", "en", "9:00\u202fAM"),
        ("fr-CA,fr;q=0.9", "fr", "09 h 00"),  # Canadian French writes "h"
        ("ja,zh;q=0.8", "en", "9:00\u202fAM"),  # nothing Kairos speaks: English
    ],
)
def test_accept_language_chooses_the_language_and_the_clock(client, site, accept, lang, first):
    page = client.get(
        f"/alice/intro?tz=Europe/Berlin&date={day(1)}", headers={"Accept-Language": accept}
    ).text
    assert f'<html lang="{lang}">' in page and slot_times(page)[0] == first


def test_lang_in_the_address_beats_accept_language(client, site):
    page = client.get(
        f"/alice/intro?tz=Europe/Berlin&date={day(1)}&lang=es",
        headers={"Accept-Language": "de-DE,de"},
    ).text
    assert '<html lang="es">' in page and "Elija" in page or "Horarios" in page
    assert 'aria-current="true">Español<' in page
    # An unknown ?lang= is ignored.
    page = client.get("/alice/intro?lang=xx", headers={"Accept-Language": "fr"}).text
    assert '<html lang="fr">' in page


def test_language_switcher_links_the_same_page_in_each_language(client, site):
    page = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}&lang=de").text
    nav = re.search(r'<nav class="lang-switch" aria-label="Sprache">.*?</nav>', page, re.S)
    assert nav is not None
    links = re.findall(
        r'<a href="([^"]+)" lang="(\w+)" hreflang="(\w+)"([^>]*)>([^<]+)</a>', nav[0]
    )
    assert [(code, name) for _h, code, _hl, _c, name in links] == list(LANGUAGES.items())
    for href, code, hreflang, current, _name in links:
        url = urlsplit(unescape(href))
        query = parse_qs(url.query)
        assert url.path == "/alice/intro" and query["lang"] == [code] and hreflang == code
        assert query["date"] == [day(1).isoformat()] and query["tz"] == ["Europe/Berlin"]
        assert ('aria-current="true"' in current) == (code == "de")
    # On the embed, the manage page and the error page too.
    assert 'class="lang-switch"' in client.get("/embed/alice/intro").text
    assert 'class="lang-switch"' in client.get("/alice").text
    assert 'class="lang-switch"' in client.get("/nowhere/at/all").text


def test_the_choice_travels_in_every_picker_link(client, site):
    page = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}&lang=fr").text
    days = re.findall(r'class="cal-day available" href="([^"]+)"', page)
    slots = re.findall(r'class="slot" href="([^"]+)"', page)
    nxt = re.search(r'id="cal-next" class="cal-nav" href="([^"]+)"', page).group(1)
    for href in [*days, *slots, nxt]:
        assert parse_qs(urlsplit(unescape(href)).query)["lang"] == ["fr"], href
    zone_form = re.search(r'<form id="tz-form".*?</form>', page, re.S).group(0)
    assert '<input type="hidden" name="lang" value="fr">' in zone_form
    # Following a slot keeps French up to the form, whose answer keeps it too.
    form = client.get(unescape(slots[0])).text
    assert '<html lang="fr">' in form and "Vos informations" in form
    assert 'action="/alice/intro?lang=fr"' in form
    # Without ?lang= the links stay as they were.
    plain = client.get(f"/alice/intro?tz=Europe/Berlin&date={day(1)}").text
    assert "lang=" not in "".join(re.findall(r'class="slot" href="([^"]+)"', plain))


# ---------------------------------------------------------------- the booking keeps its language


def test_web_booking_stores_the_pages_language(client, app, site):
    resp = book_in(client, "fr")
    uid = urlsplit(resp.headers["Location"]).path.rsplit("/", 1)[1]
    assert stored_locale(app, uid) == "fr"
    # Chosen by the browser (no ?lang=): the language without its territory.
    query = {"start": iso_z(SLOTS["de"]), "tz": "Europe/Berlin"}
    headers = {"Accept-Language": "de-AT"}
    page = client.get("/alice/intro", query_string=query, headers=headers).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    data = fields | {"name": "Bob Invitee", "email": "bob@example.com"}
    resp = client.post("/alice/intro", data=data, headers=headers)
    uid = urlsplit(resp.headers["Location"]).path.rsplit("/", 1)[1]
    assert stored_locale(app, uid) == "de"
    # Its manage page opens in German even for a browser that asks for nothing.
    manage = client.get(resp.headers["Location"]).text
    assert '<html lang="de">' in manage and "Bestätigt" in manage
    # … unless the address asks for another language.
    assert '<html lang="es">' in client.get(resp.headers["Location"] + "&lang=es").text


def test_a_moved_booking_keeps_its_language(app, site, now):
    alice, mt = site
    with app.test_request_context(), db.connection_context():
        first = service.book(
            alice, mt, SLOTS["de"], "Bob Invitee", "bob@example.com", now=now, locale="de"
        ).booking
        moved = service.reschedule(first, at(2, 10, tz="Europe/Berlin"), now=now)
        assert moved.locale == "de"


@pytest.mark.parametrize(
    ("body", "headers", "locale"),
    [
        ({"language": "es"}, {"Accept-Language": "de"}, "es"),
        ({}, {"Accept-Language": "fr-CH, de;q=0.5"}, "fr"),
        ({}, {}, "en"),
    ],
)
def test_api_booking_stores_its_language(client, app, site, body, headers, locale):
    request = {
        "start": iso_z(SLOTS["en"]),
        "name": "Bob Invitee",
        "email": "bob@example.com",
        "timezone": "Europe/Berlin",
    }
    resp = client.post("/api/v1/hosts/alice/intro/bookings", json=request | body, headers=headers)
    assert resp.status_code == 201, resp.json
    assert stored_locale(app, resp.json["uid"]) == locale


@pytest.mark.parametrize("language", ["xx", "de-DE", "", None, 3])
def test_api_refuses_a_language_it_does_not_speak(client, site, language):
    request = {
        "start": iso_z(SLOTS["en"]),
        "name": "Bob Invitee",
        "email": "bob@example.com",
        "language": language,
    }
    resp = client.post("/api/v1/hosts/alice/intro/bookings", json=request)
    assert resp.status_code == 422
    assert resp.json["error"]["field"] == "language"
