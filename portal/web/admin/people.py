"""Admin → People: everyone with their calendar health, invitations, admins, deactivation."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField
from wtforms.validators import Email, InputRequired, Length

from portal.models import Invite, User
from portal.org import invites, people
from portal.org.errors import AdminError
from portal.runtime.outbox import relay_quietly
from portal.web.admin import bp
from portal.web.render import form_status, render


class InviteForm(FlaskForm):
    email = EmailField(
        _l("E-mail address"),
        validators=[
            InputRequired(_l("enter the co-worker's e-mail address")),
            Length(max=254),
            Email(_l("enter an e-mail address like name@example.com")),
        ],
    )
    is_admin = BooleanField(_l("Make them an admin too"))


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
            from portal.runtime.appconfig import external_url

            return _people_page(link=external_url(invites.invite_path(row)), sent_to=row.email)
    return _people_page(form, status=form_status(422))


@bp.post("/invites/<int:invite_id>/revoke")
def revoke(invite_id: int):
    row = Invite.get_or_none(Invite.id == invite_id)
    if row is None:
        abort(404)
    if invites.revoke_invite(row):
        flash(_("The invitation for %(email)s no longer works.", email=row.email), "info")
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
    name = user.display_name
    flash(
        _("%(name)s is now an admin.", name=name)
        if value
        else _("%(name)s is no longer an admin.", name=name),
        "info",
    )
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
        _(
            "%(name)s is deactivated: signed out, booking pages closed, calendar access "
            "removed. Their bookings are kept.",
            name=user.display_name,
        ),
        "info",
    )
    return _after_action()


@bp.post("/people/<int:user_id>/reactivate")
def reactivate(user_id: int):
    user = _member(user_id)
    people.reactivate(user)
    flash(
        _("%(name)s can sign in again (and reconnect their calendars).", name=user.display_name),
        "info",
    )
    return _after_action()
