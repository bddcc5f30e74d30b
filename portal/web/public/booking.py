"""The host's profile and the booking page: calendar and slots, the form for one slot,
and the POST that books it (also inside third-party iframes, under ``/embed``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import redirect, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from portal import clock, i18n
from portal.booking import questions, service
from portal.extensions import csrf
from portal.models import MeetingType, User
from portal.runtime.appconfig import live_check_timeout
from portal.web import formtoken
from portal.web.picker import Picker, build_picker, picker_block, slots_by_day
from portal.web.public import bp, lang_args, public_post_limit
from portal.web.public.gates import (
    allow_framing,
    guard_post,
    host_and_type_or_404,
    host_or_404,
    page_endpoint,
    parse_start,
    sentence,
    zone_name,
)
from portal.web.public.manage import manage_url
from portal.web.render import render

GONE = _l("That time is no longer available. Please pick another.")


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
    answers: dict = field(default_factory=dict)  # question key → answer (portal.booking.questions)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, start: datetime, tz: str, duration: int, token: str) -> BookingForm:
        return cls(start, tz, duration, token, uuid.uuid4().hex)

    @classmethod
    def submitted(
        cls, user: User, mt: MeetingType, start: datetime, tz: str, data: MultiDict[str, str]
    ) -> BookingForm:
        """The form as the invitee sent it, with a fresh form token for sending it again."""
        return cls(
            start,
            tz,
            mt.duration_minutes,
            formtoken.issue(user.id, mt.id),
            (data.get("idempotency_key") or "")[:200] or uuid.uuid4().hex,
            name=data.get("name", ""),
            email=data.get("email", ""),
            notes=data.get("notes", ""),
            answers=questions.from_form(mt, data),
        )

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(ZoneInfo(self.tz))

    @property
    def local_end(self) -> datetime:
        return self.local_start + timedelta(minutes=self.duration)

    @property
    def start_value(self) -> str:
        return self.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(
    user: User,
    mt: MeetingType,
    embed: bool,
    *,
    block: str | None = None,
    picker: Picker | None = None,
    form: BookingForm | None = None,
    status: int = 200,
):
    """The booking page with either the slot picker or the form for one slot."""
    return render(
        "public/book.html",
        block,
        host=user,
        mt=mt,
        picker=picker,
        embed=embed,
        form=form,
        status=status,
    )


def _picker(user: User, mt: MeetingType, embed: bool, tz_name: str, **options) -> Picker:
    path = {"host": user.slug, "type_slug": mt.slug}
    return build_picker(user, mt, page_endpoint(embed), path, lang_args(), tz_name, **options)


@bp.get("/<host>")
def profile(host: str):
    user = host_or_404(host)
    types = (
        MeetingType.select()
        .where(MeetingType.user == user, MeetingType.is_active == True)  # noqa: E712
        .order_by(MeetingType.name)
    )
    allow_framing(user)
    return render("public/profile.html", host=user, types=list(types))


@bp.get("/<host>/<type_slug>", defaults={"embed": False})
@bp.get("/embed/<host>/<type_slug>", defaults={"embed": True}, endpoint="embed")
def book(host: str, type_slug: str, embed: bool):
    """The booking page: calendar and slots, or (with ``start``) the form for one slot."""
    user, mt = host_and_type_or_404(host, type_slug)
    allow_framing(user)
    tz_name = zone_name(request.args.get("tz"), user.timezone)
    start = parse_start(request.args.get("start"))
    if start is not None:
        return _form_or_gone(user, mt, embed, tz_name, start)
    block = picker_block()
    picker = _picker(user, mt, embed, tz_name, day_only=block == "slots")
    if request.args.get("start"):  # a link to a time that is not one (9999-12-31, a typo)
        picker.notice = str(GONE)
    return _page(user, mt, embed, block=block, picker=picker)


def _form_or_gone(user: User, mt: MeetingType, embed: bool, tz_name: str, start: datetime):
    """The booking form for ``start`` if it is still offered, else that day's fresh slots."""
    tz = ZoneInfo(tz_name)
    day = start.astimezone(tz).date()
    if start.astimezone(tz) in slots_by_day(user, mt, day, day, tz, fresh=True).get(day, []):
        token = formtoken.issue(user.id, mt.id)
        form = BookingForm.blank(start, tz_name, mt.duration_minutes, token)
        return _page(user, mt, embed, form=form)
    picker = _picker(user, mt, embed, tz_name, selected=day, fresh=True)
    picker.notice = str(GONE)
    return _page(user, mt, embed, picker=picker)


@bp.post("/<host>/<type_slug>", defaults={"embed": False})
@bp.post("/embed/<host>/<type_slug>", defaults={"embed": True}, endpoint="embed_submit")
@public_post_limit
def book_submit(host: str, type_slug: str, embed: bool):
    """Create the booking; a refusal re-renders the form or the day, never an error page."""
    user, mt = host_and_type_or_404(host, type_slug)
    guard_post(user, mt.id)
    tz_name = zone_name(request.form.get("tz"), user.timezone)
    start = parse_start(request.form.get("start"))
    if start is None:
        picker = _picker(user, mt, embed, tz_name)
        picker.notice = _("Please pick a time.")
        return _page(user, mt, embed, picker=picker, status=422)
    form = BookingForm.submitted(user, mt, start, tz_name, request.form)
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
            live_timeout=live_check_timeout(),
            locale=i18n.current_language(),
        )
    except service.BookingError as exc:
        return _refused(user, mt, embed, form, exc)
    return redirect(manage_url(result.booking, embed, booked="1", **lang_args()), code=303)


def _refused(user: User, mt: MeetingType, embed: bool, form: BookingForm, exc):
    """A refused booking: the day's fresh slots when the time is at fault, else the form."""
    if exc.field == "start":
        picker = _picker(user, mt, embed, form.tz, selected=form.local_start.date(), fresh=True)
        picker.notice = (
            _("This time was just taken. Please pick another.")
            if isinstance(exc, service.SlotTaken)
            else _("%(reason)s. Please pick another time.", reason=sentence(exc.message))
        )
        return _page(user, mt, embed, picker=picker, status=exc.status)
    form.errors[exc.field or "form"] = sentence(exc.message)
    # 422 for a field, 503 when the calendar cannot be checked
    return _page(user, mt, embed, form=form, status=exc.status)


# Reachable from other sites' iframes, without the session cookie that Flask-WTF's token
# lives in; the form token, Origin check and rate limit stand in for it.
csrf.exempt(book_submit)
