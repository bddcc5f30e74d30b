"""The one place that makes a blueprint a private area of signed-in hosts."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

from portal.extensions import login_manager


def hosts_only(bp: Blueprint, admins: bool = False) -> Blueprint:
    """Every route of ``bp`` needs a signed-in host (an admin, with ``admins``) and is never cached.

    Others are sent to sign in; a host who is not an admin gets 404, as if admin pages
    did not exist. ``no-store`` because these pages hold personal data and one-time secrets.
    """

    @bp.before_request
    def _require_host():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if admins and not current_user.is_admin:
            abort(404)
        return None

    @bp.after_request
    def _no_store(response):
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp
