"""JSON API v1 (bearer tokens). See /api/v1/openapi.json, declared in ``portal.openapi``.

Shared pieces used by every API module: ``ApiError``, ``api_error``,
``require_token`` and ``json_body``. Errors are always
``{"error": {"code", "message", "field"?}}``; every invalid input is a 4xx
that names the field, never a 500.

The views only parse and answer: booking rules live in ``portal.booking``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, jsonify, request, url_for
from peewee import IntegrityError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from .. import booking as svc
from .. import locations, openapi
from ..booking import BookingError
from ..models import (
    SLUG_RE,
    ApiToken,
    Booking,
    DateOverride,
    MeetingType,
    User,
    WeeklyHours,
    db,
    from_db,
    to_db,
    utcnow,
    validate_slug,
)
from .public import public_post_limit

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def api_error(status: int, code: str, message: str, field: str | None = None):
    body: dict = {"code": code, "message": message}
    if field:
        body["field"] = field
    return jsonify({"error": body}), status


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, field)


def not_found(what: str = "not found") -> ApiError:
    return ApiError(404, "not_found", what)


def _api_error(exc: ApiError):
    return api_error(exc.status, exc.code, exc.message, exc.field)


def _booking_error(exc: BookingError):
    return api_error(exc.status, exc.code, exc.message, exc.field)


def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    field = None
    message = exc.description or exc.name
    if isinstance(exc, RequestEntityTooLarge):
        field = "body"
        cap = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"the body is larger than {cap} bytes" if cap else message
    response, status = api_error(exc.code or 500, code, message, field)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response, status


@bp.app_errorhandler(HTTPException)
def _app_http_error(exc: HTTPException):
    """Unknown paths and wrong methods fail during routing, before a blueprint is chosen;
    under /api/ they must still answer JSON. Other paths keep Flask's own answer."""
    if request.path.startswith("/api/"):
        return _http_error(exc)
    return exc


def _no_store(response):
    """Answers carry personal data or change with every booking: never cache them."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def json_errors(blueprint: Blueprint) -> Blueprint:
    """Give an /api/v1 blueprint the API's JSON errors and no-store caching.

    Other API modules (e.g. connections) call this on their own blueprint so
    their answers look exactly like these.
    """
    blueprint.register_error_handler(ApiError, _api_error)
    blueprint.register_error_handler(BookingError, _booking_error)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.after_request(_no_store)
    return blueprint


json_errors(bp)


def require_token(view):
    """Authenticate ``Authorization: Bearer <token>``; sets ``g.api_user``."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, plain = header.partition(" ")
        if scheme.lower() != "bearer" or not plain.strip():
            return _unauthorized("a bearer token is required")
        token = ApiToken.lookup(plain.strip())
        if token is None:
            return _unauthorized("invalid or revoked token")
        ApiToken.update(last_used_at=to_db(utcnow())).where(ApiToken.id == token.id).execute()
        g.api_user = token.user
        return view(*args, **kwargs)

    return wrapper


def _unauthorized(message: str):
    response, status = api_error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="kairos"'
    return response, status


def json_body() -> dict:
    """The request's JSON object, or a 422 (field ``body``) that says what is wrong with it.

    Strings are checked here once for what the databases refuse (NUL, lone
    surrogates), so no view can turn such input into a 500.
    """
    request.get_data(cache=True)  # over MAX_CONTENT_LENGTH → 413 before anything else
    if not request.is_json:
        raise ApiError(
            422, "invalid_json", "send a JSON object with Content-Type: application/json", "body"
        )
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # absurdly nested input; json raises this, not ValueError
        data = None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_json", "the body must be a JSON object", "body")
    _check_strings(data)
    return data


def optional_json_body() -> dict:
    """Like ``json_body`` for actions whose body may be left out entirely."""
    if not request.get_data(cache=True):
        return {}
    return json_body()


