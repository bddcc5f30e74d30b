"""Invitee pages: a host's profile, the booking page, its iframe twin, the manage page.

Everything is served from the free/busy cache (``booking.available_slots``) and
never waits on a provider; browsing may reuse an answer a few seconds old
(:func:`slots_by_day`), while the form, the booking and every refusal ask afresh.
Each page works through query parameters alone
(``month``, ``date``, ``tz``, ``start``); htmx only swaps named blocks of the
same templates. The booking POSTs run inside third-party iframes where the
session cookie is absent, so instead of Flask-WTF's CSRF token they are
protected by a signed form token (:mod:`portal.formtoken`), an ``Origin``
check against the host's allowed sites and a rate limit.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    request,
    url_for,
)

from .. import booking as service
from .. import calendar_links, clock, formtoken, locations, questions, timezones
from ..extensions import csrf, limiter
from ..ical import meeting_link
from ..models import Booking, MeetingType, User, db
from .picker import (
    Picker,
    build_picker,
    day_label,
    picker_block,
    slot_label,
    slots_by_day,
    time_label,
    zone_options,
)
from .render import render

bp = Blueprint("public", __name__)

_SQL: dict[tuple[str, str], str] = {}
ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")


def booking_rate_limit() -> str:
    return current_app.config["BOOKING_RATE_LIMIT"]


# One budget for every public POST (book, cancel, reschedule; page and embed alike),
# so an address cannot multiply its allowance by switching forms.
public_post_limit = limiter.shared_limit(booking_rate_limit, scope="public-post")


# --------------------------------------------------------------------------- helpers


def _host_or_404(slug: str) -> User:
    """A host whose public pages are on; anyone else is indistinguishable from no one."""
    user = User.get_or_none(User.slug == slug)
    if user is None or not user.is_active or not user.allow_booking:
        abort(404)
    return user


def _host_and_type_or_404(host_slug: str, type_slug: str) -> tuple[User, MeetingType]:
    """An active meeting type of a bookable host (this runs on every page view)."""
    user_sql = _compiled(
        "public-host",
        lambda: User.select().where(
            User.slug == "",
            User.is_active == True,  # noqa: E712
            User.allow_booking == True,  # noqa: E712
        ),
    )
    user = next(iter(User.raw(user_sql, host_slug, True, True)), None)
    if user is None:
        abort(404)
    type_sql = _compiled(
        "public-type",
        lambda: MeetingType.select().where(
            MeetingType.user == 0,
            MeetingType.slug == "",
            MeetingType.is_active == True,  # noqa: E712
        ),
    )
    mt = next(iter(MeetingType.raw(type_sql, user.id, type_slug, True)), None)
    if mt is None:
        abort(404)
    mt.user = user
    return user, mt


def _compiled(name: str, build) -> str:
    """The SQL of a query that runs on every page view, built by peewee once per backend.

    peewee turns its query tree into SQL on every execution, which cost this page more
    than the database did; the shape never changes, only the parameters (passed to
    ``Model.raw`` in the order of the ``where`` above).
    """
    key = (name, type(db.obj).__name__)
    sql = _SQL.get(key)
    if sql is None:
        sql = _SQL[key] = build().sql()[0]
    return sql


def _managed_or_404(uid: str, token: str) -> Booking:
    found = service.find_managed(uid, token)
    if found is None:
        abort(404)
    return found


def _allowed_origins(user: User) -> list[str]:
    """The host's embedding sites, re-checked here because they end up in a header."""
    return [o.rstrip("/") for o in user.origins() if ORIGIN_RE.match(o.rstrip("/"))]


def _allow_framing(user: User) -> None:
    """Let this page be framed by the app itself and the host's allowed sites only."""
    g.frame_ancestors = " ".join(["'self'", *_allowed_origins(user)])


def _own_origins() -> set[str]:
    own = {request.host_url.rstrip("/")}
    base = current_app.config.get("BASE_URL") or ""
    if base:
        parts = urlsplit(base)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return own


