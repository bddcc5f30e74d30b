"""Connections, the busy cache and the confirm-time re-check, against a real Radicale and feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace

import pytest

from portal import crypto
from portal.booking import service as booking
from portal.booking.checks import BookingError, CalendarUnavailable
from portal.booking.rules import available_slots
from portal.calendars import busy_cache, live_check, refresh_queue, sync, write_back
from portal.models import BusyBlock, Calendar, Connection, Outbox, db
from portal.runtime.appconfig import live_check_timeout
from tests.support.clock import at, day
from tests.support.ical import VTIMEZONES
from tests.support.servers import TcpProxy

SEARCH_ZONE = "Europe/Berlin"


def utc(day, hour, minute=0):
    """``hour:minute`` UTC, ``day`` days after the test clock's Monday (1 = Tuesday)."""
    return at(day, hour, minute)


def berlin(day, hour, minute=0):
    return at(day, hour, minute, tz=SEARCH_ZONE)


def new_york(day, hour=0):
    return at(day, hour, tz="America/New_York")


def floating(days, hour):
    """A wall-clock time with no zone (read in the event's TZID)."""
    return datetime.combine(day(days), time(hour))


def ical_local(days, hour):
    return f"{day(days):%Y%m%d}T{hour:02d}0000"


def vevent(uid, start, end, *extra, tzid=None):
    def fmt(v):
        if isinstance(v, datetime):
            if v.tzinfo:
                return "", v.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            return (f";TZID={tzid}" if tzid else ""), v.strftime("%Y%m%dT%H%M%S")
        return ";VALUE=DATE", v.strftime("%Y%m%d")

    p1, v1 = fmt(start)
    p2, v2 = fmt(end)
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART{p1}:{v1}",
        f"DTEND{p2}:{v2}",
        "SUMMARY:Private title",
        *extra,
        "END:VEVENT",
    ]


BERLIN_TZ = VTIMEZONES["Europe/Berlin"]


def vcal(*events, tz=False, header=()):
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *header]
    if tz:
        lines += BERLIN_TZ
    for ev in events:
        lines += ev
    return "\r\n".join(lines + ["END:VCALENDAR"]) + "\r\n"


@pytest.fixture
def ctx(app):
    with app.app_context(), db.connection_context():
        yield app


@pytest.fixture
def dav(radicale):
    """A fresh Radicale account with a busy calendar and a bookings calendar."""
    user, password = radicale.add_user()
    return SimpleNamespace(
        server=radicale,
        user=user,
        password=password,
        work=radicale.make_calendar(user, "Work", tz=SEARCH_ZONE),
        trips=radicale.make_calendar(user, "Trips", tz="America/New_York"),
        bookings=radicale.make_calendar(user, "Bookings"),
        fields={"url": radicale.url, "username": user, "password": password},
    )


@pytest.fixture
def host(hosts):
    user = hosts.create("alice", tz=SEARCH_ZONE)
    hosts.meeting_type(user, "intro", duration_minutes=30)
    return user


def blocks(calendar_url):
    cal = Calendar.get(Calendar.external_id == calendar_url)
    return sorted(
        (b.start.replace(tzinfo=UTC), b.end.replace(tzinfo=UTC))
        for b in BusyBlock.select().where(BusyBlock.calendar == cal)
    )


def test_connect_caldav_lists_calendars_and_seals_the_password(ctx, host, dav):
    conn = sync.connect(host, "caldav", dav.fields)
    assert conn.provider == "caldav" and dav.user in conn.label
    cals = {c.name: c for c in Calendar.select().where(Calendar.connection == conn)}
    assert set(cals) == {"Work", "Trips", "Bookings"}
    assert all(c.writable and c.conflict for c in cals.values())
    assert cals["Work"].timezone == SEARCH_ZONE and cals["Trips"].timezone == "America/New_York"
    assert sum(c.write for c in cals.values()) == 1
    # the password is stored encrypted and bound to this row
    assert dav.password not in Connection.get_by_id(conn.id).secret
    assert sync.credentials(Connection.get_by_id(conn.id)) == {"password": dav.password}
    assert "password" not in conn.settings


def test_connect_rejects_wrong_password_naming_the_field(ctx, host, dav):
    with pytest.raises(sync.InvalidSetup) as err:
        sync.connect(host, "caldav", dav.fields | {"password": "nope"})
    assert err.value.field == "password"
    assert Connection.select().count() == 0


