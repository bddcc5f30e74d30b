"""Book, cancel, reschedule: the one place that joins models, the engine and the outbox.

Every change of a host's bookings runs inside ``host_lock`` and re-runs the
slot engine on fresh data inside that lock, which is what gives exactly one
winner when invitees race for a slot.
"""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from peewee import IntegrityError

from portal.booking import availability as engine
from portal.booking import locations, questions, slot_memo
from portal.calendars import live_check, write_back
from portal.database import host_lock
from portal.models import (
    Booking,
    BookingAttendee,
    BusyBlock,
    Calendar,
    CalendarEvent,
    Connection,
    DateOverride,
    MeetingType,
    Outbox,
    User,
    WeeklyHours,
    db,
    from_db,
    hash_token,
    to_db,
)
from portal.runtime.outbox import relay_quietly
from portal.tokens import derived_token

MAX_NAME = 200
MAX_NOTES = 5000
# Dates and instants outside these days are typos, and far ones overflow datetime arithmetic
# (a slot at 9999-12-31T23:30 has no end).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)
# The outbox kinds every booking event (created / cancelled / rescheduled) records, in
# one place. Each names a handler registered with ``jobs.outbox.handler``:
#   write_back     → jobs.calendar    (the event in the host's write calendar)
#   booking_copies → jobs.booking_copies (copies in additional booking calendars)
#   notify         → jobs.mail        (e-mails to invitee and host)
#   webhooks       → jobs.webhooks    (the host's webhook deliveries)
BOOKING_EVENT_HANDLERS: list[str] = ["write_back", "booking_copies", "notify", "webhooks"]


class BookingError(Exception):
    """A refusal the caller shows to a person: ``field`` names the input at fault."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class SlotTaken(BookingError):
    status = 409
    code = "slot_taken"


class NotAllowed(BookingError):
    status = 409
    code = "not_allowed"


class CalendarUnavailable(BookingError):
    """The host's calendar could not be re-checked and the cache is too old to trust."""

    status = 503
    code = "calendar_unavailable"


# ---------------------------------------------------------------- rules from rows


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # OSError: a key naming a tzdata directory ("Europe") fails as IsADirectoryError.
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise BookingError("unknown time zone", "timezone") from exc


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except BookingError:
        return False
    return True


def host_rules(user: User) -> engine.HostRules:
    weekly: dict[int, list[tuple[str, str]]] = {d: [] for d in range(7)}
    for row in WeeklyHours.select().where(WeeklyHours.user == user).order_by(WeeklyHours.start):
        weekly[row.weekday].append((row.start, row.end))
    overrides: dict[date, tuple[tuple[str, str], ...]] = {
        row.date: tuple((a, b) for a, b in row.interval_list())
        for row in DateOverride.select().where(DateOverride.user == user)
    }
    return engine.HostRules(
        timezone=user.timezone,
        weekly={d: tuple(v) for d, v in weekly.items()},
        overrides=overrides,
        lead_time=timedelta(minutes=user.lead_time_minutes),
    )


def meeting_rules(mt: MeetingType) -> engine.MeetingRules:
    return engine.MeetingRules(
        slug=str(mt.id),
        duration=timedelta(minutes=mt.duration_minutes),
        buffer_before=timedelta(minutes=mt.buffer_before_minutes),
        buffer_after=timedelta(minutes=mt.buffer_after_minutes),
        lead_time=timedelta(minutes=mt.lead_time_minutes),
        window_days=mt.window_days,
        slot_interval=timedelta(minutes=mt.slot_interval_minutes)
        if mt.slot_interval_minutes
        else None,
        daily_limit=mt.daily_limit or None,
    )


def cached_busy(user: User, start: datetime, end: datetime) -> list[engine.Busy]:
    """Busy intervals from the free/busy cache of the host's conflict calendars.

    Rows come straight from the driver's cursor: a month page reads thousands of
    them, and peewee's per-field conversion was most of the page's time.
    """
    query = (
        BusyBlock.select(BusyBlock.start, BusyBlock.end, Calendar.name)
        .join(Calendar)
        .join(Connection)
        .where(
            Connection.user == user,
            Calendar.conflict == True,  # noqa: E712
            BusyBlock.end > to_db(start),
            BusyBlock.start < to_db(end),
        )
    )
    return [
        engine.Busy(_stored_instant(s), _stored_instant(e), name)
        for s, e, name in db.execute(query)
    ]