def _check_origin(user: User) -> None:
    """Refuse a POST whose ``Origin`` is neither this app nor one of the host's sites.

    Browsers send ``Origin`` on every cross-site form POST, so a page elsewhere
    cannot drive the booking form; clients that send none still need the form token.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin == "null" and request.headers.get("Sec-Fetch-Site") == "same-origin":
        # Our own manage pages send "Referrer-Policy: no-referrer", under which browsers
        # post an opaque origin; Sec-Fetch-Site, which pages cannot set, vouches for them.
        return
    if origin.rstrip("/") not in _own_origins() | set(_allowed_origins(user)):
        abort(403, "This form cannot be sent from that site.")


def _check_form_token(host_id: int, type_id: int, booking_uid: str = "") -> None:
    try:
        formtoken.verify(request.form.get("form_token"), host_id, type_id, booking_uid)
    except formtoken.FormTokenError as exc:
        abort(403, exc.message[0].upper() + exc.message[1:] + ". Nothing was sent.")


def _no_referrer(response: Response) -> Response:
    """Manage pages carry a secret in their URL: never leak it to linked sites.

    Nor keep the page or its .ics in a shared or back-button cache: they hold the
    invitee's details and the manage token.
    """
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _zone_name(value: str | None, fallback: str) -> str:
    value = (value or "").strip()
    if value and len(value) < 64 and service.is_valid_zone(value):
        return timezones.canonical(value)  # "Asia/Calcutta" from a browser → "Asia/Kolkata"
    return fallback


def _parse_start(value: str | None) -> datetime | None:
    if not value or len(value) > 64:
        return None
    try:
        return service.parse_start(value)
    except service.BookingError:
        return None


def is_link(location: str) -> bool:
    return location.startswith(("https://", "http://"))


@bp.context_processor
def _template_helpers() -> dict:
    return {
        "day_label": day_label,
        "time_label": time_label,
        "slot_label": slot_label,
        "zone_options": zone_options,
        "is_link": is_link,
        # Meeting details: where a type meets, a booking's join link, the invitee's answers.
        "where_label": locations.describe,
        "meeting_link": meeting_link,
        "link_status": locations.join_link_status,
        "answered": lambda booking: questions.answered(booking.answer_list()),
        "calendar_links": calendar_links.for_booking,
    }


# --------------------------------------------------------------------------- pages


@bp.get("/<host>")
def profile(host: str):
    user = _host_or_404(host)
    types = (
        MeetingType.select()
        .where(MeetingType.user == user, MeetingType.is_active == True)  # noqa: E712
        .order_by(MeetingType.name)
    )
    _allow_framing(user)
    return render("public/profile.html", host=user, types=list(types))


def _page_endpoint(embed: bool) -> str:
    return "public.embed" if embed else "public.book"


@bp.get("/<host>/<type_slug>", defaults={"embed": False})
@bp.get("/embed/<host>/<type_slug>", defaults={"embed": True}, endpoint="embed")
def book(host: str, type_slug: str, embed: bool):
    """The booking page: calendar and slots, or (with ``start``) the form for one slot."""
    user, mt = _host_and_type_or_404(host, type_slug)
    _allow_framing(user)
    tz_name = _zone_name(request.args.get("tz"), user.timezone)
    endpoint = _page_endpoint(embed)
    path = {"host": user.slug, "type_slug": mt.slug}
    start = _parse_start(request.args.get("start"))
    if start is not None:
        return _form_or_gone(user, mt, endpoint, path, tz_name, start, embed)
    block = picker_block()
    picker = build_picker(user, mt, endpoint, path, {}, tz_name, day_only=block == "slots")
    if request.args.get("start"):  # a link to a time that is not one (9999-12-31, a typo)
        picker.notice = "That time is no longer available. Please pick another."
    return render(
        "public/book.html", block, host=user, mt=mt, picker=picker, embed=embed, form=None
    )


def _form_or_gone(user, mt, endpoint, path, tz_name, start, embed):
    """The booking form for ``start`` if it is still offered, else that day's fresh slots."""
    tz = ZoneInfo(tz_name)
    day = start.astimezone(tz).date()
    if start.astimezone(tz) in slots_by_day(user, mt, day, day, tz, fresh=True).get(day, []):
        form = BookingForm.blank(
            start, tz_name, mt.duration_minutes, formtoken.issue(user.id, mt.id)
        )
        return render("public/book.html", host=user, mt=mt, picker=None, embed=embed, form=form)
    picker = build_picker(user, mt, endpoint, path, {}, tz_name, selected=day, fresh=True)
    picker.notice = "That time is no longer available. Please pick another."
    return render("public/book.html", host=user, mt=mt, picker=picker, embed=embed, form=None)