def test_refresh_applies_busy_semantics(ctx, host, dav, now):
    put = dav.server.put
    put(
        dav.work,
        "weekly.ics",
        vcal(
            vevent(
                "weekly",
                floating(2, 9),
                floating(2, 10),
                "RRULE:FREQ=WEEKLY;COUNT=4",
                f"EXDATE;TZID=Europe/Berlin:{ical_local(9, 9)}",
                tzid=SEARCH_ZONE,
            ),
            vevent(
                "weekly",
                floating(17, 14),
                floating(17, 15),
                f"RECURRENCE-ID;TZID=Europe/Berlin:{ical_local(16, 9)}",
                tzid=SEARCH_ZONE,
            ),
            tz=True,
        ),
        user=dav.user,
    )
    put(
        dav.work,
        "free.ics",
        vcal(vevent("free", utc(1, 10), utc(1, 11), "TRANSP:TRANSPARENT")),
        user=dav.user,
    )
    put(
        dav.work,
        "gone.ics",
        vcal(vevent("gone", utc(1, 12), utc(1, 13), "STATUS:CANCELLED")),
        user=dav.user,
    )
    put(
        dav.trips,
        "trip.ics",
        vcal(vevent("trip", day(3), day(4))),
        user=dav.user,
    )

    conn = sync.connect(host, "caldav", dav.fields)
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    conn = Connection.get_by_id(conn.id)
    assert conn.status == "ok" and conn.last_synced_at is not None

    assert blocks(dav.work) == [
        (berlin(2, 9), berlin(2, 10)),  # 09:00 Berlin; a week later is excluded
        (berlin(17, 14), berlin(17, 15)),  # the moved instance
        (berlin(23, 9), berlin(23, 10)),
    ]
    # all-day in the calendar's own zone (New York), not the host's (Berlin)
    assert blocks(dav.trips) == [(new_york(3), new_york(4))]

    mt = host.meeting_types.get()
    wednesday = available_slots(host, mt, utc(2, 0), utc(3, 0), now=now)
    # hours start 09:00 Berlin, busy until 10:00 Berlin
    assert berlin(2, 9) not in wednesday and berlin(2, 9, 30) not in wednesday
    assert berlin(2, 10) in wednesday
    assert utc(1, 10) in available_slots(host, mt, utc(1, 0), utc(2, 0), now=now)
    assert available_slots(host, mt, new_york(3), new_york(4), now=now) == []


def test_second_refresh_is_incremental(ctx, host, dav, now):
    for i in range(5):
        dav.server.put(
            dav.work,
            f"e{i}.ics",
            vcal(vevent(f"e{i}", utc(2 + i, 9), utc(2 + i, 10))),
            user=dav.user,
        )
    conn = sync.connect(host, "caldav", dav.fields)
    provider = sync.adapter(conn)
    work = Calendar.get(Calendar.external_id == dav.work)
    assert busy_cache.sync_calendar(provider, work, host, now) == "full"
    assert busy_cache.sync_calendar(provider, Calendar.get_by_id(work.id), host, now) == "unchanged"
    dav.server.put(dav.work, "e1.ics", vcal(vevent("e1", utc(3, 15), utc(3, 16))), user=dav.user)
    dav.server.delete(dav.work + "e2.ics", user=dav.user)
    assert (
        busy_cache.sync_calendar(provider, Calendar.get_by_id(work.id), host, now) == "incremental"
    )
    provider.close()
    assert blocks(dav.work) == [
        (utc(2, 9), utc(2, 10)),
        (utc(3, 15), utc(3, 16)),
        (utc(5, 9), utc(5, 10)),
        (utc(6, 9), utc(6, 10)),
    ]


def test_expired_sync_token_falls_back_to_a_full_read(ctx, host, dav, now):
    dav.server.put(dav.work, "a.ics", vcal(vevent("a", utc(2, 9), utc(2, 10))), user=dav.user)
    conn = sync.connect(host, "caldav", dav.fields)
    sync.refresh_connection(conn.id, now=now)
    work = Calendar.get(Calendar.external_id == dav.work)
    state = json.loads(work.sync_state)
    state["cursor"]["sync_token"] = "http://radicale.org/ns/sync/unknown"
    Calendar.update(sync_state=json.dumps(state)).where(Calendar.id == work.id).execute()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert blocks(dav.work) == [(utc(2, 9), utc(2, 10))]


