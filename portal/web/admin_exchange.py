"""Exchange corporate connection pages.

``/settings/admin/exchange`` — the admin sets up the organisation mailbox
(address, password, optional user name and EWS URL, delegate access or
impersonation) and maps members to their Exchange addresses. Admin only:
everyone else gets 404. ``/settings/exchange`` — a member picks the role of
their own Exchange calendar (main booking calendar, busy-time source,
additional booking calendar, or not used).

Both parse forms and call ``portal.calendars.exchange_org``; every change is a
CSRF-checked POST and the pages keep the default frame-denying headers.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, RadioField, SelectChoice, StringField
from wtforms.validators import Email, InputRequired, Length, Optional

from portal.calendars import exchange_org
from portal.calendars.providers import InvalidSetup
from portal.models import User
from portal.web.guards import hosts_only
from portal.web.render import form_status, is_htmx, render

# exchange_org's words for roles and access, in the reader's language (portal.calendars
# holds no translations); the keys are exchange_org's.
ROLES = {
    "main": _l("Main booking calendar"),
    "busy": _l("Busy-time source"),
    "additional": _l("Additional booking calendar"),
}
ROLE_HELP = {
    "main": _l("new bookings are written here, and its busy times block slots"),
    "busy": _l("its busy times block slots; bookings go to another calendar"),
    "additional": _l("every booking is copied here as well; it does not block slots"),
}
ACCESS_TYPES = {"delegate": _l("Delegate access"), "impersonation": _l("Impersonation")}

bp = Blueprint("admin_exchange", __name__)


hosts_only(bp)  # members choose their role here; the admin pages add admin_only


@bp.app_context_processor
def _corporate_link():
    def exchange_corporate() -> bool:
        """Whether members can use the organisation's Exchange mailbox (Calendars page link)."""
        return bool(current_user.is_authenticated) and exchange_org.organisation() is not None

    return {"exchange_corporate": exchange_corporate}


def admin_only(view):
    """Admin pages answer 404 to anyone else, as if they did not exist."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


class OrganisationForm(FlaskForm):
    email = EmailField(
        _l("Mailbox address"),
        validators=[
            InputRequired(_l("enter the organisation mailbox's e-mail address")),
            Length(max=254),
            Email(_l("enter an e-mail address like kairos@example.com")),
        ],
        description=_l("A dedicated mailbox, e.g. kairos@example.com."),
    )
    password = PasswordField(
        _l("Password"),
        validators=[Optional(), Length(max=1000)],
        description=_l("Leave blank to keep the stored password."),
        render_kw={"autocomplete": "new-password"},
    )
    username = StringField(
        _l("User name"),
        validators=[Optional(), Length(max=256)],
        description=_l("Optional: blank (the address is used), the address, or DOMAIN\\user."),
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    ews_url = StringField(
        _l("EWS URL"),
        validators=[Optional(), Length(max=2000)],
        description=_l(
            "Optional: e.g. https://mail.example.com/EWS/Exchange.asmx. "
            "Blank finds it with Autodiscover."
        ),
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "url"},
    )
    access = RadioField(
        _l("How the mailbox reaches members' calendars"),
        choices=[SelectChoice(k, label) for k, label in ACCESS_TYPES.items()],
        default="delegate",
        description=_l(
            "Delegate access: each member grants it (Editor) on their calendar. "
            "Impersonation: an Exchange admin grants it the ApplicationImpersonation role."
        ),
    )


class MailboxForm(FlaskForm):
    mailbox = StringField(_l("Exchange address"), validators=[Optional(), Length(max=254)])


class RoleForm(FlaskForm):
    role = RadioField(
        _l("How Kairos uses your Exchange calendar"),
        choices=[SelectChoice(key, label) for key, label in ROLES.items()]
        + [SelectChoice("none", _l("Not used"))],
        validators=[InputRequired(_l("choose how Kairos should use this calendar"))],
    )


def _form_error(form: FlaskForm, exc: InvalidSetup, fallback: str) -> None:
    target = getattr(form, exc.field, None) or getattr(form, fallback)
    target.errors = [*target.errors, exc.message]


# ---------------------------------------------------------------- the admin's page


def _members() -> list[dict]:
    """Every active member with their Exchange address and how they use it."""
    rows = []
    for user in User.select().where(User.is_active == True).order_by(User.email):  # noqa: E712
        member = exchange_org.membership(user)
        rows.append(
            {
                "user": user,
                "mailbox": member.mailbox,
                "mapped": member.mailbox != user.email.lower(),
                "role": ROLES.get(member.role, _("Not used")),
                "status": member.connection.status if member.connection else "",
                "error": member.connection.last_error if member.connection else "",
            }
        )
    return rows


def _admin_page(form: OrganisationForm | None = None, status: int = 200):
    org = exchange_org.organisation()
    if form is None:
        form = OrganisationForm(formdata=None)
        if org is not None:
            settings = org.settings_dict()
            form.email.data = org.email
            form.username.data = settings.get("username", "")
            form.ews_url.data = (
                settings.get("ews_url", "") if not settings.get("autodiscovered") else ""
            )
            form.access.data = settings.get("access", "delegate")
    return render(
        "admin/exchange.html",
        "exchange",
        status=status,
        form=form,
        org=org,
        settings=org.settings_dict() if org else {},
        members=_members() if org else [],
    )


@bp.route("/settings/admin/exchange", methods=["GET", "POST"])
@admin_only
def admin():
    """Show the organisation mailbox; a POST checks it with Exchange and stores it."""
    if request.method == "GET":
        return _admin_page()
    form = OrganisationForm()
    if not form.validate_on_submit():
        return _admin_page(form, form_status(422))
    try:
        org = exchange_org.configure(
            {
                "email": form.email.data,
                "password": form.password.data,
                "username": form.username.data,
                "ews_url": form.ews_url.data,
                "access": form.access.data,
            }
        )
    except InvalidSetup as exc:
        _form_error(form, exc, "ews_url")
        return _admin_page(form, form_status(422))
    flash(_("Connected to Exchange as %(email)s.", email=org.email), "info")
    if is_htmx():
        return _admin_page()
    return redirect(url_for("admin_exchange.admin"))


@bp.route("/settings/admin/exchange/remove", methods=["POST"])
@admin_only
def admin_remove():
    """Forget the organisation mailbox; members' calendars through it are disconnected."""
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    count = exchange_org.remove()
    flash(
        ngettext(
            "Removed the organisation mailbox (%(num)d member calendar disconnected).",
            "Removed the organisation mailbox (%(num)d member calendars disconnected).",
            count,
        ),
        "info",
    )
    return redirect(url_for("admin_exchange.admin"))


