"""The provider contract (portal/calendars/providers/base.py), checked for every adapter.

Each test runs once per harness in tests/contract/harnesses/. Read-only
providers (ICS) run the reading half and must refuse writes; writable ones
run everything.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from harness import SeedEvent

from portal.calendars.providers import (
    REGISTRY,
    BusyChanges,
    BusyInterval,
    CredentialsInvalid,
    EventData,
    NotFound,
    PermissionDenied,
    Transient,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)  # a Tuesday
WINDOW = (T0 - timedelta(days=2), T0 + timedelta(days=40))


def utc(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def spans(harness, start=WINDOW[0], end=WINDOW[1], provider=None, calendar=None):
    """Sorted (start, end) pairs the adapter reports for the harness calendar."""
    calendar = calendar or harness.calendar
    result = (provider or harness.provider).busy([calendar], start, end)
    assert set(result) == {calendar.external_id}
    for item in result[calendar.external_id]:
        assert isinstance(item, BusyInterval)
        assert item.start.tzinfo is not None and item.start.utcoffset() == timedelta(0)
    return sorted({(b.start, b.end) for b in result[calendar.external_id]})


def need(harness, feature: str) -> None:
    if feature not in harness.features:
        pytest.skip(f"{harness.name} cannot express {feature!r}")


def test_every_registered_provider_has_a_harness():
    harnesses = {p.stem for p in (Path(__file__).parent / "harnesses").glob("[!_]*.py")}
    assert set(REGISTRY) <= harnesses, "each provider must join the contract suite"


# --------------------------------------------------------------------------- reading


def test_lists_calendars(harness):
    calendars = harness.provider.list_calendars()
    ids = {c.external_id for c in calendars}
    assert harness.calendar.external_id in ids
    if harness.write_calendar_id:
        writable = {c.external_id for c in calendars if c.writable}
        assert harness.write_calendar_id in writable
    else:
        assert not any(c.writable for c in calendars)


def test_bad_credentials_raise_credentials_invalid(harness):
    with pytest.raises(CredentialsInvalid):
        harness.bad_credentials().list_calendars()


def test_unreachable_server_is_transient(harness):
    provider = harness.unreachable()
    with pytest.raises(Transient):
        provider.list_calendars()
    with pytest.raises(Transient):
        provider.busy([harness.calendar], *WINDOW)


def test_empty_calendar_has_an_entry(harness):
    harness.seed([])
    assert spans(harness) == []


def test_timed_event_is_busy_and_window_is_respected(harness):
    harness.seed(
        [
            SeedEvent("a@t", utc(2, 10), utc(2, 11)),
            SeedEvent(
                "far@t",
                utc(20, 10, month=1).replace(year=2027),
                utc(20, 11).replace(year=2027, month=1),
            ),
        ]
    )
    assert spans(harness) == [(utc(2, 10), utc(2, 11))]
    # an interval overlapping the window edge is still reported
    assert spans(harness, utc(2, 10, 30), utc(2, 12)) != []
    assert spans(harness, utc(2, 11), utc(2, 12)) == []


def test_local_time_with_tzid(harness):
    harness.seed(
        [
            SeedEvent(
                "b@t", datetime(2026, 12, 2, 9), datetime(2026, 12, 2, 10), tzid="Europe/Berlin"
            )
        ]
    )
    assert spans(harness) == [(utc(2, 8), utc(2, 9))]


def test_transparent_is_free(harness):
    need(harness, "transparent")
    harness.seed(
        [
            SeedEvent("free@t", utc(2, 10), utc(2, 11), transparent=True),
            SeedEvent("busy@t", utc(2, 12), utc(2, 13)),
        ]
    )
    assert spans(harness) == [(utc(2, 12), utc(2, 13))]


def test_all_busy_switch_counts_transparent_events(harness):
    need(harness, "all_busy")
    harness.seed([SeedEvent("free@t", utc(2, 10), utc(2, 11), transparent=True)])
    calendar = replace(harness.calendar, all_busy=True)
    assert spans(harness, calendar=calendar) == [(utc(2, 10), utc(2, 11))]


def test_cancelled_is_ignored(harness):
    need(harness, "cancelled")
    harness.seed([SeedEvent("gone@t", utc(2, 10), utc(2, 11), status="CANCELLED")])
    assert spans(harness) == []


def test_tentative_follows_configuration(harness):
    need(harness, "tentative")
    harness.seed([SeedEvent("maybe@t", utc(2, 10), utc(2, 11), status="TENTATIVE")])
    busy_provider = harness.with_config({"TENTATIVE_IS_BUSY": True})
    free_provider = harness.with_config({"TENTATIVE_IS_BUSY": False})
    assert spans(harness, provider=busy_provider) == [(utc(2, 10), utc(2, 11))]
    assert spans(harness, provider=free_provider) == []


def test_all_day_blocks_whole_days_in_calendar_zone(harness):
    need(harness, "all_day")
    harness.seed(
        [
            SeedEvent("day@t", date(2026, 12, 3), date(2026, 12, 4)),
            SeedEvent("trip@t", date(2026, 12, 7), date(2026, 12, 10)),
        ]
    )
    zone = harness.calendar.timezone
    from zoneinfo import ZoneInfo

    def midnight(d):
        return datetime(2026, 12, d, tzinfo=ZoneInfo(zone)).astimezone(UTC)

    got = spans(harness)
    # multi-day may come as one span or one per day; compare the covered set
    assert _merge(got) == [(midnight(3), midnight(4)), (midnight(7), midnight(10))]


def test_floating_time_is_read_in_calendar_zone(harness):
    need(harness, "floating")
    harness.seed([SeedEvent("float@t", datetime(2026, 12, 2, 9), datetime(2026, 12, 2, 10))])
    from zoneinfo import ZoneInfo

    local = datetime(2026, 12, 2, 9, tzinfo=ZoneInfo(harness.calendar.timezone)).astimezone(UTC)
    assert spans(harness) == [(local, local + timedelta(hours=1))]


def test_weekly_recurrence_with_exdate_and_override(harness):
    need(harness, "recurrence")
    # Wednesdays 09:00–10:00 Berlin ×4; the 2nd excluded, the 3rd moved to Thursday 14:00
    harness.seed(
        [
            SeedEvent(
                "weekly@t",
                datetime(2026, 12, 2, 9),
                datetime(2026, 12, 2, 10),
                tzid="Europe/Berlin",
                rrule="FREQ=WEEKLY;COUNT=4",
                exdates=(datetime(2026, 12, 9, 9),),
                overrides=(
                    (
                        datetime(2026, 12, 16, 9),
                        datetime(2026, 12, 17, 14),
                        datetime(2026, 12, 17, 15),
                    ),
                ),
            )
        ]
    )
    assert spans(harness) == [
        (utc(2, 8), utc(2, 9)),
        (utc(17, 13), utc(17, 14)),
        (utc(23, 8), utc(23, 9)),
    ]


def test_sync_busy_reproduces_busy_incrementally(harness):
    """Applying BusyChanges to a cache always equals a fresh busy() read."""
    cache: dict[str, tuple] = {}

    def apply(changes: BusyChanges) -> None:
        assert isinstance(changes, BusyChanges)
        if changes.unchanged:
            return
        if changes.full:
            cache.clear()
        for source in changes.removed:
            cache.pop(source, None)
        for source, items in changes.busy.items():
            cache[source] = items

    def cached():
        return _merge(sorted({(b.start, b.end) for items in cache.values() for b in items}))

    harness.seed(
        [SeedEvent("s1@t", utc(2, 10), utc(2, 11)), SeedEvent("s2@t", utc(3, 10), utc(3, 11))]
    )
    first = harness.provider.sync_busy(harness.calendar, *WINDOW, {})
    assert first.full
    apply(first)
    assert cached() == _merge(spans(harness))

    again = harness.provider.sync_busy(harness.calendar, *WINDOW, first.state)
    apply(again)
    assert cached() == _merge(spans(harness))

    harness.seed(
        [SeedEvent("s1@t", utc(2, 14), utc(2, 15)), SeedEvent("s3@t", utc(4, 10), utc(4, 11))]
    )
    changed = harness.provider.sync_busy(harness.calendar, *WINDOW, again.state)
    assert not changed.unchanged
    apply(changed)
    assert (
        cached()
        == _merge(spans(harness))
        == [
            (utc(2, 14), utc(2, 15)),
            (utc(4, 10), utc(4, 11)),
        ]
    )


def _merge(pairs):
    out: list[list[datetime]] = []
    for s, e in sorted(pairs):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [tuple(p) for p in out]


# --------------------------------------------------------------------------- writing


def _event(**changes) -> EventData:
    base = EventData(
        booking_uid="bk-contract-1",
        ical_uid="bk-contract-1@kairos.test",
        summary="Intro with Ada Lovelace",
        description="Booked through Kairos.\nNotes: hello",
        start=utc(8, 10),
        end=utc(8, 10, 30),
        attendee_name="Ada Lovelace",
        attendee_email="ada@example.com",
        location="https://meet.example.com/intro-ada",
        organizer_name="Alice Host",
        organizer_email="alice@example.com",
        timezone="Europe/Berlin",
    )
    return replace(base, **changes)


def writable(harness) -> str:
    if not harness.write_calendar_id:
        pytest.skip(f"{harness.name} is read-only")
    assert harness.remote_events is not None, "writable harnesses must list remote events"
    return harness.write_calendar_id


def test_read_only_provider_refuses_writes(harness):
    if harness.write_calendar_id:
        pytest.skip("writable provider")
    assert not harness.provider.writable
    cal = harness.calendar.external_id
    with pytest.raises(PermissionDenied):
        harness.provider.create_event(cal, _event())
    with pytest.raises(PermissionDenied):
        harness.provider.update_event(cal, "x", _event())
    with pytest.raises(PermissionDenied):
        harness.provider.delete_event(cal, "x")


def test_create_update_delete(harness):
    cal = writable(harness)
    assert harness.provider.writable
    written = harness.provider.create_event(cal, _event())
    external_id, etag = written
    assert external_id

    [remote] = harness.remote_events(cal)
    assert remote.external_id == external_id
    assert (remote.start, remote.end) == (utc(8, 10), utc(8, 10, 30))
    assert remote.summary == "Intro with Ada Lovelace"
    assert "ada@example.com" in [e.lower() for e in remote.attendee_emails]
    assert "https://meet.example.com/intro-ada" in remote.text

    moved = harness.provider.update_event(
        cal, external_id, _event(start=utc(9, 15), end=utc(9, 15, 30), sequence=1), etag
    )
    assert moved.external_id == external_id
    [remote] = harness.remote_events(cal)
    assert (remote.start, remote.end) == (utc(9, 15), utc(9, 15, 30))

    harness.provider.delete_event(cal, external_id, moved.etag)
    assert harness.remote_events(cal) == []
    harness.provider.delete_event(cal, external_id)  # already gone: no error
    with pytest.raises(NotFound):
        harness.provider.update_event(cal, external_id, _event(sequence=2))


def test_create_is_idempotent_per_ical_uid(harness):
    """A retry after a lost response must not produce a second event."""
    cal = writable(harness)
    first = harness.provider.create_event(cal, _event())
    second = harness.provider.create_event(cal, _event())
    assert second.external_id == first.external_id
    assert len(harness.remote_events(cal)) == 1
    other = harness.provider.create_event(
        cal, _event(booking_uid="bk-2", ical_uid="bk-2@kairos.test")
    )
    assert other.external_id != first.external_id
    assert len(harness.remote_events(cal)) == 2


def test_written_event_is_busy_in_its_calendar(harness):
    cal = writable(harness)
    harness.provider.create_event(cal, _event())
    ref = replace(harness.calendar, external_id=cal)
    assert (utc(8, 10), utc(8, 10, 30)) in spans(harness, calendar=ref)


def test_writes_need_valid_credentials(harness):
    cal = writable(harness)
    with pytest.raises(CredentialsInvalid):
        harness.bad_credentials().create_event(cal, _event())
