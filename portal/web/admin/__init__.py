"""The admin's pages under ``/settings/admin``: people, organisation controls, job health.

Every route answers 404 to anyone but a signed-in active admin (a signed-out
visitor is sent to sign in first, as everywhere under ``/settings``), every
change is a CSRF-checked POST, and the pages keep the default frame-denying
headers. The rules live in ``portal.org`` (``settings``, ``invites``, ``people``,
``health``); these views parse and render.

One blueprint, ``admin``, over the modules of this package (``people``,
``organisation``, ``jobs``); ``portal.web.register_blueprints`` imports them all,
so this module imports none.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.org import settings
from portal.web.guards import hosts_only

bp = Blueprint("admin", __name__, url_prefix="/settings/admin")
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


def has_exchange_page() -> bool:
    """The Exchange corporate connection page, once that feature is installed."""
    return any(r.rule.rstrip("/") == EXCHANGE_PATH for r in current_app.url_map.iter_rules())


@bp.app_context_processor
def _admin_nav():
    def admin_tabs() -> list[tuple[str, str, bool]]:
        tabs = [
            (url_for("admin.index"), _("People"), request.endpoint == "admin.index"),
            (
                url_for("admin.organisation"),
                _("Organisation"),
                request.endpoint == "admin.organisation",
            ),
            (url_for("admin.jobs"), _("Job health"), request.endpoint == "admin.jobs"),
        ]
        if has_exchange_page():
            tabs.append((EXCHANGE_PATH, _("Exchange"), request.path.rstrip("/") == EXCHANGE_PATH))
        return tabs

    return {"admin_tabs": admin_tabs}
