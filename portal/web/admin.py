"""The admin's pages under ``/settings/admin``: people, organisation controls, job health.

Every route answers 404 to anyone but a signed-in active admin (a signed-out
visitor is sent to sign in first, as everywhere under ``/settings``), every
change is a CSRF-checked POST, and the pages keep the default frame-denying
headers. The rules live in ``portal.org`` (``settings``, ``invites``, ``people``,
``health``); these views parse and render.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    RadioField,
    SelectChoice,
    StringField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange

from portal.models import Invite, User, parse_id
from portal.org import health, invites, people, settings
from portal.org.domains import parse_domains
from portal.org.errors import AdminError
from portal.org.member_defaults import MemberDefaults
from portal.runtime.outbox import relay_quietly
from portal.web.forms import BUFFER, LEAD_TIME, parse_ranges, timezone_names, valid_timezone
from portal.web.guards import hosts_only
from portal.web.render import form_status, is_htmx, render

bp = Blueprint("admin", __name__, url_prefix="/settings/admin")

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EXCHANGE_PATH = "/settings/admin/exchange"


hosts_only(bp, admins=True)


@bp.app_context_processor
def _connect_rules():
    def connectable(pairs):
        """``(name, title)`` pairs of providers the signed-in member may connect."""
        if not current_user.is_authenticated:
            return []
        user = current_user._get_current_object()
        return [pair for pair in pairs if settings.provider_allowed(user, pair[0])]

    def may_connect_provider(provider: str) -> bool:
        return current_user.is_authenticated and settings.provider_allowed(
            current_user._get_current_object(), provider
        )

    return {"connectable": connectable, "may_connect_provider": may_connect_provider}


def _has_exchange_page() -> bool:
    """The Exchange corporate connection page, once that feature is installed."""
    return any(r.rule.rstrip("/") == EXCHANGE_PATH for r in current_app.url_map.iter_rules())


@bp.app_context_processor
def _admin_nav():
    def admin_tabs() -> list[tuple[str, str, bool]]:
        tabs = [
            (url_for("admin.index"), "People", request.endpoint == "admin.index"),
            (
                url_for("admin.organisation"),
                "Organisation",
                request.endpoint == "admin.organisation",
            ),
            (url_for("admin.jobs"), "Job health", request.endpoint == "admin.jobs"),
        ]
        if _has_exchange_page():
            tabs.append((EXCHANGE_PATH, "Exchange", request.path.rstrip("/") == EXCHANGE_PATH))
        return tabs

    return {"admin_tabs": admin_tabs}


# ---------------------------------------------------------------- people


class InviteForm(FlaskForm):
    email = EmailField(
        "E-mail address",
        validators=[
            InputRequired("enter the co-worker's e-mail address"),
            Length(max=254),
            Email("enter an e-mail address like name@example.com"),
        ],
    )
    is_admin = BooleanField("Make them an admin too")


def _people_page(
    form: InviteForm | None = None, status: int = 200, link: str = "", sent_to: str = ""
):
    return render(
        "admin/people.html",
        "people",
        status=status,
        form=form or InviteForm(formdata=None),
        people=people.people(),
        invites=invites.open_invites(),
        link=link,
        sent_to=sent_to,
        admins=people.active_admin_count(),
        invite_days=invites.INVITE_VALID_FOR.days,
    )


@bp.get("/")
def index():
    """Everyone with their calendar health, open invitations, and the invite form."""
    return _people_page()


@bp.post("/invites")
def invite():
    """Invite a co-worker: the e-mail goes out through the outbox; the link is shown once too."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            row = invites.create_invite(
                form.email.data, current_user._get_current_object(), form.is_admin.data
            )
        except AdminError as exc:
            form.email.errors.append(exc.message)
        else:
            relay_quietly()
            from portal.booking.service import external_url

            return _people_page(link=external_url(invites.invite_path(row)), sent_to=row.email)
    return _people_page(form, status=form_status(422))


@bp.post("/invites/<int:invite_id>/revoke")
def revoke(invite_id: int):
    row = Invite.get_or_none(Invite.id == invite_id)
    if row is None:
        abort(404)
    if invites.revoke_invite(row):
        flash(f"The invitation for {row.email} no longer works.", "info")
    return _after_action()


def _member(user_id: int) -> User:
    user = User.get_or_none(User.id == user_id)
    if user is None:
        abort(404)
    return user


def _after_action(error: str = ""):
    """Post/redirect/get (htmx's boosted forms follow the redirect)."""
    if error:
        flash(error, "error")
    return redirect(url_for("admin.index"))


@bp.post("/people/<int:user_id>/admin")
def set_admin(user_id: int):
    """Make a member an admin (``value=1``) or take it back (``value=0``)."""
    user = _member(user_id)
    value = request.form.get("value") == "1"
    try:
        people.set_admin(user, value)
    except AdminError as exc:
        return _after_action(exc.message)
    flash(f"{user.display_name} {'is now an admin' if value else 'is no longer an admin'}.", "info")
    if not value and user.id == current_user.id:
        return redirect(url_for("settings.index"))  # these pages are not theirs any more
    return _after_action()