def _stored_instant(value: datetime | str) -> datetime:
    """A raw naive-UTC column value (SQLite gives ISO text, PostgreSQL a datetime) → aware."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def existing_bookings(
    user: User, start: datetime, end: datetime, exclude: int | None = None
) -> list[engine.Booked]:
    # Meetings a co-worker booked with this user as an attendee block their time as well.
    attending = BookingAttendee.select(BookingAttendee.booking).where(BookingAttendee.user == user)
    # Only the columns the engine needs: this runs on every page view.
    query = Booking.select(
        Booking.start,
        Booking.end,
        Booking.buffer_before_minutes,
        Booking.buffer_after_minutes,
        Booking.meeting_type,
    ).where(
        (Booking.host == user) | Booking.id.in_(attending),
        Booking.status == "confirmed",
        Booking.end > to_db(start - timedelta(days=1)),
        Booking.start < to_db(end + timedelta(days=1)),
    )
    if exclude is not None:
        query = query.where(Booking.id != exclude)
    return [
        engine.Booked(
            start=from_db(s),  # type: ignore[arg-type]
            end=from_db(e),  # type: ignore[arg-type]
            buffer_before=timedelta(minutes=before),
            buffer_after=timedelta(minutes=after),
            meeting_type=str(type_id),
        )
        for s, e, before, after, type_id in query.tuples()
    ]


def available_slots(
    user: User,
    mt: MeetingType,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    exclude: int | None = None,
) -> list[datetime]:
    """Offered starts in [start, end), read from the cache; never waits on a provider.

    ``now`` is the caller's clock (``portal.clock.now()`` in views and jobs).
    ``exclude`` leaves one booking out, so rescheduling it can offer its neighbours.
    """
    pad = timedelta(days=2)
    rules, mrules = host_rules(user), meeting_rules(mt)
    # Starts before the lead time or past the window are never offered.
    if max(start, now + max(rules.lead_time, mrules.lead_time)) >= min(
        end, now + timedelta(days=mrules.window_days, hours=1)
    ):
        return []
    # Read the busy cache for a superset of what the slots and their buffers can reach,
    # with ends that move by whole days only, so page views share one memo entry.
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    read_lo = max(start, today) - mrules.buffer_before
    read_hi = min(end, today + timedelta(days=mrules.window_days + 2))
    busy_key, busy = slot_memo.busy(
        user, read_lo, read_hi + mrules.duration + mrules.buffer_after, cached_busy
    )
    booked = existing_bookings(user, start - pad, end + pad, exclude=exclude)
    return slot_memo.slots(
        busy_key,
        rules,
        mrules,
        booked,
        now,
        start,
        end,
        lambda: engine.slots(rules, mrules, busy, booked, now, start, end),
    )


def local_day_range(day_from: date, day_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants covering local days ``day_from``..``day_to`` inclusive in ``tz``."""
    from datetime import UTC, time

    start = datetime.combine(day_from, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


# ---------------------------------------------------------------- manage tokens


def manage_token(booking: Booking) -> str:
    """Rebuild the invitee's secret: HMAC over the uid and a random 128-bit salt."""
    return derived_token("manage", booking.uid, booking.manage_salt)


def manage_path(booking: Booking) -> str:
    return f"/booking/{booking.uid}?token={manage_token(booking)}"


def find_managed(uid: str, token: str) -> Booking | None:
    """The booking behind a manage link, or None (constant-time on the token)."""
    if not token or len(token) > 200:
        return None
    booking = Booking.get_or_none(Booking.uid == uid)
    if booking is None:
        return None
    if not hmac.compare_digest(booking.manage_token_hash, hash_token(token)):
        return None
    return booking


# ---------------------------------------------------------------- validation


def clean_invitee(name: str, email: str, timezone: str, notes: str) -> tuple[str, str, str, str]:
    name = (name or "").strip()
    if not name:
        raise BookingError("name is required", "name")
    if len(name) > MAX_NAME:
        raise BookingError(f"name is longer than {MAX_NAME} characters", "name")
    if any(ch in name for ch in "\r\n\x00"):
        raise BookingError("name cannot contain line breaks", "name")
    try:
        email = validate_email((email or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise BookingError(f"invalid e-mail address: {exc}", "email") from exc
    timezone = (timezone or "UTC").strip()
    zone(timezone)
    notes = notes or ""
    if len(notes) > MAX_NOTES:
        raise BookingError(f"notes are longer than {MAX_NOTES} characters", "notes")
    return name, email.lower(), timezone, notes


def parse_start(value: object, field: str = "start") -> datetime:
    """An ISO 8601 instant with an explicit offset."""
    if not isinstance(value, str):
        raise BookingError("expected an ISO 8601 date-time with offset", field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BookingError("expected an ISO 8601 date-time with offset", field) from exc
    if parsed.tzinfo is None:
        raise BookingError("the date-time needs a UTC offset", field)
    if not FIRST_DAY <= parsed.date() <= LAST_DAY:
        raise BookingError(f"the date must be between {FIRST_DAY} and {LAST_DAY}", field)
    return parsed.astimezone(UTC)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class Result:
    booking: Booking
    created: bool


def record_event(booking: Booking, event: str) -> None:
    """Record the work a booking change causes, inside the caller's transaction."""
    for kind in BOOKING_EVENT_HANDLERS:
        Outbox.add(kind, booking_id=booking.id, event=event)
    # Co-workers on a host's meeting ("find a time") hear of it too (jobs.admin).
    if BookingAttendee.select().where(BookingAttendee.booking == booking.id).exists():
        Outbox.add("meeting_attendees", booking_id=booking.id, event=event)


def schedule_reminders(booking: Booking, mt: MeetingType, now: datetime) -> None:
    """Record one "reminder" outbox row per offset of the type, due at start − offset.

    The worker's ticker relays each row when it falls due; the handler
    (jobs.mail.reminder) re-reads the booking and sends only if it is still
    confirmed at this start, so cancelling or moving needs no clean-up here.
    Offsets already past at booking time are skipped rather than sent at once.
    """
    start = booking.start_utc
    for offset in mt.reminder_minutes():
        run_at = start - timedelta(minutes=offset)
        if run_at > now:
            Outbox.add(
                "reminder",
                run_at=run_at,
                booking_id=booking.id,
                start=start.isoformat(),
                offset=offset,
            )


def live_busy(host: User, mt: MeetingType, start: datetime, now: datetime) -> list[engine.Busy]:
    """Re-read the host's conflict calendars now, with a short timeout, before the lock.

    Pages are served from the cache; a confirmation must not trust a cache that
    may be minutes old. Runs outside ``host_lock`` so a slow provider never
    holds the host's bookings. Unreachable with a stale cache → 503, never a
    double booking.
    """
    if start < now:
        return []  # refused below without asking anyone
    lo = start - timedelta(minutes=mt.buffer_before_minutes)
    hi = start + timedelta(minutes=mt.duration_minutes + mt.buffer_after_minutes)
    try:
        timeout = float(current_app.config["LIVE_CHECK_TIMEOUT"])
        return live_check.live_busy(host, lo, hi, timeout, now=now)
    except live_check.LiveCheckFailed as exc:
        raise CalendarUnavailable(
            "we could not check the host's calendar just now; please try again shortly"
        ) from exc


def _check_offered(
    host: User, mt: MeetingType, start: datetime, now: datetime, exclude=None, live=()
):
    if start < now:
        raise BookingError("this time is in the past", "start")
    pad = timedelta(days=2)
    end = start + timedelta(minutes=mt.duration_minutes)
    rules = host_rules(host)
    mrules = meeting_rules(mt)
    busy = cached_busy(host, start - pad, end + pad) + list(live)
    booked = existing_bookings(host, start - pad, end + pad, exclude=exclude)
    if engine.is_offered(rules, mrules, busy, booked, now, start):
        return
    # Tell a lost race ("taken") apart from a start that was never offered.
    if engine.is_offered(rules, mrules, busy, [], now, start):
        raise SlotTaken("this time was just taken; please pick another", "start")
    raise BookingError("this time is not available", "start")


def book(
    host: User,
    mt: MeetingType,
    start: datetime,
    name: str,
    email: str,
    timezone: str = "UTC",
    notes: str = "",
    idempotency_key: str | None = None,
    *,
    now: datetime,
    answers: dict | None = None,
) -> Result:
    """Create a confirmed booking if ``start`` is still offered; exactly one racer wins.

    ``answers`` maps the type's question keys to the invitee's answers
    (``portal.booking.questions``); a bad one is refused on ``answers.<key>``.
    """
    name, email, timezone, notes = clean_invitee(name, email, timezone, notes)
    try:
        answered = questions.clean_answers(mt, answers)
    except questions.QuestionError as exc:
        raise BookingError(exc.message, exc.field) from exc
    if idempotency_key is not None and (not idempotency_key or len(idempotency_key) > 200):
        raise BookingError("idempotency_key must be 1–200 characters", "idempotency_key")
    if idempotency_key:
        prior = Booking.get_or_none(
            Booking.host == host, Booking.idempotency_key == idempotency_key
        )
        if prior is not None:
            return Result(prior, False)
    live = live_busy(host, mt, start, now)
    try:
        with host_lock(host.id):
            if idempotency_key:
                prior = Booking.get_or_none(
                    Booking.host == host, Booking.idempotency_key == idempotency_key
                )
                if prior is not None:
                    return Result(prior, False)
            _check_offered(host, mt, start, now, live=live)
            booking = _insert(
                host,
                mt,
                start,
                name,
                email,
                timezone,
                notes,
                idempotency_key,
                answers=json.dumps(answered, ensure_ascii=False),
            )
            write_back.attach_calendar_event(booking)
            record_event(booking, "created")
            schedule_reminders(booking, mt, now)
    except IntegrityError:
        # Same idempotency key committed by a concurrent request.
        prior = Booking.get_or_none(
            Booking.host == host, Booking.idempotency_key == idempotency_key
        )
        if prior is None:
            raise
        return Result(prior, False)
    relay_quietly()
    return Result(booking, True)


def _insert(host, mt, start, name, email, timezone, notes, idempotency_key, **extra) -> Booking:
    uid = uuid.uuid4().hex
    salt = secrets.token_hex(16)
    booking = Booking(
        uid=uid,
        host=host,
        meeting_type=mt,
        start=to_db(start),
        end=to_db(start + timedelta(minutes=mt.duration_minutes)),
        buffer_before_minutes=mt.buffer_before_minutes,
        buffer_after_minutes=mt.buffer_after_minutes,
        type_slug=mt.slug,
        invitee_name=name,
        invitee_email=email,
        invitee_timezone=timezone,
        notes=notes,
        idempotency_key=idempotency_key,
        manage_salt=salt,
        manage_token_hash="",
        ical_uid=extra.pop("ical_uid", f"{uid}@kairos"),
        **locations.for_booking(host, mt, previous=extra.get("rescheduled_from")),
        **extra,
    )
    booking.manage_token_hash = hash_token(manage_token(booking))
    booking.save(force_insert=True)
    locations.booked(booking)
    return booking


def cancel(
    booking: Booking,
    by: str = "invitee",
    reason: str = "",
    *,
    now: datetime,
) -> Booking:
    """Cancel a confirmed booking; cancelling twice is refused, not repeated.

    An invitee can no longer cancel a meeting that has started; the host still can
    (e.g. to record that it did not take place).
    """
    if len(reason or "") > MAX_NOTES:
        raise BookingError("reason is too long", "reason")
    with host_lock(booking.host_id):
        fresh = Booking.get_by_id(booking.id)
        if fresh.status != "confirmed":
            raise NotAllowed(f"this booking is already {fresh.status}")
        if by == "invitee" and fresh.start_utc <= now:
            raise NotAllowed("this meeting has already started")
        fresh.status = "cancelled"
        fresh.cancelled_by = by
        fresh.cancel_reason = reason or ""
        fresh.cancelled_at = to_db(now)
        fresh.sequence += 1
        fresh.save()
        record_event(fresh, "cancelled")
    relay_quietly()
    return fresh


def reschedule(booking: Booking, start: datetime, by: str = "invitee", *, now: datetime) -> Booking:
    """Move a booking: a new booking (new uid and manage link) replaces the old one.

    The old one ends as ``rescheduled``, so its manage link cannot move it again,
    and the calendar identity (iCalendar UID, external event) carries over.
    """
    current_type = MeetingType.get_or_none(MeetingType.id == booking.meeting_type_id)
    live = []
    if current_type is not None and booking.status == "confirmed":
        live = live_busy(User.get_by_id(booking.host_id), current_type, start, now)
    with host_lock(booking.host_id):
        old = Booking.get_by_id(booking.id)
        if old.status != "confirmed":
            raise NotAllowed(f"this booking is {old.status} and cannot be rescheduled")
        if old.start_utc <= now:
            raise NotAllowed("this meeting has already started and cannot be rescheduled")
        mt = MeetingType.get_or_none(MeetingType.id == old.meeting_type_id)
        if mt is None:
            raise NotAllowed("this meeting type no longer exists")
        host = User.get_by_id(old.host_id)
        _check_offered(host, mt, start, now, exclude=old.id, live=live)
        old.status = "rescheduled"
        old.cancelled_at = to_db(now)
        old.cancelled_by = by
        old.save()
        new = _insert(
            host,
            mt,
            start,
            old.invitee_name,
            old.invitee_email,
            old.invitee_timezone,
            old.notes,
            None,
            ical_uid=old.ical_uid,
            sequence=old.sequence + 1,
            rescheduled_from=old,
            answers=old.answers,
        )
        # The calendar event follows the booking it now belongs to.
        from portal.models import CalendarEvent

        moved = CalendarEvent.update(booking=new).where(CalendarEvent.booking == old).execute()
        if not moved:
            write_back.attach_calendar_event(new)
        record_event(new, "rescheduled")
        schedule_reminders(new, mt, now)
    relay_quietly()
    return new


def latest_booking(booking: Booking) -> Booking:
    """Where a booking went: the end of its chain of reschedules (itself when not moved)."""
    current = booking
    for _hop in range(1000):  # a chain is a list, never a loop; the bound only guards that
        if current.status != "rescheduled":
            break
        nxt = Booking.get_or_none(Booking.rescheduled_from == current)
        if nxt is None:
            break
        current = nxt
    return current


def calendar_event_state(booking: Booking) -> tuple[str, CalendarEvent | None]:
    """The booking's calendar write-back: a status and the ``CalendarEvent`` row, if any.

    A rescheduled booking hands its event to the booking that replaces it (the
    same event, moved), so it owes nothing any more: "superseded", with the
    row where the event now is. Otherwise the row's own status; "pending"
    when none is recorded yet.
    """
    moved = booking.status == "rescheduled"
    owner = latest_booking(booking) if moved else booking
    event = (
        CalendarEvent.select()
        .where(CalendarEvent.booking == owner)
        .order_by(CalendarEvent.id.desc())
        .first()
    )
    if moved:
        return "superseded", event
    return (event.status if event else "pending"), event


def booking_dict(booking: Booking, with_manage: bool = False) -> dict:
    """The API's JSON shape of a booking."""
    from portal.notify.ical import meeting_link

    event_status, event = calendar_event_state(booking)
    out = {
        "uid": booking.uid,
        "start": booking.start_utc.isoformat(),
        "end": booking.end_utc.isoformat(),
        "status": booking.status,
        "meeting_type": booking.type_slug,
        "name": booking.invitee_name,
        "email": booking.invitee_email,
        "timezone": booking.invitee_timezone,
        "notes": booking.notes,
        "location": booking.location,
        "location_kind": booking.location_kind,
        "meeting_link": meeting_link(booking),
        "answers": [
            {"key": a.get("key"), "label": a.get("label"), "value": a.get("value")}
            for a in booking.answer_list()
        ],
        "created_at": from_db(booking.created_at).isoformat(),  # type: ignore[union-attr]
        "calendar_event": {
            "status": event_status,
            "calendar_id": event.calendar_id if event else None,
        },
    }
    if booking.status == "rescheduled":
        nxt = Booking.get_or_none(Booking.rescheduled_from == booking)
        out["rescheduled_to"] = nxt.uid if nxt else None
    if with_manage:
        out["manage_url"] = external_url(manage_path(booking))
    return out


def external_url(path: str) -> str:
    """Absolute URL: ``BASE_URL``, else the request's host, else http://localhost:5000.

    Jobs (e-mails, .ics) have no request, so outside one only ``BASE_URL`` is
    right; the last fallback is the development server's address.
    """
    base = current_app.config.get("BASE_URL") or ""
    if not base:
        from flask import has_request_context, request

        base = request.host_url.rstrip("/") if has_request_context() else "http://localhost:5000"
    return f"{base}{path}"
