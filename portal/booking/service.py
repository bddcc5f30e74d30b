"""Book, cancel, reschedule: the one place that joins models, the engine and the outbox.

Every change of a host's bookings runs inside ``host_lock`` and re-runs the
slot engine on fresh data inside that lock, which is what gives exactly one
winner when invitees race for a slot. No framework here: callers pass ``now``
(their clock) and, from the app's config, the live-check timeout.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from peewee import IntegrityError

from portal.booking import availability as engine
from portal.booking import locations, questions
from portal.booking.checks import (
    MAX_NOTES,
    BookingError,
    CalendarUnavailable,
    NotAllowed,
    SlotTaken,
    clean_invitee,
)
from portal.booking.links import manage_token
from portal.booking.rules import cached_busy, existing_bookings, host_rules, meeting_rules
from portal.calendars import live_check, write_back
from portal.database import host_lock
from portal.models import (
    Booking,
    BookingAttendee,
    Calendar,
    CalendarEvent,
    Connection,
    MeetingType,
    User,
    Webhook,
    compiled_sql,
    db,
    hash_token,
    insert_instance,
    to_db,
)
from portal.runtime import outbox

# The outbox kinds every booking event (created / cancelled / rescheduled) records, in
# one place. Each names a handler registered with ``jobs.outbox.handler``:
#   write_back     → jobs.calendar    (the event in the host's write calendar)
#   booking_copies → jobs.booking_copies (copies in additional booking calendars)
#   notify         → jobs.mail        (e-mails to invitee and host)
#   webhooks       → jobs.webhooks    (the host's webhook deliveries)
BOOKING_EVENT_HANDLERS: list[str] = ["write_back", "booking_copies", "notify", "webhooks"]
# Seconds a confirmation waits for the host's calendars when the caller names no other;
# the app passes its configured ``LIVE_CHECK_TIMEOUT`` (portal.runtime.appconfig).
LIVE_CHECK_TIMEOUT = 3.0
# An outbox row to record: (handler kind, when it falls due or None for now, payload).
OutboxItem = tuple[str, datetime | None, dict[str, object]]


@dataclass(frozen=True)
class Result:
    booking: Booking
    created: bool


def record_event(booking: Booking, event: str, *, now: datetime, new: bool = False) -> list[int]:
    """Record the work a booking change causes, inside the caller's transaction.

    Returns the ids of the outbox rows due now, for the caller to :func:`send` once
    committed. ``new``: the booking was inserted in this transaction, so it has no
    co-workers attending yet and there is no need to look.
    """
    payload = {"booking_id": booking.id, "event": event}
    kinds = [kind for kind in BOOKING_EVENT_HANDLERS if not _nothing_to_do(kind, booking, new)]
    # Co-workers on a host's meeting ("find a time") hear of it too (jobs.admin).
    if not new and BookingAttendee.select().where(BookingAttendee.booking == booking.id).exists():
        kinds.append("meeting_attendees")
    return outbox.record([(kind, None, payload) for kind in kinds], now)


def _nothing_to_do(kind: str, booking: Booking, new: bool) -> bool:
    """True for a job that would find nothing to do, so it is not recorded: webhooks while
    the host has no active webhook, and copies of a new booking while the host has no
    additional booking calendar (a changed booking may have copies to bring in line).

    Each such job still costs the worker RQ's bookkeeping, a lock and its reads; an ICS-only
    host's booking needed two of its four. A webhook added after the event was recorded
    does not hear of it, as with any later event.
    """
    if kind == "webhooks":
        sql = compiled_sql(
            "active-webhooks",
            lambda: Webhook.select(Webhook.id).where(
                Webhook.user == 0,
                Webhook.is_active == True,  # noqa: E712
            ),
        )
    elif kind == "booking_copies" and new:
        sql = compiled_sql(
            "copy-calendars",
            lambda: (
                Calendar.select(Calendar.id)
                .join(Connection)
                .where(Connection.user == 0, Calendar.copy_bookings == True)  # noqa: E712
            ),
        )
    else:
        return False
    return db.execute_sql(sql, (booking.host_id, True)).fetchone() is None


def reminders(booking: Booking, mt: MeetingType, now: datetime) -> list[OutboxItem]:
    """One "reminder" outbox row per offset of the type, due at start − offset.

    The worker's ticker relays each row when it falls due; the handler
    (jobs.mail.reminder) re-reads the booking and sends only if it is still
    confirmed at this start, so cancelling or moving needs no clean-up here.
    Offsets already past at booking time are skipped rather than sent at once.
    """
    start = booking.start_utc
    out: list[OutboxItem] = []
    for offset in mt.reminder_minutes():
        run_at = start - timedelta(minutes=offset)
        if run_at > now:
            payload = {"booking_id": booking.id, "start": start.isoformat(), "offset": offset}
            out.append(("reminder", run_at, payload))
    return out


def live_busy(
    host: User, mt: MeetingType, start: datetime, now: datetime, timeout: float
) -> list[engine.Busy]:
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
        return live_check.live_busy(host, lo, hi, timeout, now=now)
    except live_check.LiveCheckFailed as exc:
        raise CalendarUnavailable(
            _("we could not check the host's calendar just now; please try again shortly")
        ) from exc


@dataclass(frozen=True)
class Offer:
    """What decides whether one start is offered, except the bookings (read in the lock).

    The rules and the busy cache change only by the host's edits and the worker's
    syncs, never by a booking, so they are read before :func:`host_lock` and the
    lock is held for the bookings' read and the inserts alone.
    """

    rules: engine.HostRules
    mrules: engine.MeetingRules
    busy: list[engine.Busy]
    start: datetime
    now: datetime

    @classmethod
    def read(
        cls,
        host: User,
        mt: MeetingType,
        start: datetime,
        now: datetime,
        live: Sequence[engine.Busy] = (),
    ) -> Offer:
        end = start + timedelta(minutes=mt.duration_minutes)
        busy = cached_busy(host, start - _PAD, end + _PAD) + list(live)
        return cls(host_rules(host), meeting_rules(mt), busy, start, now)

    def check(self, host: User, exclude: int | None = None) -> None:
        """Raise unless the start is offered given the host's bookings as they are now."""
        if self.start < self.now:
            raise BookingError(_("this time is in the past"), "start")
        end = self.start + self.mrules.duration
        booked = existing_bookings(host, self.start - _PAD, end + _PAD, exclude=exclude)
        rules, mrules, now, start = self.rules, self.mrules, self.now, self.start
        if engine.is_offered(rules, mrules, self.busy, booked, now, start):
            return
        # Tell a lost race ("taken") apart from a start that was never offered. Busy time
        # lying within a booking (with its buffers) is, as far as anyone can tell, that
        # booking's own event written back to the host's calendar: free/busy answers carry
        # no UID to recognise it by (portal.calendars.own_events does where they do).
        external = [b for b in self.busy if not _within_booking(b, booked)]
        if engine.is_offered(rules, mrules, external, [], now, start):
            raise SlotTaken(_("this time was just taken; please pick another"), "start")
        raise BookingError(_("this time is not available"), "start")


# Busy time and bookings are read this far around the slot: more than any buffer, and the
# whole host-zone day the daily limit counts.
_PAD = timedelta(days=2)


def _within_booking(span: engine.Busy, booked: Sequence[engine.Booked]) -> bool:
    return any(
        b.start - b.buffer_before <= span.start and span.end <= b.end + b.buffer_after
        for b in booked
    )


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
    live_timeout: float = LIVE_CHECK_TIMEOUT,
    locale: str = "",
) -> Result:
    """Create a confirmed booking if ``start`` is still offered; exactly one racer wins.

    ``answers`` maps the type's question keys to the invitee's answers
    (``portal.booking.questions``); a bad one is refused on ``answers.<key>``.
    ``live_timeout`` bounds the re-read of the host's calendars (see ``live_busy``).
    ``locale`` is the invitee's language ("de"), kept for their e-mails and pages.
    """
    name, email, timezone, notes = clean_invitee(name, email, timezone, notes)
    try:
        answered = questions.clean_answers(mt, answers)
    except questions.QuestionError as exc:
        raise BookingError(exc.message, exc.field) from exc
    if idempotency_key is not None and (not idempotency_key or len(idempotency_key) > 200):
        raise BookingError("idempotency_key must be 1–200 characters", "idempotency_key")
    if (prior := _prior(host, idempotency_key)) is not None:
        return Result(prior, False)
    live = live_busy(host, mt, start, now, live_timeout)
    offer = Offer.read(host, mt, start, now, live)
    try:
        with host_lock(host.id):
            if (prior := _prior(host, idempotency_key)) is not None:
                return Result(prior, False)
            offer.check(host)
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
                locale=locale,
            )
            write_back.attach_calendar_event(booking)
            recorded = record_event(booking, "created", now=now, new=True)
            outbox.record(reminders(booking, mt, now), now)
    except IntegrityError:
        # Same idempotency key committed by a concurrent request.
        if (prior := _prior(host, idempotency_key)) is not None:
            return Result(prior, False)
        raise
    outbox.send(recorded)
    return Result(booking, True)