def _check_strings(data: object) -> None:
    """Refuse NUL characters and unpaired surrogates anywhere in a parsed body."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                sub = f"{path}.{key}" if path else str(key)
                _check_string(key, sub)
                stack.append((sub, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_string(value, path)


def _check_string(value: str, field: str) -> None:
    if "\x00" in value:
        raise invalid(field, "text cannot contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(field, "text is not valid Unicode") from exc


# ---------------------------------------------------------------- reading fields

_MISSING: Any = object()


class Fields:
    """Typed, bounded reads from a JSON object; every refusal names its field."""

    def __init__(self, data: dict, prefix: str = ""):
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def only(self, allowed: Iterable[str], ignored: Iterable[str] = ()) -> None:
        """Refuse unknown keys, so a typo is an error rather than a silent no-op."""
        known = set(allowed) | set(ignored)
        for key in self.data:
            if key not in known:
                raise invalid(self.name(key), "unknown field")

    def raw(self, key: str, required: bool) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING and required:
            raise invalid(self.name(key), f"{key} is required")
        return value

    def string(
        self, key: str, max_len: int, *, required: bool = False, one_line: bool = False
    ) -> Any:
        value = self.raw(key, required)
        if value is _MISSING:
            return value
        if not isinstance(value, str):
            raise invalid(self.name(key), "expected a string")
        if len(value) > max_len:
            raise invalid(self.name(key), f"at most {max_len} characters")
        if one_line and any(ch in value for ch in "\r\n"):
            raise invalid(self.name(key), "cannot contain line breaks")
        return value

    def integer(
        self, key: str, low: int, high: int, *, required: bool = False, nullable: bool = False
    ) -> Any:
        value = self.raw(key, required)
        if value is _MISSING or (value is None and nullable):
            return value
        # bool is an int in Python, but `true` is not a number of minutes.
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid(self.name(key), "expected a whole number" + (" or null" * nullable))
        if not low <= value <= high:
            raise invalid(self.name(key), f"must be between {low} and {high}")
        return value

    def boolean(self, key: str) -> Any:
        value = self.raw(key, False)
        if value is not _MISSING and not isinstance(value, bool):
            raise invalid(self.name(key), "expected true or false")
        return value


def _zone(name: object, field: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise invalid(field, "expected an IANA time zone such as Europe/Berlin")
    try:
        return svc.zone(name)
    except BookingError as exc:
        raise invalid(field, f"unknown time zone {name!r}") from exc


# Dates outside this range are typos, and far ones overflow datetime arithmetic.
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2999, 12, 31)


def _date(value: object, field: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise invalid(field, "expected a date as YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise invalid(field, f"{value} is not a calendar date") from exc
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise invalid(field, f"must be between {MIN_DATE} and {MAX_DATE}")
    return parsed


def _query_int(key: str, default: int, low: int, high: int) -> int:
    value = request.args.get(key)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"\d{1,9}", value) or not low <= int(value) <= high:
        raise invalid(key, f"expected a whole number between {low} and {high}")
    return int(value)


# ---------------------------------------------------------------- the document and the host


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document; public, so clients can be generated without a token."""
    response = jsonify(openapi.document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/me")
@require_token
def me():
    user = g.api_user
    return jsonify(
        id=user.id,
        email=user.email,
        slug=user.slug,
        name=user.name,
        timezone=user.timezone,
        lead_time_minutes=user.lead_time_minutes,
        is_admin=user.is_admin,
        allow_booking=user.allow_booking,
        profile_url=svc.external_url(f"/{user.slug}"),
    )


# ---------------------------------------------------------------- availability

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def availability_dict(user: User) -> dict:
    weekly: dict[str, list[list[str]]] = {day: [] for day in DAYS}
    rows = WeeklyHours.select().where(WeeklyHours.user == user)
    for row in rows.order_by(WeeklyHours.weekday, WeeklyHours.start):
        weekly[DAYS[row.weekday]].append([row.start, row.end])
    overrides = [
        {"date": row.date.isoformat(), "intervals": row.interval_list()}
        for row in DateOverride.select()
        .where(DateOverride.user == user)
        .order_by(DateOverride.date)
    ]
    return {
        "timezone": user.timezone,
        "weekly": weekly,
        "overrides": overrides,
        "lead_time_minutes": user.lead_time_minutes,
    }


def parse_intervals(value: object, field: str) -> list[tuple[str, str]]:
    """One day's windows: ``[["HH:MM", "HH:MM"], …]``, each non-empty, none overlapping.

    Touching windows (12:00–13:00 after 09:00–12:00) are allowed and kept
    apart, exactly as given, so what a client PUTs is what it GETs back.
    """
    if not isinstance(value, list):
        raise invalid(field, 'expected a list of ["HH:MM", "HH:MM"] pairs')
    if len(value) > openapi.MAX_INTERVALS_PER_DAY:
        raise invalid(field, f"at most {openapi.MAX_INTERVALS_PER_DAY} windows a day")
    found: list[tuple[str, str, int]] = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
        ):
            raise invalid(where, 'expected ["HH:MM", "HH:MM"]')
        start, end = item
        if not _CLOCK.fullmatch(start):
            raise invalid(where, f"start {start!r} is not a time between 00:00 and 23:59")
        if end != "24:00" and not _CLOCK.fullmatch(end):
            raise invalid(where, f"end {end!r} is not HH:MM (24:00 = end of the day)")
        if start >= end:  # zero-padded HH:MM compares like the time it names
            raise invalid(where, f"start {start} is not before end {end}")
        found.append((start, end, i))
    found.sort()
    for (_, end, _i), (start, _, j) in zip(found, found[1:], strict=False):
        if start < end:
            raise invalid(f"{field}[{j}]", f"window starting {start} overlaps one ending {end}")
    return [(start, end) for start, end, _ in found]


