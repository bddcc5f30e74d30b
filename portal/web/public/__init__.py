"""Invitee pages: a host's profile, the booking page, its iframe twin, the manage page.

Everything is served from the free/busy cache (``booking.available_slots``) and
never waits on a provider; browsing may reuse an answer a few seconds old
(``portal.web.picker.slots_by_day``), while the form, the booking and every
refusal ask afresh. Each page works through query parameters alone
(``month``, ``date``, ``tz``, ``start``); htmx only swaps named blocks of the
same templates. The booking POSTs run inside third-party iframes where the
session cookie is absent, so instead of Flask-WTF's CSRF token they are
protected by a signed form token (:mod:`portal.web.formtoken`), an ``Origin``
check against the host's allowed sites and a rate limit (``gates``).

One blueprint, ``public``, over the modules of this package: ``booking`` (profile,
booking page and form), ``manage`` (the invitee's page for a booking: cancel,
reschedule, .ics) and ``errors``; ``portal.web.register_blueprints`` imports
them all, so this module imports none.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, current_app, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from portal import i18n
from portal.booking import locations, questions
from portal.extensions import limiter
from portal.models import utcnow
from portal.notify import calendar_links
from portal.notify.ical import meeting_link
from portal.web.picker import day_label, month_rows, slot_label, time_label, zone_options

bp = Blueprint("public", __name__)


def booking_rate_limit() -> str:
    return current_app.config["BOOKING_RATE_LIMIT"]


# One budget for every public POST (book, cancel, reschedule; page and embed alike),
# so an address cannot multiply its allowance by switching forms.
public_post_limit = limiter.shared_limit(booking_rate_limit, scope="public-post")


def lang_args() -> dict[str, str]:
    """``{"lang": …}`` when this page was asked for in a language (``?lang=``), else {}.

    The choice travels in the links (the pages live in cookieless iframes too), so every
    link and form of the public pages passes it on: ``url_for(…, **lang_args())``.
    """
    lang = request.args.get("lang", "")
    return {"lang": lang} if i18n.known(lang) else {}


def weekday_headers() -> list[tuple[str, str]]:
    """The month grid's column heads, Monday first: ("Mo", "Monday") / ("Mo", "Montag")."""
    return _weekday_headers(str(get_locale() or i18n.DEFAULT))


@lru_cache(maxsize=64)
def _weekday_headers(locale: str) -> list[tuple[str, str]]:
    with i18n.in_locale(locale):
        return list(zip(i18n.weekday_names("short"), i18n.weekday_names("wide"), strict=True))


# The texts static/public.js writes into a page (data-texts on <body>), in its language.
SCRIPT_TEXTS = {
    "loading": _l("Loading times…"),
    "load_failed": _l("The times could not be loaded. Please try again."),
    "zone_search": _l("Find a city, country or UTC+2"),
    "zone_search_label": _l("Find a city or country in the list"),
    "copied": _l("Copied"),
    "copy_keys": _l("Press Ctrl+C to copy"),
    "keep_it": _l("No, keep it"),
    "yes_cancel": _l("Yes, cancel booking"),
}


@bp.app_template_global()
def script_texts() -> Markup:
    """:data:`SCRIPT_TEXTS` as JSON safe in an HTML attribute, made once per locale
    (every public page carries them, error pages included)."""
    return _script_texts(str(get_locale() or i18n.DEFAULT))


@lru_cache(maxsize=64)
def _script_texts(locale: str) -> Markup:
    with i18n.in_locale(locale):
        return htmlsafe_json_dumps({key: str(text) for key, text in SCRIPT_TEXTS.items()})


def is_link(location: str) -> bool:
    return location.startswith(("https://", "http://"))


@bp.context_processor
def _template_helpers() -> dict:
    return {
        "day_label": day_label,
        "time_label": time_label,
        "slot_label": slot_label,
        "weekday_headers": weekday_headers,
        "month_rows": month_rows,
        "lang_args": lang_args,
        "calendar_links": calendar_links.for_booking,
        "zone_options": zone_options,
        "is_link": is_link,
        # Meeting details: where a type meets, a booking's join link, the invitee's answers.
        "where_label": locations.describe,
        "meeting_link": meeting_link,
        # A booking's age is read on the clock that stamped its created_at.
        "link_status": lambda booking: locations.join_link_status(booking, now=utcnow()),
        "answered": lambda booking: questions.answered(booking.answer_list()),
    }
