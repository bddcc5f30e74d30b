"""The invitee's page for one booking, behind the secret token from the confirmation:
see it, download it as .ics, cancel it, or move it to another offered time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Response, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from portal import clock, i18n
from portal.booking import links, service
from portal.extensions import csrf
from portal.models import Booking, MeetingType, User
from portal.runtime.appconfig import external_url, live_check_timeout
from portal.web import formtoken
from portal.web.picker import Picker, build_picker, picker_block
from portal.web.public import bp, lang_args, public_post_limit
from portal.web.public.gates import (
    allow_framing,
    guard_post,
    managed_or_404,
    no_referrer,
    parse_start,
    sentence,
    zone_name,
)
from portal.web.render import render


def manage_endpoint(embed: bool) -> str:
    return "public.manage_embed" if embed else "public.manage"


def manage_url(booking: Booking, embed: bool, **params) -> str:
    token = links.manage_token(booking)
    return url_for(manage_endpoint(embed), uid=booking.uid, token=token, **params)


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
    tz_name = zone_name(tz_name or request.args.get("tz"), booking.invitee_timezone)
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
        "token": links.manage_token(booking),
        "manage_link": external_url(links.manage_path(booking)),
        "successor_url": manage_url(successor, embed) if successor else None,
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


def _manage_page(ctx: dict, block: str | None = None, status: int = 200) -> BaseResponse:
    body, status = render("public/manage.html", block, status=status, **ctx)
    return no_referrer(Response(body, status))


def _reschedule_picker(ctx: dict, embed: bool, token: str, **options) -> Picker:
    """The times the booking could move to; the time it already has is left out."""
    booking = ctx["booking"]
    keep = {"token": token, "reschedule": "1", **lang_args()}
    picker = build_picker(
        ctx["host"],
        ctx["mt"],
        manage_endpoint(embed),
        {"uid": booking.uid},
        keep,
        ctx["tz"],
        exclude=booking.id,
        **options,
    )
    if picker.selected and picker.days.get(picker.selected):
        day = picker.days[picker.selected]
        picker.days = {picker.selected: [s for s in day if s != booking.start_utc]}
    return picker


@bp.get("/booking/<uid>", defaults={"embed": False})
@bp.get("/embed/booking/<uid>", defaults={"embed": True}, endpoint="manage_embed")
def manage(uid: str, embed: bool):
    """The invitee's page for one booking, behind the secret token from the confirmation."""
    token = request.args.get("token", "")
    booking = managed_or_404(uid, token)
    i18n.use_locale(booking.locale)  # the invitee's language, from the e-mail's link too
    ctx = _manage_context(booking, embed)
    allow_framing(ctx["host"])
    block = None
    if ctx["can_reschedule"] and request.args.get("reschedule"):
        start = parse_start(request.args.get("start"))
        if start is not None:
            ctx["confirm_start"] = start.astimezone(ZoneInfo(ctx["tz"]))
        else:
            block = picker_block()
            ctx["picker"] = _reschedule_picker(ctx, embed, token, day_only=block == "slots")
    return _manage_page(ctx, block)


@bp.get("/booking/<uid>/invite.ics")
def invite_ics(uid: str):
    """The booking as an .ics file for the invitee's own calendar."""
    from portal.notify.ical import booking_ics

    booking = managed_or_404(uid, request.args.get("token", ""))
    i18n.use_locale(booking.locale)  # its description in the invitee's language
    response = Response(booking_ics(booking, method="PUBLISH"), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'attachment; filename="invite.ics"'
    return no_referrer(response)


def _managed_post(uid: str) -> Booking:
    """The common gate of the manage POSTs: secret token, then the public POST gate."""
    booking = managed_or_404(uid, request.form.get("token", ""))
    i18n.use_locale(booking.locale)
    host = User.get_by_id(booking.host_id)
    guard_post(host, booking.meeting_type_id or 0, booking.uid)
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
            ctx["notice"] = f"{sentence(exc.message)}."
        return _manage_page(ctx, status=exc.status)
    return no_referrer(redirect(manage_url(booking, embed, **lang_args()), code=303))


@bp.post("/booking/<uid>/reschedule", defaults={"embed": False})
@bp.post("/embed/booking/<uid>/reschedule", defaults={"embed": True}, endpoint="reschedule_embed")
@public_post_limit
def reschedule(uid: str, embed: bool):
    booking = _managed_post(uid)
    start = parse_start(request.form.get("start"))
    try:
        if start is None:
            raise service.BookingError(_("please pick a new time"), "start")
        new = service.reschedule(
            booking, start, by="invitee", now=clock.now(), live_timeout=live_check_timeout()
        )
    except service.BookingError as exc:
        ctx = _manage_context(Booking.get_by_id(booking.id), embed, request.form.get("tz"))
        if ctx["can_reschedule"]:
            day = start.astimezone(ZoneInfo(ctx["tz"])).date() if start else None
            picker = _reschedule_picker(ctx, embed, ctx["token"], selected=day, fresh=True)
            picker.notice = (
                _("This time was just taken. Please pick another.")
                if isinstance(exc, service.SlotTaken)
                else f"{sentence(exc.message)}."
            )
            ctx["picker"] = picker
        else:
            ctx["notice"] = f"{sentence(exc.message)}."
        return _manage_page(ctx, status=exc.status)
    return no_referrer(redirect(manage_url(new, embed, rescheduled="1", **lang_args()), code=303))


# Reachable from other sites' iframes, without the session cookie that Flask-WTF's token
# lives in; the form token, Origin check and rate limit stand in for it.
for _view in (cancel, reschedule):
    csrf.exempt(_view)