def test_ics_feed_connects_refreshes_and_revalidates_with_etag(ctx, host, feed_server, now):
    body = vcal(
        vevent("x", utc(2, 9), utc(2, 10)),
        vevent("allday", day(4), day(5)),
        header=["X-WR-CALNAME:Team rota", "X-WR-TIMEZONE:America/New_York"],
    )
    url = feed_server.publish("/rota.ics", body)
    conn = sync.connect(host, "ics", {"url": url})
    assert conn.label == "Team rota"
    assert url not in conn.settings  # the feed address is a secret
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert blocks("feed") == [(utc(2, 9), utc(2, 10)), (new_york(4), new_york(5))]
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert feed_server.requests[-1] == ("/rota.ics", 304)
    assert blocks("feed") == [(utc(2, 9), utc(2, 10)), (new_york(4), new_york(5))]
    feed_server.publish("/rota.ics", vcal(vevent("x", utc(2, 11), utc(2, 12))))
    sync.refresh_connection(conn.id, now=now)
    assert blocks("feed") == [(utc(2, 11), utc(2, 12))]


def test_ics_feed_refuses_private_addresses_unless_allowed(ctx, host, feed_server):
    url = feed_server.publish("/a.ics", vcal())
    ctx.config["ALLOW_PRIVATE_URLS"] = False
    with pytest.raises(sync.InvalidSetup) as err:
        sync.connect(host, "ics", {"url": url})
    assert err.value.field == "url" and "may not connect to" in str(err.value)
    assert feed_server.requests == []  # refused before a single byte was sent


def test_ics_feed_size_cap(ctx, host, feed_server):
    url = feed_server.publish(
        "/big.ics", vcal(*[vevent(f"e{i}", utc(2, 9), utc(2, 10)) for i in range(200)])
    )
    ctx.config["ICS_MAX_BYTES"] = 4096
    with pytest.raises(sync.InvalidSetup) as err:
        sync.connect(host, "ics", {"url": url})
    assert "larger than" in str(err.value)


def test_auth_failure_needs_reconnect_stops_retrying_and_keeps_the_cache(ctx, host, dav, now):
    dav.server.put(dav.work, "a.ics", vcal(vevent("a", utc(2, 9), utc(2, 10))), user=dav.user)
    conn = sync.connect(host, "caldav", dav.fields)
    sync.refresh_connection(conn.id, now=now)
    sync.store_credentials(conn, {"password": "revoked"})

    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    conn = Connection.get_by_id(conn.id)
    assert conn.status == "needs_reconnect" and conn.last_error
    [mail] = Outbox.select().where(Outbox.kind == sync.ACTION_REQUIRED)
    assert mail.data() == {"connection_id": conn.id}
    # no more attempts, no second e-mail, and the cache still blocks the slot
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    assert Outbox.select().where(Outbox.kind == sync.ACTION_REQUIRED).count() == 1
    assert refresh_queue.enqueue_due_refreshes(now) == 0
    assert blocks(dav.work) == [(utc(2, 9), utc(2, 10))]

    sync.reconnect(conn, dav.fields)
    assert sync.refresh_connection(conn.id, now=now) == "ok"


def test_transient_failure_backs_off(ctx, host, dav, now):
    proxy = TcpProxy(dav.server.port).up()
    conn = sync.connect(host, "caldav", dav.fields | {"url": proxy.url})
    proxy.down()
    assert sync.refresh_connection(conn.id, now=now) == "error"
    conn = Connection.get_by_id(conn.id)
    assert conn.failures == 1 and conn.next_sync_at == (now + timedelta(minutes=1)).replace(
        tzinfo=None
    )
    assert sync.refresh_connection(conn.id, now=now) == "error"
    assert Connection.get_by_id(conn.id).failures == 2


def test_only_one_write_calendar_per_host(ctx, host, dav, feed_server):
    conn = sync.connect(host, "caldav", dav.fields)
    feed = sync.connect(host, "ics", {"url": feed_server.publish("/f.ics", vcal())})
    work = Calendar.get(Calendar.external_id == dav.work)
    sync.set_calendar_flags(work, write=True)
    assert [c.id for c in Calendar.select().where(Calendar.write == True)] == [work.id]  # noqa: E712
    with pytest.raises(sync.InvalidSetup):
        sync.set_calendar_flags(Calendar.get(Calendar.connection == feed), write=True)
    bookings = Calendar.get(Calendar.external_id == dav.bookings)
    sync.set_calendar_flags(bookings, write=True, conflict=False)
    assert [c.id for c in Calendar.select().where(Calendar.write == True)] == [bookings.id]  # noqa: E712
    assert write_back.write_calendar(host).id == bookings.id
    sync.disconnect(conn)
    assert write_back.write_calendar(host) is None
    assert Connection.select().count() == 1


# ---------------------------------------------------------------- confirm-time re-check


