"""The fake Exchange itself, driven by exchangelib: time zones as Exchange publishes them
(GetServerTimeZones) and availability answered in the request's own zone across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from exchangelib import DELEGATE, Account, Configuration, Credentials, EWSDateTime, EWSTimeZone
from exchangelib.properties import TimeZone
from exchangelib.protocol import Protocol

ALICE = "alice@example.com"


@pytest.fixture
def account(ews):
    ews.reset(auth=("basic",))  # plain exchangelib here; the NTLM path has its own tests
    ews.add_user(ALICE, "alice-secret", sam="alice")
    config = Configuration(
        service_endpoint=ews.ews_url, credentials=Credentials(ALICE, "alice-secret")
    )
    account = Account(ALICE, config=config, access_type=DELEGATE, autodiscover=False)
    yield account
    account.protocol.close()
    del Protocol[config]


def test_published_zone_rules_match_the_zone_database(account):
    [berlin] = account.protocol.get_timezones(
        timezones=[EWSTimeZone("Europe/Berlin")], return_full_timezone_data=True
    )
    zone = TimeZone.from_server_timezone(tz_definition=berlin, for_year=2026)
    assert zone.bias == -60  # UTC = local + bias
    assert (zone.daylight_time.bias, zone.daylight_time.iso_month) == (-60, 3)
    assert zone.daylight_time.occurrence == 5 and zone.daylight_time.weekday == 7  # last Sunday
    assert zone.standard_time.iso_month == 10


@pytest.mark.parametrize("zone_name", ["America/New_York", "Europe/Berlin", "UTC"])
def test_availability_in_the_requests_zone_across_dst(ews, account, zone_name):
    # 2026: DST starts on 8 March in New York, 29 March in Berlin
    starts = [datetime(2026, 3, day, 12, tzinfo=UTC) for day in (7, 9, 28, 30)]
    ews.seed(
        ALICE,
        [{"start": s.isoformat(), "end": (s + timedelta(hours=1)).isoformat()} for s in starts],
    )
    zone = EWSTimeZone(zone_name)
    [view] = account.protocol.get_free_busy_info(
        accounts=[(ALICE, "Required", False)],
        start=EWSDateTime(2026, 3, 1, tzinfo=zone),
        end=EWSDateTime(2026, 4, 1, tzinfo=zone),
        requested_view="Detailed",
    )
    got = sorted(datetime.fromtimestamp(e.start.timestamp(), UTC) for e in view.calendar_events)
    assert got == starts
