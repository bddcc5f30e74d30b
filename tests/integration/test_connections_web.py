"""Connections through the JSON API and the settings pages (real Radicale and feed server)."""

from __future__ import annotations

import re

import pytest

from portal.calendars import refresh_queue, sync
from portal.models import Calendar, Connection, db
from portal.runtime.queue import get_queue

EMPTY = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Rota\r\nEND:VCALENDAR\r\n"


@pytest.fixture
def dav(radicale):
    user, password = radicale.add_user()
    work = radicale.make_calendar(user, "Work")
    return {"url": radicale.url, "username": user, "password": password, "work": work}


@pytest.fixture
def api(client, hosts):
    host = hosts.create("alice")
    token = hosts.token(host)

    def call(method, path, json=None):
        return client.open(
            f"/api/v1{path}", method=method, json=json, headers={"Authorization": f"Bearer {token}"}
        )

    call.host = host
    return call


# ---------------------------------------------------------------- API


def test_api_connect_caldav_list_patch_refresh_delete(app, api, dav):
    answer = api(
        "POST",
        "/connections",
        {
            "provider": "caldav",
            "url": dav["url"],
            "username": dav["username"],
            "password": dav["password"],
        },
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert set(body) >= {"id", "provider", "status", "last_synced_at", "calendars"}
    assert body["provider"] == "caldav" and body["status"] == "syncing"
    [cal] = body["calendars"]
    assert cal == {
        "id": cal["id"],
        "name": "Work",
        "writable": True,
        "conflict": True,
        "write": True,
    }
    assert dav["password"] not in answer.get_data(as_text=True)

    listed = api("GET", "/connections").get_json()
    assert [c["id"] for c in listed["connections"]] == [body["id"]]
    assert api("GET", f"/connections/{body['id']}").get_json()["calendars"] == [cal]

    patched = api(
        "PATCH",
        f"/connections/{body['id']}/calendars/{cal['id']}",
        {"conflict": False, "write": False},
    )
    assert patched.status_code == 200
    assert patched.get_json() | {"id": 0} == {
        "id": 0,
        "name": "Work",
        "writable": True,
        "conflict": False,
        "write": False,
    }

    with app.app_context():
        get_queue().empty()
    refreshed = api("POST", f"/connections/{body['id']}/refresh")
    assert refreshed.status_code == 202 and refreshed.get_json()["status"] == "syncing"
    with app.app_context():
        assert get_queue().job_ids == [refresh_queue.refresh_job_id(body["id"])]

    assert api("DELETE", f"/connections/{body['id']}").status_code == 204
    assert api("GET", f"/connections/{body['id']}").status_code == 404
    with app.app_context(), db.connection_context():
        assert Connection.select().count() == 0


def test_api_connect_ics(api, feed_server):
    url = feed_server.publish("/rota.ics", EMPTY)
    answer = api("POST", "/connections", {"provider": "ics", "url": url})
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["label"] == "Rota"
    assert body["calendars"] == [
        {
            "id": body["calendars"][0]["id"],
            "name": "Rota",
            "writable": False,
            "conflict": True,
            "write": False,
        }
    ]
    cal_id = body["calendars"][0]["id"]
    refused = api("PATCH", f"/connections/{body['id']}/calendars/{cal_id}", {"write": True})
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "write"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "provider"),
        ({"provider": "nope"}, "provider"),
        ({"provider": "google"}, "provider"),
        ({"provider": "ics"}, "url"),
        ({"provider": "ics", "url": "ftp://example.com/x.ics"}, "url"),
        ({"provider": "ics", "url": 5}, "url"),
        ({"provider": "ics", "url": "http://x.example/a", "colour": "red"}, "colour"),
        ({"provider": "caldav", "url": "http://127.0.0.1:1/"}, "username"),
        ({"provider": "caldav", "url": "http://127.0.0.1:1/", "username": "a"}, "password"),
    ],
)
def test_api_connect_bad_input_is_422_naming_the_field(api, payload, field):
    answer = api("POST", "/connections", payload)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["field"] == field


def test_api_wrong_password_is_422_on_password(api, dav):
    answer = api(
        "POST",
        "/connections",
        {"provider": "caldav", "url": dav["url"], "username": dav["username"], "password": "wrong"},
    )
    assert answer.status_code == 422 and answer.get_json()["error"]["field"] == "password"


