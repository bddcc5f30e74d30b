"""The Exchange corporate connection: the admin sets up one mailbox (browser and API), members
choose their calendar's role, and bookings land in the member's own calendar exactly once."""

from __future__ import annotations

import json

import pytest

from jobs.booking_copies import booking_copies
from jobs.calendar import write_back
from portal import crypto
from portal.booking import service as booking
from portal.calendars import exchange_org, sync
from portal.calendars.providers import InvalidSetup
from portal.models import (
    ApiToken,
    BookingCopy,
    Calendar,
    CalendarEvent,
    Connection,
    ExchangeOrganisation,
    User,
    db,
)
from tests.support.app import csrf_token, sign_in
from tests.support.booking import make_host, slots, utc
from tests.support.exchange import ALICE, ALICE_PW, book, ctx_fixture, exchange_app_fixture  # noqa: F401

SERVICE = "kairos@example.com"
SERVICE_PW = "service-secret"
BOB = "bob@example.com"


@pytest.fixture
def exchange(ews):
    """The organisation's Exchange: a service mailbox, and Alice and Bob who delegate to it."""
    ews.add_user(SERVICE, SERVICE_PW, domain="EXAMPLE", sam="svc-kairos", name="Kairos")
    ews.add_user(ALICE, ALICE_PW, sam="alice", name="Alice Admin")
    ews.add_user(BOB, "bob-secret", sam="bob", name="Bob Member")
    for mailbox in (ALICE, BOB):
        ews.mailbox(mailbox, delegates={SERVICE: "Editor"})
    return ews


@pytest.fixture
def people(exchange_app, exchange):
    with exchange_app.app_context():
        alice = make_host(ALICE, "alice", admin=True)
        bob = make_host(BOB, "bob")
    return alice, bob


def org_fields(ews, **extra):
    return {
        "email": SERVICE,
        "password": SERVICE_PW,
        "username": "EXAMPLE\\svc-kairos",
        "ews_url": ews.ews_url,
    } | extra


@pytest.fixture
def org(exchange_app, people, exchange):
    """The organisation mailbox, set up (own app context: test-client tests must not hold one)."""
    with exchange_app.app_context():
        return exchange_org.configure(org_fields(exchange))


def token(app, user) -> str:
    with app.app_context(), db.connection_context():
        return ApiToken.issue(user, "test")[1]


# ---------------------------------------------------------------- the admin, in the browser


def test_admin_sets_up_the_mailbox_in_the_browser(exchange_app, people, exchange):
    client = exchange_app.test_client()
    sign_in(client, ALICE)
    page = client.get("/settings/admin/exchange")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert 'name="ews_url"' in page.get_data(as_text=True)

    fields = org_fields(exchange) | {"access": "delegate"}
    refused = client.post(
        "/settings/admin/exchange",
        data=fields
        | {"password": "wrong", "csrf_token": csrf_token(client, "/settings/admin/exchange")},
    )
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert 'id="username-error"' in text and "app password" in text
    with exchange_app.app_context():
        assert ExchangeOrganisation.select().count() == 0

    no_csrf = client.post("/settings/admin/exchange", data=fields)
    assert no_csrf.status_code == 400

    done = client.post(
        "/settings/admin/exchange",
        data=fields | {"csrf_token": csrf_token(client, "/settings/admin/exchange")},
    )
    assert done.status_code == 302
    page = client.get("/settings/admin/exchange").get_data(as_text=True)
    assert f"Connected to Exchange as {SERVICE}" in page and exchange.ews_url in page
    with exchange_app.app_context():
        org = ExchangeOrganisation.get()
        settings = org.settings_dict()
        assert (settings["auth_type"], settings["username"]) == ("ntlm", "EXAMPLE\\svc-kairos")
        assert SERVICE_PW not in org.secret and SERVICE_PW not in org.settings
        assert exchange_org.password(org) == SERVICE_PW

    # changing the endpoint keeps the stored password when the field is left blank
    again = client.post(
        "/settings/admin/exchange",
        data=fields
        | {"password": "", "csrf_token": csrf_token(client, "/settings/admin/exchange")},
    )
    assert again.status_code == 302


def test_only_admins_see_the_page(exchange_app, people, exchange):
    client = exchange_app.test_client()
    assert client.get("/settings/admin/exchange").status_code == 302  # sign in first
    sign_in(client, BOB)
    token_value = csrf_token(client, "/settings")
    for path in ("/settings/admin/exchange", "/settings/admin/exchange/remove"):
        assert client.get(path).status_code in (404, 405)
        assert client.post(path, data={"csrf_token": token_value}).status_code == 404
    assert (
        client.post(
            "/settings/admin/exchange/members/1", data={"csrf_token": token_value}
        ).status_code
        == 404
    )


