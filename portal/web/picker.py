"""The day-and-time picker behind the booking, embed and manage pages.

One month calendar of bookable days plus one day's times, in the invitee's zone,
computed from ``booking.available_slots``. Browsing may reuse an answer a few
seconds old (:func:`slots_by_day`); anything that leads to a booking asks afresh.
"""

from __future__ import annotations

import calendar
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, lru_cache
from itertools import groupby
from typing import cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import current_app, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal import clock, i18n
from portal.booking import slot_memo
from portal.booking.rules import available_slots, local_day_range
from portal.models import MeetingType, User, db
from portal.web import timezones

# The per-process cache of what browsing shows (see slots_by_day), bounded by bytes.
_slots_memo = slot_memo.browse

MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: str | None) -> date | None:
    if not value or not DAY_RE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_month(value: str | None) -> date | None:
    if not value or not MONTH_RE.match(value):
        return None
    try:
        return date(int(value[:4]), int(value[5:7]), 1)
    except ValueError:
        return None


def add_month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# The tz database's regions as the zone list's groups.
REGIONS = {
    "Africa": _l("Africa"),
    "America": _l("America"),
    "Antarctica": _l("Antarctica"),
    "Arctic": _l("Arctic"),
    "Asia": _l("Asia"),
    "Atlantic": _l("Atlantic"),
    "Australia": _l("Australia"),
    "Europe": _l("Europe"),
    "Indian": _l("Indian Ocean"),
    "Pacific": _l("Pacific"),
}


def zone_options(selected: str) -> Markup:
    """The zone select's ``<optgroup>``s: canonical zones by region (:mod:`portal.web.timezones`).

    Each option reads "Kathmandu, Nepal (UTC+05:45, now 2:50 PM)" in the page's language,
    so the local time tells the visitor at a glance whether it is theirs; the labels change
    once a minute. The ~400 options are built once a minute per language for every visitor
    alike; a page only marks its own zone as selected (building them per zone cost a
    booking page more than its slots).
    """
    locale = str(get_locale() or i18n.DEFAULT)
    minute = clock.now().replace(second=0, microsecond=0)
    pattern = timezones.pattern()
    listed, options = _zone_options(minute, locale, pattern)
    if selected in listed:
        plain = Markup('<option value="{}">').format(selected)
        return options.replace(plain, Markup('<option value="{}" selected>').format(selected), 1)
    # A valid zone with no place in the list goes first, selected.
    extra = Markup('<option value="{}" selected>{}</option>').format(
        selected, timezones.describe(selected, minute, locale, pattern)
    )
    return extra + options


@lru_cache(maxsize=8)
def _zone_options(minute: datetime, locale: str, pattern: str) -> tuple[frozenset[str], Markup]:
    option = Markup('<option value="{}">{}</option>')
    groups: list[Markup] = []
    for region, members in groupby(timezones.zones(), key=lambda z: z.region):
        labelled = sorted(
            ((timezones.label(z, minute, locale, pattern), z) for z in members),
            key=lambda pair: pair[0].casefold(),
        )
        items = Markup("").join(option.format(z.name, text) for text, z in labelled)
        name = str(REGIONS.get(region, region))
        groups.append(Markup('<optgroup label="{}">{}</optgroup>').format(name, items))
    return frozenset(z.name for z in timezones.zones()), Markup("").join(groups)


def day_label(day: date) -> str:
    return i18n.day_label(day)


def time_label(moment: datetime) -> str:
    return i18n.time_label(moment)


def slot_label(start: datetime, minutes: int) -> str:
    """A time button's accessible name: "Monday, December 7, 2026, 9:00 AM – 9:30 AM"."""
    end = start + timedelta(minutes=minutes)
    return _(
        "%(day)s, %(start)s – %(end)s",
        day=i18n.day_label(start),
        start=i18n.time_label(start),
        end=i18n.time_label(end),
    )


# --------------------------------------------------------------------------- the month grid