@bp.post("/people/<int:user_id>/deactivate")
def deactivate(user_id: int):
    user = _member(user_id)
    try:
        people.deactivate(current_user._get_current_object(), user)
    except AdminError as exc:
        return _after_action(exc.message)
    flash(
        f"{user.display_name} is deactivated: signed out, booking pages closed, "
        "calendar access removed. Their bookings are kept.",
        "info",
    )
    return _after_action()


@bp.post("/people/<int:user_id>/reactivate")
def reactivate(user_id: int):
    user = _member(user_id)
    people.reactivate(user)
    flash(f"{user.display_name} can sign in again (and reconnect their calendars).", "info")
    return _after_action()


# ---------------------------------------------------------------- organisation


class OrganisationForm(FlaskForm):
    self_signup = BooleanField("Let people sign up by themselves")
    signup_domains = StringField(
        "Allowed e-mail domains for sign-up",
        validators=[Length(max=2000)],
        description="Separated by commas, e.g. example.com, example.org.",
    )
    provider_google = BooleanField(settings.PROVIDER_TITLES["google"])
    provider_microsoft = BooleanField(settings.PROVIDER_TITLES["microsoft"])
    provider_exchange = BooleanField(settings.PROVIDER_TITLES["exchange"])
    provider_caldav = BooleanField(settings.PROVIDER_TITLES["caldav"])
    provider_ics = BooleanField(settings.PROVIDER_TITLES["ics"])
    connect_policy = RadioField(
        "Who may connect calendars",
        choices=[
            SelectChoice("everyone", "Every member"),
            SelectChoice("members", "Only the members ticked below"),
            SelectChoice("domains", "Members whose e-mail address is in these domains"),
        ],
        default="everyone",
        validators=[InputRequired()],
    )
    connect_domains = StringField(
        "Domains that may connect calendars",
        validators=[Length(max=2000)],
        description="Separated by commas. Admins may always connect.",
    )
    default_timezone = StringField(
        "Time zone", validators=[InputRequired(), valid_timezone], default="UTC"
    )
    lead_time_minutes = IntegerField(
        "Minimum notice (minutes)", validators=[InputRequired(), NumberRange(*LEAD_TIME)], default=0
    )
    buffer_before_minutes = IntegerField(
        "Buffer before meetings (minutes)",
        validators=[InputRequired(), NumberRange(*BUFFER)],
        default=0,
    )
    buffer_after_minutes = IntegerField(
        "Buffer after meetings (minutes)",
        validators=[InputRequired(), NumberRange(*BUFFER)],
        default=0,
    )
    hours_0 = StringField("Monday", validators=[Length(max=500)])
    hours_1 = StringField("Tuesday", validators=[Length(max=500)])
    hours_2 = StringField("Wednesday", validators=[Length(max=500)])
    hours_3 = StringField("Thursday", validators=[Length(max=500)])
    hours_4 = StringField("Friday", validators=[Length(max=500)])
    hours_5 = StringField("Saturday", validators=[Length(max=500)])
    hours_6 = StringField("Sunday", validators=[Length(max=500)])


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
        timezones=timezone_names(),
        exchange=EXCHANGE_PATH if _has_exchange_page() else "",
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
        flash("Organisation settings saved.", "info")
        return redirect(url_for("admin.organisation"))
    return _stored_org_page(saved=True)


# ---------------------------------------------------------------- job health


@bp.get("/jobs")
def jobs():
    """Queues, the outbox backlog, connection errors, and failed jobs (retry / discard)."""
    redis_error = ""
    stats, failed = None, []
    try:
        stats = health.queue_stats()
        failed = health.failed_jobs()
    except RedisError as exc:
        redis_error = str(exc) or type(exc).__name__
    counts, backlog = health.outbox_backlog()
    return render(
        "admin/jobs.html",
        "jobs",
        stats=stats,
        failed=failed,
        redis_error=redis_error,
        counts=counts,
        backlog=backlog,
        connections=health.connections_health(),
    )


def _job_action(act: Callable[[str], bool], job_id: str, done: str):
    """Retry or discard a failed job, then back to the list saying what happened."""
    try:
        ok = act(job_id)
    except RedisError as exc:
        ok, message = False, f"Redis is unavailable: {exc}"
    else:
        message = done if ok else "That job is no longer failed."
    flash(message, "info" if ok else "error")
    return redirect(url_for("admin.jobs"))


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str):
    return _job_action(health.retry_failed, job_id, f"Job {job_id} is queued again.")


@bp.post("/jobs/<job_id>/discard")
def discard_job(job_id: str):
    return _job_action(health.discard_failed, job_id, f"Job {job_id} was discarded.")
