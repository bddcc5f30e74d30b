"""The admin area: who may reach it, people (admins, deactivation), organisation settings.

Every admin route is found in ``app.url_map`` (so a page added later is covered
too) and must answer 404 to a member, refuse a POST without the CSRF token,
and refuse to be framed.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from portal import clock, crypto
from portal.booking import service
from portal.booking.rules import available_slots
from portal.models import (
    ApiToken,
    AppSetting,
    Booking,
    Connection,
    MeetingType,
    User,
    WeeklyHours,
    db,
)
from portal.org import member_defaults, people, settings
from portal.org.errors import AdminError
from tests.integration.test_settings_security import build, dump
from tests.support.app import AuthActions


@pytest.fixture
def team(app, hosts):
    ada = hosts.create("ada", name="Ada Admin", admin=True)
    bob = hosts.create("bob", name="Bob Member")
    return {"ada": ada, "bob": bob}


def admin_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]


VALUES = {"user_id": 1, "invite_id": 1, "job_id": "x"}


def test_there_are_admin_pages_for_people_organisation_and_jobs(app):
    paths = {r.rule for r in admin_rules(app)}
    assert {"/settings/admin/", "/settings/admin/organisation", "/settings/admin/jobs"} <= paths


def test_every_admin_route_is_404_for_a_member(app, client, team):
    auth = AuthActions(client)
    assert auth.login("bob@example.com").status_code == 302
    token = auth.token("/settings/")
    before = dump(app)
    rules = admin_rules(app)
    assert len(rules) >= 8
    for rule in rules:
        path = build(rule, VALUES | {"user_id": team["ada"].id})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for headers in ({}, {"HX-Request": "true"}):
                answer = client.open(
                    path,
                    method=method,
                    data={"csrf_token": token, "value": "1", "email": "x@example.com"},
                    headers=headers,
                )
                assert answer.status_code == 404, (method, rule.rule, answer.status_code)
    assert dump(app) == before
    with app.app_context(), db.connection_context():
        assert not User.get_by_id(team["bob"].id).is_admin
        assert User.get_by_id(team["ada"].id).is_active


def test_signed_out_visitors_are_sent_to_sign_in_and_posts_fail_csrf(client, app, team):
    for rule in admin_rules(app):
        path = build(rule, VALUES)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = client.open(path, method=method)
            assert answer.status_code in (302, 400), (method, rule.rule)
            if answer.status_code == 302:
                assert answer.headers["Location"].startswith("/login?next=")


def test_admin_posts_without_csrf_token_are_refused(app, client, team):
    AuthActions(client).login("ada@example.com")
    before = dump(app)
    posts = [r for r in admin_rules(app) if "POST" in r.methods]
    assert len(posts) >= 7
    for rule in posts:
        path = build(rule, VALUES | {"user_id": team["bob"].id})
        for headers in ({}, {"HX-Request": "true"}, {"X-CSRFToken": "forged"}):
            answer = client.post(
                path, data={"value": "1", "email": "c@example.com"}, headers=headers
            )
            assert answer.status_code == 400, (rule.rule, answer.status_code)
    assert dump(app) == before


def test_admin_pages_render_and_refuse_framing(app, client, team):
    AuthActions(client).login("ada@example.com")
    for path in ("/settings/admin/", "/settings/admin/organisation", "/settings/admin/jobs"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Content-Security-Policy"].endswith("; frame-ancestors 'none'")
        assert answer.headers["Cache-Control"] == "no-store"
    settings = client.get("/settings/").get_data(as_text=True)
    assert 'href="/settings/admin/"' in settings  # the admin sees the link
    bob = AuthActions(app.test_client())
    bob.login("bob@example.com")
    assert 'href="/settings/admin/"' not in bob.client.get("/settings/").get_data(as_text=True)


# ---------------------------------------------------------------- people


def test_people_page_shows_connection_health(app, client, team):
    with app.app_context(), db.connection_context():
        Connection.create(
            user=team["bob"].id,
            provider="caldav",
            label="bob@dav.example",
            status="needs_reconnect",
            last_error="401 Unauthorized from the server",
        )
    AuthActions(client).login("ada@example.com")
    page = client.get("/settings/admin/").get_data(as_text=True)
    assert "Bob Member" in page and "bob@dav.example" in page
    assert "needs reconnect" in page and "401 Unauthorized from the server" in page
    assert "never synced" in page


def test_make_admin_and_the_last_admin_stays(app, client, team):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    ada, bob = team["ada"], team["bob"]
    # Ada alone cannot step down.
    answer = auth.post(f"/settings/admin/people/{ada.id}/admin", {"value": "0"})
    assert answer.status_code == 302
    assert "needs at least one admin" in client.get("/settings/admin/").get_data(as_text=True)
    with app.app_context(), db.connection_context():
        assert User.get_by_id(ada.id).is_admin
    # Bob becomes an admin; then Ada may step down, and loses the admin pages at once.
    auth.post(f"/settings/admin/people/{bob.id}/admin", {"value": "1"})
    with app.app_context(), db.connection_context():
        assert User.get_by_id(bob.id).is_admin
    answer = auth.post(f"/settings/admin/people/{ada.id}/admin", {"value": "0"})
    assert answer.headers["Location"] == "/settings/"
    assert client.get("/settings/admin/").status_code == 404
    with app.app_context(), db.connection_context():
        assert not User.get_by_id(ada.id).is_admin
        with pytest.raises(AdminError):
            people.set_admin(User.get_by_id(bob.id), False)  # now Bob is the last one


def test_admin_cannot_deactivate_themselves_or_the_last_admin(app, client, team):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    auth.post(f"/settings/admin/people/{team['ada'].id}/deactivate")
    with app.app_context(), db.connection_context():
        assert User.get_by_id(team["ada"].id).is_active
        with pytest.raises(AdminError, match="at least one admin"):
            people.deactivate(User.get_by_id(team["bob"].id), User.get_by_id(team["ada"].id))


def test_unknown_member_is_404(client, team):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    assert auth.post("/settings/admin/people/9999/deactivate").status_code == 404
    assert auth.post("/settings/admin/invites/9999/revoke").status_code == 404


@pytest.fixture
def bob_world(app, hosts, team):
    """Bob with a meeting type, a booking, an API token and a connected calendar."""
    bob = team["bob"]
    mt = hosts.meeting_type(bob, "chat", name="Chat")
    token = hosts.token(bob)
    with app.app_context(), db.connection_context():
        host = User.get_by_id(bob.id)
        now = clock.now()
        start = available_slots(host, mt, now, now + timedelta(days=14), now=now)[0]
        booked = service.book(host, mt, start, "Carol", "carol@example.com", now=now).booking
        conn = Connection.create(user=host, provider="caldav", label="bob@dav.example")
        crypto.seal(conn, "secret", {"password": "hunter2"})
        conn.save()
    return {"token": token, "booking": booked, "connection": conn}


def test_deactivation_ends_sessions_tokens_pages_and_calendar_access(app, client, team, bob_world):
    bob_client = app.test_client()
    AuthActions(bob_client).login("bob@example.com")
    assert bob_client.get("/settings/").status_code == 200
    bearer = {"Authorization": f"Bearer {bob_world['token']}"}
    assert bob_client.get("/api/v1/me", headers=bearer).status_code == 200
    assert client.get("/bob").status_code == 200 and client.get("/bob/chat").status_code == 200

    auth = AuthActions(client)
    auth.login("ada@example.com")
    answer = auth.post(f"/settings/admin/people/{team['bob'].id}/deactivate")
    assert answer.status_code == 302

    # The session he already has stops working with the very next request.
    answer = bob_client.get("/settings/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert bob_client.get("/api/v1/me", headers=bearer).status_code == 401
    # He cannot sign in again, and his booking pages are gone.
    again = AuthActions(app.test_client())
    assert again.login("bob@example.com").status_code == 200
    anonymous = app.test_client()
    assert anonymous.get("/bob").status_code == 404
    assert anonymous.get("/bob/chat").status_code == 404
    slots = anonymous.get("/api/v1/hosts/bob/chat/slots?start=2026-12-01&end=2026-12-02")
    assert slots.status_code == 404
    with app.app_context(), db.connection_context():
        # Bookings and history are kept …
        assert Booking.get_by_id(bob_world["booking"].id).status == "confirmed"
        assert MeetingType.select().where(MeetingType.user == team["bob"].id).count() == 1
        # … the stored calendar secret is gone and the account needs reconnecting.
        conn = Connection.get_by_id(bob_world["connection"].id)
        assert conn.secret == "" and conn.status == "needs_reconnect"
        assert ApiToken.select().where(ApiToken.user == team["bob"].id).count() == 0
    page = client.get("/settings/admin/").get_data(as_text=True)
    assert "deactivated" in page and "Reactivate" in page


def test_api_token_lookup_ignores_inactive_users(app, client, team, hosts):
    """Even a token row that survives (deactivated by hand, say) authenticates nobody."""
    token = hosts.token(team["bob"])
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    with app.app_context(), db.connection_context():
        User.update(is_active=False).where(User.id == team["bob"].id).execute()
    assert client.get("/api/v1/me", headers=bearer).status_code == 401


def test_session_loader_ignores_inactive_users(app, team):
    bob = app.test_client()
    AuthActions(bob).login("bob@example.com")
    with app.app_context(), db.connection_context():
        User.update(is_active=False).where(User.id == team["bob"].id).execute()
    assert bob.get("/settings/").status_code == 302


def test_reactivated_member_signs_in_and_must_reconnect(app, client, team, bob_world):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    auth.post(f"/settings/admin/people/{team['bob'].id}/deactivate")
    auth.post(f"/settings/admin/people/{team['bob'].id}/reactivate")
    bob = AuthActions(app.test_client())
    assert bob.login("bob@example.com").status_code == 302
    assert app.test_client().get("/bob").status_code == 200
    with app.app_context(), db.connection_context():
        assert Connection.get_by_id(bob_world["connection"].id).status == "needs_reconnect"


# ---------------------------------------------------------------- organisation


def org_form(**overrides):
    form = {
        "provider_google": "y",
        "provider_microsoft": "y",
        "provider_exchange": "y",
        "provider_caldav": "y",
        "provider_ics": "y",
        "connect_policy": "everyone",
        "connect_domains": "",
        "signup_domains": "",
        "default_timezone": "UTC",
        "lead_time_minutes": "0",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "0",
        "hours_0": "09:00-17:00",
        "hours_1": "09:00-17:00",
        "hours_2": "09:00-17:00",
        "hours_3": "09:00-17:00",
        "hours_4": "09:00-17:00",
        "hours_5": "",
        "hours_6": "",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def test_organisation_page_shows_defaults(client, team):
    AuthActions(client).login("ada@example.com")
    page = client.get("/settings/admin/organisation").get_data(as_text=True)
    for name in settings.PROVIDERS:  # every provider is allowed until the admin says otherwise
        assert re.search(rf'<input[^>]*checked[^>]*id="provider_{name}"', page), name
    assert 'value="09:00–17:00"' in page  # Monday's default hours
    assert 'name="self_signup"' in page


def test_organisation_settings_are_saved(app, client, team):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    answer = auth.post(
        "/settings/admin/organisation",
        org_form(
            provider_ics=None,  # unticked
            connect_policy="domains",
            connect_domains="Example.com, @staff.example.org",
            self_signup="y",
            signup_domains="example.com",
            default_timezone="Europe/Berlin",
            lead_time_minutes="120",
            buffer_before_minutes="5",
            buffer_after_minutes="10",
            hours_0="08:00-12:00, 13:00-16:00",
            hours_4="",
        ),
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with app.app_context(), db.connection_context():
        assert AppSetting.read("provider_enabled:ics") is False
        assert AppSetting.read("provider_enabled:google") is True
        assert settings.connect_rule() == settings.ConnectRule(
            "domains", frozenset(), ("example.com", "staff.example.org")
        )
        assert settings.self_signup_enabled() and settings.signup_domains() == ["example.com"]
        defaults = member_defaults.member_defaults()
        assert defaults.timezone == "Europe/Berlin" and defaults.lead_time_minutes == 120
        assert (defaults.buffer_before_minutes, defaults.buffer_after_minutes) == (5, 10)
        assert defaults.weekly[0] == (("08:00", "12:00"), ("13:00", "16:00"))
        assert defaults.weekly[4] == () and defaults.weekly[1] == (("09:00", "17:00"),)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"default_timezone": "Mars/Olympus"}, "default_timezone", "pick a time zone"),
        ({"lead_time_minutes": "-5"}, "lead_time_minutes", "Number must be"),
        ({"buffer_after_minutes": "abc"}, "buffer_after_minutes", "Not a valid integer"),
        ({"hours_2": "17:00-09:00"}, "hours_2", "ends before it starts"),
        ({"hours_3": "lunch"}, "hours_3", "is not a range"),
        ({"self_signup": "y"}, "signup_domains", "name the e-mail domains"),
        ({"signup_domains": "not a domain!"}, "signup_domains", "is not an e-mail domain"),
        ({"connect_policy": "domains"}, "connect_domains", "name at least one domain"),
        ({"connect_policy": "members"}, "connect_policy", "tick at least one member"),
        ({"connect_policy": "nobody"}, "connect_policy", "Not a valid choice"),
    ],
)
def test_bad_organisation_input_names_the_field(app, client, team, overrides, field, message):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    with app.app_context(), db.connection_context():
        before = list(AppSetting.select().order_by(AppSetting.key).tuples())
    answer = auth.post("/settings/admin/organisation", org_form(**overrides))
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message in page
    assert f'id="{field}-error"' in page or f'id="{field}"' in page
    with app.app_context(), db.connection_context():
        assert list(AppSetting.select().order_by(AppSetting.key).tuples()) == before


def test_htmx_save_answers_with_the_section(client, team):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    answer = auth.post("/settings/admin/organisation", org_form(), headers={"HX-Request": "true"})
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert page.lstrip().startswith('<div id="organisation">') and "settings saved" in page
    bad = auth.post(
        "/settings/admin/organisation",
        org_form(hours_1="nope"),
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 200 and "is not a range" in bad.get_data(as_text=True)


def test_member_defaults_apply_to_new_accounts(app, runner, team):
    with app.app_context(), db.connection_context():
        member_defaults.save_member_defaults(
            member_defaults.MemberDefaults(
                timezone="America/New_York",
                weekly={0: (("10:00", "14:00"),), **{d: () for d in range(1, 7)}},
                lead_time_minutes=60,
                buffer_before_minutes=5,
                buffer_after_minutes=15,
            )
        )
    out = runner.invoke(
        args=["users", "create", "--email", "d@example.com", "--password", "pw", "--slug", "dee"]
    )
    assert out.exit_code == 0, out.output
    with app.app_context(), db.connection_context():
        dee = User.get(User.slug == "dee")
        assert dee.timezone == "America/New_York" and dee.lead_time_minutes == 60
        hours = [
            (w.weekday, w.start, w.end) for w in WeeklyHours.select().where(WeeklyHours.user == dee)
        ]
        assert hours == [(0, "10:00", "14:00")]
        mt = MeetingType.get(MeetingType.user == dee)
        assert (mt.duration_minutes, mt.buffer_before_minutes, mt.buffer_after_minutes) == (
            30,
            5,
            15,
        )


def test_stored_defaults_fall_back_when_broken(app):
    with app.app_context(), db.connection_context():
        AppSetting.write(
            "member_defaults",
            {"timezone": "Nowhere/Land", "weekly": "junk", "lead_time_minutes": -3},
        )
        defaults = member_defaults.member_defaults()
        assert defaults.timezone == "UTC" and defaults.lead_time_minutes == 0
        assert defaults.weekly[0] == (("09:00", "17:00"),) and defaults.weekly[6] == ()
        AppSetting.write("member_defaults", {"weekly": {"0": [["25:00", "09:00"]]}})
        assert member_defaults.member_defaults().weekly[0] == (("09:00", "17:00"),)
        AppSetting.write("connect_policy", json.loads('{"policy": "bogus"}'))
        assert settings.connect_rule() == settings.ConnectRule()
