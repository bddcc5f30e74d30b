"""The zone list invitees pick from: canonical names, friendly labels, aliases mapped home."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo, available_timezones

import pytest
from babel.dates import format_time

from portal.web import timezones


def test_only_canonical_names_and_every_one_a_real_zone():
    names = [z.name for z in timezones.zones()]
    assert len(names) == len(set(names)) > 300
    assert "Asia/Kathmandu" in names and "Europe/Kyiv" in names and "UTC" in names
    for alias in ("Asia/Katmandu", "Asia/Calcutta", "US/Eastern", "Europe/Kiev", "GMT"):
        assert alias not in names
    assert set(names) <= available_timezones() | {"UTC"}
    assert names[0] == "UTC"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("Asia/Katmandu", "Asia/Kathmandu"),
        ("Asia/Calcutta", "Asia/Kolkata"),
        ("US/Eastern", "America/New_York"),
        ("Europe/Kiev", "Europe/Kyiv"),
        ("America/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("Etc/UTC", "UTC"),
        ("GMT", "UTC"),
        ("Europe/Berlin", "Europe/Berlin"),
        ("Etc/GMT+5", "Etc/GMT+5"),  # valid, with no place of its own: kept
    ],
)
def test_aliases_map_to_the_listed_name(alias, name):
    assert timezones.canonical(alias) == name


def test_labels_name_the_place_country_offset_and_local_time(now):
    kathmandu = timezones.describe("Asia/Katmandu", now)  # no DST: always +05:45
    local = now.astimezone(ZoneInfo("Asia/Kathmandu"))
    clock = format_time(local, "short", locale="en")  # "2:50\u202fPM"
    assert kathmandu == f"Kathmandu, Nepal (UTC+05:45, now {clock})"
    utc = format_time(now.astimezone(UTC), "short", locale="en")
    assert timezones.describe("UTC", now) == f"UTC (UTC±00:00, now {utc})"
    buenos_aires = timezones.describe("America/Argentina/Buenos_Aires", now)
    assert buenos_aires.startswith("Buenos Aires, Argentina (UTC\u221203:00")
    knox = timezones.describe("America/Indiana/Knox", now)
    assert knox.startswith("Knox (Indiana), United States")


def test_labels_in_other_languages_take_cldr_names_and_clocks(now):
    """The place and country in the reader's language, the time in their clock, the words
    around them from the pattern the caller translated."""
    local = now.astimezone(ZoneInfo("Asia/Kathmandu"))
    pattern = "%(where)s (%(offset)s, actuellement %(time)s)"
    label = timezones.describe("Asia/Kathmandu", now, "fr", pattern)
    assert label == f"Katmandou, Népal (UTC+05:45, actuellement {local:%H:%M})"
    assert timezones.describe("Europe/Vienna", now, "de").startswith("Wien, Österreich (UTC+01:00")
    # No CLDR name for an unlisted zone: its own name stays.
    assert timezones.describe("Etc/GMT+5", now, "de").startswith("Etc/GMT+5 (UTC\u221205:00")


def test_offset_label_signs(now):
    label = timezones.offset_label
    assert label(now.astimezone(ZoneInfo("Asia/Tokyo"))) == "UTC+09:00"  # no DST in these
    assert label(now.astimezone(ZoneInfo("Etc/GMT+5"))) == "UTC\u221205:00"
    assert label(now.astimezone(UTC)) == "UTC±00:00"
    assert label(now.astimezone(ZoneInfo("Asia/Kathmandu"))) == "UTC+05:45"