def test_confirm_sees_an_event_the_cache_does_not_know(ctx, host, dav, now):
    conn = sync.connect(host, "caldav", dav.fields)
    sync.refresh_connection(conn.id, now=now)
    mt = host.meeting_types.get()
    assert utc(1, 9) in available_slots(host, mt, utc(1, 0), utc(2, 0), now=now)
    dav.server.put(dav.work, "new.ics", vcal(vevent("new", utc(1, 9), utc(1, 10))), user=dav.user)
    with pytest.raises(BookingError):
        booking.book(host, mt, utc(1, 9), "Ada", "ada@example.com", now=now)
    assert host.bookings.count() == 0


def test_provider_down_during_confirm(ctx, host, dav, now):
    proxy = TcpProxy(dav.server.port).up()
    conn = sync.connect(host, "caldav", dav.fields | {"url": proxy.url})
    sync.refresh_connection(conn.id, now=now)
    proxy.down()
    mt = host.meeting_types.get()
    trust = ctx.config["CACHE_TRUST_SECONDS"]

    # A fresh cache is trusted: the booking goes through.
    result = booking.book(
        host, mt, utc(1, 9), "Ada", "ada@example.com", now=now + timedelta(seconds=30)
    )
    assert result.created

    # A stale one is not: a clear 503 "try again shortly", and nothing is booked.
    later = now + timedelta(seconds=trust + 60)
    with pytest.raises(CalendarUnavailable) as err:
        booking.book(host, mt, utc(1, 10), "Bob", "bob@example.com", now=later)
    assert err.value.status == 503 and err.value.code == "calendar_unavailable"
    assert "try again" in err.value.message
    assert host.bookings.count() == 1


def test_slow_provider_is_cut_off_by_the_timeout(ctx, host, feed_server, now):
    conn = sync.connect(host, "ics", {"url": feed_server.publish("/slow.ics", vcal())})
    sync.refresh_connection(conn.id, now=now)
    feed_server.delay = 3
    ctx.config["LIVE_CHECK_TIMEOUT"] = 0.5
    mt = host.meeting_types.get()
    started = datetime.now(UTC)
    with pytest.raises(CalendarUnavailable):
        booking.book(
            host,
            mt,
            utc(1, 9),
            "Ada",
            "ada@example.com",
            now=now + timedelta(hours=1),
            live_timeout=live_check_timeout(),
        )
    assert datetime.now(UTC) - started < timedelta(seconds=2.5)
    feed_server.delay = 0


def test_confirm_with_needs_reconnect_and_stale_cache_is_refused(ctx, host, dav, now):
    conn = sync.connect(host, "caldav", dav.fields)
    sync.refresh_connection(conn.id, now=now)
    sync.mark_needs_reconnect(conn, "revoked")
    mt = host.meeting_types.get()
    assert booking.book(host, mt, utc(1, 9), "Ada", "ada@example.com", now=now).created
    with pytest.raises(CalendarUnavailable):
        booking.book(host, mt, utc(1, 10), "Bo", "bo@example.com", now=now + timedelta(days=1))


def test_calendar_with_conflict_off_is_not_checked(ctx, host, dav, now):
    conn = sync.connect(host, "caldav", dav.fields)
    sync.refresh_connection(conn.id, now=now)
    for cal in Calendar.select().where(Calendar.connection == conn):
        sync.set_calendar_flags(cal, conflict=False)
    dav.server.put(dav.work, "n.ics", vcal(vevent("n", utc(1, 9), utc(1, 10))), user=dav.user)
    mt = host.meeting_types.get()
    assert booking.book(host, mt, utc(1, 9), "Ada", "ada@example.com", now=now).created


# ---------------------------------------------------------------- secrets


def test_secret_moved_to_another_row_fails(ctx, host, dav, feed_server):
    a = sync.connect(host, "caldav", dav.fields)
    b = sync.connect(host, "ics", {"url": feed_server.publish("/b.ics", vcal())})
    Connection.update(secret=Connection.get_by_id(a.id).secret).where(
        Connection.id == b.id
    ).execute()
    with pytest.raises(crypto.SecretError):
        sync.credentials(Connection.get_by_id(b.id))
    assert sync.refresh_connection(b.id) == "needs_reconnect"


def test_adapter_crash_during_confirm_is_a_503_not_a_500(ctx, host, dav, now, monkeypatch):
    from portal.calendars.providers.caldav import CalDavProvider

    conn = sync.connect(host, "caldav", dav.fields)
    sync.refresh_connection(conn.id, now=now)

    def crash(*_args, **_kw):
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(CalDavProvider, "busy", crash)
    mt = host.meeting_types.get()
    with pytest.raises(CalendarUnavailable):
        booking.book(host, mt, utc(1, 9), "Ada", "ada@example.com", now=now + timedelta(days=1))
    assert booking.book(host, mt, utc(1, 9), "Ada", "ada@example.com", now=now).created


