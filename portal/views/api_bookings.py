"""API: public slots and booking (/api/v1/hosts/…), and the host's bookings (/api/v1/bookings)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import g, jsonify, request, url_for

from .. import booking as svc
from .. import openapi
from ..models import (
    SLUG_RE,
    Booking,
    MeetingType,
    User,
    from_db,
    to_db,
    utcnow,
)
from .api import (
    MISSING,
    ApiError,
    Fields,
    bp,
    invalid,
    json_body,
    not_found,
    optional_json_body,
    parse_date,
    parse_zone,
    query_int,
    require_token,
)
from .public import public_post_limit

# ---------------------------------------------------------------- public: slots and booking


def public_type(host: str, type_slug: str) -> tuple[User, MeetingType]:
    """The bookable host and type, or 404 — also for hosts that turned booking off."""
    if not (SLUG_RE.fullmatch(host) and SLUG_RE.fullmatch(type_slug)):
        raise not_found("no such host or meeting type")
    user = User.get_or_none(
        User.slug == host,
        User.is_active == True,  # noqa: E712
        User.allow_booking == True,  # noqa: E712
    )
    mt = user and MeetingType.get_or_none(
        MeetingType.user == user,
        MeetingType.slug == type_slug,
        MeetingType.is_active == True,  # noqa: E712
    )
    if not mt:
        raise not_found("no such host or meeting type")
    return user, mt


@bp.get("/hosts/<host>/<type>/slots")
def slots(host: str, type: str):
    """Offered starts for whole days ``start``..``end`` in ``tz``, from the free/busy cache."""
    user, mt = public_type(host, type)
    tz_name = request.args.get("tz") or user.timezone
    tz = parse_zone(tz_name, "tz")
    today = utcnow().astimezone(tz).date()
    first = parse_date(request.args["start"], "start") if request.args.get("start") else today
    last = (
        parse_date(request.args["end"], "end") if request.args.get("end") else first + timedelta(6)
    )
    if last < first:
        raise invalid("end", "end is before start")
    if (last - first).days + 1 > openapi.MAX_SLOT_RANGE_DAYS:
        raise invalid("end", f"at most {openapi.MAX_SLOT_RANGE_DAYS} days at once")
    start, end = svc.local_day_range(first, last, tz)
    found = svc.available_slots(user, mt, start, end)
    return jsonify(
        timezone=tz_name,
        meeting_type=mt.slug,
        duration_minutes=mt.duration_minutes,
        slots=[s.astimezone(tz).isoformat() for s in found],
    )


BOOKING_REQUEST = ("start", "name", "email", "timezone", "notes", "idempotency_key", "answers")


@bp.post("/hosts/<host>/<type>/bookings")
@public_post_limit
def create_booking(host: str, type: str):
    """Book an offered slot. A repeated ``idempotency_key`` returns the first booking (200).

    It shares the public pages' POST budget per address, so the API is no way
    around the booking form's rate limit.

    The replay is only honoured for the same type, start and e-mail: otherwise
    a guessed key would hand out someone else's manage link.
    """
    user, mt = public_type(host, type)
    f = Fields(json_body())
    f.only(BOOKING_REQUEST)
    start = svc.parse_start(f.raw("start", True))
    name = f.string("name", svc.MAX_NAME, required=True)
    email = f.string("email", 320, required=True)
    timezone = f.string("timezone", 64)
    notes = f.string("notes", svc.MAX_NOTES)
    key = f.raw("idempotency_key", False)
    if key is not MISSING and key is not None and not isinstance(key, str):
        raise invalid("idempotency_key", "expected a string")
    answers = f.raw("answers", False)
    if answers is not MISSING and not isinstance(answers, dict):
        raise invalid("answers", "expected an object of question keys to answers")
    timezone = "UTC" if timezone is MISSING else timezone
    notes = "" if notes is MISSING else notes
    key = None if key is MISSING else key
    name, email, timezone, notes = svc.clean_invitee(name, email, timezone, notes)
    result = svc.book(
        user,
        mt,
        start,
        name,
        email,
        timezone,
        notes,
        idempotency_key=key,
        answers=None if answers is MISSING else answers,
    )
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
    body = svc.booking_dict(booking, with_manage=True)
    body.pop("calendar_event", None)  # the host's business, not the invitee's
    return jsonify(body), 201 if result.created else 200


# ---------------------------------------------------------------- the host's bookings


def host_booking_dict(booking: Booking) -> dict:
    out = svc.booking_dict(booking)
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
def list_bookings():
    status = request.args.get("status") or None
    limit = query_int("limit", 25, 1, 100)
    offset = query_int("offset", 0, 0, 100_000_000)
    now = to_db(utcnow())
    query = Booking.select().where(Booking.host == g.api_user)
    confirmed = Booking.status == "confirmed"
    if status == "upcoming":
        query = query.where(confirmed, Booking.end > now).order_by(Booking.start, Booking.id)
    elif status == "past":
        query = query.where(confirmed, Booking.end <= now)
    elif status == "cancelled":
        query = query.where(Booking.status == "cancelled")
    elif status is not None:
        raise invalid("status", "expected upcoming, past or cancelled")
    if status != "upcoming":
        query = query.order_by(Booking.start.desc(), Booking.id.desc())
    total = query.count()
    rows = list(query.limit(limit).offset(offset))
    more = offset + len(rows) < total
    return jsonify(
        bookings=[host_booking_dict(b) for b in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=offset + len(rows) if more else None,
    )


@bp.get("/bookings/<uid>")
@require_token
def get_booking(uid: str):
    return jsonify(host_booking_dict(_own_booking(uid)))


@bp.post("/bookings/<uid>/cancel")
@require_token
def cancel_booking(uid: str):
    booking = _own_booking(uid)
    f = Fields(optional_json_body())
    f.only(("reason",))
    reason = f.string("reason", svc.MAX_NOTES)
    cancelled = svc.cancel(booking, by="host", reason="" if reason is MISSING else reason)
    return jsonify(host_booking_dict(cancelled))


@bp.post("/bookings/<uid>/reschedule")
@require_token
def reschedule_booking(uid: str):
    """Answers the new booking (201): the old one stays as ``rescheduled``."""
    booking = _own_booking(uid)
    f = Fields(json_body())
    f.only(("start",))
    start = svc.parse_start(f.raw("start", True))
    new = svc.reschedule(booking, start, by="host")
    response = jsonify(host_booking_dict(new))
    response.headers["Location"] = url_for("api.get_booking", uid=new.uid)
    return response, 201
