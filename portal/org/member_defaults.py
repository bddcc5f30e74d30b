"""What a new member's account starts with: time zone, weekly hours, notice and buffers.

The admin sets them on the Organisation page; the invite, sign-up and CLI paths
all create accounts with them (``portal.org.signup``, ``portal.cli``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portal.models import DEFAULT_WEEKLY, AppSetting


@dataclass(frozen=True)
class MemberDefaults:
    """What a new member's account starts with (invite, sign-up, CLI)."""

    timezone: str = "UTC"
    weekly: dict[int, tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: {d: DEFAULT_WEEKLY.get(d, ()) for d in range(7)}
    )
    lead_time_minutes: int = 0
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weekly": {str(d): [list(w) for w in v] for d, v in self.weekly.items()},
            "lead_time_minutes": self.lead_time_minutes,
            "buffer_before_minutes": self.buffer_before_minutes,
            "buffer_after_minutes": self.buffer_after_minutes,
        }


def _valid_zone(name: str) -> bool:
    from portal.booking.checks import is_valid_zone

    return bool(name) and is_valid_zone(name)


def _windows(spans: list) -> tuple[tuple[str, str], ...]:
    """Stored ``[["09:00", "17:00"], …]`` checked like the form checks it; ValueError if not."""
    from portal.booking.wallclock import parse_clock

    out = []
    for a, b in spans:
        start, end = parse_clock(str(a), loose=True), parse_clock(str(b), loose=True)
        if start is None or end is None or end <= start:
            raise ValueError(f"bad window {a!r}–{b!r}")
        out.append((str(a), str(b)))
    return tuple(out)


def member_defaults() -> MemberDefaults:
    """The stored defaults; anything missing or no longer valid falls back (zone → UTC)."""
    raw = AppSetting.read("member_defaults", None)
    base = MemberDefaults()
    if not isinstance(raw, dict):
        return base
    stored_tz = raw.get("timezone")
    tz = stored_tz if isinstance(stored_tz, str) else ""
    weekly = dict(base.weekly)
    stored = raw.get("weekly")
    if isinstance(stored, dict):
        try:
            weekly = {d: _windows(stored.get(str(d), [])) for d in range(7)}
        except (TypeError, ValueError):
            weekly = dict(base.weekly)

    def minutes(key: str) -> int:
        value = raw.get(key, 0)
        return value if isinstance(value, int) and 0 <= value <= 525_600 else 0

    return MemberDefaults(
        timezone=tz if _valid_zone(tz) else "UTC",
        weekly=weekly,
        lead_time_minutes=minutes("lead_time_minutes"),
        buffer_before_minutes=minutes("buffer_before_minutes"),
        buffer_after_minutes=minutes("buffer_after_minutes"),
    )


def save_member_defaults(defaults: MemberDefaults) -> None:
    AppSetting.write("member_defaults", defaults.as_json())
