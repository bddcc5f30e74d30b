"""Languages and local formats: which locale a page or an e-mail is written in, and
dates and times formatted the way that locale writes them (Babel's CLDR data).

Pages are translated through Flask-Babel with one message domain per part of the
product (``translations/<lang>/LC_MESSAGES/<domain>.po``; see ``DOMAINS`` and
``make messages``). The locale of a request is chosen by :func:`select_locale`:

- an explicit choice for this request (:func:`use_locale`, e.g. a booking's language on
  its manage page), then ``?lang=`` (the language switcher of the public pages, which are
  served in third-party iframes without cookies, so the choice travels in the links);
- on the host's own pages, the language in their settings;
- otherwise the browser's ``Accept-Language``; English when nothing matches.

The *language* picks the translations; the *territory* only changes formats, so
``en-GB`` reads English with 24-hour times and ``en-US`` (or plain ``en``) 12-hour ones.
E-mails and jobs, which have no request, use :func:`in_locale` around the rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlencode

from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_date,
    format_interval,
    format_skeleton,
    format_time,
    get_day_names,
)
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, get_translations
from jinja2 import Environment

# The languages Kairos is translated into, each named in itself (for the switchers).
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
DEFAULT = "en"
# One message catalogue per part of the product, each with its own extraction mapping
# (translations/<domain>.cfg), so the parts can be translated side by side.
DOMAINS = ("public", "mail", "settings", "admin")
# Blueprints whose pages are the invitee's: they never follow a signed-in host's setting.
PUBLIC_BLUEPRINTS = frozenset({"public", "feeds", "health"})

babel = Babel()


def init_app(app: Flask) -> None:
    root = app.root_path.rsplit("/", 1)[0]
    folder = f"{root}/translations"
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", ";".join([folder] * len(DOMAINS)))
    app.config.setdefault("BABEL_DOMAIN", ";".join(DOMAINS))
    babel.init_app(app, default_locale=DEFAULT, locale_selector=select_locale)
    install(app.jinja_env)
    app.jinja_env.globals.update(language_links=language_links)


def install(env: Environment) -> None:
    """Translations, formatters and ``current_language()`` in a Jinja environment (the
    app's, and the e-mails' own)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    # Flask-Babel installs its own into the app's environment; these replace them.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks read as one line
    env.globals.update(LANGUAGES=LANGUAGES, current_language=current_language)
    env.filters.update(
        day_label=day_label,
        month_label=month_label,
        time_label=time_label,
        time_range=time_range,
        date_medium=date_medium,
        short_day=short_day,
        day_month=day_month,
        moment=moment,
        clock=clock,
        weekday_short=weekday_short,
        day_range=day_range,
    )


# --------------------------------------------------------------------------- choosing


def known(tag: str | None) -> str | None:
    """``tag`` ("de", "en-GB", "es_MX") as a Babel identifier when it is a language
    Kairos speaks (in a territory Babel knows), else None."""
    if not tag:
        return None
    return _known(tag.strip().replace("-", "_")[:16])


@lru_cache(maxsize=256)
def _known(tag: str) -> str | None:
    try:
        locale = Locale.parse(tag)
    except (ValueError, UnknownLocaleError, TypeError):
        return None
    if locale.language not in LANGUAGES:
        return None
    return f"{locale.language}_{locale.territory}" if locale.territory else locale.language


def browser_locale() -> str | None:
    """The best ``Accept-Language`` entry Kairos speaks, with its territory."""
    for tag, _quality in request.accept_languages:
        found = known(tag)
        if found:
            return found
    return None


def with_browser_territory(language: str) -> str:
    """``language`` in the territory the browser asks for it in, if any ("en" → "en_GB")."""
    if has_request_context():
        for tag, _quality in request.accept_languages:
            found = known(tag)
            if found and found.split("_")[0] == language:
                return found
    return language


def select_locale() -> str:
    chosen = g.get("kairos_locale")
    if chosen:
        return chosen
    if not has_request_context():  # a job: e-mails choose with in_locale()
        return DEFAULT
    asked = known(request.args.get("lang"))
    if asked:
        return with_browser_territory(asked.split("_")[0]) if "_" not in asked else asked
    if request.blueprint not in PUBLIC_BLUEPRINTS:
        from flask_login import current_user

        own = getattr(current_user, "locale", "") if current_user else ""
        if own and known(own):
            return with_browser_territory(known(own).split("_")[0])  # type: ignore[union-attr]
    return browser_locale() or DEFAULT


def use_locale(tag: str | None) -> None:
    """Serve the rest of this request in ``tag`` (unless ``?lang=`` asks otherwise)."""
    if tag and known(tag) and not known(request.args.get("lang")):
        g.kairos_locale = with_browser_territory(known(tag).split("_")[0])  # type: ignore[union-attr]
        ctx = g.get("_flask_babel")
        if ctx is not None:  # already chosen earlier in this request: choose again
            ctx.babel_locale = None
            ctx.babel_translations = None


def current_language() -> str:
    """The language (no territory) of this page or e-mail: "de"; stored with a booking."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT


def request_locale() -> str:
    """The locale of the request being served ("" outside one): recorded with a job whose
    e-mail may go to someone without a language setting (an invitation, a reset link)."""
    if not has_request_context():
        return ""
    locale = get_locale()
    return str(locale) if locale is not None else ""


def language_links() -> list[tuple[str, str, str, bool]]:
    """The language switcher's entries: (code, own name, this page in it, is it this one)."""
    args = request.args.to_dict(flat=False)
    args.pop("lang", None)
    query = urlencode(args, doseq=True)
    here = current_language()
    base = f"{request.path}?{query}&lang=" if query else f"{request.path}?lang="
    return [(code, name, base + code, code == here) for code, name in LANGUAGES.items()]


