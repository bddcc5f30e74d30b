"""Flask-WTF forms for the host's pages: sign-in, first run and settings.

Bounds on numbers match the JSON API's, so a value the browser accepts is one
the API accepts too, and the other way round.
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from portal.api.schemas.availability import HOST_LEAD_TIME

# The API's bounds, declared once beside its schemas: a value the browser accepts is
# one the API accepts too, and the other way round.
from portal.api.schemas.meeting_types import (
    BUFFER,
    DAILY_LIMIT,
    DURATION,
    INTERVAL,
    LEAD_TIME,
    MAX_DESCRIPTION,
    MAX_NAME,
    WINDOW_DAYS,
)
from portal.booking.locations import KINDS as LOCATION_KINDS
from portal.booking.locations import MAX_LOCATION
from portal.booking.wallclock import format_clock, parse_clock
from portal.org.passwords import MAX_PASSWORD, MIN_PASSWORD
from portal.org.users import slug_problem

MAX_ORIGINS = 50


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """IANA names for the searchable select; read once, the list never changes at runtime."""
    return tuple(sorted(n for n in available_timezones() if "/" in n or n == "UTC"))


def zone_suggestions() -> Markup:
    """The time-zone fields' suggestions: canonical zones, labelled in the page's language."""
    from flask_babel import get_locale

    from portal import clock
    from portal.web import timezones

    minute = clock.now().replace(second=0, microsecond=0)
    return timezones.suggestions(minute, str(get_locale() or "en"), timezones.pattern())


def valid_timezone(_form, field) -> None:
    """Any IANA name is accepted; an alias is stored as the zone it stands for
    ("Asia/Katmandu" → "Asia/Kathmandu", "US/Eastern" → "America/New_York")."""
    from portal.web.timezones import canonical

    field.data = (field.data or "").strip()
    if field.data not in timezone_names():
        raise ValidationError(_("pick a time zone from the list, e.g. Europe/Berlin"))
    field.data = canonical(field.data)


def slug_rule(_form, field) -> None:
    field.data = (field.data or "").strip().lower()
    problem = slug_problem(field.data)
    if problem:
        raise ValidationError(problem)


def single_line(_form, field) -> None:
    if field.data and any(ch in field.data for ch in "\r\n\x00"):
        raise ValidationError(_("use a single line"))


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    email = StringField(
        _l("E-mail"),
        validators=[InputRequired(), Length(max=254)],
        filters=[_strip],
        render_kw={"type": "email", "autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(), Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )


class SetupForm(FlaskForm):
    name = StringField(
        _l("Your name"), validators=[DataRequired(), Length(max=200), single_line], filters=[_strip]
    )
    email = StringField(
        _l("E-mail"),
        validators=[InputRequired(), Email(granular_message=True), Length(max=254)],
        filters=[_strip],
        render_kw={"type": "email", "autocomplete": "username"},
    )
    slug = StringField(
        _l("Link name"),
        validators=[InputRequired(), slug_rule],
        description=_l("Your booking page will be at /<link name>."),
        render_kw={"autocapitalize": "none", "spellcheck": "false"},
    )
    timezone = StringField(_l("Time zone"), validators=[InputRequired(), valid_timezone])
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(), Length(min=MIN_PASSWORD, max=MAX_PASSWORD)],
        description=_l("At least %(num)d characters.", num=MIN_PASSWORD),
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[InputRequired(), EqualTo("password", message=_l("the passwords differ"))],
        render_kw={"autocomplete": "new-password"},
    )


class ProfileForm(FlaskForm):
    name = StringField(
        _l("Name"), validators=[DataRequired(), Length(max=200), single_line], filters=[_strip]
    )
    slug = StringField(
        _l("Link name"),
        validators=[InputRequired(), slug_rule],
        description=_l("Your public page is /<link name>; changing it breaks links you shared."),
        render_kw={"autocapitalize": "none", "spellcheck": "false"},
    )
    timezone = StringField(
        _l("Time zone"),
        validators=[InputRequired(), valid_timezone],
        description=_l("Your weekly hours and date overrides are read in this zone."),
    )
    lead_time_minutes = IntegerField(
        _l("Minimum notice (minutes)"),
        validators=[InputRequired(), NumberRange(*HOST_LEAD_TIME)],
        description=_l("No one can book sooner than this; a meeting type may ask for more."),
    )
    allow_booking = BooleanField(_l("Allow visitors to book me"))


class PasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(), Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[InputRequired(), Length(min=MIN_PASSWORD, max=MAX_PASSWORD)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[InputRequired(), EqualTo("new_password", message=_l("the passwords differ"))],
        render_kw={"autocomplete": "new-password"},
    )


class MeetingTypeForm(FlaskForm):
    name = StringField(
        _l("Name"), validators=[DataRequired(), Length(max=MAX_NAME), single_line], filters=[_strip]
    )
    slug = StringField(
        _l("Link name"),
        validators=[InputRequired(), slug_rule],
        description=_l("The last part of the booking link: /<you>/<link name>."),
        render_kw={"autocapitalize": "none", "spellcheck": "false"},
    )
    description = TextAreaField(
        _l("Description"), validators=[Length(max=MAX_DESCRIPTION)], filters=[_strip]
    )
    duration_minutes = IntegerField(
        _l("Duration (minutes)"), default=30, validators=[InputRequired(), NumberRange(*DURATION)]
    )
    buffer_before_minutes = IntegerField(
        _l("Buffer before (minutes)"),
        default=0,
        validators=[InputRequired(), NumberRange(*BUFFER)],
        description=_l("Free time kept before the meeting."),
    )
    buffer_after_minutes = IntegerField(
        _l("Buffer after (minutes)"),
        default=0,
        validators=[InputRequired(), NumberRange(*BUFFER)],
        description=_l("Free time kept after the meeting."),
    )
    lead_time_minutes = IntegerField(
        _l("Minimum notice (minutes)"),
        default=0,
        validators=[InputRequired(), NumberRange(*LEAD_TIME)],
    )
    window_days = IntegerField(
        _l("Bookable days ahead"),
        default=60,
        validators=[InputRequired(), NumberRange(*WINDOW_DAYS)],
    )
    slot_interval_minutes = IntegerField(
        _l("Start times every (minutes)"),
        validators=[Optional(), NumberRange(*INTERVAL)],
        description=_l("Leave empty to use the duration."),
    )
    daily_limit = IntegerField(
        _l("At most per day"),
        validators=[Optional(), NumberRange(*DAILY_LIMIT)],
        description=_l("Leave empty for no limit."),
    )
    location_kind = SelectField(
        _l("Where"),
        choices=[SelectChoice(k, label) for k, label in LOCATION_KINDS.items()],
        default="custom",
        description=_l(
            "Google Meet and Teams links are made in your calendar for new bookings, "
            "one per booking."
        ),
    )
    location = StringField(
        _l("Location or meeting link"),
        validators=[Length(max=MAX_LOCATION), single_line],
        filters=[_strip],
        description=_l("The link, phone number or address, for the kinds that need one."),
    )
    is_active = BooleanField(_l("Offered on my booking page"), default=True)


RANGE_SPLIT = re.compile(r"\s*[–—-]\s*")


def parse_ranges(text: str) -> list[tuple[str, str]]:
    """``"09:00–12:00, 13:00-17:00"`` → sorted ``[("09:00", "12:00"), ("13:00", "17:00")]``.

    Raises ValueError with a message a person can act on.
    """
    parts = [p for p in re.split(r"[,;\n]+", text or "") if p.strip()]
    if not parts:
        raise ValueError(_("give at least one range, e.g. 09:00–12:00"))
    if len(parts) > 24:
        raise ValueError(_("at most 24 ranges"))
    spans: list[tuple[int, int]] = []
    for part in parts:
        ends = RANGE_SPLIT.split(part.strip())
        if len(ends) != 2:
            raise ValueError(_("“%(text)s” is not a range like 09:00–12:00", text=part.strip()))
        start, end = (parse_clock(end.strip(), loose=True) for end in ends)
        if start is None or end is None:
            raise ValueError(_("“%(text)s”: times are HH:MM, 00:00 to 24:00", text=part.strip()))
        if end <= start:
            raise ValueError(_("“%(text)s” ends before it starts", text=part.strip()))
        spans.append((start, end))
    spans.sort()
    for (_start, prev_end), (start, _end) in zip(spans, spans[1:], strict=False):
        if start < prev_end:
            raise ValueError(_("ranges overlap"))
    return [(format_clock(a), format_clock(b)) for a, b in spans]


class OverrideForm(FlaskForm):
    date = DateField(_l("Date"), validators=[InputRequired(message=_l("pick a date"))])
    mode = RadioField(
        _l("On that day"),
        choices=[SelectChoice("off", _l("Day off")), SelectChoice("hours", _l("Special hours"))],
        default="off",
        validators=[InputRequired()],
    )
    hours = StringField(
        _l("Hours"),
        description=_l("One or more ranges, e.g. 09:00–12:00, 14:00–18:00."),
        filters=[_strip],
        render_kw={"placeholder": "09:00–12:00, 14:00–18:00", "autocomplete": "off"},
    )

    def __init__(self, *args, today: datetime.date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.ranges: list[tuple[str, str]] = []

    def validate_date(self, field) -> None:
        if self.today and field.data and field.data < self.today:
            raise ValidationError(_("this date is in the past"))
        if self.today and field.data and (field.data - self.today).days > 3 * 366:
            raise ValidationError(_("pick a date within the next three years"))

    def validate_hours(self, field) -> None:
        if self.mode.data != "hours":
            return
        try:
            self.ranges = parse_ranges(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class TokenForm(FlaskForm):
    name = StringField(
        _l("Token name"),
        validators=[DataRequired(), Length(max=100), single_line],
        filters=[_strip],
        description=_l("What will use it, e.g. “website” or “zapier”."),
        render_kw={"autocomplete": "off"},
    )


class CancelForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (optional, sent to the invitee)"),
        validators=[Length(max=5000)],
        filters=[_strip],
    )


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` in the exact form browsers send in ``Origin``.

    Lower-case, no default port, no trailing slash — so the public pages can
    compare the header with a plain string equality. Raises ValueError.
    """
    raw = text.strip()
    if raw.endswith("/") and raw.count("/") == 3:
        raw = raw[:-1]
    if any(ch.isspace() for ch in raw) or any(ch in raw for ch in "*;,'\"\\"):
        raise ValueError(_("use scheme://host[:port], e.g. https://www.example.com"))
    parts = urlsplit(raw)
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise ValueError(_("only http:// and https:// sites can embed the booking page"))
    if parts.path or parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise ValueError(_("give the site's origin only, without a path"))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(_("no user name or password in the address"))
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(_("the port must be a number from 1 to 65535")) from exc
    host = (parts.hostname or "").lower()
    try:
        host = host.encode("idna").decode("ascii") if host and not host.isascii() else host
    except UnicodeError as exc:
        raise ValueError(_("this is not a valid host name")) from exc
    if not host or not HOST_RE.match(host) or len(host) > 253:
        raise ValueError(_("this is not a valid host name"))
    if port == 0:
        raise ValueError(_("the port must be a number from 1 to 65535"))
    scheme = parts.scheme.lower()
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class EmbedForm(FlaskForm):
    origins = TextAreaField(
        _l("Sites allowed to embed your booking pages"),
        description=_l("One per line, like https://www.example.com (scheme, host and port only)."),
        render_kw={"rows": 4, "spellcheck": "false", "autocapitalize": "none"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clean: list[str] = []

    def validate_origins(self, field) -> None:
        lines = [ln.strip() for ln in (field.data or "").splitlines() if ln.strip()]
        if len(lines) > MAX_ORIGINS:
            raise ValidationError(_("at most %(num)d sites", num=MAX_ORIGINS))
        clean: list[str] = []
        problems: list[str] = []
        for number, line in enumerate(lines, 1):
            try:
                origin = normalize_origin(line)
            except ValueError as exc:
                problems.append(
                    _(
                        "line %(num)d (“%(text)s”): %(problem)s",
                        num=number,
                        text=line[:80],
                        problem=exc,
                    )
                )
                continue
            if origin not in clean:
                clean.append(origin)
        if problems:
            raise ValidationError("; ".join(problems))
        self.clean = clean
