"""The front door: ``/`` sends everyone to the page that fits them.

``manage.py run`` prints the site's root, so a newcomer lands here first. The
public booking pages live one level down (``/<host>``), which never matches the
bare root, so this route and theirs cannot collide.
"""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user

from portal.models import User

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """First run → ``/setup``; a visitor → ``/login``; a signed-in host → their settings.

    A redirect only: reading who is signed in changes nothing, so GET is safe.
    """
    if not User.select().exists():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(url_for("settings.index"))
    return redirect(url_for("auth.login"))
