"""The page memos never serve busy time or slots that differ from the database."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from portal.booking import busy_read, service, slot_memo
from portal.booking.rules import available_slots
from portal.models import BusyBlock, Calendar, Connection, db, to_db
from tests.integration.test_public_pages import freeze_clock
from tests.support.clock import at, day

# Tuesday after the test clock's Monday; Alice is free 09:00–17:00 Berlin.
DAY = day(1).isoformat()


@pytest.fixture
def app(backend_app):
    """These run on PostgreSQL too (its fingerprint SQL differs), when it is configured."""
    return backend_app


@pytest.fixture
def site(app, now, monkeypatch):
    from tests.support.app import Hosts

    freeze_clock(monkeypatch, now)
    # These check the exact memos underneath, so the pages' seconds-long cache is off.
    app.config["PUBLIC_SLOTS_CACHE_SECONDS"] = 0
    hosts = Hosts(app)
    alice = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(alice, "intro")
    with app.app_context(), db.connection_context():
        conn = Connection.create(user=alice, provider="ics", label="feed")
        # Synced just now: the booking's live re-check may fall back on this cache.
        cal = Calendar.create(
            connection=conn, external_id="c1", name="Work", conflict=True, last_synced_at=to_db(now)
        )
    slot_memo.clear()
    return alice, mt, cal


# These are about the memos, not the language: British English shows 24-hour times.
EN_GB = {"Accept-Language": "en-GB"}


def times(client) -> list[str]:
    resp = client.get(f"/alice/intro?date={DAY}&tz=Europe/Berlin", headers=EN_GB)
    return re.findall(r'class="slot"[^>]*>([^<]+)<', resp.text)


def local(hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` Berlin time on DAY, in UTC."""
    return at(1, hour, minute, tz="Europe/Berlin")


def test_busy_changes_show_on_the_next_view(site, app):
    alice, mt, cal = site
    client = app.test_client()
    assert "09:00" in times(client) and times(client)[0] == "09:00"  # cold, then warm
    with app.app_context(), db.connection_context():
        block = BusyBlock.create(calendar=cal, start=to_db(local(9)), end=to_db(local(10)))
    assert times(client)[0] == "10:00"  # inserted
    with app.app_context(), db.connection_context():
        BusyBlock.update(start=to_db(local(10)), end=to_db(local(11))).where(
            BusyBlock.id == block.id
        ).execute()
    shown = times(client)
    assert shown[:2] == ["09:00", "09:30"] and "10:00" not in shown  # moved in place
    with app.app_context(), db.connection_context():
        Calendar.update(conflict=False).where(Calendar.id == cal.id).execute()
    assert "10:00" in times(client)  # calendar no longer checked
    with app.app_context(), db.connection_context():
        Calendar.update(conflict=True).where(Calendar.id == cal.id).execute()
        BusyBlock.delete().execute()
    assert len(times(client)) == 16  # deleted


def test_same_rows_are_read_once(app, site, now, monkeypatch):
    alice, mt, cal = site
    with app.app_context(), db.connection_context():
        BusyBlock.create(calendar=cal, start=to_db(local(9)), end=to_db(local(10)))
    loads = []

    def counting(real):
        def read(user_id, *days):
            loads.append(days)
            return real(user_id, *days)

        return read

    for name in ("short_rows", "long_rows"):
        monkeypatch.setattr(busy_read, name, counting(getattr(busy_read, name)))
    start, end = local(1), local(1) + timedelta(days=1)
    with app.app_context(), db.connection_context():
        first = available_slots(alice, mt, start, end, now=now)
        read = len(loads)
        again = available_slots(alice, mt, start, end, now=now + timedelta(hours=1))
        assert read and len(loads) == read and first[0] == local(10) and again[0] == local(10)
        BusyBlock.create(calendar=cal, start=to_db(local(10)), end=to_db(local(11)))
        after = available_slots(alice, mt, start, end, now=now)
        assert len(loads) > read and after[0] == local(11)


def test_slots_from_this_minute_still_respect_the_lead_time(app, site):
    alice, mt, cal = site
    start, end = local(1), local(1) + timedelta(days=1)
    with app.app_context(), db.connection_context():
        at_start = available_slots(alice, mt, start, end, now=local(9, 0))
        assert at_start[0] == local(9, 0)
        # 40 seconds later the 08:00 start has passed: it goes, though the minute is the same.
        later = available_slots(alice, mt, start, end, now=local(9, 0) + timedelta(seconds=40))
        assert later[0] == local(9, 30)


def test_browsing_may_lag_a_few_seconds_but_the_form_and_booking_do_not(site, app, now):
    """With the browsing cache on, a just-booked time can still be listed for a moment;
    opening it asks afresh, so nobody reaches a form for a time that is gone."""
    alice, mt, cal = site
    app.config["PUBLIC_SLOTS_CACHE_SECONDS"] = 30
    client = app.test_client()
    assert times(client)[0] == "09:00"
    with app.test_request_context(), db.connection_context():
        service.book(alice, mt, local(9), "Carol", "carol@example.com", now=now)
    assert times(client)[0] == "09:00"  # the listing is up to 30 s old here
    start = f"{local(9):%Y-%m-%dT%H:%MZ}"
    resp = client.get("/alice/intro", query_string={"start": start}, headers=EN_GB)
    assert "no longer available" in resp.text and 'name="form_token"' not in resp.text
    assert re.findall(r'class="slot"[^>]*>([^<]+)<', resp.text)[0] == "09:30"
    app.config["PUBLIC_SLOTS_CACHE_SECONDS"] = 0
    assert times(client)[0] == "09:30"


def test_short_blocks_and_a_removed_connection_show_on_the_next_view(site, app):
    """Blocks as a sync writes them (short spans, read by day), and the cascade that
    deletes them with their connection, both reach the memo through the day versions."""
    alice, mt, cal = site
    client = app.test_client()
    assert times(client)[0] == "09:00"
    with app.app_context(), db.connection_context():
        BusyBlock.insert_many([BusyBlock.row(cal.id, local(9), local(10), "e1")]).execute()
    assert times(client)[0] == "10:00"
    with app.app_context(), db.connection_context():
        BusyBlock.insert_many([BusyBlock.row(cal.id, local(10), local(12), "e2")]).execute()
    assert times(client)[0] == "12:00"
    with app.app_context(), db.connection_context():
        Connection.delete().where(Connection.id == cal.connection_id).execute()
    assert times(client)[0] == "09:00"
