"""The host's and the administrator's pages outside settings come out in en, de, fr and es.

Signed-in pages follow the host's ``User.locale``; the pages seen before signing in
(sign-in, first run, passwords, invitations, sign-up) follow ``Accept-Language`` and
``?lang=``, and carry a language switcher. Each page is checked for English left in what
a reader sees (``tests.support.i18n``), and for a few concrete localised texts and dates.

The settings frame around the signed-in pages (header links, sub-navigation) belongs to
the settings catalogue, so those pages are checked inside ``<main>`` without the frame.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.i18n import DOMAINS
from portal.models import (
    AppSetting,
    Invite,
    Question,
    User,
    WebhookDelivery,
    db,
    to_db,
)
from portal.notify import webhooks
from portal.org import invites
from portal.runtime import catalogs
from tests.support.app import AuthActions, Hosts, csrf_token
from tests.support.clock import NOW
from tests.support.i18n import LOCALES, TRANSLATED, english_leaks, visible_text

# Names typed by people (never translated), and the code words of the pages.
TYPED = (
    *("Alice Admin", "Bob Builder", "Intro", "What is your role?", "hooks.example.com"),
    *("booking.created", "booking.cancelled", "booking.rescheduled"),
)
# Texts of other catalogues on these pages: the forms of portal/web/settings (settings) and
# the webhook event names of portal.notify (mail). Ignored only while no catalogue on this
# branch translates them; once those parts are translated they are checked like the rest.
ELSEWHERE = (
    "The name of the answer in the API and webhooks, e.g. company. Made from the question "
    "when left empty.",
    "For single choice and checkboxes: one choice per line.",
    "Kairos POSTs JSON here, signed with the X-Kairos-Signature header.",
    "What receives it, for your records.",
    "New booking",
    "Booking cancelled",
    "Booking rescheduled",
    "Personal meeting link",
    "Your Zoom, Teams, Webex or other room, e.g. https://zoom.us/j/123456789. Meeting types "
    "set to “My personal meeting link” send invitees here.",
    "Plain text under the e-mails your invitees get (confirmations, changes, reminders). "
    "Links and markup are shown as typed.",
)
SIGN_IN = {"en": "Sign in", "de": "Anmelden", "fr": "Se connecter", "es": "Iniciar sesión"}


def main_only(html: str) -> str:
    """The page's own content: ``<main>`` without the settings sub-navigation."""
    body = html.split("<main", 1)[1].split("</main>", 1)[0]
    return re.sub(r'<nav class="subnav".*?</nav>', "", body, flags=re.S)


def assert_no_leaks(html: str, lang: str, whole: bool = False) -> None:
    text = visible_text(html if whole else main_only(html))
    leaks = english_leaks(text, lang, ignore=TYPED + untranslated_elsewhere(lang))
    assert leaks == [], [line for line in text.splitlines() if any(w in line for w in leaks)]


def untranslated_elsewhere(lang: str) -> tuple[str, ...]:
    done = {m for d in DOMAINS for m, t in catalogs.translations(lang, d).items() if t}
    return tuple(text for text in ELSEWHERE if text not in done)


@pytest.fixture
def hosts(app):
    return Hosts(app)


@pytest.fixture
def site(app, hosts):
    """An admin with a co-worker, a meeting type with a question, a webhook with a
    delivery, an open invitation and a failed connection; returns their ids."""
    alice = hosts.create("alice", admin=True, name="Alice Admin")
    bob = hosts.create("bob", name="Bob Builder")
    mt = hosts.meeting_type(alice, "intro")
    with app.app_context(), db.connection_context():
        Question.create(
            meeting_type=mt.id, key="role", label="What is your role?", kind="short_text"
        )
        hook, _secret = webhooks.create(
            User.get_by_id(alice.id), "https://hooks.example.com/k", ["booking.created"]
        )
        when = NOW + timedelta(minutes=30)  # a Monday, 08:30 UTC
        delivery = WebhookDelivery.create(
            webhook=hook.id,
            uid="dlv_1",
            event_id="evt_1",
            event="booking.created",
            payload=json.dumps({"id": "evt_1"}),
            status="failed",
            attempts=6,
            response_status=500,
            response_body="oops",
            created_at=to_db(when),
            last_attempt_at=to_db(when + timedelta(minutes=90)),
        )
        invites.create_invite("carol@example.com", User.get_by_id(alice.id))
    return {
        "alice": alice.id,
        "bob": bob.id,
        "type": mt.id,
        "hook": hook.id,
        "delivery": delivery.id,
    }