def parse_availability(data: dict) -> dict:
    f = Fields(data)
    f.only(("timezone", "weekly", "overrides", "lead_time_minutes"))
    timezone = f.raw("timezone", True)
    _zone(timezone, "timezone")
    lead = f.integer("lead_time_minutes", 0, openapi.HOST_LEAD_TIME_MAX, required=True)

    weekly_in = f.raw("weekly", True)
    if not isinstance(weekly_in, dict):
        raise invalid("weekly", 'expected an object such as {"mon": [["09:00", "17:00"]]}')
    Fields(weekly_in, "weekly.").only(DAYS)
    weekly = {
        DAYS.index(day): parse_intervals(weekly_in.get(day, []), f"weekly.{day}") for day in DAYS
    }

    overrides_in = f.raw("overrides", True)
    if not isinstance(overrides_in, list):
        raise invalid("overrides", 'expected a list of {"date", "intervals"}')
    if len(overrides_in) > openapi.MAX_OVERRIDES:
        raise invalid("overrides", f"at most {openapi.MAX_OVERRIDES} date overrides")
    overrides: dict[date, list[tuple[str, str]]] = {}
    for i, item in enumerate(overrides_in):
        where = f"overrides[{i}]"
        if not isinstance(item, dict):
            raise invalid(where, 'expected {"date": "YYYY-MM-DD", "intervals": [...]}')
        item_fields = Fields(item, where + ".")
        item_fields.only(("date", "intervals"))
        day = _date(item_fields.raw("date", True), where + ".date")
        if day in overrides:
            raise invalid(where + ".date", f"{day} is given twice")
        overrides[day] = parse_intervals(item_fields.raw("intervals", True), where + ".intervals")
    return {"timezone": timezone, "lead": lead, "weekly": weekly, "overrides": overrides}


@bp.get("/availability")
@require_token
def get_availability():
    return jsonify(availability_dict(g.api_user))


