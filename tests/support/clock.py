"""The tests' one clock: a "now" derived from the real date, and the app clock built on it.

``NOW`` is the first Monday 08:00 UTC at least a week after the real time when the
run starts, so every booking a test makes a few days after it lies in the future
for processes that keep real time too (the fakes, Radicale, the browser tests'
gunicorn), whatever day the suite runs on. ``KAIROS_TEST_CLOCK_OFFSET_DAYS`` moves
the real time it starts from (CI runs the suite again a year ahead).

That Monday may fall in summer or winter: tests compute instants with ``at`` (a
local wall-clock time on a day counted from ``NOW``) or zoneinfo, never by assuming
a date, a month or a UTC offset.
"""

from __future__ import annotations

import os
import time as _time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

OFFSET_ENV = "KAIROS_TEST_CLOCK_OFFSET_DAYS"


def future_monday(real: datetime | None = None) -> datetime:
    """The first Monday 08:00 UTC at least 7 days after ``real`` (default: the wall clock)."""
    real = (real or datetime.now(UTC)) + timedelta(days=int(os.environ.get(OFFSET_ENV) or 0))
    earliest = real + timedelta(days=7)
    monday = datetime.combine(earliest.date(), clock_time(8), UTC)
    if monday < earliest:
        monday += timedelta(days=1)
    return monday + timedelta(days=(7 - monday.weekday()) % 7)


# Once per run: module constants (a test file's SLOT) and the ``now`` fixture agree.
NOW = future_monday()


def day(days: int = 0) -> date:
    """The date ``days`` after NOW's Monday (1 = Tuesday, 7 = the next Monday)."""
    return NOW.date() + timedelta(days=days)


def at(days: int, hour: int, minute: int = 0, tz: str = "UTC") -> datetime:
    """The UTC instant that reads ``hour:minute`` in ``tz`` on ``day(days)``."""
    local = datetime.combine(day(days), clock_time(hour, minute), ZoneInfo(tz))
    return local.astimezone(UTC)


def iso_z(instant: datetime) -> str:
    """``2026-12-01T09:00:00Z``: the form Google and the public pages use."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """The app's clock in tests (``CLOCK`` in its config).

    It starts at ``NOW`` and runs at real speed, as jobs that wait for time to pass
    need; ``set`` moves it (it keeps running from there) and ``freeze`` stops it, for
    tests about an exact instant.
    """

    def __init__(self, start: datetime = NOW):
        self.set(start)

    def set(self, when: datetime) -> None:
        self._at, self._since, self._frozen = when, _time.monotonic(), False

    def freeze(self, when: datetime | None = None) -> None:
        self._at, self._frozen = (when or self()), True

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def __call__(self) -> datetime:
        if self._frozen:
            return self._at
        return self._at + timedelta(seconds=_time.monotonic() - self._since)