def test_refresh_incremental_and_confirm_on_each_backend(backend_app, radicale, now):
    """The cache writes (bulk insert, per-source delete) and migration 0050 on SQLite and PG."""
    from tests.support.app import Hosts

    hosts = Hosts(backend_app)
    host = hosts.create("alice", tz=SEARCH_ZONE)
    mt = hosts.meeting_type(host, "intro", duration_minutes=30)
    user, password = radicale.add_user()
    work = radicale.make_calendar(user, "Work")
    for i in range(3):
        radicale.put(
            work, f"e{i}.ics", vcal(vevent(f"e{i}", utc(1, 9 + i), utc(1, 10 + i))), user=user
        )
    with backend_app.app_context(), db.connection_context():
        conn = sync.connect(
            host, "caldav", {"url": radicale.url, "username": user, "password": password}
        )
        assert sync.refresh_connection(conn.id, now=now) == "ok"
        radicale.delete(work + "e1.ics", user=user)
        assert sync.refresh_connection(conn.id, now=now) == "ok"
        assert blocks(work) == [(utc(1, 9), utc(1, 10)), (utc(1, 11), utc(1, 12))]
        assert booking.book(host, mt, utc(1, 10), "Ada", "ada@example.com", now=now).created
        with pytest.raises(BookingError):
            booking.book(host, mt, utc(1, 11), "Bo", "bo@example.com", now=now)


class RotatingTokenProvider:
    """A hand-written fake OAuth adapter: every call rotates its access token."""

    from portal.calendars.providers import CalendarProvider as _Base

    class Adapter(_Base):
        name = "fake-oauth"
        title = "Fake OAuth"
        oauth = True

        def _rotate(self):
            self.credentials = {"access_token": self.credentials["access_token"] + "+"}
            if self.on_credentials_updated:
                self.on_credentials_updated(dict(self.credentials))

        def list_calendars(self):
            from portal.calendars.providers import RemoteCalendar

            self._rotate()
            return [RemoteCalendar("primary", "Primary", True, "", primary=True)]

        def busy(self, calendars, start, end):
            self._rotate()
            return {c.external_id: [] for c in calendars}

        def create_event(self, calendar_id, event):
            raise NotImplementedError

        update_event = delete_event = create_event


def test_refreshed_tokens_are_sealed_back_from_jobs_and_live_checks(ctx, host, now, monkeypatch):
    import sys
    import types

    from portal.calendars import providers

    module = types.ModuleType("kairos_fake_oauth")
    module.Adapter = RotatingTokenProvider.Adapter
    monkeypatch.setitem(sys.modules, "kairos_fake_oauth", module)
    monkeypatch.setitem(providers.REGISTRY, "fake-oauth", "kairos_fake_oauth:Adapter")
    conn = Connection.create(user=host, provider="fake-oauth", label="me@fake")
    sync.store_credentials(conn, {"access_token": "t"})

    # list_calendars and busy each rotate once, in the job's own thread
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert sync.credentials(Connection.get_by_id(conn.id)) == {"access_token": "t++"}
    live_check.live_busy(host, utc(1, 9), utc(1, 10), timeout=2, now=now)  # in a pool thread
    assert sync.credentials(Connection.get_by_id(conn.id)) == {"access_token": "t+++"}
    with pytest.raises(sync.InvalidSetup):
        sync.connect(host, "fake-oauth", {})  # OAuth accounts connect in the browser


def test_ctag_fallback_for_servers_without_sync_tokens(ctx, host, dav, now):
    dav.server.put(dav.work, "a.ics", vcal(vevent("a", utc(2, 9), utc(2, 10))), user=dav.user)
    conn = sync.connect(host, "caldav", dav.fields)
    provider = sync.adapter(conn)
    ref = busy_cache.calendar_ref(Calendar.get(Calendar.external_id == dav.work), host)
    window = busy_cache.full_window(host, now)
    first = provider.sync_busy(ref, *window, {})
    assert first.full and first.state["ctag"] and first.state["sync_token"]
    only_ctag = {"ctag": first.state["ctag"]}
    assert provider.sync_busy(ref, *window, only_ctag).unchanged
    dav.server.put(dav.work, "b.ics", vcal(vevent("b", utc(3, 9), utc(3, 10))), user=dav.user)
    again = provider.sync_busy(ref, *window, only_ctag)
    assert again.full and len(again.busy) == 2
    provider.close()
