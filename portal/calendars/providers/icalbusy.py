"""Busy time from iCalendar data: the one reading of SPEC's busy semantics for VEVENTs.

ICS feeds and CalDAV (and any adapter that receives raw iCalendar) go
through :func:`busy_intervals`, so the rules live in one place:

* ``STATUS:CANCELLED`` events (or cancelled instances) are ignored;
* ``TRANSP:TRANSPARENT`` events are free, unless the calendar's
  "treat every event as busy" switch is on (servers that never set TRANSP);
* ``STATUS:TENTATIVE`` follows the ``tentative_is_busy`` setting;
* all-day and multi-day (DATE) events block whole days in the calendar's
  zone — ``X-WR-TIMEZONE`` when the data names one, else the zone the
  caller passes (the provider's calendar zone, or the host's) — and floating
  times are read in that same zone;
* recurrences are expanded by ``recurring-ical-events`` (RRULE, RDATE,
  EXDATE, RECURRENCE-ID overrides).

Only instants leave this module; titles and attendees are never kept.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from portal.calendars.providers.base import BusyInterval, ProviderError

# Expansion is asked for a wider window, because floating and all-day
# occurrences are compared before they are placed in the calendar's zone.
_PAD = timedelta(days=2)


class NotICalendar(ProviderError):
    """The data is not iCalendar (an HTML login page, a JSON error …)."""


def decode(data: bytes | str) -> str:
    """iCalendar text from a feed body; a leading byte-order mark is not part of it.

    Outlook and several CMS plugins publish feeds that start with a UTF-8 BOM
    (a few with a UTF-16 one); RFC 5545 text has none, and the parser would
    read the mark as part of the first property name.
    """
    if isinstance(data, bytes):
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16", "replace")
        return data.decode("utf-8-sig", "replace")
    return data.removeprefix("\ufeff")


def parse(data: bytes | str) -> icalendar.Calendar:
    """Parse one VCALENDAR, or raise :class:`NotICalendar`."""
    text = decode(data)
    if "BEGIN:VCALENDAR" not in text[:4096].upper():
        raise NotICalendar("the address did not return iCalendar data")
    try:
        cals = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise NotICalendar(f"the iCalendar data could not be read: {exc}") from exc
    if not cals:
        raise NotICalendar("the address did not return iCalendar data")
    if len(cals) == 1:
        return cals[0]
    merged = icalendar.Calendar()
    for cal in cals:
        for key, value in cal.items():
            merged.setdefault(key, value)
        for sub in cal.subcomponents:
            merged.add_component(sub)
    return merged


_FOLD = re.compile(r"\r?\n[ \t]")
_VEVENT = re.compile(r"^BEGIN:VEVENT\r?\n.*?^END:VEVENT\r?\n?", re.M | re.S)
_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?\n?", re.M | re.S)
_DATE = {
    name: re.compile(rf"^{name}(?:;[^\n]*?)?:(\d{{8}})", re.M) for name in ("DTSTART", "DTEND")
}
_DAYS = re.compile(r"^DURATION[;:][^\n]*?P(?:(\d+)W)?(?:(\d+)D)?", re.M)
_RECURRING = re.compile(r"^(?:RRULE|RDATE|RECURRENCE-ID|EXRULE)[;:]", re.M)


def _may_overlap(block: str, lo: str, hi: str) -> bool:
    """Whether one VEVENT's text may have an occurrence between days ``lo`` and ``hi``."""
    if _RECURRING.search(block):
        return True  # expanded by the parser; series and overrides stay together
    start = _DATE["DTSTART"].search(block)
    if start is None:
        return True  # let the parser decide
    if start.group(1) > hi:
        return False
    end = _DATE["DTEND"].search(block)
    if end is not None:
        return end.group(1) >= lo
    days = _DAYS.search(block)
    if days is None:
        return start.group(1) >= lo  # an instant or one day
    span = int(days.group(1) or 0) * 7 + int(days.group(2) or 0) + 1
    last = date(int(start.group(1)[:4]), int(start.group(1)[4:6]), int(start.group(1)[6:]))
    return (last + timedelta(days=span)).strftime("%Y%m%d") >= lo


