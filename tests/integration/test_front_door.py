"""The site's root leads somewhere for everyone: first run, visitor, signed-in host."""

from __future__ import annotations

from portal.models import ALL_MODELS, db


def _snapshot(app):
    with app.app_context(), db.connection_context():
        return {m.__name__: list(m.select().tuples()) for m in ALL_MODELS}


def test_first_run_goes_to_setup(app, client):
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/setup"
    # Where it points really is the first-run page, not another 404.
    assert client.get(resp.headers["Location"]).status_code == 200


def test_visitor_goes_to_sign_in(app, client, hosts):
    hosts.create("alice")
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert client.get("/login").status_code == 200
    assert client.head("/").status_code == 302


def test_signed_in_host_goes_to_settings(app, client, hosts, auth):
    hosts.create("alice")
    assert auth.login().status_code == 302
    before = _snapshot(app)
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/settings/"
    assert client.get("/settings/").status_code == 200
    assert _snapshot(app) == before  # a redirect, nothing written


def test_root_is_only_a_page(app, client, hosts):
    """GET only; the public ``/<host>`` routes still answer beside it."""
    user = hosts.create("alice")
    hosts.meeting_type(user, "intro")
    assert client.post("/").status_code == 405
    assert client.get("/alice").status_code == 200
    assert client.get("/alice/intro").status_code == 200
    rules = {r.rule: r.endpoint for r in app.url_map.iter_rules()}
    assert rules["/"] == "home.index"
