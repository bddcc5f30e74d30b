"""Forgotten password: ask for a link by e-mail, then choose a new password with it.

``/password/forgot`` answers the same whether or not the address has an
account; ``/password/reset/<token>`` shows the form for a good link and
changes nothing on GET. The token travels in the path, so these pages send
no referrer and are never cached.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import Email, InputRequired, Length

from portal.extensions import limiter
from portal.org.passwords import (
    MAX_PASSWORD,
    RESET_VALID_FOR,
    find_reset,
    password_problem,
    redeem,
    request_reset,
)
from portal.runtime.outbox import relay_quietly

bp = Blueprint("password", __name__, url_prefix="/password")


class ForgotForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        validators=[
            InputRequired(_l("enter the e-mail address of your account")),
            Length(max=254),
            Email(_l("enter an e-mail address like name@example.com")),
        ],
    )


class ResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[Length(max=MAX_PASSWORD)])
    confirm = PasswordField(_l("New password again"), validators=[Length(max=MAX_PASSWORD)])


def _private(body: str, status: int = 200) -> tuple[str, int, dict[str, str]]:
    """No cache, no referrer: the reset token is in the URL."""
    return body, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


# Per address, on top of the per-account cap in portal.org.passwords: no mail bombing,
# no probing many accounts quickly.
FORGOT_LIMIT = "5/minute;30/hour"


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(FORGOT_LIMIT, methods=["POST"])
def forgot():
    """Record a reset (and its e-mail) if the account exists; the same page either way."""
    form = ForgotForm()
    if form.validate_on_submit():
        if request_reset(form.email.data.strip().lower()) is not None:
            relay_quietly()
        minutes = int(RESET_VALID_FOR.total_seconds() // 60)
        return _private(render_template("password/sent.html", minutes=minutes))
    return _private(render_template("password/forgot.html", form=form))


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Choose a new password with a good link; a used or expired link says so."""
    if find_reset(token) is None:
        return _private(render_template("password/invalid.html"), 404)
    form = ResetForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        problem = password_problem(form.password.data or "", form.confirm.data or "")
        if problem:
            errors[problem[0]] = problem[1]
        elif redeem(token, form.password.data) is not None:
            flash(_("Your password was changed. Sign in with the new one."), "success")
            return redirect("/login")
        else:  # redeemed by a concurrent request a moment ago
            return _private(render_template("password/invalid.html"), 404)
    else:
        errors = {name: field.errors[0] for name, field in form._fields.items() if field.errors}
    return _private(render_template("password/reset.html", form=form, errors=errors))