def _status(status: str) -> str:
    """A booking's status as words in a refusal ("already cancelled")."""
    return {"cancelled": _("cancelled"), "rescheduled": _("rescheduled")}.get(status, status)


def _prior(host: User, idempotency_key: str | None) -> Booking | None:
    """The host's booking made earlier with this key (a retried request), if any."""
    if not idempotency_key:
        return None
    sql = compiled_sql(
        "booking-by-key",
        lambda: Booking.select().where(Booking.host == 0, Booking.idempotency_key == ""),
    )
    return next(iter(Booking.raw(sql, host.id, idempotency_key)), None)


def _insert(
    host: User,
    mt: MeetingType,
    start: datetime,
    name: str,
    email: str,
    timezone: str,
    notes: str,
    idempotency_key: str | None,
    **extra: Any,
) -> Booking:
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
    insert_instance(booking)
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
        raise BookingError(_("reason is too long"), "reason")
    with host_lock(booking.host_id):
        fresh = Booking.get_by_id(booking.id)
        if fresh.status != "confirmed":
            raise NotAllowed(_("this booking is already %(status)s", status=_status(fresh.status)))
        if by == "invitee" and fresh.start_utc <= now:
            raise NotAllowed(_("this meeting has already started"))
        fresh.status = "cancelled"
        fresh.cancelled_by = by
        fresh.cancel_reason = reason or ""
        fresh.cancelled_at = to_db(now)
        fresh.sequence += 1
        fresh.save()
        recorded = record_event(fresh, "cancelled", now=now)
    outbox.send(recorded)
    return fresh


def reschedule(
    booking: Booking,
    start: datetime,
    by: str = "invitee",
    *,
    now: datetime,
    live_timeout: float = LIVE_CHECK_TIMEOUT,
) -> Booking:
    """Move a booking: a new booking (new uid and manage link) replaces the old one.

    The old one ends as ``rescheduled``, so its manage link cannot move it again,
    and the calendar identity (iCalendar UID, external event) carries over.
    """
    current_type = MeetingType.get_or_none(MeetingType.id == booking.meeting_type_id)
    live: list[engine.Busy] = []
    if current_type is not None and booking.status == "confirmed":
        live = live_busy(User.get_by_id(booking.host_id), current_type, start, now, live_timeout)
    with host_lock(booking.host_id):
        old = Booking.get_by_id(booking.id)
        if old.status != "confirmed":
            raise NotAllowed(
                _(
                    "this booking is %(status)s and cannot be rescheduled",
                    status=_status(old.status),
                )
            )
        if old.start_utc <= now:
            raise NotAllowed(_("this meeting has already started and cannot be rescheduled"))
        mt = MeetingType.get_or_none(MeetingType.id == old.meeting_type_id)
        if mt is None:
            raise NotAllowed(_("this meeting type no longer exists"))
        host = User.get_by_id(old.host_id)
        Offer.read(host, mt, start, now, live).check(host, exclude=old.id)
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
            locale=old.locale,  # a moved booking keeps its invitee's language
        )
        # The calendar event follows the booking it now belongs to.
        moved = CalendarEvent.update(booking=new).where(CalendarEvent.booking == old).execute()
        if not moved:
            write_back.attach_calendar_event(new)
        recorded = record_event(new, "rescheduled", now=now)
        outbox.record(reminders(new, mt, now), now)
    outbox.send(recorded)
    return new