def signed_in(app, client, lang: str):
    """Alice signed in, with her language set to ``lang``."""
    with app.app_context(), db.connection_context():
        User.update(locale=lang).where(User.email == "alice@example.com").execute()
    answer = AuthActions(client).login()
    assert answer.status_code == 302
    return client


HOST_PAGES = [
    "/settings/types/{type}/questions",
    "/settings/types/{type}/questions/{question}",
    "/settings/webhooks",
    "/settings/webhooks/{hook}",
    "/settings/webhooks/{hook}/deliveries/{delivery}",
    "/settings/feed",
    "/settings/meeting",
    "/settings/schedule?view=list",
    "/settings/schedule?view=week",
    "/settings/find-time/?with={bob}",
    "/settings/admin/",
    "/settings/admin/organisation",
    "/settings/admin/jobs",
    "/settings/admin/exchange",
]


@pytest.mark.parametrize("lang", LOCALES)
def test_host_pages_in_the_hosts_language(app, client, site, lang):
    with app.app_context(), db.connection_context():
        question = Question.get(Question.meeting_type == site["type"]).id
    signed_in(app, client, lang)
    client.post(
        "/settings/feed", data={"csrf_token": csrf_token(client, "/settings/feed")}
    )  # a feed URL to show
    for path in HOST_PAGES:
        url = path.format(question=question, **site)
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.get_data(as_text=True)
        assert f'<html lang="{lang}">' in html, url
        assert_no_leaks(html, lang)


def test_host_pages_show_localised_words_and_dates(app, client, site):
    signed_in(app, client, "de")
    hook = client.get(f"/settings/webhooks/{site['hook']}").get_data(as_text=True)
    assert "Zustellprotokoll" in hook
    # 08:30 UTC in Alice's Europe/Berlin: German medium date, 24-hour time with seconds.
    local = (NOW + timedelta(minutes=30)).astimezone(ZoneInfo("Europe/Berlin"))
    assert f"{local:%d.%m.%Y, %H}:30:00" in hook  # "07.12.2026, 09:30:00"
    jobs = client.get("/settings/admin/jobs").get_data(as_text=True)
    assert "Warteschlange" in jobs or "Redis ist nicht erreichbar" in jobs
    people = client.get("/settings/admin/").get_data(as_text=True)
    assert "Offene Einladungen" in people and "läuft ab:" in people

    signed_in(app, client, "en")
    hook = client.get(f"/settings/webhooks/{site['hook']}").get_data(as_text=True)
    us = f"{local:%b} {local.day}, {local.year}, {local.hour}:30:00\u202fAM"
    assert us in hook  # "Dec 7, 2026, 9:30:00 AM"


def test_find_a_time_grid_reads_the_hosts_clock(app, client, site):
    signed_in(app, client, "fr")
    week = NOW.date().isoformat()  # a Monday
    html = client.get(f"/settings/find-time/?with={site['bob']}&week={week}").get_data(as_text=True)
    assert re.search(rf"Semaine du \d{{1,2}} [a-zéû]+\.? {NOW.year}", html)
    assert '<th scope="row" class="ft-time">09:00</th>' in html
    assert re.search(r"lun\. \d{1,2} [a-zéû]+\.?<", html)  # "lun. 7 déc.", "lun. 14 juin"

    signed_in(app, client, "en")
    html = client.get(f"/settings/find-time/?with={site['bob']}&week={week}").get_data(as_text=True)
    assert '<th scope="row" class="ft-time">9:00\u202fAM</th>' in html
    assert re.search(r"Mon, [A-Z][a-z]{2} \d{1,2}<", html)


# --------------------------------------------------------------- before signing in


def public_pages(app, site) -> list[str]:
    from portal.org.passwords import request_reset, reset_token

    with app.app_context(), db.connection_context():
        AppSetting.write("self_signup", True)
        AppSetting.write("signup_domains", ["example.com"])
        invite = Invite.get(Invite.email == "carol@example.com")
        reset = request_reset("alice@example.com")
        token = reset_token(reset, User.get_by_id(site["alice"]))
        return [
            "/login",
            "/password/forgot",
            f"/password/reset/{token}",
            "/password/reset/not-a-token",
            invites.invite_path(invite),
            "/invite/not-a-token",
            "/signup",
        ]