def narrow(data: bytes | str, start: datetime, end: datetime) -> str:
    """The iCalendar text cut down to the events that may touch ``[start, end)``.

    A text scan, no parsing: the calendar's header and time zones are kept, and
    every VEVENT whose dates may reach into the window (padded by two days for
    zones, floating and all-day times) or that recurs. Parsing what is left
    answers a one-slot question about a large feed in milliseconds.
    """
    text = _FOLD.sub("", decode(data))
    first = _VEVENT.search(text)
    if first is None:
        return text
    lo = (start - _PAD).strftime("%Y%m%d")
    hi = (end + _PAD).strftime("%Y%m%d")
    parts = [text[: first.start()]]
    parts += [m.group(0) for m in _VTIMEZONE.finditer(text, first.start())]
    parts += [m.group(0) for m in _VEVENT.finditer(text) if _may_overlap(m.group(0), lo, hi)]
    parts.append("END:VCALENDAR\r\n")
    return "".join(p if p.endswith("\n") else p + "\r\n" for p in parts)


def zone_of(cal: icalendar.Calendar, fallback: str) -> ZoneInfo:
    """The calendar's zone: X-WR-TIMEZONE when valid, else ``fallback``, else UTC."""
    for name in (str(cal.get("X-WR-TIMEZONE", "") or ""), fallback):
        try:
            if name:
                return ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def calendar_name(cal: icalendar.Calendar) -> str:
    return str(cal.get("X-WR-CALNAME", "") or "").strip()


def _instant(value: date | datetime, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=tz).astimezone(UTC)


def _text(component: icalendar.Component, name: str) -> str:
    return str(component.get(name, "") or "").strip().upper()


def is_busy(component: icalendar.Component, *, tentative_is_busy: bool, all_busy: bool) -> bool:
    """Whether one occurrence blocks time (the SPEC's rules, nothing else)."""
    status = _text(component, "STATUS")
    if status == "CANCELLED":
        return False
    if all_busy:
        return True
    if _text(component, "TRANSP") == "TRANSPARENT":
        return False
    return not (status == "TENTATIVE" and not tentative_is_busy)


def busy_intervals(
    cal: icalendar.Calendar,
    start: datetime,
    end: datetime,
    zone: str,
    *,
    tentative_is_busy: bool = True,
    all_busy: bool = False,
    source_id: str | None = None,
) -> list[BusyInterval]:
    """Busy spans overlapping ``[start, end)``.

    ``source_id`` labels every span (a CalDAV href); without it each span
    carries its event's UID (an ICS feed, where UIDs identify events).
    """
    tz = zone_of(cal, zone)
    out: list[BusyInterval] = []
    try:
        occurrences: Iterable[icalendar.Component] = recurring_ical_events.of(
            cal, components=["VEVENT"], skip_bad_series=True
        ).between(start - _PAD, end + _PAD)
        for occ in occurrences:
            if not is_busy(occ, tentative_is_busy=tentative_is_busy, all_busy=all_busy):
                continue
            dtstart: Any = occ.get("DTSTART")
            if dtstart is None:
                continue
            s = _instant(dtstart.dt, tz)
            dtend: Any = occ.get("DTEND")
            if dtend is not None:
                e = _instant(dtend.dt, tz)
            elif occ.get("DURATION") is not None:
                duration: Any = occ["DURATION"]
                e = _instant(dtstart.dt + duration.dt, tz)
            elif not isinstance(dtstart.dt, datetime):
                e = _instant(dtstart.dt + timedelta(days=1), tz)  # RFC 5545: one day
            else:
                continue  # an instant with no duration blocks nothing
            if e <= s or e <= start or s >= end:
                continue
            uid = str(occ.get("UID", "") or "")
            out.append(BusyInterval(s, e, uid if source_id is None else source_id, uid))
    except (ValueError, TypeError, KeyError) as exc:
        # recurring-ical-events and icalendar raise these for malformed rules
        raise NotICalendar(f"the calendar data has an event that cannot be read: {exc}") from exc
    out.sort(key=lambda b: (b.start, b.end))
    return out