@contextmanager
def in_locale(tag: str | None) -> Iterator[None]:
    """Render what follows (an e-mail, an ``.ics``) in ``tag``; English when unknown.

    Works outside a request too (jobs), as long as an app context is pushed.
    """
    with current_app.app_context(), force_locale(known(tag) or DEFAULT):
        yield


def translations() -> Any:
    """Flask-Babel's merged catalogue for this context, looked up once per locale.

    A page asks for a translation some fifty times; Flask-Babel finds the context,
    the locale and the domain anew each time. This keeps the answer on ``g`` beside the
    locale it was made for, so a locale forced later (``in_locale``, ``use_locale``)
    is noticed by identity and looked up afresh.
    """
    if not g:
        return get_translations()
    ctx = g._get_current_object()
    babel_ctx = getattr(ctx, "_flask_babel", None)
    locale = getattr(babel_ctx, "babel_locale", None)
    cached = getattr(ctx, "_kairos_translations", None)
    if cached is not None and locale is not None and cached[0] is locale:
        return cached[1]
    found = get_translations()
    ctx._kairos_translations = (get_locale(), found)
    return found


# --------------------------------------------------------------------------- formats


def _locale() -> Locale:
    return get_locale() or Locale.parse(DEFAULT)


def day_label(day: date | datetime) -> str:
    """ "Monday, December 7, 2026" / "Montag, 7. Dezember 2026" (a datetime: its own day)."""
    return format_day(str(_locale()), day.date() if isinstance(day, datetime) else day)


# A month grid names every day; the names depend on the locale and the date alone.
@lru_cache(maxsize=4096)
def format_day(locale: str, day: date) -> str:
    """:func:`day_label` in a named locale ("de_DE"), for callers that cache per locale."""
    return format_date(day, "full", locale=locale)


def date_medium(day: date | datetime) -> str:
    """ "Dec 7, 2026" / "07.12.2026"."""
    return format_date(day, "medium", locale=_locale())


def month_label(first: date) -> str:
    """ "December 2026" / "Dezember 2026", capitalised as a heading."""
    text = format_skeleton("yMMMM", first, locale=_locale())
    return text[:1].upper() + text[1:]


def time_label(moment: datetime) -> str:
    """A wall-clock time in the moment's own zone: "9:00 AM" (en-US) or "09:00" (de)."""
    return _clock_label(str(_locale()), moment.hour, moment.minute)


@lru_cache(maxsize=1024)
def _clock_label(locale: str, hour: int, minute: int) -> str:
    """The short time pattern shows hours and minutes only (no zone, no seconds)."""
    return format_time(time(hour, minute), "short", locale=locale)


def time_range(start: datetime, end: datetime) -> str:
    return f"{time_label(start)}\u2013{time_label(end)}"


def short_day(day: date | datetime) -> str:
    """ "Mon, Dec 7" / "Mo., 7. Dez." for compact lists and subject lines."""
    return format_skeleton("MMMEd", day, locale=_locale())


def moment(value: datetime, kind: str = "datetime") -> str:
    """An aware datetime (already in the reader's zone) as text, in one of a few shapes:

    ``full`` "Monday, December 7, 2026, 9:00 AM"; ``datetime`` "Dec 7, 2026, 9:00 AM";
    ``day_time`` "Monday, December 7, 9:00 AM" (no year); ``short`` "Dec 7, 9:00 AM";
    ``date`` "Dec 7, 2026"; ``time`` "9:00 AM". A ``_seconds`` suffix adds seconds.
    """
    locale = _locale()
    base = kind.removesuffix("_seconds")
    clock = format_time(value, "medium" if base != kind else "short", locale=locale)
    if base == "time":
        return clock
    day = {
        "full": lambda: format_date(value, "full", locale=locale),
        "datetime": lambda: format_date(value, "medium", locale=locale),
        "day_time": lambda: format_skeleton("MMMMEEEEd", value, locale=locale),
        "short": lambda: format_skeleton("MMMd", value, locale=locale),
        "date": lambda: format_date(value, "medium", locale=locale),
    }[base]()
    if base == "date":
        return day
    glue = str(locale.datetime_formats.get("medium", "{1}, {0}"))
    return glue.replace("{1}", day).replace("{0}", clock).replace("'", "")


def clock(value: time | int) -> str:
    """A wall-clock time of no particular day (grid rows), or a whole hour given as an int:
    "9:00 AM" (en-US) / "09:00" (de)."""
    at = time(value % 24) if isinstance(value, int) else value
    return format_time(at, "short", locale=_locale())


def day_month(day: date | datetime) -> str:
    """ "Dec 7" / "7. Dez." (no weekday, no year) for compact headings."""
    return format_skeleton("MMMd", day, locale=_locale())


def weekday_short(day: date | datetime) -> str:
    """ "Mon" / "Mo." """
    return format_date(day, "EEE", locale=_locale())


def day_range(first: date, last: date) -> str:
    """ "Dec 7 – 13, 2026" / "07.–13.12.2026": two days as one span."""
    return format_interval(first, last, "yMMMd", locale=_locale())


def weekday_names(
    width: Literal["abbreviated", "narrow", "short", "wide"] = "abbreviated",
) -> list[str]:
    """Monday first: ["Mon", "Tue", …] / ["Mo.", "Di.", …]."""
    names = get_day_names(width, locale=_locale())
    return [names[i] for i in range(7)]