@bp.route("/settings/admin/exchange/members/<int:user_id>", methods=["POST"])
@admin_only
def admin_member(user_id: int):
    """Map a member to their Exchange address when it differs from their Kairos e-mail."""
    user = User.get_or_none(User.id == user_id, User.is_active == True)  # noqa: E712
    if user is None:
        abort(404)
    form = MailboxForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        exchange_org.set_member_mailbox(user, form.mailbox.data or "")
    except InvalidSetup as exc:
        flash(f"{user.email}: {exc.message}", "error")
    else:
        flash(
            _(
                "%(email)s uses %(mailbox)s on Exchange.",
                email=user.email,
                mailbox=exchange_org.member_mailbox(user),
            ),
            "info",
        )
    return redirect(url_for("admin_exchange.admin"))


# ---------------------------------------------------------------- the member's page


def _member_page(form: RoleForm | None = None, status: int = 200):
    org = exchange_org.organisation()
    user = current_user._get_current_object()
    member = exchange_org.membership(user)
    if form is None:
        form = RoleForm(formdata=None)
        form.role.data = member.role or "none"
    return render(
        "settings/exchange.html",
        "exchange",
        status=status,
        form=form,
        org=org,
        member=member,
        role_help=ROLE_HELP,
    )


@bp.route("/settings/exchange", methods=["GET", "POST"])
def member():
    """A member's Exchange calendar through the organisation mailbox, and its role."""
    if request.method == "GET":
        return _member_page()
    form = RoleForm()
    if not form.validate_on_submit():
        return _member_page(form, form_status(422))
    try:
        exchange_org.set_role(current_user._get_current_object(), form.role.data)
    except InvalidSetup as exc:
        _form_error(form, exc, "role")
        return _member_page(form, form_status(422))
    flash(_("Saved how Kairos uses your Exchange calendar."), "info")
    if is_htmx():
        return _member_page()
    return redirect(url_for("admin_exchange.member"))
