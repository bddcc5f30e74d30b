"""Co-worker availability ("find a time") and booking a meeting with co-workers.

A host picks co-workers and sees a week of everyone's free/busy side by side.
Each person's time is read exactly as their own booking page reads it — their
working hours (``booking.host_rules`` through ``availability.windows``), the
free/busy cache of their conflict calendars (``booking.cached_busy``) and the
Kairos bookings they host or attend — and reduced to three states per cell:
free, busy, or outside their hours. No title, calendar name or invitee ever
leaves this module: the grid holds states, nothing else.

Booking a slot goes the way every booking goes (``portal.booking.service``): a live
re-check of everyone's calendars outside the lock, then inside one transaction
that locks every participant (in id order, so two such bookings cannot
deadlock) a fresh check, the booking row on the host's write calendar, the
co-workers as attendees, and the outbox rows (write-back, e-mails) recorded by
``booking.record_event``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _

from portal import clock
from portal.booking import availability as engine
from portal.booking import service
from portal.booking.checks import BookingError, CalendarUnavailable, SlotTaken, zone
from portal.booking.links import manage_token
from portal.booking.rules import cached_busy, existing_bookings, host_rules, local_day_range
from portal.calendars import live_check, write_back
from portal.database import host_lock, is_sqlite
from portal.models import Booking, BookingAttendee, User, hash_token, to_db
from portal.notify.ical import one_line
from portal.runtime import outbox
from portal.runtime.appconfig import live_check_timeout

STEP = timedelta(minutes=30)
DURATIONS = (15, 30, 45, 60, 90, 120)
MAX_COWORKERS = 8
MAX_TITLE = 200
MAX_LOCATION = 500
WEEKS_AHEAD = 52

Interval = tuple[datetime, datetime]


# ---------------------------------------------------------------- intervals


def merge(spans: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def subtract(base: Sequence[Interval], cut: Sequence[Interval]) -> list[Interval]:
    """``base`` minus ``cut``; both sorted and merged."""
    out: list[Interval] = []
    for s, e in base:
        cur = s
        for cs, ce in cut:
            if ce <= cur or cs >= e:
                continue
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out


def covers(spans: Sequence[Interval], s: datetime, e: datetime) -> bool:
    return any(a <= s and e <= b for a, b in spans)


def overlaps(spans: Sequence[Interval], s: datetime, e: datetime) -> bool:
    return any(a < e and s < b for a, b in spans)


# ---------------------------------------------------------------- one person's week


@dataclass(frozen=True)
class Availability:
    """One person's week as intervals: working hours, busy time, and what is left free."""

    hours: list[Interval]
    busy: list[Interval]
    free: list[Interval]


def availability(user: User, start: datetime, end: datetime) -> Availability:
    """What ``user``'s own booking page would consider: hours, calendars, bookings.

    Existing bookings are widened by their own buffers, as the slot engine
    widens them, so a meeting put here never lands in a buffer that the
    person's booking page protects.
    """
    hours = merge(engine.windows(host_rules(user), start, end))
    busy = [(b.start, b.end) for b in cached_busy(user, start, end)]
    busy += [
        (b.start - b.buffer_before, b.end + b.buffer_after)
        for b in existing_bookings(user, start, end)
    ]
    merged = merge(busy)
    return Availability(hours, merged, subtract(hours, merged))


# ---------------------------------------------------------------- the week grid


@dataclass(frozen=True)
class Cell:
    start: datetime  # UTC
    states: tuple[str, ...]  # per person: free | busy | off
    everyone: bool  # a meeting of the chosen length can start here for everyone


@dataclass(frozen=True)
class Week:
    days: list[date]
    times: list[time]  # row labels, wall clock in the host's zone (formatted by the page)
    rows: list[list[Cell | None]]  # rows[time][day]; None: a local time that does not exist
    people: list[User]
    zone: str
    start: date  # Monday

    @property
    def free_count(self) -> int:
        return sum(1 for row in self.rows for c in row if c is not None and c.everyone)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _state(person: Availability, s: datetime, e: datetime) -> str:
    if covers(person.free, s, e):
        return "free"
    return "busy" if overlaps(person.busy, s, e) else "off"