@bp.put("/availability")
@require_token
def put_availability():
    """Replace hours, overrides, zone and lead time in one transaction."""
    new = parse_availability(json_body())
    user = g.api_user
    with db.atomic():
        User.update(timezone=new["timezone"], lead_time_minutes=new["lead"]).where(
            User.id == user.id
        ).execute()
        WeeklyHours.delete().where(WeeklyHours.user == user).execute()
        rows = [
            {"user": user.id, "weekday": day, "start": start, "end": end}
            for day, windows in new["weekly"].items()
            for start, end in windows
        ]
        if rows:
            WeeklyHours.insert_many(rows).execute()
        DateOverride.delete().where(DateOverride.user == user).execute()
        rows = [
            {"user": user.id, "date": day, "intervals": json.dumps([list(w) for w in windows])}
            for day, windows in sorted(new["overrides"].items())
        ]
        if rows:
            DateOverride.insert_many(rows).execute()
    return jsonify(availability_dict(User.get_by_id(user.id)))


# ---------------------------------------------------------------- meeting types

# JSON name → model attribute, for the fields a client may write.
TYPE_FIELDS = {
    "slug": "slug",
    "name": "name",
    "description": "description",
    "duration_minutes": "duration_minutes",
    "buffer_before_minutes": "buffer_before_minutes",
    "buffer_after_minutes": "buffer_after_minutes",
    "lead_time_minutes": "lead_time_minutes",
    "window_days": "window_days",
    "slot_interval_minutes": "slot_interval_minutes",
    "daily_limit": "daily_limit",
    "location": "location",
    "location_kind": "location_kind",
    "active": "is_active",
}
_NULLABLE = ("slot_interval_minutes", "daily_limit")


def meeting_type_dict(mt: MeetingType, host: User) -> dict:
    out = {key: getattr(mt, attr) for key, attr in TYPE_FIELDS.items()}
    out["booking_url"] = svc.external_url(f"/{host.slug}/{mt.slug}")
    return out


def parse_meeting_type(data: dict, creating: bool) -> dict:
    """Model values from a POST (``creating``) or PATCH body; absent keys are left out."""
    f = Fields(data)
    f.only(TYPE_FIELDS, ignored=() if creating else ("booking_url",))
    values: dict[str, Any] = {}
    slug = f.string("slug", 40, required=creating)
    if slug is not _MISSING:
        problem = validate_slug(slug)
        if problem:
            raise invalid("slug", problem)
        values["slug"] = slug
    name = f.string("name", openapi.MAX_TYPE_NAME, required=creating, one_line=True)
    if name is not _MISSING:
        if not name.strip():
            raise invalid("name", "name is required")
        values["name"] = name.strip()
    for key, limit in (
        ("description", openapi.MAX_DESCRIPTION),
        ("location", openapi.MAX_LOCATION),
    ):
        value = f.string(key, limit, one_line=key == "location")
        if value is not _MISSING:
            values[key] = value.strip()
    for key, (low, high) in openapi.MEETING_TYPE_BOUNDS.items():
        required = creating and key == "duration_minutes"
        value = f.integer(key, low, high, required=required, nullable=key in _NULLABLE)
        if value is not _MISSING:
            values[key] = value
    kind = f.raw("location_kind", False)
    if kind is not _MISSING:
        if kind not in locations.KINDS:
            raise invalid("location_kind", "expected one of " + ", ".join(locations.KINDS))
        values["location_kind"] = kind
    active = f.boolean("active")
    if active is not _MISSING:
        values["is_active"] = active
    return values


def check_location(values: dict, user: User, mt: MeetingType | None = None) -> None:
    """Kind and location are checked together (portal.locations), also when only one changes."""
    if "location_kind" not in values and "location" not in values:
        return
    kind = values.get("location_kind", mt.location_kind if mt else "custom")
    where = values.get("location", mt.location if mt else "")
    try:
        values["location_kind"], values["location"] = locations.clean_location(kind, where, user)
    except locations.LocationError as exc:
        raise invalid(exc.field, exc.message) from exc


def _own_type(slug: str) -> MeetingType:
    if not SLUG_RE.fullmatch(slug):
        raise not_found("no such meeting type")
    mt = MeetingType.get_or_none(MeetingType.user == g.api_user, MeetingType.slug == slug)
    if mt is None:
        raise not_found("no such meeting type")
    return mt