def month_rows(p: Picker) -> Markup:
    """The month grid's ``<tr>``s: a link for each day with times, a labelled cell otherwise.

    Built here rather than in ``_picker.html`` because it is the booking page's hottest
    part: 42 cells, each with a translated, spoken day name ("Monday, December 7, 2026,
    times available"). Per cell the template called a translation, a date formatter and
    a URL builder through Jinja (about half of a page's rendering). Here the labels of a
    month are made once per locale and cached; a request only joins its own links (which
    carry its zone and language) to them. Every text is escaped by markupsafe, as the
    template's autoescaping did.
    """
    labels = _month_labels(
        str(get_locale() or i18n.DEFAULT),
        _("%(day)s, times available"),
        _("%(day)s, no times"),
        p.month,
    )
    base = p._base_url
    prefix = escape(base) if base is not None else None
    rows: list[str] = []
    for week in p.weeks:
        cells = ["<tr>"]
        for d in week:
            if d is None:
                cells.append("<td></td>")
                continue
            iso, number, available_label, none_label = labels[d.day - 1]
            if d in p.available:
                if prefix is not None:
                    url = f"{prefix}&amp;month={iso[:7]}&amp;date={iso}"
                else:
                    url = str(escape(p.day_url(d)))
                current = ' aria-current="true"' if d == p.selected else ""
                cells.append(
                    f'<td><a class="cal-day available" href="{url}" hx-get="{url}" '
                    f'hx-target="#slots" hx-push-url="true" data-date="{iso}"{current} '
                    f'aria-label="{available_label}">{number}</a></td>'
                )
            else:
                cells.append(
                    f'<td><span class="cal-day" data-day="{iso}"><span aria-hidden="true">'
                    f'{number}</span><span class="vh">{none_label}</span></span></td>'
                )
        cells.append("</tr>")
        rows.append("".join(cells))
    # Every value above is escaped (labels, links) or made of digits and dashes (dates).
    return Markup("\n".join(rows))  # noqa: S704


@lru_cache(maxsize=512)
def _month_labels(
    locale: str, available: str, unavailable: str, month: date
) -> tuple[tuple[str, int, Markup, Markup], ...]:
    """Per day of ``month``: its ISO date, number, and both spoken labels, escaped."""
    days = calendar.monthrange(month.year, month.month)[1]
    out = []
    for n in range(1, days + 1):
        day = month.replace(day=n)
        name = i18n.format_day(locale, day)
        spoken = (escape(available % {"day": name}), escape(unavailable % {"day": name}))
        out.append((day.isoformat(), n, *spoken))
    return tuple(out)


# --------------------------------------------------------------------------- the picker


