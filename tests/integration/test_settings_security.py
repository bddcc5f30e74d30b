"""Security properties of the whole app as the host's browser meets it.

* No GET changes the database: every GET route of ``app.url_map`` (every blueprint
  present when the test runs) is visited with real ids, and all tables are compared.
* Ownership: a second host gets 404 from every host-scoped settings route with the
  first host's ids, for every method, and nothing changes.
* CSRF: every state-changing settings and sign-in form refuses a POST without the token.
* Settings pages refuse to be framed.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from werkzeug.routing import IntegerConverter

from portal import clock
from portal.booking import service
from portal.booking.links import manage_token
from portal.booking.rules import available_slots
from portal.models import (
    ApiToken,
    BusyBlock,
    Calendar,
    Connection,
    DateOverride,
    Question,
    User,
    Webhook,
    WebhookDelivery,
    db,
    to_db,
)
from tests.support.app import AuthActions
from tests.support.clock import NOW

# Columns that record a read, not a change: a bearer token's last use.
READ_MARKS = {("api_token", "last_used_at")}
UNCHANGED_METHODS = {"HEAD", "OPTIONS"}


def dump(app, ignore=frozenset()) -> dict[str, list[tuple]]:
    """Every row of every table (whatever migrations created), in a stable order."""
    with app.app_context(), db.connection_context():
        database = db.obj
        out = {}
        for table in sorted(database.get_tables()):
            columns = [c.name for c in database.get_columns(table)]
            keep = [c for c in columns if (table, c) not in ignore]
            quoted = ", ".join(f'"{c}"' for c in keep)
            rows = database.execute_sql(f'SELECT {quoted} FROM "{table}"').fetchall()  # noqa: S608
            out[table] = sorted((tuple(map(repr, row)) for row in rows), key=repr)
        return out


@pytest.fixture
def world(app, hosts):
    """Alice and Bob with one of everything a host owns; Alice's ids are the targets."""
    alice = hosts.create("alice", name="Alice")
    bob = hosts.create("bob", name="Bob")
    mt = hosts.meeting_type(alice, "intro", name="Intro", buffer_after_minutes=15)
    hosts.meeting_type(bob, "chat", name="Chat")
    plain = hosts.token(alice)
    with app.app_context(), db.connection_context():
        host = User.get_by_id(alice.id)
        host.embed_origins = "https://site.example"
        host.save()
        now = clock.now()
        start = available_slots(host, mt, now, now + timedelta(days=14), now=now)[2]
        booked = service.book(host, mt, start, "Carol", "carol@example.com", now=now).booking
        override = DateOverride.create(
            user=host, date=(now + timedelta(days=20)).date(), intervals='[["10:00","12:00"]]'
        )
        conn = Connection.create(user=host, provider="ics", label="https://cal.example/f.ics")
        cal = Calendar.create(connection=conn, external_id="main", name="Main")
        BusyBlock.create(
            calendar=cal,
            start=to_db(start + timedelta(days=1)),
            end=to_db(start + timedelta(days=1, hours=1)),
        )
        token = ApiToken.get(ApiToken.user == host)
        manage = manage_token(booked)
        # Meeting details: a question, a webhook and one of its deliveries.
        question = Question.create(meeting_type=mt.id, key="topic", label="Topic", kind="long_text")
        hook = Webhook.create(user=host, url="https://hooks.example/k", events="booking.created")
        delivery = WebhookDelivery.create(
            webhook=hook, uid="dlv_x", event_id="evt_x", event="booking.created", payload="{}"
        )
    return {
        "alice": alice,
        "bob": bob,
        "bearer": plain,
        # URL parameters by name, as Alice's real values.
        "values": {
            "host": "alice",
            "type": "intro",
            "type_slug": "intro",
            "slug": "intro",
            "uid": booked.uid,
            "type_id": mt.id,
            "override_id": override.id,
            "token_id": token.id,
            "connection_id": conn.id,
            "calendar_id": cal.id,
            "question_id": question.id,
            "webhook_id": hook.id,
            "delivery_id": delivery.id,
            "provider": "google",
            "user_id": alice.id,  # admin pages: Bob is no admin, so they must 404 for him
            "invite_id": 1,
            "job_id": "x",
            "filename": "style.css",
            "token": "not-a-real-token",
            "nonce": "not-a-real-nonce",
        },
        # Query parameters the pages read; harmless to pages that do not.
        "query": {
            "token": manage,
            "type": str(mt.id),
            "week": (NOW + timedelta(days=7)).date().isoformat(),
            "tab": "past",
            "date": (NOW + timedelta(days=3)).date().isoformat(),
            "month": (NOW + timedelta(days=3)).strftime("%Y-%m"),
            "tz": "America/New_York",
            "start": (NOW + timedelta(days=1)).date().isoformat(),
            "end": (NOW + timedelta(days=5)).date().isoformat(),
        },
    }


def build(rule, values: dict) -> str:
    """The rule's path with Alice's values; an unknown parameter gets a harmless stand-in."""
    args = {}
    for name in rule.arguments - set(rule.defaults or ()):
        if name in values:
            args[name] = values[name]
        elif isinstance(rule._converters[name], IntegerConverter):
            args[name] = 1
        else:
            args[name] = "x"
    path = rule.rule
    for name, value in args.items():
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", str(value), path)
    return path


def blueprint_of(rule) -> str:
    return rule.endpoint.rpartition(".")[0]


def get_rules(app):
    return [r for r in app.url_map.iter_rules() if "GET" in r.methods]


