"""A personal Exchange account through the Calendars page and ``POST /api/v1/connections``,
and how corporate connections show on the Calendars page."""

from __future__ import annotations

import re

import pytest

from portal.calendars import exchange_org
from portal.models import ApiToken, Connection, db
from tests.support.app import csrf_token, sign_in
from tests.support.booking import make_host
from tests.support.exchange import ALICE, ALICE_PW, exchange_app_fixture  # noqa: F401


@pytest.fixture
def alice(exchange_app, ews):
    ews.add_user(ALICE, ALICE_PW, domain="EXAMPLE", sam="alice", name="Alice Host")
    with exchange_app.app_context():
        return make_host(admin=True)


def bearer(app, user) -> dict:
    with app.app_context(), db.connection_context():
        return {"Authorization": f"Bearer {ApiToken.issue(user, 'test')[1]}"}


def test_connect_in_the_browser(exchange_app, alice, ews):
    client = exchange_app.test_client()
    sign_in(client)
    page = client.get("/settings/connections/").get_data(as_text=True)
    assert "Exchange (personal)" in page
    form = {
        "exchange-email": ALICE,
        "exchange-password": "wrong",
        "exchange-ews_url": ews.ews_url,
        "exchange-username": "",
        "csrf_token": csrf_token(client, "/settings/connections/"),
    }
    refused = client.post("/settings/connections/add/exchange", data=form)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "app password" in text and "DOMAIN\\user" in text
    with exchange_app.app_context():
        assert Connection.select().count() == 0

    form["exchange-password"] = ALICE_PW
    form["exchange-ews_url"] = ""  # found by Autodiscover
    answer = client.post("/settings/connections/add/exchange", data=form)
    assert answer.status_code == 302
    with exchange_app.app_context():
        conn = Connection.get()
        assert conn.provider == "exchange" and conn.label == ALICE
        assert conn.settings_dict()["ews_url"] == ews.ews_url
    page = client.get("/settings/connections/").get_data(as_text=True)
    assert ALICE in page and "Exchange (on-premises)" in page


def test_connect_through_the_api(exchange_app, alice, ews):
    client = exchange_app.test_client()
    headers = bearer(exchange_app, alice)
    body = {"provider": "exchange", "email": ALICE, "password": ALICE_PW}
    refused = client.post(
        "/api/v1/connections",
        headers=headers,
        json=body | {"password": "wrong", "ews_url": ews.ews_url},
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "username"

    bad_url = client.post(
        "/api/v1/connections", headers=headers, json=body | {"ews_url": "http://mail.example.com"}
    )
    assert bad_url.status_code == 422 and bad_url.get_json()["error"]["field"] == "ews_url"

    made = client.post(
        "/api/v1/connections",
        headers=headers,
        json=body | {"ews_url": ews.ews_url, "username": "EXAMPLE\\alice"},
    )
    assert made.status_code == 201, made.get_json()
    conn = made.get_json()
    assert conn["provider"] == "exchange"
    [calendar] = conn["calendars"]
    assert calendar["writable"] and calendar["write"] and calendar["conflict"]
    assert client.get(f"/api/v1/connections/{conn['id']}", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/connections/{conn['id']}", headers=headers).status_code == 204
    with exchange_app.app_context():
        assert Connection.select().count() == 0  # the sealed password went with it


def test_the_calendars_page_points_members_to_the_organisation_mailbox(exchange_app, alice, ews):
    ews.add_user("kairos@example.com", "svc", sam="svc")
    ews.mailbox(ALICE, delegates={"kairos@example.com": "Editor"})
    client = exchange_app.test_client()
    sign_in(client)
    assert "through your organisation" not in client.get("/settings/connections/").get_data(
        as_text=True
    )
    with exchange_app.app_context():
        exchange_org.configure(
            {"email": "kairos@example.com", "password": "svc", "ews_url": ews.ews_url}
        )
        exchange_org.set_role(alice, "busy")
    page = client.get("/settings/connections/").get_data(as_text=True)
    assert "Use your Exchange calendar through your organisation" in page
    assert "Choose its role" in page and "Signed in by your organisation" in page
    member_page = client.get("/settings/exchange").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="busy"', member_page)
