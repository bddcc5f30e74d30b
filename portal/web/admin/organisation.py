"""Admin → Organisation: sign-up, the per-provider switches, who may connect calendars,
and the defaults for new members, saved together (``portal.org.settings``)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, RadioField, SelectChoice, StringField
from wtforms.validators import InputRequired, Length, NumberRange

from portal.models import User, parse_id
from portal.org import settings
from portal.org.domains import parse_domains
from portal.org.member_defaults import MemberDefaults
from portal.web.admin import EXCHANGE_PATH, bp, has_exchange_page
from portal.web.forms import BUFFER, LEAD_TIME, parse_ranges, valid_timezone, zone_suggestions
from portal.web.render import form_status, is_htmx, render


class OrganisationForm(FlaskForm):
    self_signup = BooleanField(_l("Let people sign up by themselves"))
    signup_domains = StringField(
        _l("Allowed e-mail domains for sign-up"),
        validators=[Length(max=2000)],
        description=_l("Separated by commas, e.g. example.com, example.org."),
    )
    provider_google = BooleanField(settings.PROVIDER_TITLES["google"])
    provider_microsoft = BooleanField(settings.PROVIDER_TITLES["microsoft"])
    provider_exchange = BooleanField(settings.PROVIDER_TITLES["exchange"])
    provider_caldav = BooleanField(settings.PROVIDER_TITLES["caldav"])
    provider_ics = BooleanField(settings.PROVIDER_TITLES["ics"])
    connect_policy = RadioField(
        _l("Who may connect calendars"),
        choices=[
            SelectChoice("everyone", _l("Every member")),
            SelectChoice("members", _l("Only the members ticked below")),
            SelectChoice("domains", _l("Members whose e-mail address is in these domains")),
        ],
        default="everyone",
        validators=[InputRequired()],
    )
    connect_domains = StringField(
        _l("Domains that may connect calendars"),
        validators=[Length(max=2000)],
        description=_l("Separated by commas. Admins may always connect."),
    )
    default_timezone = StringField(
        _l("Time zone"), validators=[InputRequired(), valid_timezone], default="UTC"
    )
    lead_time_minutes = IntegerField(
        _l("Minimum notice (minutes)"),
        validators=[InputRequired(), NumberRange(*LEAD_TIME)],
        default=0,
    )
    buffer_before_minutes = IntegerField(
        _l("Buffer before meetings (minutes)"),
        validators=[InputRequired(), NumberRange(*BUFFER)],
        default=0,
    )
    buffer_after_minutes = IntegerField(
        _l("Buffer after meetings (minutes)"),
        validators=[InputRequired(), NumberRange(*BUFFER)],
        default=0,
    )
    hours_0 = StringField(_l("Monday"), validators=[Length(max=500)])
    hours_1 = StringField(_l("Tuesday"), validators=[Length(max=500)])
    hours_2 = StringField(_l("Wednesday"), validators=[Length(max=500)])
    hours_3 = StringField(_l("Thursday"), validators=[Length(max=500)])
    hours_4 = StringField(_l("Friday"), validators=[Length(max=500)])
    hours_5 = StringField(_l("Saturday"), validators=[Length(max=500)])
    hours_6 = StringField(_l("Sunday"), validators=[Length(max=500)])


def _org_form(org: settings.Organisation) -> OrganisationForm:
    data = {
        "self_signup": org.self_signup,
        "signup_domains": ", ".join(org.signup_domains),
        "connect_policy": org.connect.policy,
        "connect_domains": ", ".join(org.connect.domains),
        "default_timezone": org.defaults.timezone,
        "lead_time_minutes": org.defaults.lead_time_minutes,
        "buffer_before_minutes": org.defaults.buffer_before_minutes,
        "buffer_after_minutes": org.defaults.buffer_after_minutes,
    }
    for name in settings.PROVIDERS:
        data[f"provider_{name}"] = org.providers[name]
    for day in range(7):
        data[f"hours_{day}"] = ", ".join(f"{a}–{b}" for a, b in org.defaults.weekly.get(day, ()))
    return OrganisationForm(formdata=None, data=data)


def _org_page(form: OrganisationForm, members: set[int], status: int = 200, saved: bool = False):
    return render(
        "admin/organisation.html",
        "organisation",
        status=status,
        form=form,
        providers=[(name, form[f"provider_{name}"]) for name in settings.PROVIDERS],
        hours=[form[f"hours_{d}"] for d in range(7)],
        members=members,
        people=list(User.select().where(User.is_active == True).order_by(User.name)),  # noqa: E712
        timezones=zone_suggestions(),
        exchange=EXCHANGE_PATH if has_exchange_page() else "",
        saved=saved,
    )


def _stored_org_page(saved: bool = False):
    org = settings.organisation()
    return _org_page(_org_form(org), set(org.connect.members), saved=saved)


def _domains(field) -> list[str]:
    try:
        return parse_domains(field.data or "")
    except ValueError as exc:
        field.errors.append(str(exc))
        return []


def _weekly(form: OrganisationForm) -> dict[int, tuple[tuple[str, str], ...]]:
    weekly: dict[int, tuple[tuple[str, str], ...]] = {}
    for day in range(7):
        field = form[f"hours_{day}"]
        text = (field.data or "").strip()
        try:
            weekly[day] = tuple(parse_ranges(text)) if text else ()
        except ValueError as exc:
            field.errors.append(str(exc))
    return weekly


def _submitted_org(form: OrganisationForm, members: set[int]) -> settings.Organisation:
    """The settings as sent; text that cannot be read is refused next to its field."""
    return settings.Organisation(
        self_signup=bool(form.self_signup.data),
        signup_domains=_domains(form.signup_domains),
        providers={name: bool(form[f"provider_{name}"].data) for name in settings.PROVIDERS},
        connect=settings.ConnectRule(
            form.connect_policy.data, frozenset(members), tuple(_domains(form.connect_domains))
        ),
        defaults=MemberDefaults(
            timezone=form.default_timezone.data,
            weekly=_weekly(form),
            lead_time_minutes=form.lead_time_minutes.data,
            buffer_before_minutes=form.buffer_before_minutes.data,
            buffer_after_minutes=form.buffer_after_minutes.data,
        ),
    )


@bp.route("/organisation", methods=["GET", "POST"])
def organisation():
    """Sign-up, the per-provider switches, who may connect calendars, defaults for new members."""
    if request.method == "GET":
        return _stored_org_page()
    form = OrganisationForm()
    members = {n for v in request.form.getlist("connect_members") if (n := parse_id(v))}
    valid = form.validate_on_submit()
    org = _submitted_org(form, members)
    for name, message in settings.organisation_problems(org):
        if not form[name].errors:
            form[name].errors.append(message)
    if not valid or any(f.errors for f in form):
        return _org_page(form, members, status=form_status(422))
    settings.save_organisation(org)
    if not is_htmx():
        flash(_("Organisation settings saved."), "info")
        return redirect(url_for("admin.organisation"))
    return _stored_org_page(saved=True)