@dataclass
class BookingForm:
    """What the booking form shows and re-shows: the slot, the answers, the errors."""

    start: datetime
    tz: str
    duration: int
    form_token: str
    idempotency_key: str
    name: str = ""
    email: str = ""
    notes: str = ""
    answers: dict = field(default_factory=dict)  # question key → answer (portal.questions)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, start: datetime, tz: str, duration: int, token: str) -> BookingForm:
        return cls(start, tz, duration, token, uuid.uuid4().hex)

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(ZoneInfo(self.tz))

    @property
    def local_end(self) -> datetime:
        return self.local_start + timedelta(minutes=self.duration)

    @property
    def start_value(self) -> str:
        return self.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.post("/<host>/<type_slug>", defaults={"embed": False})
@bp.post("/embed/<host>/<type_slug>", defaults={"embed": True}, endpoint="embed_submit")
@public_post_limit
def book_submit(host: str, type_slug: str, embed: bool):
    """Create the booking; a refusal re-renders the form or the day, never an error page."""
    user, mt = _host_and_type_or_404(host, type_slug)
    _allow_framing(user)
    _check_origin(user)
    _check_form_token(user.id, mt.id)
    tz_name = _zone_name(request.form.get("tz"), user.timezone)
    endpoint = _page_endpoint(embed)
    path = {"host": user.slug, "type_slug": mt.slug}
    start = _parse_start(request.form.get("start"))
    if start is None:
        picker = build_picker(user, mt, endpoint, path, {}, tz_name)
        picker.notice = "Please pick a time."
        return render(
            "public/book.html", host=user, mt=mt, picker=picker, embed=embed, form=None, status=422
        )
    form = BookingForm(
        start,
        tz_name,
        mt.duration_minutes,
        formtoken.issue(user.id, mt.id),
        (request.form.get("idempotency_key") or "")[:200] or uuid.uuid4().hex,
        name=request.form.get("name", ""),
        email=request.form.get("email", ""),
        notes=request.form.get("notes", ""),
        answers=questions.from_form(mt, request.form),
    )
    try:
        result = service.book(
            user,
            mt,
            start,
            form.name,
            form.email,
            timezone=tz_name,
            notes=form.notes,
            idempotency_key=form.idempotency_key,
            now=clock.now(),
            answers=form.answers,
        )
    except service.BookingError as exc:
        if exc.field == "start":
            day = start.astimezone(ZoneInfo(tz_name)).date()
            picker = build_picker(user, mt, endpoint, path, {}, tz_name, selected=day, fresh=True)
            picker.notice = (
                "This time was just taken. Please pick another."
                if isinstance(exc, service.SlotTaken)
                else f"{exc.message[0].upper()}{exc.message[1:]}. Please pick another time."
            )
            return render(
                "public/book.html",
                host=user,
                mt=mt,
                picker=picker,
                embed=embed,
                form=None,
                status=exc.status,
            )
        form.errors[exc.field or "form"] = exc.message[0].upper() + exc.message[1:]
        return render(
            "public/book.html",
            host=user,
            mt=mt,
            picker=None,
            embed=embed,
            form=form,
            status=exc.status,  # 422 for a field, 503 when the calendar cannot be checked
        )
    return redirect(_manage_url(result.booking, embed, booked="1"), code=303)


# --------------------------------------------------------------------------- manage


def _manage_url(booking: Booking, embed: bool, **params) -> str:
    endpoint = "public.manage_embed" if embed else "public.manage"
    return url_for(endpoint, uid=booking.uid, token=service.manage_token(booking), **params)