def test_admin_maps_a_member_to_another_address(exchange_app, people, exchange, org):
    alice, bob = people
    client = exchange_app.test_client()
    sign_in(client, ALICE)
    answer = client.post(
        f"/settings/admin/exchange/members/{bob.id}",
        data={
            "mailbox": "robert@example.com",
            "csrf_token": csrf_token(client, "/settings/admin/exchange"),
        },
    )
    assert answer.status_code == 302
    assert exchange_org.member_mailbox(User.get_by_id(bob.id)) == "robert@example.com"
    assert (
        client.post(
            "/settings/admin/exchange/members/999",
            data={"mailbox": "", "csrf_token": csrf_token(client, "/settings/admin/exchange")},
        ).status_code
        == 404
    )


# ---------------------------------------------------------------- the admin, through the API


def test_admin_sets_up_the_mailbox_through_the_api(exchange_app, people, exchange):
    alice, bob = people
    client = exchange_app.test_client()
    admin = {"Authorization": f"Bearer {token(exchange_app, alice)}"}
    member = {"Authorization": f"Bearer {token(exchange_app, bob)}"}
    url = "/api/v1/exchange/organisation"

    assert client.get(url, headers=admin).status_code == 404  # none yet
    assert client.put(url, headers=member, json=org_fields(exchange)).status_code == 404

    bad = client.put(url, headers=admin, json=org_fields(exchange, password="wrong"))
    assert bad.status_code == 422
    assert bad.get_json()["error"]["field"] == "username"
    assert (
        "DOMAIN\\user" in bad.get_json()["error"]["message"]
        or "e-mail" in bad.get_json()["error"]["message"]
    )
    assert client.put(url, headers=admin, json={"email": SERVICE, "access": "x"}).status_code == 422
    assert client.put(url, headers=admin, json={"email": 5}).get_json()["error"]["field"] == "email"
    unknown = client.put(url, headers=admin, json=org_fields(exchange) | {"sneaky": "1"})
    assert unknown.get_json()["error"]["field"] == "sneaky"

    ok = client.put(url, headers=admin, json=org_fields(exchange))
    assert ok.status_code == 200, ok.get_json()
    body = ok.get_json()
    assert body["email"] == SERVICE and body["auth_type"] == "ntlm" and body["version"]
    assert {m["email"]: m["role"] for m in body["members"]} == {ALICE: "none", BOB: "none"}
    assert "password" not in json.dumps(body)

    # the member chooses a role for their own calendar
    mine = client.put("/api/v1/exchange/membership", headers=member, json={"role": "main"})
    assert mine.status_code == 200, mine.get_json()
    assert mine.get_json()["role"] == "main" and mine.get_json()["mailbox"] == BOB
    assert (
        client.put(
            "/api/v1/exchange/membership", headers=member, json={"role": "owner"}
        ).get_json()["error"]["field"]
        == "role"
    )
    assert client.get(url, headers=admin).get_json()["members"][1]["role"] == "main"

    mapped = client.put(
        f"{url}/members/{bob.id}", headers=admin, json={"mailbox": "not an address"}
    )
    assert mapped.status_code == 422 and mapped.get_json()["error"]["field"] == "mailbox"

    assert client.delete(url, headers=member).status_code == 404
    assert client.delete(url, headers=admin).status_code == 204
    with exchange_app.app_context():
        assert exchange_org.corporate_connections() == []
    assert client.get("/api/v1/exchange/membership", headers=member).status_code == 404


# ---------------------------------------------------------------- members and bookings


def test_main_booking_calendar_gets_bookings_in_the_members_own_mailbox(
    exchange_app, people, exchange, org, now
):
    alice, bob = people
    client = exchange_app.test_client()
    sign_in(client, BOB)
    assert "kairos@example.com" in client.get("/settings/exchange").get_data(as_text=True)
    answer = client.post(
        "/settings/exchange",
        data={"role": "main", "csrf_token": csrf_token(client, "/settings/exchange")},
    )
    assert answer.status_code == 302
    with exchange_app.app_context():
        bob = User.get_by_id(bob.id)
        member = exchange_org.membership(bob)
        assert member.role == "main" and member.calendar.write and member.calendar.conflict
        settings = member.connection.settings_dict()
        assert settings["email"] == BOB and settings["username"] == "EXAMPLE\\svc-kairos"
        assert sync.credentials(member.connection) == {"password": SERVICE_PW}  # sealed to the row

        b = book(bob, utc(1, 9), now)
        assert write_back(b.id) == "written"
        [item] = exchange.events(BOB)
        assert item["created_by"] == SERVICE  # written by the organisation mailbox …
        assert exchange.events(SERVICE) == []  # … into Bob's own calendar, not its own
        moved = booking.reschedule(b, utc(2, 10), now=now)
        assert write_back(moved.id) == "written"
        [again] = exchange.events(BOB)
        assert again["id"] == item["id"] and again["start"] == utc(2, 10).isoformat()
        booking.cancel(moved, now=now)
        assert write_back(moved.id) == "deleted"
        assert exchange.events(BOB) == []
        creates = [e for e in exchange.log() if e["operation"] == "CreateItem"]
        assert [(e["user"], e["mailboxes"]) for e in creates] == [(SERVICE, [BOB])]  # once