def _slug_taken(slug: str) -> ApiError:
    return ApiError(409, "slug_taken", f"you already have a meeting type {slug!r}", "slug")


@bp.get("/meeting-types")
@require_token
def list_meeting_types():
    query = MeetingType.select().where(MeetingType.user == g.api_user).order_by(MeetingType.id)
    return jsonify(meeting_types=[meeting_type_dict(mt, g.api_user) for mt in query])


@bp.post("/meeting-types")
@require_token
def create_meeting_type():
    values = parse_meeting_type(json_body(), creating=True)
    user = g.api_user
    check_location(values, user)
    if MeetingType.get_or_none(MeetingType.user == user, MeetingType.slug == values["slug"]):
        raise _slug_taken(values["slug"])
    try:
        with db.atomic():
            mt = MeetingType.create(user=user, **values)
    except IntegrityError as exc:  # a concurrent request took the slug
        raise _slug_taken(values["slug"]) from exc
    response = jsonify(meeting_type_dict(mt, user))
    response.headers["Location"] = url_for("api.get_meeting_type", slug=mt.slug)
    return response, 201


@bp.get("/meeting-types/<slug>")
@require_token
def get_meeting_type(slug: str):
    return jsonify(meeting_type_dict(_own_type(slug), g.api_user))


@bp.patch("/meeting-types/<slug>")
@require_token
def patch_meeting_type(slug: str):
    mt = _own_type(slug)
    values = parse_meeting_type(json_body(), creating=False)
    check_location(values, g.api_user, mt)
    new_slug = values.get("slug", mt.slug)
    if new_slug != mt.slug and MeetingType.get_or_none(
        MeetingType.user == g.api_user, MeetingType.slug == new_slug
    ):
        raise _slug_taken(new_slug)
    for attr, value in values.items():
        setattr(mt, attr, value)
    try:
        with db.atomic():
            mt.save()
    except IntegrityError as exc:
        raise _slug_taken(new_slug) from exc
    return jsonify(meeting_type_dict(mt, g.api_user))


@bp.delete("/meeting-types/<slug>")
@require_token
def delete_meeting_type(slug: str):
    """Existing bookings stay (their type becomes null); they keep the slug they were made with."""
    mt = _own_type(slug)
    mt.delete_instance()
    return "", 204


# ---------------------------------------------------------------- public: slots and booking


def _public_type(host: str, type_slug: str) -> tuple[User, MeetingType]:
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
    user, mt = _public_type(host, type)
    tz_name = request.args.get("tz") or user.timezone
    tz = _zone(tz_name, "tz")
    today = utcnow().astimezone(tz).date()
    first = _date(request.args["start"], "start") if request.args.get("start") else today
    last = _date(request.args["end"], "end") if request.args.get("end") else first + timedelta(6)
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
    user, mt = _public_type(host, type)
    f = Fields(json_body())
    f.only(BOOKING_REQUEST)
    start = svc.parse_start(f.raw("start", True))
    name = f.string("name", svc.MAX_NAME, required=True)
    email = f.string("email", 320, required=True)
    timezone = f.string("timezone", 64)
    notes = f.string("notes", svc.MAX_NOTES)
    key = f.raw("idempotency_key", False)
    if key is not _MISSING and key is not None and not isinstance(key, str):
        raise invalid("idempotency_key", "expected a string")
    answers = f.raw("answers", False)
    if answers is not _MISSING and not isinstance(answers, dict):
        raise invalid("answers", "expected an object of question keys to answers")
    timezone = "UTC" if timezone is _MISSING else timezone
    notes = "" if notes is _MISSING else notes
    key = None if key is _MISSING else key
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
        answers=None if answers is _MISSING else answers,
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
    limit = _query_int("limit", 25, 1, 100)
    offset = _query_int("offset", 0, 0, 100_000_000)
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
    cancelled = svc.cancel(booking, by="host", reason="" if reason is _MISSING else reason)
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
