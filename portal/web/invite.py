"""Joining the team: accept an invitation (``/invite/<token>``) or sign up (``/signup``).

Both create the account with the organisation's defaults for new members
(``portal.org.member_defaults``) and sign the new member in. ``/signup`` exists only while
the admin has self-signup on; a used, revoked or expired invitation answers
404 with a page that says so. The token travels in the path, so these pages
send no referrer and are never cached.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import Length

from portal.extensions import limiter
from portal.org import invites
from portal.org.errors import AdminError
from portal.org.passwords import MAX_PASSWORD, MIN_PASSWORD
from portal.org.settings import self_signup_enabled, signup_domains
from portal.org.signup import sign_up
from portal.org.users import suggest_slug
from portal.web.auth import _sign_in

bp = Blueprint("invite", __name__)

SIGNUP_LIMIT = "10/hour"


class AccountForm(FlaskForm):
    name = StringField(
        _l("Your name"), validators=[Length(max=200)], render_kw={"autocomplete": "name"}
    )
    slug = StringField(
        _l("Link name"),
        validators=[Length(max=40)],
        description=_l("Your booking page will be at /<link name>."),
        render_kw={"autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[Length(max=MAX_PASSWORD)],
        description=_l("At least %(num)d characters.", num=MIN_PASSWORD),
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "new-password"},
    )


class SignupForm(AccountForm):
    email = EmailField(
        _l("Work e-mail"), validators=[Length(max=254)], render_kw={"autocomplete": "email"}
    )


def _private(body: str, status: int = 200) -> tuple[str, int, dict[str, str]]:
    return body, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept(token: str):
    """Choose a name, link name and password; the link then stops working."""
    invite = invites.find_invite(token)
    if invite is None:
        return _private(render_template("admin/invite_invalid.html"), 404)
    form = AccountForm()
    if not form.is_submitted():
        form.slug.data = suggest_slug(invite.email)
    error = ""
    if form.validate_on_submit():
        try:
            user = invites.accept_invite(
                token, form.name.data, form.slug.data, form.password.data, form.confirm.data
            )
        except AdminError as exc:
            if exc.field is None:
                error = exc.message
            else:
                form[exc.field].errors.append(exc.message)
        else:
            _sign_in(user)
            flash(_("Welcome! Check your weekly hours, then connect your calendar."), "info")
            return redirect(url_for("settings.hours"))
    status = 422 if form.is_submitted() else 200
    page = render_template("admin/invite.html", form=form, email=invite.email, error=error)
    return _private(page, status)


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(SIGNUP_LIMIT, methods=["POST"])
def signup():
    """Self-signup: only while the admin allows it, only for the allowed e-mail domains."""
    if not self_signup_enabled() or not signup_domains():
        abort(404)
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = sign_up(
                form.email.data,
                form.name.data,
                form.slug.data,
                form.password.data,
                form.confirm.data,
            )
        except AdminError as exc:
            form[exc.field or "email"].errors.append(exc.message)
        else:
            _sign_in(user)
            flash(_("Welcome! Check your weekly hours, then connect your calendar."), "info")
            return redirect(url_for("settings.hours"))
    status = 422 if form.is_submitted() else 200
    page = render_template("admin/signup.html", form=form, domains=signup_domains())
    return _private(page, status)
