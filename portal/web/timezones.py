"""Time zones as people pick them: canonical IANA names with a place, a country and an offset.

The list is the tz database's ``zone.tab`` (one zone per country region, current names
only: ``Asia/Kathmandu``, never the ``Asia/Katmandu`` alias) plus UTC, read from the
``tzdata`` package that ``zoneinfo`` already uses, so it matches the zones the engine
knows. An alias a browser or an old link still sends (``Asia/Calcutta``, ``US/Eastern``)
is mapped to its canonical name through the database's own links. Pure: no Flask, ``now``
is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from importlib.resources import files
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_time, get_timezone_location
from markupsafe import Markup


@dataclass(frozen=True)
class Zone:
    name: str  # "America/Argentina/Buenos_Aires"
    region: str  # "America"
    place: str  # "Buenos Aires"
    country: str  # "Argentina"
    code: str = ""  # "AR", the ISO 3166 code (for the country's name in other languages)


def _rows(filename: str) -> list[list[str]]:
    text = files("tzdata.zoneinfo").joinpath(filename).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@lru_cache(maxsize=1)
def zones() -> tuple[Zone, ...]:
    """Every zone of ``zone.tab`` and UTC, by region, then place."""
    countries = {row[0]: row[1] for row in _rows("iso3166.tab")}
    found = {Zone("UTC", "UTC", "UTC", "")}
    for row in _rows("zone.tab"):
        code, name = row[0], row[2]
        region, _, rest = name.partition("/")
        # "Argentina/Buenos_Aires" → "Buenos Aires"; "Indiana/Knox" keeps its state in front.
        country = countries.get(code, code)
        parts = rest.replace("_", " ").split("/")
        place = parts[-1] if parts[0] in (parts[-1], country) else f"{parts[-1]} ({parts[0]})"
        found.add(Zone(name, region, place, country, code))
    return tuple(sorted(found, key=lambda z: (z.region != "UTC", z.region, z.place)))


@lru_cache(maxsize=1)
def _by_name() -> dict[str, Zone]:
    return {z.name: z for z in zones()}


@cache
def _zoneinfo(name: str) -> ZoneInfo:
    """ZoneInfo keeps only a few zones alive in its own cache; a picker shows them all."""
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def _links() -> dict[str, str]:
    """Alias → target, from the ``L target alias`` lines of the database's ``tzdata.zi``."""
    text = files("tzdata.zoneinfo").joinpath("tzdata.zi").read_text(encoding="utf-8")
    return {p[2]: p[1] for p in (line.split() for line in text.splitlines()) if p[:1] == ["L"]}


def canonical(name: str) -> str:
    """The listed name for ``name``: itself when listed, else where its links lead.

    A valid zone that leads nowhere listed (``Etc/GMT+5``) stays as it is.
    """
    seen = set()
    current = name
    while current not in _by_name() and current in _links() and current not in seen:
        seen.add(current)
        current = _links()[current]
    if current in _by_name():
        return current
    return "UTC" if name in _UTC_ALIASES else name


# Names of UTC itself (GMT included: for a meeting time the two never differ).
_UTC_ALIASES = frozenset(
    ("Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu")
    + ("Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "Etc/Greenwich", "GMT", "GMT0")
    + ("GMT+0", "GMT-0", "Greenwich")
)


def offset_label(moment: datetime) -> str:
    """``UTC+05:45``, ``UTC−03:00`` (a real minus sign), ``UTC±00:00``."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes > 0 else "\u2212" if minutes < 0 else "\u00b1"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


# What an option says, with the place, the offset and the local time; callers pass it
# translated (the place names themselves come from CLDR).
PATTERN = "%(where)s (%(offset)s, now %(time)s)"


@lru_cache(maxsize=4096)
def where(zone: Zone, locale: str = "en") -> str:
    """ "Kathmandu, Nepal" / "Katmandou, Népal": the place and country in ``locale``.

    English keeps the tz database's own names; other languages take CLDR's exemplar city
    and country name (through Babel), falling back to the English ones.
    """
    lang = Locale.parse(locale)
    place, country = zone.place, zone.country
    if lang.language != "en" and zone.code:
        place = get_timezone_location(zone.name, locale=lang, return_city=True) or place
        country = lang.territories.get(zone.code, country)
    return f"{place}, {country}" if country else place


def pattern() -> str:
    """:data:`PATTERN` in the current language."""
    from flask_babel import gettext as _

    return _("%(where)s (%(offset)s, now %(time)s)")


@lru_cache(maxsize=16)
def suggestions(minute: datetime, locale: str, translated: str) -> Markup:
    """``<option>``s of the canonical zones (no aliases such as "Asia/Katmandu") for the
    settings' time-zone fields: the IANA name as the value, the place, offset and local
    time in ``locale`` as the label. Cached per minute, language and pattern."""
    option = Markup('<option value="{}" label="{}"></option>')
    return Markup("").join(
        option.format(z.name, label(z, minute, locale, translated)) for z in zones()
    )


def label(zone: Zone, now: datetime, locale: str = "en", pattern: str = PATTERN) -> str:
    """``Kathmandu, Nepal (UTC+05:45, now 2:50 PM)``: what the option shows and is searched
    by, in ``locale`` (its names and its clock); ``pattern`` is :data:`PATTERN` translated."""
    local = now.astimezone(_zoneinfo(zone.name))
    time = format_time(local, "short", locale=locale)
    return pattern % {"where": where(zone, locale), "offset": offset_label(local), "time": time}


def describe(name: str, now: datetime, locale: str = "en", pattern: str = PATTERN) -> str:
    """The label of any valid zone, listed or not (an unlisted one shows its own name)."""
    zone = _by_name().get(canonical(name)) or Zone(name, "Other", name.replace("_", " "), "")
    return label(zone, now, locale, pattern)