@dataclass
class Picker:
    """A month calendar of bookable days and one day's slots, in the invitee's zone.

    ``endpoint``, ``path`` and ``keep`` say which page the links return to (booking
    page, embed page or manage page, with the query parameters that page needs), so
    the same templates serve all three.
    """

    tz: str
    month: date
    endpoint: str
    path: dict
    keep: dict
    today: date
    last_day: date
    available: frozenset[date] = frozenset()
    days: dict[date, list[datetime]] = field(default_factory=dict)
    selected: date | None = None
    notice: str = ""

    def url(self, **params) -> str:
        args = {**self.keep, "tz": self.tz, **params}
        query = urlencode({k: v for k, v in args.items() if v is not None}, safe="/:")
        return f"{self.action}?{query}"

    @cached_property
    def action(self) -> str:
        """The page's path; also where the time-zone form goes (its fields carry the query)."""
        return url_for(self.endpoint, **self.path)

    @cached_property
    def _base_url(self) -> str | None:
        """``url()`` up to its own parameters, for the month's many day links; None when
        ``keep`` holds ``month`` or ``date``, which must then stay in their place."""
        if {"month", "date"} & self.keep.keys():
            return None
        return self.url()

    def day_url(self, day: date) -> str:
        # Digits and dashes need no quoting: urlencode per link cost a booking page ~10%.
        if self._base_url is None:
            return self.url(month=f"{day:%Y-%m}", date=day.isoformat())
        return f"{self._base_url}&month={day:%Y-%m}&date={day.isoformat()}"

    def month_url(self, first: date) -> str:
        return self.url(month=f"{first:%Y-%m}")

    def slot_url(self, slot: datetime) -> str:
        return self.url(start=slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"))

    @property
    def prev_month(self) -> date | None:
        prev = add_month(self.month, -1)
        return prev if add_month(prev, 1) > self.today else None

    @property
    def next_month(self) -> date | None:
        nxt = add_month(self.month, 1)
        return nxt if nxt <= self.last_day else None

    @property
    def weeks(self) -> list[list[date | None]]:
        cal = calendar.Calendar(firstweekday=0)
        return [
            [d if d.month == self.month.month else None for d in week]
            for week in cal.monthdatescalendar(self.month.year, self.month.month)
        ]

    @property
    def slots(self) -> list[datetime]:
        return self.days.get(self.selected, []) if self.selected else []

    @property
    def month_label(self) -> str:
        return i18n.month_label(self.month)


def _compute_slots_by_day(
    user: User, mt: MeetingType, first: date, last: date, tz: ZoneInfo, exclude=None
) -> dict[date, list[datetime]]:
    start, end = local_day_range(first, last, tz)
    by_day: dict[date, list[datetime]] = defaultdict(list)
    for slot in available_slots(user, mt, start, end, now=clock.now(), exclude=exclude):
        local = slot.astimezone(tz)
        by_day[local.date()].append(local)
    return dict(by_day)


def slots_by_day(
    user: User,
    mt: MeetingType,
    first: date,
    last: date,
    tz: ZoneInfo,
    exclude: int | None = None,
    fresh: bool = False,
) -> dict[date, list[datetime]]:
    """Offered starts of the local days ``first``..``last``, grouped by day.

    Browsing (``fresh=False``) may reuse this process's answer for the same question
    from the last ``PUBLIC_SLOTS_CACHE_SECONDS`` (config; the test fixtures set 0): a popular
    page then costs about what a trivial one does, while the form, the booking and
    every refusal ("just taken") ask afresh. The result is shared: do not modify it.
    """
    ttl = current_app.config["PUBLIC_SLOTS_CACHE_SECONDS"]
    if fresh or ttl <= 0:
        return _compute_slots_by_day(user, mt, first, last, tz, exclude)
    key = (db.database, user.id, mt.id, first, last, tz.key, exclude)
    clock = time.monotonic()
    hit = cast("tuple[float, dict[date, list[datetime]]] | None", _slots_memo.get(key))
    if hit is not None and hit[0] > clock:
        return hit[1]
    days = _compute_slots_by_day(user, mt, first, last, tz, exclude)
    size = slot_memo.ENTRY_BYTES + sum(100 + slot_memo.SLOT_BYTES * len(v) for v in days.values())
    _slots_memo.put(key, (clock + ttl, days), size)
    return days


def build_picker(
    user: User,
    mt: MeetingType,
    endpoint: str,
    path: dict,
    keep: dict,
    tz_name: str,
    *,
    day_only: bool = False,
    exclude: int | None = None,
    selected: date | None = None,
    fresh: bool = False,
) -> Picker:
    """Read ``month``/``date`` from the query and compute what the page shows.

    ``day_only`` (the htmx slots fragment) computes the chosen day alone; a full page
    adds the month overview. ``fresh`` skips the browsing cache (after a refusal).
    """
    tz = ZoneInfo(tz_name)
    now_local = clock.now().astimezone(tz)
    today = now_local.date()
    last_day = (now_local + timedelta(days=mt.window_days, minutes=mt.duration_minutes)).date()
    selected = selected or parse_day(request.args.get("date"))
    if selected and not (today <= selected <= last_day):
        selected = None
    month = parse_month(request.args.get("month"))
    if selected:
        month = selected.replace(day=1)
    explicit = month is not None
    month = month or today.replace(day=1)
    month = min(max(month, today.replace(day=1)), last_day.replace(day=1))
    picker = Picker(tz_name, month, endpoint, path, keep, today, last_day, selected=selected)
    if selected:
        picker.days = slots_by_day(user, mt, selected, selected, tz, exclude, fresh)
    if day_only:
        return picker
    month_end = add_month(month, 1) - timedelta(days=1)
    available = frozenset(slots_by_day(user, mt, max(month, today), month_end, tz, exclude, fresh))
    if not available and not explicit and picker.next_month:
        # Late in the month with nothing left: open on the next month instead of a blank one.
        picker.month = picker.next_month
        month_end = add_month(picker.month, 1) - timedelta(days=1)
        available = frozenset(slots_by_day(user, mt, picker.month, month_end, tz, exclude, fresh))
    if selected:  # the chosen day's own answer wins over the month's
        available = available | {selected} if picker.days.get(selected) else available - {selected}
    picker.available = available
    return picker


def picker_block() -> str | None:
    """Which block an htmx GET wants: a day's ``slots``, or the whole ``picker``.

    htmx names its target element in ``HX-Target``; element id and block share a name.
    A history restore wants the whole page.
    """
    if not request.headers.get("HX-Request") or request.headers.get("HX-History-Restore-Request"):
        return None
    return "picker" if request.headers.get("HX-Target") == "picker" else "slots"