def test_api_other_hosts_connections_are_404(app, api, hosts, feed_server):
    bob = hosts.create("bob")
    with app.app_context(), db.connection_context():
        theirs = sync.connect(bob, "ics", {"url": feed_server.publish("/b.ics", EMPTY)})
        cal = Calendar.get(Calendar.connection == theirs)
    assert api("GET", f"/connections/{theirs.id}").status_code == 404
    assert api("DELETE", f"/connections/{theirs.id}").status_code == 404
    assert api("POST", f"/connections/{theirs.id}/refresh").status_code == 404
    assert (
        api(
            "PATCH", f"/connections/{theirs.id}/calendars/{cal.id}", {"conflict": False}
        ).status_code
        == 404
    )
    assert api("GET", "/connections").get_json() == {"connections": []}


def test_api_patch_bad_input(api, feed_server):
    body = api(
        "POST", "/connections", {"provider": "ics", "url": feed_server.publish("/r.ics", EMPTY)}
    ).get_json()
    path = f"/connections/{body['id']}/calendars/{body['calendars'][0]['id']}"
    assert api("PATCH", path, {"conflict": "yes"}).get_json()["error"]["field"] == "conflict"
    assert api("PATCH", path, {"colour": 1}).get_json()["error"]["field"] == "colour"
    assert api("PATCH", f"/connections/{body['id']}/calendars/999999", {}).status_code == 404


def test_api_refresh_of_needs_reconnect_is_409(app, api, feed_server):
    body = api(
        "POST", "/connections", {"provider": "ics", "url": feed_server.publish("/r.ics", EMPTY)}
    ).get_json()
    with app.app_context(), db.connection_context():
        sync.mark_needs_reconnect(Connection.get_by_id(body["id"]), "revoked")
    answer = api("POST", f"/connections/{body['id']}/refresh")
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "needs_reconnect"


def test_api_needs_a_token(client):
    assert client.get("/api/v1/connections").status_code == 401


# ---------------------------------------------------------------- settings pages


