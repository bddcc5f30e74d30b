"""API: public slots and booking (/api/v1/hosts/…), and the host's bookings (/api/v1/bookings)."""

from __future__ import annotations

import re
from datetime import datetime

from flask import g, jsonify, url_for

from portal import clock, i18n
from portal.api.base import ApiError, bp, day_range, not_found, operation, require_token
from portal.api.schemas.bookings import (
    MAX_SLOT_RANGE_DAYS,
    BookingList,
    BookingRequest,
    BookingsQuery,
    CancelRequest,
    PublicBooking,
    RescheduleRequest,
    Slots,
    SlotsQuery,
)
from portal.api.schemas.bookings import Booking as BookingAnswer
from portal.booking import checks, links, meeting_types, rules, shape
from portal.booking import service as svc
from portal.models import SLUG_RE, Booking, MeetingType, User, from_db, to_db
from portal.runtime.appconfig import external_url, live_check_timeout
from portal.web.public import public_post_limit

# ---------------------------------------------------------------- public: slots and booking


def public_type(host: str, type_slug: str) -> tuple[User, MeetingType]:
    """The bookable host and type, or 404 — also for hosts that turned booking off."""
    if not (SLUG_RE.fullmatch(host) and SLUG_RE.fullmatch(type_slug)):
        raise not_found("no such host or meeting type")
    found = meeting_types.bookable(host, type_slug)
    if found is None:
        raise not_found("no such host or meeting type")
    return found


@bp.get("/hosts/<host>/<type>/slots")
@operation("Offered start times (public)", "public", {200: ("slots", Slots)}, query=SlotsQuery)
def slots(host: str, type: str, query: SlotsQuery):
    """Offered starts for whole days ``start``..``end`` in ``tz``, from the free/busy cache."""
    user, mt = public_type(host, type)
    tz_name = query.tz or user.timezone
    tz = checks.zone(tz_name)
    start, end = day_range(query.start, query.end, tz, 7, MAX_SLOT_RANGE_DAYS)
    found = rules.available_slots(user, mt, start, end, now=clock.now())
    return jsonify(
        timezone=tz_name,
        meeting_type=mt.slug,
        duration_minutes=mt.duration_minutes,
        slots=[s.astimezone(tz).isoformat() for s in found],
    )


@bp.post("/hosts/<host>/<type>/bookings")
@public_post_limit
@operation(
    "Book a slot (public)",
    "public",
    {
        201: ("booked", PublicBooking),
        200: ("the booking made earlier with this idempotency key", PublicBooking),
    },
    body=BookingRequest,
    errors=(409, 429),
    description=(
        "201 for a new booking. Repeating a request with the same `idempotency_key` "
        "returns the same booking (same `uid`) with 200. 409 `slot_taken` when the "
        "time was just taken; 409 `idempotency_conflict` when the key was used for a "
        "different time, type or e-mail; 422 `start` when the time is not offered."
    ),
)
def create_booking(host: str, type: str, body: BookingRequest):
    """Book an offered slot. A repeated ``idempotency_key`` returns the first booking (200).

    It shares the public pages' POST budget per address, so the API is no way
    around the booking form's rate limit.
    """
    user, mt = public_type(host, type)
    name, email, timezone, notes = checks.clean_invitee(
        body.name, body.email, body.timezone, body.notes
    )
    result = svc.book(
        user,
        mt,
        body.start,
        name,
        email,
        timezone,
        notes,
        idempotency_key=body.idempotency_key,
        now=clock.now(),
        answers=body.answers,
        live_timeout=live_check_timeout(),
        locale=body.language or (i18n.browser_locale() or i18n.DEFAULT).split("_")[0],
    )
    _check_replay(result, mt, body.start, email)
    answer = shape.booking_dict(
        result.booking, manage_url=external_url(links.manage_path(result.booking))
    )
    return jsonify(answer), 201 if result.created else 200


