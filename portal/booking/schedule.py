"""The host's schedule: their bookings and the busy times of their calendars, day by day.

Busy times come from the free/busy cache, which never holds titles (see
``BusyBlock``), so they can only be shown as "Busy · <calendar name>". A
block that coincides exactly with one of the host's bookings is that
booking's own event in the calendar and is left out. Both the settings page
(``/settings/schedule``) and the API (``GET /api/v1/schedule``) read this.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from peewee import JOIN

from portal.booking.rules import cached_busy
from portal.booking.shape import booking_dict
from portal.i18n import time_label
from portal.models import Booking, MeetingType, User, to_db
from portal.notify.ical import meeting_title

MAX_DAYS = 62


@dataclass(frozen=True)
class Item:
    """One thing on the schedule: a booking, or a busy block of one calendar."""

    kind: str  # booking | busy
    start: datetime  # aware UTC
    end: datetime
    label: str
    calendar: str = ""
    booking: Booking | None = None

    def local(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return self.start.astimezone(tz), self.end.astimezone(tz)


def busy_label(calendar: str) -> str:
    return _("Busy · %(calendar)s", calendar=calendar) if calendar else _("Busy")


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def items(user: User, start: datetime, end: datetime) -> list[Item]:
    """Confirmed bookings and busy blocks overlapping ``[start, end)``, in time order.

    A calendar's overlapping blocks are merged, so one long day of meetings
    reads as one busy stretch.
    """
    bookings = list(
        Booking.select(Booking, MeetingType)
        .join(MeetingType, JOIN.LEFT_OUTER)
        .where(
            Booking.host == user,
            Booking.status == "confirmed",
            Booking.end > to_db(start),
            Booking.start < to_db(end),
        )
        .order_by(Booking.start, Booking.id)
    )
    own = {(b.start_utc, b.end_utc) for b in bookings}
    by_calendar: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for busy in cached_busy(user, start, end):
        if (busy.start, busy.end) not in own:
            by_calendar[busy.source].append((busy.start, busy.end))
    out = [Item("booking", b.start_utc, b.end_utc, booking_label(b), booking=b) for b in bookings]
    for calendar, spans in by_calendar.items():
        out += [Item("busy", s, e, busy_label(calendar), calendar) for s, e in _merge(spans)]
    out.sort(key=lambda i: (i.start, i.kind != "booking", i.end))
    return out


def booking_label(b: Booking) -> str:
    return f"{meeting_title(b)}: {b.invitee_name}"


def by_day(found: list[Item], first: date, last: date, tz: ZoneInfo) -> dict[date, list[Item]]:
    """Items per local day ``first``..``last``; an item spanning days appears on each."""
    days: dict[date, list[Item]] = {
        first + timedelta(days=i): [] for i in range((last - first).days + 1)
    }
    for item in found:
        s, e = item.local(tz)
        day = max(s.date(), first)
        while day <= last and datetime.combine(day, time(0), tz) < e:
            days[day].append(item)
            day += timedelta(days=1)
    return days


def span_text(item: Item, day: date, tz: ZoneInfo) -> str:
    """The item's times on ``day`` in the page's language: "9:00 AM–9:30 AM" / "09:00–09:30",
    "all day", "22:00–…" (goes on), "…–10:00"."""
    s, e = item.local(tz)
    midnight = datetime.combine(day, time(0), tz)
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tz)
    before, after = s < midnight, e > next_midnight
    if s <= midnight and e >= next_midnight:
        return _("all day")
    start = "…" if before else time_label(s)
    end = "…" if after else time_label(e)
    if e == next_midnight and end.startswith("00:00"):  # 24-hour clocks end the day at 24:00
        end = "24:00"
    return f"{start}–{end}"


@dataclass(frozen=True)
class Placed:
    """An item's box in one day column of the week grid: whole minutes below the first hour
    shown, and long. (Whole minutes, because the page places boxes with CSS classes — its
    Content-Security-Policy allows no inline styles.)"""

    item: Item
    offset: int
    minutes: int


def week_grid(
    days: dict[date, list[Item]], tz: ZoneInfo, first_hour: int = 8, last_hour: int = 18
) -> tuple[int, int, dict[date, list[Placed]]]:
    """Hours shown (widened to fit what is there) and each day's boxes.

    A block covering a whole day fills the hours shown instead of widening them.
    """
    lo, hi = first_hour * 60, last_hour * 60
    for day, found in days.items():
        midnight = datetime.combine(day, time(0), tz)
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tz)
        for item in found:
            s, e = item.local(tz)
            if s <= midnight and e >= next_midnight:
                continue
            lo = min(lo, max(0, int((s - midnight).total_seconds() // 60)))
            hi = max(hi, min(24 * 60, int((e - midnight).total_seconds() // 60)))
    first, last = lo // 60, min(24, -(-hi // 60))
    span = (last - first) * 60
    placed: dict[date, list[Placed]] = {}
    for day, found in days.items():
        midnight = datetime.combine(day, time(0), tz)
        boxes = []
        for item in found:
            s, e = item.local(tz)
            a = max(0.0, (s - midnight).total_seconds() / 60 - first * 60)
            b = min(float(span), (e - midnight).total_seconds() / 60 - first * 60)
            if b <= a:
                continue
            top = int(a)
            length = min(max(round(b - top), 15), span - top)  # a quarter hour at least, to read
            boxes.append(Placed(item, top, length))
        placed[day] = boxes
    return first, last, placed


def item_dict(item: Item) -> dict:
    """The API's shape: busy blocks carry their calendar's name only."""
    out: dict = {
        "kind": item.kind,
        "start": item.start.isoformat(),
        "end": item.end.isoformat(),
        "label": item.label,
    }
    if item.kind == "busy":
        out["calendar"] = item.calendar
    elif item.booking is not None:
        out["booking"] = booking_dict(item.booking)
    return out
