"""Sign in, sign out, and the first-run page that creates the admin.

Sign-in answers the same for an unknown e-mail and a wrong password, and
slows down repeated failures (a growing, capped delay rather than a lockout,
so an attacker cannot lock the real host out).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from peewee import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..cli import create_user
from ..extensions import login_manager
from ..forms import LoginForm, SetupForm, timezone_names
from ..models import AppSetting, LoginThrottle, User, db, to_db, utcnow

bp = Blueprint("auth", __name__)

# Failures older than this no longer count towards the delay.
THROTTLE_WINDOW = timedelta(minutes=15)
# Free attempts before the delay starts; then 0.25 s, 0.5 s, 1 s, … up to the cap.
FREE_ATTEMPTS = 3
DELAY_CAP_SECONDS = 4.0
# Checked when the e-mail is unknown, so both answers cost one password hash.
_DUMMY_HASH = generate_password_hash("kairos-timing-equaliser")
# Indirection so tests can observe the delay without waiting for it.
sleep = time.sleep


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


def _throttle_keys(email: str) -> list[str]:
    return [f"email:{email}"[:255], f"ip:{request.remote_addr or 'unknown'}"[:255]]


def login_delay(keys: list[str]) -> float:
    """Seconds to wait before answering, from the recent failures of any key."""
    cutoff = to_db(utcnow() - THROTTLE_WINDOW)
    failures = max(
        (
            row.failures
            for row in LoginThrottle.select().where(
                LoginThrottle.key.in_(keys), LoginThrottle.last_failure_at >= cutoff
            )
        ),
        default=0,
    )
    if failures < FREE_ATTEMPTS:
        return 0.0
    cap = float(current_app.config.get("LOGIN_DELAY_CAP", DELAY_CAP_SECONDS))
    return min(cap, 0.25 * 2 ** (failures - FREE_ATTEMPTS))


def record_failure(keys: list[str]) -> None:
    now = utcnow()
    cutoff = to_db(now - THROTTLE_WINDOW)
    with db.atomic():
        for key in keys:
            row = LoginThrottle.get_or_none(LoginThrottle.key == key)
            if row is None:
                try:
                    with db.atomic():
                        LoginThrottle.create(key=key, failures=1, last_failure_at=to_db(now))
                    continue
                except IntegrityError:  # a concurrent failure created it first
                    row = LoginThrottle.get(LoginThrottle.key == key)
            recent = row.last_failure_at and row.last_failure_at >= cutoff
            LoginThrottle.update(
                failures=(LoginThrottle.failures + 1) if recent else 1,
                last_failure_at=to_db(now),
            ).where(LoginThrottle.id == row.id).execute()
        # Old rows say nothing any more; keep the table small.
        LoginThrottle.delete().where(
            LoginThrottle.last_failure_at < to_db(now - timedelta(days=1))
        ).execute()


def _sign_in(user: User) -> None:
    """A fresh session for the signed-in host, so a planted session id is worthless."""
    session.clear()
    login_user(user)


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
        email = form.email.data.strip().lower()
        keys = _throttle_keys(email)
        delay = login_delay(keys)
        if delay:
            sleep(delay)
        user = User.by_email(email)
        if user is None:
            check_password_hash(_DUMMY_HASH, form.password.data)
            ok = False
        else:
            ok = user.check_password(form.password.data) and user.is_active
        if ok:
            LoginThrottle.delete().where(LoginThrottle.key == keys[0]).execute()
            _sign_in(user)
            return redirect(target or url_for("settings.index"))
        record_failure(keys)
        error = "That e-mail and password do not match an account."
    return render_template("auth/login.html", form=form, error=error, next=target)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST only, CSRF-checked, so a link on another site cannot sign you out)."""
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
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
        flash("Welcome to Kairos. Start with your weekly hours.", "info")
        return redirect(url_for("settings.hours"))
    return render_template("auth/setup.html", form=form, timezones=timezone_names())
