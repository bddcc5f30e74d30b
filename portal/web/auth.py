"""Sign in, sign out, and the first-run page that creates the admin.

Sign-in answers the same for an unknown e-mail and a wrong password, and
refuses repeated failures early with 429 (portal.org.throttle) instead of slowing
down the request.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_user
from peewee import IntegrityError

from portal.extensions import end_session, login_manager
from portal.models import AppSetting, User, db
from portal.org import throttle
from portal.org.users import create_user
from portal.web.forms import LoginForm, SetupForm, zone_suggestions

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str | None:
    """A same-site relative path to go to after sign-in, or None.

    Refuses anything a browser could read as another origin: absolute URLs,
    scheme-relative ``//host``, backslash tricks (``/\\host``) and control characters.
    """
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _has_users() -> bool:
    return User.select().exists()


@login_manager.unauthorized_handler
def _unauthorized():
    """Send people to the sign-in page, keeping where they were going as a relative path.

    An htmx request gets ``HX-Redirect`` instead, so the sign-in page replaces the
    whole window rather than landing inside a fragment.
    """
    path = request.full_path.rstrip("?") if request.method == "GET" else request.path
    target = url_for("auth.login", next=safe_next(path))
    if request.headers.get("HX-Request"):
        return "", 401, {"HX-Redirect": target}
    return redirect(target)


def _sign_in(user: User) -> None:
    """A fresh session for the signed-in host, so a planted session id is worthless."""
    end_session()
    login_user(user)


def _too_many_attempts(form: LoginForm, target: str | None, wait: int):
    """The sign-in form again, refused before any password is checked."""
    minutes = max(1, -(-wait // 60))
    error = ngettext(
        "Too many failed sign-in attempts. Please try again in %(num)d minute.",
        "Too many failed sign-in attempts. Please try again in %(num)d minutes.",
        minutes,
    )
    body = render_template("auth/login.html", form=form, error=error, next=target)
    return body, 429, {"Retry-After": str(wait)}


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; on success go to ``next`` when it is a path on this site."""
    if request.method == "GET" and not _has_users():
        return redirect(url_for("auth.setup"))
    target = safe_next(request.values.get("next"))
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(target or url_for("settings.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = throttle.authenticate(form.email.data, form.password.data, request.remote_addr)
        except throttle.TooManyAttempts as exc:
            return _too_many_attempts(form, target, exc.wait)
        if user is not None:
            _sign_in(user)
            return redirect(target or url_for("settings.index"))
        error = _("That e-mail and password do not match an account.")
    return render_template("auth/login.html", form=form, error=error, next=target)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST only, CSRF-checked, so a link on another site cannot sign you out)."""
    end_session()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """First run: create the admin account. Once anyone exists this page does not."""
    if _has_users():
        abort(404)
    form = SetupForm()
    if request.method == "GET" and not form.timezone.data:
        form.timezone.data = "UTC"
    if form.validate_on_submit():
        try:
            with db.atomic():
                # A unique marker row makes a second, racing first run fail here
                # instead of creating a second admin.
                AppSetting.create(key="setup.admin", value=json.dumps(form.email.data.lower()))
                user = create_user(
                    form.email.data,
                    form.password.data,
                    form.slug.data,
                    admin=True,
                    name=form.name.data,
                    timezone=form.timezone.data,
                )
        except IntegrityError:
            abort(404)
        _sign_in(user)
        flash(_("Welcome to Kairos. Start with your weekly hours."), "info")
        return redirect(url_for("settings.hours"))
    return render_template("auth/setup.html", form=form, timezones=zone_suggestions())
