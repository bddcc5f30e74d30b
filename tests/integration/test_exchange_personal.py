"""A host's own Exchange account end to end against the fake Exchange (HTTPS, NTLM/Basic):
connecting with a URL and via Autodiscover, what a failed connect advises, busy times,
write-back exactly once, throttling and refused credentials."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from jobs.calendar import write_back
from portal.booking import service as booking
from portal.booking.checks import BookingError
from portal.calendars import sync
from portal.calendars.providers import InvalidSetup, RateLimited, Transient
from portal.models import Calendar, CalendarEvent, Connection, Outbox, from_db, utcnow
from tests.support.booking import assert_busy_types_decide, make_host, slots, utc
from tests.support.exchange import ALICE, ALICE_PW, book, ctx_fixture, exchange_app_fixture  # noqa: F401


@pytest.fixture
def host(ctx, ews):
    ews.add_user(ALICE, ALICE_PW, domain="EXAMPLE", sam="alice", name="Alice Host")
    return make_host()


def connect(host, ews, **fields):
    values = {"email": ALICE, "password": ALICE_PW, "ews_url": ews.ews_url} | fields
    return sync.connect(host, "exchange", {k: v for k, v in values.items() if v is not None})


def settings(conn) -> dict:
    return json.loads(Connection.get_by_id(conn.id).settings)


def discovery_calls(ews) -> list[str]:
    """Requests that only discovery makes: Autodiscover, auth probes, version guessing."""
    return [e["operation"] for e in ews.log() if e["operation"] in ("Autodiscover", "ConvertId")]


# ---------------------------------------------------------------- connecting


def test_connect_with_url_stores_endpoint_auth_and_version(host, ews, now):
    conn = connect(host, ews)
    stored = settings(conn)
    assert stored["ews_url"] == ews.ews_url
    assert stored["auth_type"] == "ntlm"
    assert (stored["version"], stored["api_version"]) == ("15.1.2507.6", "Exchange2016")
    assert "password" not in conn.settings and ALICE_PW not in conn.secret  # sealed
    [cal] = Calendar.select().where(Calendar.connection == conn)
    assert (cal.external_id, cal.writable, cal.conflict, cal.write) == (ALICE, True, True, True)

    ews.clear_log()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert discovery_calls(ews) == []  # stored endpoint, auth and version: no probing
    assert {e["operation"] for e in ews.log() if e["status"] == 200} >= {"GetUserAvailability"}


def test_connect_by_autodiscover_runs_it_once(host, ews, now):
    conn = connect(host, ews, ews_url=None)
    stored = settings(conn)
    assert stored["ews_url"] == ews.ews_url and stored["autodiscovered"] is True
    assert stored["auth_type"] == "ntlm" and stored["version"] == "15.1.2507.6"
    assert [e for e in ews.log() if e["operation"] == "Autodiscover" and e["status"] == 200]

    ews.clear_log()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    b = book(host, utc(1, 9), now)
    assert write_back(b.id) == "written"
    assert discovery_calls(ews) == []


def test_autodiscover_follows_an_address_redirect(host, ews):
    ews.redirect("a.host@example.com", ALICE)  # an alias whose primary address is Alice's
    conn = connect(host, ews, email="a.host@example.com", username=ALICE, ews_url=None)
    assert settings(conn)["email"] == ALICE
    assert Calendar.get(Calendar.connection == conn).external_id == ALICE


def test_basic_auth_server(host, ews):
    ews.reset(auth=("basic",))
    ews.add_user(ALICE, ALICE_PW, sam="alice")
    conn = connect(host, ews)
    assert settings(conn)["auth_type"] == "basic"
    assert {e["auth"] for e in ews.log() if e["status"] == 200} == {"basic"}


@pytest.mark.parametrize("username", ["EXAMPLE\\alice", "alice", ALICE.upper()])
def test_every_user_name_form_signs_in(host, ews, username):
    conn = connect(host, ews, username=username)
    assert settings(conn)["username"] == username
    assert Connection.get_by_id(conn.id).status in ("ok", "syncing")


def test_refused_sign_in_says_what_to_try_next(host, ews):
    with pytest.raises(InvalidSetup) as err:
        connect(host, ews, password="wrong")
    assert err.value.field == "username"
    message = err.value.message
    assert "app password" in message
    assert "DOMAIN\\user" in message and "(alice)" in message  # the forms not tried yet

    with pytest.raises(InvalidSetup) as err:
        connect(host, ews, password="wrong", username="EXAMPLE\\alice")
    assert f"your e-mail address ({ALICE})" in err.value.message
    assert Connection.select().count() == 0  # nothing stored


def test_a_sign_in_refused_by_autodiscover_gets_the_same_advice(host, ews):
    with pytest.raises(InvalidSetup) as err:
        connect(host, ews, password="wrong", ews_url=None)
    assert err.value.field == "username" and "DOMAIN\\user" in err.value.message
    assert Connection.select().count() == 0


def test_no_server_at_the_url_or_for_the_domain(host, ews, exchange_app):
    from tests.support.processes import closed_url

    with pytest.raises(InvalidSetup) as err:
        connect(host, ews, ews_url=closed_url().replace("http:", "https:") + "EWS/Exchange.asmx")
    assert err.value.field == "ews_url"
    assert "usually looks like https://mail.example.com/EWS/Exchange.asmx" in err.value.message

    exchange_app.config["EWS_AUTODISCOVER_URL"] = closed_url().replace("http:", "https:")
    with pytest.raises(InvalidSetup) as err:
        connect(host, ews, ews_url=None)
    assert err.value.field == "ews_url"
    assert "Autodiscover found no Exchange server for example.com" in err.value.message
    assert "Enter the EWS URL" in err.value.message


def test_bad_form_values_name_their_field(host, ews):
    for fields, field in (
        ({"email": "not-an-address"}, "email"),
        ({"password": ""}, "password"),
        ({"ews_url": "http://mail.example.com/EWS/Exchange.asmx"}, "ews_url"),
        ({"ews_url": "ftp://mail.example.com"}, "ews_url"),
        ({"username": "a b\\c\\d"}, "username"),
    ):
        with pytest.raises(InvalidSetup) as err:
            connect(host, ews, **fields)
        assert err.value.field == field, fields


def test_private_addresses_need_the_admins_permission(host, ews, exchange_app):
    exchange_app.config["ALLOW_PRIVATE_URLS"] = False
    with pytest.raises(InvalidSetup) as err:
        connect(host, ews)
    assert err.value.field == "ews_url" and "may not connect to" in err.value.message


# ---------------------------------------------------------------- busy times


def seed(ews, *events):
    ews.seed(
        ALICE,
        [
            {"start": s.isoformat(), "end": e.isoformat(), "show_as": show, "is_cancelled": c}
            for s, e, show, c in events
        ],
    )


def test_busy_types_decide_what_blocks_slots(host, ews, now, ctx):
    conn = connect(host, ews)
    seed(
        ews,
        (utc(1, 8), utc(1, 9), "Busy", False),
        (utc(1, 9), utc(1, 10), "OOF", False),
        (utc(1, 10), utc(1, 11), "Tentative", False),
        (utc(1, 11), utc(1, 12), "Free", False),
        (utc(1, 12), utc(1, 13), "WorkingElsewhere", False),
        (utc(1, 13), utc(1, 14), "Busy", True),  # a cancelled meeting
        (utc(2, 23), utc(3, 23), "Busy", False),  # all day in Berlin
    )
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert_busy_types_decide(host, now)

    ctx.config["TENTATIVE_IS_BUSY"] = False
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert utc(1, 10) in slots(host, 1, now)


def test_confirming_rechecks_exchange_live(host, ews, now):
    conn = connect(host, ews)
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert utc(1, 9) in slots(host, 1, now)
    seed(ews, (utc(1, 9), utc(1, 10), "Busy", False))  # booked in Outlook after our refresh
    with pytest.raises(BookingError) as err:
        book(host, utc(1, 9), now)
    assert err.value.message == "this time is not available"


# ---------------------------------------------------------------- writing


def test_booking_is_written_moved_and_removed_exactly_once(host, ews, now):
    connect(host, ews)
    b = book(host, utc(1, 9), now)
    assert write_back(b.id) == "written"
    [item] = ews.events(ALICE)
    row = CalendarEvent.get(CalendarEvent.booking == b)
    assert (row.external_id, row.etag) == (item["id"], item["changekey"])
    assert item["start"] == utc(1, 9).isoformat() and item["uid"] == b.ical_uid
    assert item["attendees"][0]["email"] == "ada@example.org"
    assert item["invitations"] == "SendToNone"  # Kairos sends the invitation itself
    assert item["start_timezone"] == "W. Europe Standard Time"  # shown in the host's zone

    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert write_back(moved.id) == "written"
    [again] = ews.events(ALICE)
    assert again["id"] == item["id"] and again["start"] == utc(2, 10).isoformat()
    assert again["changekey"] != item["changekey"]
    assert CalendarEvent.get(CalendarEvent.booking == moved).etag == again["changekey"]

    booking.cancel(moved, now=now)
    assert write_back(moved.id) == "deleted"
    assert ews.events(ALICE) == []
    assert [i["id"] for i in ews.admin("GET", f"/_admin/mailboxes/{ALICE}/deleted")] == [item["id"]]
    assert write_back(moved.id) == "nothing to delete"


def test_a_retry_after_a_lost_answer_finds_the_first_item(host, ews, now):
    connect(host, ews)
    b = book(host, utc(1, 9), now)
    ews.fault("CreateItem", after=True)  # created, but the answer never arrives
    with pytest.raises(Transient):
        write_back(b.id)
    assert len(ews.events(ALICE)) == 1
    assert write_back(b.id) == "written"
    [item] = ews.events(ALICE)
    assert CalendarEvent.get(CalendarEvent.booking == b).external_id == item["id"]
    assert sum(1 for e in ews.log() if e["operation"] == "CreateItem") == 1


def test_an_item_deleted_in_outlook_is_written_again(host, ews, now):
    connect(host, ews)
    b = book(host, utc(1, 9), now)
    assert write_back(b.id) == "written"
    ews.seed(ALICE, [])  # seeded items only: the booking's item stays
    [item] = ews.events(ALICE)
    from portal.calendars.providers.exchange import (
        ExchangeProvider,  # delete it behind Kairos' back
    )

    conn = Connection.get(Connection.user == host)
    provider = ExchangeProvider(
        conn.settings_dict(),
        sync.credentials(conn),
        {"HTTP_TIMEOUT": 5, "ALLOW_PRIVATE_URLS": True},
    )
    provider.delete_event(ALICE, item["id"])
    provider.close()
    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert write_back(moved.id) == "written"
    [again] = ews.events(ALICE)
    assert again["id"] != item["id"] and again["start"] == utc(2, 10).isoformat()


# ---------------------------------------------------------------- failures


def test_server_busy_backs_off_as_long_as_exchange_asks(host, ews, now):
    conn = connect(host, ews)
    ews.fault("GetUserAvailability", soap="ErrorServerBusy", back_off_ms=90_000)
    assert sync.refresh_connection(conn.id, now=now) == "error"
    row = Connection.get_by_id(conn.id)
    assert row.next_sync_at == (now + timedelta(seconds=90)).replace(tzinfo=None)
    assert sync.refresh_connection(conn.id, now=now) == "ok"

    b = book(host, utc(1, 9), now)
    ews.fault("FindItem", soap="ErrorServerBusy", back_off_ms=7_500)
    with pytest.raises(RateLimited) as err:
        write_back(b.id)
    assert err.value.retry_after == 7.5
    assert write_back(b.id) == "written"
    assert len(ews.events(ALICE)) == 1


def test_a_throttled_write_back_job_is_enqueued_again_after_the_back_off(host, ews, now):
    """The outbox row waits for Exchange's BackOffMilliseconds, not RQ's fixed schedule."""
    from jobs.outbox import run
    from portal.runtime.outbox import relay

    connect(host, ews)
    b = book(host, utc(1, 9), now)
    job = Outbox.get(Outbox.kind == "write_back", Outbox.payload.contains(f'"booking_id": {b.id}'))
    ews.fault("FindItem", soap="ErrorServerBusy", back_off_ms=120_000)
    before = utcnow()
    assert run(job.id) == "deferred"
    job = Outbox.get_by_id(job.id)
    due = from_db(job.run_at)
    assert job.status == "pending" and "RateLimited" in job.last_error
    assert before + timedelta(seconds=120) <= due <= utcnow() + timedelta(seconds=120)
    assert ews.events(ALICE) == []

    relay(now=due - timedelta(seconds=1))
    assert Outbox.get_by_id(job.id).status == "pending"  # not before the back-off
    relay(now=due + timedelta(seconds=1))
    assert Outbox.get_by_id(job.id).status == "enqueued"
    assert run(job.id) == "done"
    assert len(ews.events(ALICE)) == 1


def test_refused_credentials_need_a_reconnect(host, ews, now):
    conn = connect(host, ews)
    b = book(host, utc(1, 9), now)
    ews.add_user(ALICE, "changed-in-active-directory", sam="alice")
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    row = Connection.get_by_id(conn.id)
    assert row.status == "needs_reconnect" and "refused" in row.last_error
    assert Outbox.select().where(Outbox.kind == sync.ACTION_REQUIRED).count() == 1
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"  # no more tries
    assert write_back(b.id) == "failed"
    assert slots(host, 2, now) != []  # the booking page keeps working from the cache

    sync.reconnect(
        row, {"email": ALICE, "password": "changed-in-active-directory", "ews_url": ews.ews_url}
    )
    assert sync.refresh_connection(conn.id, now=now) == "ok"


def test_a_401_that_survives_a_fresh_handshake_is_refused_credentials(host, ews, now):
    conn = connect(host, ews)
    ews.fault("GetUserAvailability", status=401)  # once: NTLM signs in again and goes on
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    ews.fault("GetUserAvailability", status=401, times=2)  # again after the new handshake
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
