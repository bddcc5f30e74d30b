"""The host's settings area (``/settings``): overview, profile and password.

Every route of this blueprint needs a signed-in host, and every object it
touches is looked up through ``current_user``, so another host's id is a 404.
Each page is a module of this package on the one ``bp`` defined here;
``portal.web.register_blueprints`` imports them all, so this module imports none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.i18n import moment
from portal.models import from_db
from portal.web.guards import hosts_only

bp = Blueprint("settings", __name__, url_prefix="/settings")

SLOTS = 48  # half hours in a day: the cells of the hours grid and of the preview


@dataclass(frozen=True)
class NavItem:
    """One link of the settings navigation.

    Pages of other blueprints appear once their endpoint exists, so a feature
    adds its page by appending here (or is listed already, below) and nothing
    breaks while it is not installed.
    """

    endpoint: str
    label: str  # lazy: read in the page's language when the navigation is drawn
    admin_only: bool = False
    group: str = ""  # links of one group share a top-level entry; "" = its own entry

    def is_active(self) -> bool:
        here = request.endpoint or ""
        if here == self.endpoint or here.startswith(self.endpoint + "_"):
            return True
        own_bp = self.endpoint.partition(".")[0]
        return own_bp != "settings" and request.blueprint == own_bp


NAV: list[NavItem] = [
    NavItem("settings.index", _l("Overview")),
    NavItem("settings.appointments", _l("Appointments"), group=_l("Appointments")),
    NavItem("settings.schedule", _l("Schedule"), group=_l("Appointments")),
    NavItem("findtime.index", _l("Find a time"), group=_l("Appointments")),
    NavItem("settings.types", _l("Meeting types")),
    NavItem("settings.hours", _l("Weekly hours"), group=_l("Availability")),
    NavItem("settings.overrides", _l("Date overrides"), group=_l("Availability")),
    NavItem("settings.preview", _l("Preview"), group=_l("Availability")),
    NavItem("connections.index", _l("Calendars")),
    NavItem("settings.embed", _l("Embed"), group=_l("Sharing")),
    NavItem("settings.meeting_details", _l("Meeting link"), group=_l("Sharing")),
    NavItem("settings.feed", _l("Calendar feed"), group=_l("Sharing")),
    NavItem("settings.webhooks", _l("Webhooks"), group=_l("Sharing")),
    NavItem("settings.tokens", _l("API tokens"), group=_l("Sharing")),
    NavItem("settings.profile", _l("Profile")),
    NavItem("admin.index", _l("Admin"), admin_only=True),
]


@dataclass(frozen=True)
class NavGroup:
    label: str
    url: str  # the group's first page
    active: bool
    links: list[tuple[str, str, bool]]  # (url, label, active), shown under an active group


@bp.app_context_processor
def _nav():
    def settings_nav() -> list[NavGroup]:
        """The top-level entries this host may see, each with its group's links, in order."""
        groups: list[NavGroup] = []
        for item in NAV:
            if item.endpoint not in current_app.view_functions:
                continue
            if item.admin_only and not getattr(current_user, "is_admin", False):
                continue
            link = (url_for(item.endpoint), str(item.label), item.is_active())
            label = str(item.group or item.label)
            if groups and item.group and groups[-1].label == label:
                last = groups[-1]
                groups[-1] = NavGroup(label, last.url, last.active or link[2], [*last.links, link])
            else:
                groups.append(NavGroup(label, link[0], link[2], [link]))
        return groups

    return {"settings_nav": settings_nav}


@bp.app_template_filter("in_zone")
def in_zone(value: datetime, zone_name: str, kind: str = "datetime") -> str:
    """An aware instant as wall-clock text in ``zone_name`` (the host's, on these pages),
    in the page's language; ``kind`` is a shape of :func:`portal.i18n.moment`."""
    try:
        tz = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return moment(value.astimezone(tz), kind)


bp.add_app_template_filter(from_db, "aware")  # stored naive UTC → aware, for in_zone


hosts_only(bp)  # the whole area; pages added later get this for free


def done(message: str, endpoint: str, **values):
    """After a plain (non-htmx) form post: flash, then redirect (post/redirect/get)."""
    flash(message, "info")
    return redirect(url_for(endpoint, **values))


def base_url() -> str:
    """Where invitees reach this app: ``BASE_URL`` when set, else the address used now."""
    return current_app.config.get("BASE_URL") or request.host_url.rstrip("/")