def test_busy_time_source_blocks_slots_but_takes_no_bookings(ctx, people, exchange, org, now):
    alice, bob = people
    exchange_org.set_role(bob, "busy")
    member = exchange_org.membership(bob)
    assert (member.role, member.calendar.write, member.calendar.conflict) == ("busy", False, True)
    exchange.seed(BOB, [{"start": utc(1, 9).isoformat(), "end": utc(1, 10).isoformat()}])
    assert sync.refresh_connection(member.connection.id, now=now) == "ok"
    assert utc(1, 9) not in slots(bob, 1, now) and utc(1, 10) in slots(bob, 1, now)
    b = book(bob, utc(1, 10), now)
    assert write_back(b.id) == "no write calendar"
    assert [i["seeded"] for i in exchange.events(BOB)] == [True]


def test_additional_booking_calendar_gets_a_copy_of_every_booking(ctx, people, exchange, org, now):
    alice, bob = people
    exchange_org.set_role(bob, "additional")
    member = exchange_org.membership(bob)
    assert member.role == "additional"
    assert (member.calendar.conflict, member.calendar.write) == (False, False)

    b = book(bob, utc(1, 9), now)
    assert booking_copies(b.id) == "written"
    assert booking_copies(b.id) == "written"  # a second run changes nothing
    [item] = exchange.events(BOB)
    copy = BookingCopy.get(BookingCopy.booking == b)
    assert (copy.external_id, copy.status) == (item["id"], "written")

    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert booking_copies(moved.id) == "written"
    [again] = exchange.events(BOB)
    assert again["id"] == item["id"] and again["start"] == utc(2, 10).isoformat()
    booking.cancel(moved, now=now)
    assert booking_copies(moved.id) == "deleted"
    assert exchange.events(BOB) == []
    assert BookingCopy.get(BookingCopy.booking == moved).status == "deleted"


def test_roles_move_between_each_other_and_none_disconnects(ctx, people, exchange, org):
    alice, bob = people
    exchange_org.set_role(bob, "main")
    first = exchange_org.membership(bob).connection.id
    exchange_org.set_role(bob, "additional")
    member = exchange_org.membership(bob)
    assert member.connection.id == first and member.role == "additional"
    assert not member.calendar.write and member.calendar.copy_bookings
    exchange_org.set_role(bob, "main")
    assert exchange_org.membership(bob).calendar.copy_bookings is False
    exchange_org.set_role(bob, "none")
    assert exchange_org.membership(bob).connection is None
    assert Connection.select().where(Connection.user == bob).count() == 0


def test_impersonation_reaches_members_who_granted_no_delegate_access(ctx, people, exchange, now):
    alice, bob = people
    exchange.mailbox(BOB, delegates={})
    exchange_org.configure(org_fields(exchange, access="impersonation"))
    with pytest.raises(InvalidSetup) as err:
        exchange_org.set_role(bob, "main")
    assert err.value.field == "role" and "impersonation rights" in err.value.message

    exchange.mailbox(BOB, impersonators=[SERVICE])
    exchange_org.set_role(bob, "main")
    b = book(bob, utc(1, 9), now)
    assert write_back(b.id) == "written"
    [item] = exchange.events(BOB)
    [create] = [e for e in exchange.log() if e["operation"] == "CreateItem"]
    assert (create["user"], create["acting"]) == (SERVICE, BOB)
    assert item["created_by"] == SERVICE


def test_free_busy_rights_only_make_a_busy_source(ctx, people, exchange, org, now):
    alice, bob = people
    exchange.mailbox(BOB, delegates={})  # only the organisation's free/busy default
    with pytest.raises(InvalidSetup) as err:
        exchange_org.set_role(bob, "main")
    assert "only see the free/busy times" in err.value.message
    exchange_org.set_role(bob, "busy")
    member = exchange_org.membership(bob)
    assert member.role == "busy" and not member.calendar.writable
    exchange.seed(BOB, [{"start": utc(1, 9).isoformat(), "end": utc(1, 10).isoformat()}])
    assert sync.refresh_connection(member.connection.id, now=now) == "ok"
    assert utc(1, 9) not in slots(bob, 1, now)

    exchange.mailbox(BOB, free_busy="None")  # now not even free/busy
    assert sync.refresh_connection(member.connection.id, now=now) == "error"
    assert "NoFreeBusyAccess" in Connection.get_by_id(member.connection.id).last_error


def test_a_member_without_a_mailbox_is_told_so(ctx, people, exchange, org):
    alice, bob = people
    exchange_org.set_member_mailbox(bob, "nobody@example.com")
    with pytest.raises(InvalidSetup) as err:
        exchange_org.set_role(bob, "main")
    assert "no mailbox nobody@example.com" in err.value.message
    assert Connection.select().count() == 0


def test_a_new_password_reaches_every_member_connection(ctx, people, exchange, org, now):
    alice, bob = people
    exchange_org.set_role(bob, "main")
    conn = exchange_org.membership(bob).connection
    exchange.add_user(SERVICE, "rotated-password", domain="EXAMPLE", sam="svc-kairos")
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    exchange_org.configure(org_fields(exchange, password="rotated-password"))
    conn = Connection.get_by_id(conn.id)
    assert conn.status == "syncing" and sync.credentials(conn) == {"password": "rotated-password"}
    assert sync.refresh_connection(conn.id, now=now) == "ok"


def test_removing_the_organisation_disconnects_its_members(ctx, people, exchange, org):
    alice, bob = people
    exchange_org.set_role(bob, "main")
    exchange_org.set_role(alice, "busy")
    assert exchange_org.remove() == 2
    assert ExchangeOrganisation.select().count() == 0
    assert Connection.select().count() == 0 and Calendar.select().count() == 0


def test_throttling_and_written_event_rows_for_members(ctx, people, exchange, org, now):
    alice, bob = people
    exchange_org.set_role(bob, "main")
    conn = exchange_org.membership(bob).connection
    exchange.fault("GetUserAvailability", soap="ErrorServerBusy", back_off_ms=30_000, mailbox=BOB)
    assert sync.refresh_connection(conn.id, now=now) == "error"
    assert "slow down" in Connection.get_by_id(conn.id).last_error
    b = book(bob, utc(1, 9), now)
    assert write_back(b.id) == "written"
    assert CalendarEvent.get(CalendarEvent.booking == b).status == "written"


def test_the_organisation_secret_is_sealed_to_its_row(ctx, org):
    moved = ExchangeOrganisation.create(email="x@example.com", secret=org.secret)
    with pytest.raises(crypto.SecretError):
        crypto.unseal(moved, "secret")


def test_the_admins_own_server_may_be_on_the_private_network(ctx, people, exchange, now):
    """Hosts may not point Kairos at internal addresses; the admin's corporate mailbox may."""
    alice, bob = people
    ctx.config["ALLOW_PRIVATE_URLS"] = False
    with pytest.raises(InvalidSetup) as err:
        sync.connect(
            bob, "exchange", {"email": BOB, "password": "bob-secret", "ews_url": exchange.ews_url}
        )
    assert err.value.field == "ews_url" and "may not connect to" in err.value.message
    exchange_org.configure(org_fields(exchange))
    exchange_org.set_role(bob, "main")
    assert sync.refresh_connection(exchange_org.membership(bob).connection.id, now=now) == "ok"


def test_a_refused_organisation_sign_in_is_shown_to_admin_and_member(
    exchange_app, people, exchange, org, now
):
    alice, bob = people
    with exchange_app.app_context():
        exchange_org.set_role(bob, "main")
        exchange.add_user(SERVICE, "rotated-password", domain="EXAMPLE", sam="svc-kairos")
        conn = exchange_org.membership(bob).connection
        assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    admin = exchange_app.test_client()
    sign_in(admin, ALICE)
    page = admin.get("/settings/admin/exchange").get_data(as_text=True)
    assert "Exchange refused the sign-in of kairos@example.com" in page
    member = exchange_app.test_client()
    sign_in(member, BOB)
    page = member.get("/settings/connections/").get_data(as_text=True)
    assert "Your admin needs to update" in page and "Reconnect the account" not in page
    assert "Sign-in refused" in member.get("/settings/exchange").get_data(as_text=True)


def test_key_rotation_re_encrypts_the_organisation_password(ctx, people, exchange, org):
    """``flask keys rotate`` covers the organisation mailbox like every connection."""
    from cryptography.fernet import Fernet

    alice, bob = people
    exchange_org.set_role(bob, "main")
    old = list(ctx.config["ENCRYPTION_KEYS"])
    ctx.config["ENCRYPTION_KEYS"] = [Fernet.generate_key().decode(), *old]
    assert crypto.rotate() == 2  # the organisation row and Bob's connection
    ctx.config["ENCRYPTION_KEYS"] = ctx.config["ENCRYPTION_KEYS"][:1]  # the old key is gone
    assert exchange_org.password(ExchangeOrganisation.get()) == SERVICE_PW
    assert sync.credentials(exchange_org.membership(bob).connection) == {"password": SERVICE_PW}