def test_no_get_route_changes_the_database(app, client, world):
    auth = AuthActions(client)
    assert auth.login().status_code == 302
    rules = get_rules(app)
    assert {blueprint_of(r) for r in rules if r.endpoint != "static"} >= {"auth", "settings", "api"}
    before = dump(app)
    visited = []
    for rule in rules:
        path = build(rule, world["values"])
        for query, headers in (
            (None, {}),
            (world["query"], {}),
            (world["query"], {"HX-Request": "true"}),
        ):
            response = client.get(path, query_string=query, headers=headers)
            response.close()  # static files are streamed from an open file
            assert response.status_code < 500, (rule.rule, response.status_code)
            visited.append((rule.rule, response.status_code))
        assert dump(app) == before, f"GET {path} changed the database"
    # The host-scoped pages really rendered (not 404 for a wrong substitution).
    ok = {rule for rule, status in visited if status == 200}
    assert "/settings/appointments/<uid>" in ok and "/settings/types/<int:type_id>" in ok
    assert "/booking/<uid>" in ok and "/<host>/<type_slug>" in ok

    # The API's GETs with a bearer token read without writing (a token's last use aside).
    before = dump(app, READ_MARKS)
    bearer = {"Authorization": f"Bearer {world['bearer']}"}
    for rule in rules:
        if not rule.rule.startswith("/api/"):
            continue
        path = build(rule, world["values"])
        response = client.get(path, query_string=world["query"], headers=bearer)
        response.close()
        assert response.status_code < 500, rule.rule
    assert dump(app, READ_MARKS) == before


def host_scoped_rules(app):
    """Settings routes that address one object (they carry an id or uid in the path)."""
    return [
        r
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/settings/") and r.arguments - set(r.defaults or ()) - {"provider"}
    ]


def test_another_host_gets_404_on_every_host_scoped_route(app, client, world):
    auth = AuthActions(client)
    assert auth.login(email="bob@example.com").status_code == 302
    rules = host_scoped_rules(app)
    assert len(rules) >= 6
    before = dump(app)
    token = auth.token("/settings/")
    for rule in rules:
        unknown = rule.arguments - set(rule.defaults or ()) - set(world["values"])
        assert not unknown, f"add Alice's value for {unknown} of {rule.rule} to the world"
        path = build(rule, world["values"])
        for method in sorted(rule.methods - UNCHANGED_METHODS):
            for headers in ({}, {"HX-Request": "true"}):
                response = client.open(
                    path, method=method, data={"csrf_token": token}, headers=headers
                )
                assert response.status_code == 404, (method, rule.rule, response.status_code)
    # Objects chosen in the query string are scoped too.
    assert client.get(f"/settings/preview?type={world['values']['type_id']}").status_code == 404
    page = client.get("/settings/embed?type=intro").get_data(as_text=True)
    assert "embed/alice" not in page and "embed/bob/chat" in page
    assert dump(app) == before


def test_lists_show_only_the_hosts_own_things(app, client, world):
    auth = AuthActions(client)
    auth.login(email="bob@example.com")
    for path in (
        "/settings/",
        "/settings/appointments",
        "/settings/appointments?tab=cancelled",
        "/settings/types",
        "/settings/overrides",
        "/settings/tokens",
        "/settings/preview",
        "/settings/embed",
    ):
        page = client.get(path).get_data(as_text=True)
        for secret in ("Carol", "Intro", world["values"]["uid"], "site.example", "10:00–12:00"):
            assert secret not in page, (path, secret)


def post_rules(app):
    return [
        r
        for r in app.url_map.iter_rules()
        if blueprint_of(r) in {"settings", "auth"}
        and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
    ]


def test_state_changes_without_a_csrf_token_are_refused(app, client, world):
    """With the CSRF check on (as in production), no settings or sign-in POST gets through."""
    assert app.config.get("WTF_CSRF_ENABLED", True)
    auth = AuthActions(client)
    auth.login()
    before = dump(app)
    rules = post_rules(app)
    assert len(rules) >= 12
    for rule in rules:
        path = build(rule, world["values"])
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            for headers in ({}, {"HX-Request": "true"}, {"X-CSRFToken": "forged"}):
                response = client.open(
                    path, method=method, data={"name": "x", "cell": ["0-1"]}, headers=headers
                )
                assert response.status_code == 400, (method, rule.rule, response.status_code)
    assert dump(app) == before
    # The same request with the token from the page is accepted.
    ok = client.post(
        "/settings/tokens", data={"name": "x"}, headers={"X-CSRFToken": auth.token("/settings/")}
    )
    assert ok.status_code == 200


def test_settings_pages_refuse_to_be_framed(app, client, world):
    AuthActions(client).login()
    for rule in app.url_map.iter_rules():
        if blueprint_of(rule) not in {"settings", "auth"} or "GET" not in rule.methods:
            continue
        response = client.get(build(rule, world["values"]))
        assert response.headers["X-Frame-Options"] == "DENY", rule.rule
        assert response.headers["Content-Security-Policy"].endswith("; frame-ancestors 'none'"), (
            rule.rule
        )


def test_signed_out_visitors_are_sent_to_sign_in(app, client, world):
    for rule in app.url_map.iter_rules():
        if blueprint_of(rule) != "settings":
            continue
        path = build(rule, world["values"])
        for method in sorted(rule.methods - UNCHANGED_METHODS):
            response = client.open(path, method=method)
            # GETs are redirected to sign in; POSTs without a session fail the CSRF check first.
            assert response.status_code in (302, 400), (method, rule.rule)
            if response.status_code == 302:
                assert response.headers["Location"].startswith("/login?next=")