@pytest.mark.parametrize("lang", LOCALES)
def test_account_pages_follow_the_browser(app, client, site, lang):
    headers = {"Accept-Language": f"{lang},en;q=0.5"}
    for path in public_pages(app, site):
        html = client.get(path, headers=headers).get_data(as_text=True)
        assert f'<html lang="{lang}">' in html, path
        assert_no_leaks(html, lang, whole=True)
        assert 'class="lang-switch"' in html, path
    sent = client.post(
        "/password/forgot",
        data={"email": "nobody@example.com", "csrf_token": csrf_token(client, "/password/forgot")},
        headers=headers,
    ).get_data(as_text=True)
    assert_no_leaks(sent, lang, whole=True)


@pytest.mark.parametrize("lang", LOCALES)
def test_first_run_setup_in_the_browsers_language(client, lang):
    html = client.get("/setup", headers={"Accept-Language": lang}).get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    assert_no_leaks(html, lang, whole=True)
    if lang == "de":
        assert "Willkommen bei Kairos" in html and "Konto erstellen" in html


def test_sign_in_page_in_german_with_switcher(client, site):
    html = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}).get_data(
        as_text=True
    )
    assert f'<button type="submit">{SIGN_IN["de"]}</button>' in html
    nav = re.search(r'<nav class="lang-switch"[^>]*>(.*?)</nav>', html, re.S)
    assert nav, html
    links = re.findall(r"<a ([^>]*)>([^<]*)</a>", nav.group(1))
    assert [name for _attrs, name in links] == ["English", "Deutsch", "Français", "Español"]
    for attrs, _name in links:
        code = re.search(r'lang="(\w+)"', attrs).group(1)
        assert f'hreflang="{code}"' in attrs and f"lang={code}" in attrs
        assert ('aria-current="true"' in attrs) == (code == "de")
    # Following the switcher: the page in French, whatever the browser says.
    french = client.get("/login?lang=fr", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert f'<button type="submit">{SIGN_IN["fr"]}</button>' in french
    assert 'action="/login?lang=fr"' in french  # the form keeps the language when sent


def test_sign_in_error_in_french_keeps_the_field_error(client, site):
    headers = {"Accept-Language": "fr"}
    token = csrf_token(client, "/login")
    wrong = client.post(
        "/login",
        data={"email": "alice@example.com", "password": "wrong-password", "csrf_token": token},
        headers=headers,
    ).get_data(as_text=True)
    assert "Cet e-mail et ce mot de passe ne correspondent à aucun compte." in wrong
    assert_no_leaks(wrong, "fr", whole=True)
    empty = client.post(
        "/login", data={"email": "", "password": "", "csrf_token": token}, headers=headers
    ).get_data(as_text=True)
    error = re.search(r'<p class="field-error" id="email-error">([^<]+)</p>', empty)
    assert error and error.group(1) != "This field is required.", empty
    assert 'aria-invalid="true"' in empty
    assert_no_leaks(empty, "fr", whole=True)


def test_too_many_attempts_in_spanish(app, client, site, monkeypatch):
    from portal.org import throttle

    def refuse(*_args, **_kwargs):
        raise throttle.TooManyAttempts(600)

    monkeypatch.setattr(throttle, "authenticate", refuse)
    answer = client.post(
        "/login",
        data={"email": "a@example.com", "password": "x", "csrf_token": csrf_token(client)},
        headers={"Accept-Language": "es"},
    )
    assert answer.status_code == 429
    assert "Vuelva a intentarlo en 10 minutos." in answer.get_data(as_text=True)


def test_invitation_errors_in_german(app, client, site):
    with app.app_context(), db.connection_context():
        invite = Invite.get(Invite.email == "carol@example.com")
        path = invites.invite_path(invite)
    headers = {"Accept-Language": "de"}
    token = csrf_token(client, path)
    html = client.post(
        path,
        data={"name": "", "slug": "x", "password": "short", "confirm": "", "csrf_token": token},
        headers=headers,
    ).get_data(as_text=True)
    assert "geben Sie Ihren Namen ein" in html
    assert_no_leaks(html, "de", whole=True)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translated_form_errors_on_the_admin_pages(app, client, site, lang):
    signed_in(app, client, lang)
    html = (
        AuthActions(client)
        .post(
            "/settings/admin/organisation",
            data={"connect_policy": "domains", "connect_domains": "", "hours_0": "9-8"},
        )
        .get_data(as_text=True)
    )
    assert 'class="field-error"' in html
    assert_no_leaks(html, lang)