def _reschedulable(booking: Booking, host: User, mt: MeetingType | None) -> bool:
    return (
        booking.status == "confirmed"
        and booking.start_utc > clock.now()
        and mt is not None
        and mt.is_active
        and host.is_active
        and host.allow_booking
    )


def _manage_context(booking: Booking, embed: bool, tz_name: str | None = None) -> dict:
    host = User.get_by_id(booking.host_id)
    mt = MeetingType.get_or_none(MeetingType.id == booking.meeting_type_id)
    tz_name = _zone_name(tz_name or request.args.get("tz"), booking.invitee_timezone)
    successor = None
    if booking.status == "rescheduled":
        successor = Booking.get_or_none(Booking.rescheduled_from == booking)
    return {
        "booking": booking,
        "host": host,
        "mt": mt,
        "embed": embed,
        "tz": tz_name,
        "local_start": booking.start_utc.astimezone(ZoneInfo(tz_name)),
        "local_end": booking.end_utc.astimezone(ZoneInfo(tz_name)),
        "duration": int((booking.end_utc - booking.start_utc).total_seconds() // 60),
        "token": service.manage_token(booking),
        "manage_link": service.external_url(service.manage_path(booking)),
        "successor_url": _manage_url(successor, embed) if successor else None,
        "can_reschedule": _reschedulable(booking, host, mt),
        # Invitees cannot cancel a meeting once it has started (the host still can).
        "can_cancel": booking.status == "confirmed" and booking.start_utc > clock.now(),
        "form_token": formtoken.issue(host.id, mt.id if mt else 0, booking.uid),
        "picker": None,
        "confirm_start": None,
        "errors": {},
        "notice": "",
        "reason": "",
    }


def _drop_current_time(picker: Picker, booking: Booking) -> None:
    """Moving a booking to the time it already has is no move: leave that time out."""
    if picker.selected and picker.days.get(picker.selected):
        day = picker.days[picker.selected]
        picker.days = {picker.selected: [s for s in day if s != booking.start_utc]}


@bp.get("/booking/<uid>", defaults={"embed": False})
@bp.get("/embed/booking/<uid>", defaults={"embed": True}, endpoint="manage_embed")
def manage(uid: str, embed: bool):
    """The invitee's page for one booking, behind the secret token from the confirmation."""
    token = request.args.get("token", "")
    booking = _managed_or_404(uid, token)
    ctx = _manage_context(booking, embed)
    _allow_framing(ctx["host"])
    block = None
    if ctx["can_reschedule"] and request.args.get("reschedule"):
        keep = {"token": token, "reschedule": "1"}
        endpoint = "public.manage_embed" if embed else "public.manage"
        start = _parse_start(request.args.get("start"))
        if start is not None:
            ctx["confirm_start"] = start.astimezone(ZoneInfo(ctx["tz"]))
        else:
            block = picker_block()
            ctx["picker"] = build_picker(
                ctx["host"],
                ctx["mt"],
                endpoint,
                {"uid": booking.uid},
                keep,
                ctx["tz"],
                day_only=block == "slots",
                exclude=booking.id,
            )
            _drop_current_time(ctx["picker"], booking)
    body, status = render("public/manage.html", block, **ctx)
    return _no_referrer(Response(body, status))


@bp.get("/booking/<uid>/invite.ics")
def invite_ics(uid: str):
    """The booking as an .ics file for the invitee's own calendar."""
    from ..ical import booking_ics

    booking = _managed_or_404(uid, request.args.get("token", ""))
    response = Response(booking_ics(booking, method="PUBLISH"), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'attachment; filename="invite.ics"'
    return _no_referrer(response)


def _managed_post(uid: str) -> Booking:
    """The common gate of the manage POSTs: secret token, Origin, form token."""
    booking = _managed_or_404(uid, request.form.get("token", ""))
    host = User.get_by_id(booking.host_id)
    _allow_framing(host)
    _check_origin(host)
    _check_form_token(host.id, booking.meeting_type_id or 0, booking.uid)
    return booking


@bp.post("/booking/<uid>/cancel", defaults={"embed": False})
@bp.post("/embed/booking/<uid>/cancel", defaults={"embed": True}, endpoint="cancel_embed")
@public_post_limit
def cancel(uid: str, embed: bool):
    booking = _managed_post(uid)
    reason = request.form.get("reason", "")
    try:
        service.cancel(booking, by="invitee", reason=reason, now=clock.now())
    except service.BookingError as exc:
        ctx = _manage_context(Booking.get_by_id(booking.id), embed, request.form.get("tz"))
        ctx["reason"] = reason
        if exc.field:
            ctx["errors"][exc.field] = exc.message
        else:
            ctx["notice"] = f"{exc.message[0].upper()}{exc.message[1:]}."
        body, status = render("public/manage.html", status=exc.status, **ctx)
        return _no_referrer(Response(body, status))
    return _no_referrer(redirect(_manage_url(booking, embed), code=303))


@bp.post("/booking/<uid>/reschedule", defaults={"embed": False})
@bp.post("/embed/booking/<uid>/reschedule", defaults={"embed": True}, endpoint="reschedule_embed")
@public_post_limit
def reschedule(uid: str, embed: bool):
    booking = _managed_post(uid)
    start = _parse_start(request.form.get("start"))
    tz_name = request.form.get("tz")
    try:
        if start is None:
            raise service.BookingError("please pick a new time", "start")
        new = service.reschedule(booking, start, by="invitee", now=clock.now())
    except service.BookingError as exc:
        ctx = _manage_context(Booking.get_by_id(booking.id), embed, tz_name)
        if ctx["can_reschedule"]:
            keep = {"token": ctx["token"], "reschedule": "1"}
            endpoint = "public.manage_embed" if embed else "public.manage"
            day = start.astimezone(ZoneInfo(ctx["tz"])).date() if start else None
            ctx["picker"] = build_picker(
                ctx["host"],
                ctx["mt"],
                endpoint,
                {"uid": booking.uid},
                keep,
                ctx["tz"],
                exclude=booking.id,
                selected=day,
                fresh=True,
            )
            _drop_current_time(ctx["picker"], booking)
            ctx["picker"].notice = (
                "This time was just taken. Please pick another."
                if isinstance(exc, service.SlotTaken)
                else f"{exc.message[0].upper()}{exc.message[1:]}."
            )
        else:
            ctx["notice"] = f"{exc.message[0].upper()}{exc.message[1:]}."
        body, status = render("public/manage.html", status=exc.status, **ctx)
        return _no_referrer(Response(body, status))
    return _no_referrer(redirect(_manage_url(new, embed, rescheduled="1"), code=303))


# The public POSTs are reachable from other sites' iframes, without the session cookie that
# Flask-WTF's token lives in; the form token, Origin check and rate limit stand in for it.
for _view in (book_submit, cancel, reschedule):
    csrf.exempt(_view)


# --------------------------------------------------------------------------- errors


@bp.errorhandler(403)
@bp.errorhandler(404)
@bp.errorhandler(429)
def _error_page(exc):
    titles = {
        403: "This request was refused",
        404: "Page not found",
        429: "Too many attempts",
    }
    messages = {
        404: "There is no booking page here. Please check the link you were given.",
        429: "Please wait a minute before trying again.",
    }
    code = exc.code or 500
    message = messages.get(code) or exc.description or ""
    args = request.view_args or {}
    embed = bool(args.get("embed"))
    if code != 404 and not g.get("frame_ancestors"):
        # Refused before the view ran (the rate limit): still show the page in the frame.
        host = None
        if "host" in args:
            host = User.get_or_none(User.slug == args["host"])
        elif "uid" in args:
            found = Booking.get_or_none(Booking.uid == args["uid"])
            host = User.get_or_none(User.id == found.host_id) if found else None
        if host is not None:
            _allow_framing(host)
    back = None
    if code != 404 and "type_slug" in args:
        back = url_for(_page_endpoint(embed), host=args["host"], type_slug=args["type_slug"])
    body, status = render(
        "public/error.html",
        title=titles.get(code, "Error"),
        message=message,
        back=back,
        embed=embed,
        status=code,
    )
    return Response(body, status)


error_page = _error_page  # also the app's answer for a path no route matches (views/api.py)