def test_settings_page_add_caldav_choose_calendars_refresh_and_disconnect(
    app, client, auth, hosts, dav, feed_server
):
    hosts.create("alice")
    auth.login()
    page = client.get("/settings/connections/").get_data(as_text=True)
    assert "app-specific password" in page
    assert "No calendar connected yet" in page

    answer = auth.post(
        "/settings/connections/add/caldav",
        {
            "caldav-url": dav["url"],
            "caldav-username": dav["username"],
            "caldav-password": dav["password"],
        },
        follow_redirects=True,
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and f"Connected {dav['username']}" in page
    assert "Reading busy times" in page  # the refresh job is queued; the card polls
    with app.app_context(), db.connection_context():
        conn = Connection.get(Connection.user == Connection.user)
        cal = Calendar.get(Calendar.connection == conn)
        assert cal.write and cal.conflict

    # the status poll answers 200 while syncing and 286 (stop polling) when done
    htmx = {"HX-Request": "true"}
    assert client.get(f"/settings/connections/{conn.id}/status", headers=htmx).status_code == 200
    with app.app_context(), db.connection_context():
        assert sync.refresh_connection(conn.id) == "ok"
    done = client.get(f"/settings/connections/{conn.id}/status", headers=htmx)
    assert done.status_code == 286 and "Up to date" in done.get_data(as_text=True)
    assert "every 1s" not in done.get_data(as_text=True)

    # refresh now (htmx): the card comes back polling
    token = auth.token("/settings/connections/")
    card = client.post(
        f"/settings/connections/{conn.id}/refresh", headers=htmx | {"X-CSRFToken": token}
    ).get_data(as_text=True)
    assert f'id="connection-{conn.id}"' in card and 'hx-trigger="every 1s"' in card

    # conflict off, then write off
    auth.post(f"/settings/connections/{conn.id}/calendars/{cal.id}", {"action": "conflict"})
    auth.post(f"/settings/connections/{conn.id}/calendars/{cal.id}", {"action": "no-write"})
    with app.app_context(), db.connection_context():
        cal = Calendar.get_by_id(cal.id)
        assert not cal.conflict and not cal.write

    answer = auth.post(f"/settings/connections/{conn.id}/disconnect", follow_redirects=True)
    assert "password or token is deleted" in answer.get_data(as_text=True)
    with app.app_context(), db.connection_context():
        assert Connection.select().count() == 0


def test_settings_form_errors_are_shown_next_to_the_field(client, auth, hosts, dav):
    hosts.create("alice")
    auth.login()
    answer = auth.post(
        "/settings/connections/add/caldav",
        {"caldav-url": dav["url"], "caldav-username": dav["username"], "caldav-password": "wrong"},
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert re.search(r'id="caldav-password-error">[^<]*refused', page)
    assert re.search(r"<details[^>]*open", page)
    blank = auth.post("/settings/connections/add/ics", {"ics-url": ""}).get_data(as_text=True)
    assert 'id="ics-url-error"' in blank


def test_settings_reconnect_after_needs_reconnect(app, client, auth, hosts, dav):
    host = hosts.create("alice")
    with app.app_context(), db.connection_context():
        conn = sync.connect(host, "caldav", {k: dav[k] for k in ("url", "username", "password")})
        sync.mark_needs_reconnect(conn, "the server refused")
    auth.login()
    page = client.get("/settings/connections/").get_data(as_text=True)
    assert "Needs reconnect" in page and f"/settings/connections/{conn.id}/reconnect" in page
    form = client.get(f"/settings/connections/{conn.id}/reconnect").get_data(as_text=True)
    assert dav["username"] in form and dav["password"] not in form
    answer = auth.post(
        f"/settings/connections/{conn.id}/reconnect",
        {
            "caldav-url": dav["url"],
            "caldav-username": dav["username"],
            "caldav-password": dav["password"],
        },
    )
    assert answer.status_code == 302
    with app.app_context(), db.connection_context():
        assert Connection.get_by_id(conn.id).status == "syncing"


def test_settings_other_hosts_connection_is_404(app, client, auth, hosts, feed_server):
    hosts.create("alice")
    bob = hosts.create("bob")
    with app.app_context(), db.connection_context():
        theirs = sync.connect(bob, "ics", {"url": feed_server.publish("/b.ics", EMPTY)})
        cal = Calendar.get(Calendar.connection == theirs)
    auth.login()
    assert auth.post(f"/settings/connections/{theirs.id}/disconnect").status_code == 404
    assert auth.post(f"/settings/connections/{theirs.id}/refresh").status_code == 404
    assert (
        auth.post(
            f"/settings/connections/{theirs.id}/calendars/{cal.id}", {"action": "write"}
        ).status_code
        == 404
    )
    assert client.get(f"/settings/connections/{theirs.id}/reconnect").status_code == 404
    assert (
        client.get(
            f"/settings/connections/{theirs.id}/status", headers={"HX-Request": "1"}
        ).status_code
        == 404
    )


def test_settings_pages_need_sign_in_and_csrf(client, hosts):
    hosts.create("alice")
    assert client.get("/settings/connections/").status_code in (302, 401)
    from tests.support.app import AuthActions

    auth = AuthActions(client)
    auth.login()
    assert (
        client.post("/settings/connections/add/ics", data={"ics-url": "http://x"}).status_code
        == 400
    )


def test_failed_write_back_shows_on_the_booking_with_a_retry(app, client, auth, hosts):
    from datetime import timedelta

    from portal.booking import service as booking
    from portal.models import CalendarEvent, Outbox
    from tests.support.clock import NOW

    host = hosts.create("alice")
    mt = hosts.meeting_type(host, "intro")
    with app.app_context(), db.connection_context():
        conn = Connection.create(user=host, provider="caldav", label="alice @ dav")
        cal = Calendar.create(
            connection=conn,
            external_id="http://dav/cal/",
            name="Work",
            writable=True,
            conflict=False,
        )
        b = booking.book(
            host,
            mt,
            NOW + timedelta(days=1, hours=1),
            "Ada",
            "ada@example.com",
            now=NOW,
        ).booking
        CalendarEvent.create(booking=b, calendar=cal, status="failed", last_error="server said 507")
    auth.login()
    page = client.get(f"/settings/appointments/{b.uid}").get_data(as_text=True)
    assert "Not added" in page and "server said 507" in page and "Try again" in page

    answer = auth.post(f"/settings/connections/bookings/{b.uid}/retry")
    assert answer.status_code == 302 and b.uid in answer.headers["Location"]
    with app.app_context(), db.connection_context():
        assert CalendarEvent.get(CalendarEvent.booking == b).status == "pending"
        assert Outbox.select().where(Outbox.kind == "write_back").count() == 2  # booked + retry
    bob = hosts.create("bob")
    auth.logout()
    auth.login(email=bob.email)
    assert auth.post(f"/settings/connections/bookings/{b.uid}/retry").status_code == 404