def week_grid(
    host: User, coworkers: Sequence[User], monday: date, duration: int, now: datetime
) -> Week:
    """Everyone's free/busy for the week of ``monday`` in half-hour cells of the host's zone."""
    tz = zone(host.timezone)
    people = [host, *coworkers]
    start, end = local_day_range(monday, monday + timedelta(days=6), tz)
    weeks = [availability(p, start, end) for p in people]
    length = timedelta(minutes=duration)

    # Rows span the earliest start to the latest end of anyone's hours that week.
    first, last = 9 * 60, 17 * 60
    seen = False
    for person in weeks:
        for s, e in person.hours:
            ls, le = s.astimezone(tz), e.astimezone(tz)
            lo = ls.hour * 60 + ls.minute
            hi = 24 * 60 if le.date() > ls.date() else le.hour * 60 + le.minute
            first, last = (lo, hi) if not seen else (min(first, lo), max(last, hi))
            seen = True
    first = first - first % 30
    last = min(24 * 60, last + (-last) % 30)
    weekend = any(s.astimezone(tz).weekday() >= 5 for p in weeks for s, _ in p.hours)
    days = [monday + timedelta(days=i) for i in range(7 if weekend else 5)]

    times, rows = [], []
    for minute in range(first, last, 30):
        row: list[Cell | None] = []
        for day in days:
            local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
            s = local.astimezone(UTC)
            if s.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
                row.append(None)  # skipped by a DST change
                continue
            e = s + STEP
            states = tuple(_state(p, s, e) for p in weeks)
            everyone = s > now and all(covers(p.free, s, s + length) for p in weeks)
            row.append(Cell(s, states, everyone))
        times.append(time(minute // 60, minute % 60))
        rows.append(row)
    return Week(days, times, rows, people, tz.key, monday)


# ---------------------------------------------------------------- booking


@contextmanager
def people_lock(user_ids: Sequence[int]) -> Iterator[None]:
    """One write transaction holding every participant's booking lock, taken in id order."""
    ids = sorted(set(user_ids))
    with host_lock(ids[0]):
        if not is_sqlite() and len(ids) > 1:
            # SQLite's BEGIN IMMEDIATE already serialises all writers.
            User.select(User.id).where(User.id.in_(ids[1:])).order_by(
                User.id
            ).for_update().execute()
        yield


def clean_meeting(
    host: User, coworkers: Sequence[User], start: datetime, duration: int, title: str, location: str
) -> tuple[str, str]:
    """Check what the host asked for; BookingError names the field at fault."""
    if not coworkers:
        raise BookingError(_("pick at least one co-worker"), "with")
    if len(coworkers) > MAX_COWORKERS:
        raise BookingError(_("pick at most %(num)d co-workers", num=MAX_COWORKERS), "with")
    if any(c.id == host.id or not c.is_active for c in coworkers):
        raise BookingError(_("pick active co-workers other than yourself"), "with")
    if duration not in DURATIONS:
        raise BookingError(_("pick one of the offered lengths"), "duration")
    if start.tzinfo is None:
        raise BookingError(_("the time needs a UTC offset"), "start")
    title = one_line(title or "") or "Meeting"
    if len(title) > MAX_TITLE:
        raise BookingError(_("use at most %(num)d characters", num=MAX_TITLE), "title")
    location = one_line(location or "")
    if len(location) > MAX_LOCATION:
        raise BookingError(_("use at most %(num)d characters", num=MAX_LOCATION), "location")
    return title, location


def _live(
    people: Sequence[User], start: datetime, end: datetime, now: datetime
) -> dict[int, list[Interval]]:
    """Everyone's calendars read now (short timeout), before any lock is taken."""
    timeout = live_check_timeout()
    out: dict[int, list[Interval]] = {}
    for person in people:
        try:
            out[person.id] = [
                (b.start, b.end) for b in live_check.live_busy(person, start, end, timeout, now=now)
            ]
        except live_check.LiveCheckFailed as exc:
            raise CalendarUnavailable(
                _(
                    "we could not check %(name)s's calendar just now; please try again shortly",
                    name=person.display_name,
                )
            ) from exc
    return out


def book_meeting(
    host: User,
    coworkers: Sequence[User],
    start: datetime,
    duration: int,
    title: str = "",
    location: str = "",
    now: datetime | None = None,
) -> Booking:
    """Book a meeting of ``duration`` minutes at ``start`` for the host and co-workers.

    Everyone must still be free then (within their hours, no busy time, no
    booking), or :class:`booking.SlotTaken` names who no longer is.
    """
    now = now or clock.now()
    title, location = clean_meeting(host, coworkers, start, duration, title, location)
    start = start.astimezone(UTC)
    end = start + timedelta(minutes=duration)
    if start <= now:
        raise BookingError(_("this time is in the past"), "start")
    if start > now + timedelta(weeks=WEEKS_AHEAD):
        raise BookingError(_("pick a time within the next year"), "start")
    people = [host, *coworkers]
    live = _live(people, start, end, now)
    pad = timedelta(days=1)
    with people_lock([p.id for p in people]):
        for person in people:
            fresh = User.get_by_id(person.id)
            if not fresh.is_active:
                raise BookingError(
                    _("%(name)s is no longer a member", name=fresh.display_name), "with"
                )
            week = availability(fresh, start - pad, end + pad)
            if not covers(week.free, start, end) or overlaps(live[person.id], start, end):
                raise SlotTaken(
                    _(
                        "%(name)s is no longer free at this time; please pick another",
                        name=fresh.display_name,
                    ),
                    "start",
                )
        booking = _insert(host, coworkers, start, end, title, location)
        write_back.attach_calendar_event(booking)
        recorded = service.record_event(booking, "created", now=now)
    outbox.send(recorded)
    return booking


def _insert(
    host: User, coworkers: Sequence[User], start: datetime, end: datetime, title: str, location: str
) -> Booking:
    """The booking row: the first co-worker is its invitee, everyone is an attendee."""
    first = coworkers[0]
    uid = uuid.uuid4().hex
    booking = Booking(
        uid=uid,
        host=host,
        meeting_type=None,
        start=to_db(start),
        end=to_db(end),
        type_slug="",
        title=title,
        invitee_name=first.display_name,
        invitee_email=first.email,
        invitee_timezone=first.timezone,
        manage_salt=secrets.token_hex(16),
        manage_token_hash="",
        ical_uid=f"{uid}@kairos",
        location=location,
    )
    booking.manage_token_hash = hash_token(manage_token(booking))
    booking.save(force_insert=True)
    BookingAttendee.insert_many(
        [
            {"booking": booking.id, "user": c.id, "name": c.display_name, "email": c.email}
            for c in coworkers
        ]
    ).execute()
    return booking


def attendees(booking: Booking) -> list[BookingAttendee]:
    return list(
        BookingAttendee.select()
        .where(BookingAttendee.booking == booking.id)
        .order_by(BookingAttendee.id)
    )


def coworker_choices(host: User) -> list[User]:
    """Active members other than the host, by name."""
    return list(
        User.select()
        .where(User.is_active == True, User.id != host.id)  # noqa: E712
        .order_by(User.name, User.id)
    )