def _check_replay(result: svc.Result, mt: MeetingType, start: datetime, email: str) -> None:
    """A replayed ``idempotency_key`` is honoured only for the same type, start and e-mail:
    otherwise a guessed key would hand out someone else's manage link (409)."""
    booking = result.booking
    if not result.created and (
        booking.meeting_type_id != mt.id
        or booking.start_utc != start
        or booking.invitee_email != email
    ):
        raise ApiError(
            409,
            "idempotency_conflict",
            "this idempotency_key was used for a different booking",
            "idempotency_key",
        )


# ---------------------------------------------------------------- the host's bookings


def host_booking_dict(booking: Booking) -> dict:
    out = shape.booking_dict(booking)
    out.setdefault("rescheduled_to", None)
    out["rescheduled_from"] = (
        Booking.select(Booking.uid).where(Booking.id == booking.rescheduled_from_id).scalar()
        if booking.rescheduled_from_id
        else None
    )
    cancelled_at: datetime | None = from_db(booking.cancelled_at)
    out["cancelled_at"] = cancelled_at.isoformat() if cancelled_at else None
    out["cancelled_by"] = booking.cancelled_by
    out["cancel_reason"] = booking.cancel_reason
    return out


def _own_booking(uid: str) -> Booking:
    """The token host's booking; someone else's is as absent as a missing one."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", uid):
        raise not_found("no such booking")
    booking = Booking.get_or_none(Booking.uid == uid, Booking.host == g.api_user)
    if booking is None:
        raise not_found("no such booking")
    return booking


@bp.get("/bookings")
@require_token
@operation(
    "The host's bookings",
    "bookings",
    {200: ("a page of bookings", BookingList)},
    query=BookingsQuery,
)
def list_bookings(query: BookingsQuery):
    status, limit, offset = query.status, query.limit, query.offset
    now = to_db(clock.now())
    rows = Booking.select().where(Booking.host == g.api_user)
    confirmed = Booking.status == "confirmed"
    if status == "upcoming":
        rows = rows.where(confirmed, Booking.end > now).order_by(Booking.start, Booking.id)
    elif status == "past":
        rows = rows.where(confirmed, Booking.end <= now)
    elif status == "cancelled":
        rows = rows.where(Booking.status == "cancelled")
    if status != "upcoming":
        rows = rows.order_by(Booking.start.desc(), Booking.id.desc())
    total = rows.count()
    page = list(rows.limit(limit).offset(offset))
    more = offset + len(page) < total
    return jsonify(
        bookings=[host_booking_dict(b) for b in page],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=offset + len(page) if more else None,
    )


@bp.get("/bookings/<uid>")
@require_token
@operation(
    "One booking, with its calendar write-back state",
    "bookings",
    {200: ("the booking", BookingAnswer)},
)
def get_booking(uid: str):
    return jsonify(host_booking_dict(_own_booking(uid)))


@bp.post("/bookings/<uid>/cancel")
@require_token
@operation(
    "Cancel a booking (as the host)",
    "bookings",
    {200: ("the cancelled booking", BookingAnswer)},
    body=CancelRequest,
    body_required=False,
    errors=(409,),
    description="409 `not_allowed` when the booking is not confirmed (cancelled already, "
    "or rescheduled).",
)
def cancel_booking(uid: str, body: CancelRequest):
    booking = _own_booking(uid)
    reason = body.reason
    cancelled = svc.cancel(booking, by="host", reason=reason, now=clock.now())
    return jsonify(host_booking_dict(cancelled))


@bp.post("/bookings/<uid>/reschedule")
@require_token
@operation(
    "Move a booking to another offered time",
    "bookings",
    {201: ("the new booking that replaces this one", BookingAnswer)},
    body=RescheduleRequest,
    errors=(409,),
    description="The booking becomes `rescheduled` and a new booking (new `uid`) replaces "
    "it, so a rescheduled or cancelled booking answers 409 `not_allowed`.",
)
def reschedule_booking(uid: str, body: RescheduleRequest):
    """Answers the new booking (201): the old one stays as ``rescheduled``."""
    booking = _own_booking(uid)
    start = body.start
    new = svc.reschedule(
        booking, start, by="host", now=clock.now(), live_timeout=live_check_timeout()
    )
    response = jsonify(host_booking_dict(new))
    response.headers["Location"] = url_for("api.get_booking", uid=new.uid)
    return response, 201
