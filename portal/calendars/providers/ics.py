"""ICS feed adapter: a read-only busy source behind an HTTP(S) URL.

The feed URL often *is* the secret (Google's and Outlook's "secret
address"), so it travels in ``credentials`` and only a shortened label is
shown. Fetches are capped in size and time, refuse private addresses unless
configuration allows them (``net``), and are conditional (ETag /
Last-Modified) so an unchanged feed costs one 304; a server without
validators sends the same body again, recognised by its SHA-256 (kept in the
cursor with the feed's name and zone) and not parsed again. Connecting reads
only the feed's first bytes; the confirm-time re-check (:meth:`recheck`)
parses only the events near the slot.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import niquests

from portal.calendars.providers import icalbusy, net
from portal.calendars.providers.base import (
    BusyChanges,
    BusyInterval,
    CalendarProvider,
    CalendarRef,
    ConnectionSetup,
    CredentialsInvalid,
    EventData,
    InvalidSetup,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RemoteCalendar,
    Transient,
    WrittenEvent,
)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
FEED_ID = "feed"  # an ICS connection has exactly one calendar
MAX_REDIRECTS = 5
PROBE_BYTES = 4096  # what connecting reads of a feed: enough to see iCalendar and its name
PROBE_TIMEOUT = 5.0  # seconds, at most, for that look


def _header_value(text: str, name: str) -> str:
    """A calendar property from the start of a feed (unfolded, unescaped), "" when absent."""
    found = re.search(rf"^{name}(?:;[^:\r\n]*)?:(.*?)\r?$", re.sub(r"\r?\n[ \t]", "", text), re.M)
    if found is None:
        return ""
    value = found.group(1).replace("\\n", " ").replace("\\N", " ")
    return re.sub(r"\\([,;\\])", r"\1", value).strip()[:255]


def _label(url: str) -> str:
    """Host and a hint of the path: enough to recognise, not enough to reuse."""
    parts = urlsplit(url)
    path = parts.path.rsplit("/", 1)[-1]
    if len(path) > 24:
        path = path[:10] + "…" + path[-8:]
    return f"{parts.hostname}/…/{path}" if path else str(parts.hostname)


class Feed:
    """A fetched feed: the body, or ``None`` when the server said 304 to ``asked``."""

    def __init__(self, body: bytes | None, etag: str, last_modified: str):
        self.body, self.etag, self.last_modified = body, etag, last_modified
        self.asked = ("", "")  # the validators the request sent

    @property
    def digest(self) -> str:
        """The body's SHA-256: "unchanged" for servers that send no validators."""
        return hashlib.sha256(self.body).hexdigest() if self.body is not None else ""

    def header(self) -> tuple[str, str]:
        """The calendar's name and zone, parsed from the text before its first event."""
        body = self.body or b""
        cut = body.find(b"BEGIN:VEVENT")
        cal = icalbusy.parse(body if cut < 0 else body[:cut] + b"END:VCALENDAR\r\n")
        return icalbusy.calendar_name(cal), str(cal.get("X-WR-TIMEZONE", "") or "").strip()

    def state(self, previous: Mapping[str, Any]) -> dict[str, str]:
        """The cursor stored after this fetch (a 304 keeps the previous one)."""
        if self.body is None:
            return {k: str(v) for k, v in previous.items()}
        name, tz = self.header()
        return {
            "etag": self.etag,
            "last_modified": self.last_modified,
            "sha256": self.digest,
            "name": name,
            "timezone": tz,
        }


def _validators(state: Mapping[str, Any]) -> tuple[str, str]:
    return str(state.get("etag") or ""), str(state.get("last_modified") or "")


class IcsProvider(CalendarProvider):
    name = "ics"
    title = "ICS feed"
    writable = False
    account_noun = "feed"

    @classmethod
    def prepare(cls, fields: Mapping[str, Any], config: Mapping[str, Any]) -> ConnectionSetup:
        url = net.check_url(str(fields.get("url") or ""))
        # A quick look, not a read: the first bytes, with a short timeout. Downloading and
        # parsing the feed is the first refresh job's work (the host sees "syncing").
        quick = {**config, "HTTP_TIMEOUT": min(net.timeout(config), PROBE_TIMEOUT)}
        provider = cls({}, {"url": url}, quick)
        try:
            head = provider.fetch(peek=PROBE_BYTES).body or b""
        except CredentialsInvalid as exc:
            raise InvalidSetup(
                "url", "the feed asks for a password; use its secret address"
            ) from exc
        except (net.AddressNotAllowed, Transient) as exc:
            raise InvalidSetup("url", str(exc)) from exc
        except NotFound as exc:
            raise InvalidSetup("url", "nothing was found at this address") from exc
        except ProviderError as exc:
            raise InvalidSetup("url", str(exc)) from exc
        text = icalbusy.decode(head)
        if "BEGIN:VCALENDAR" not in text[:PROBE_BYTES].upper():
            raise InvalidSetup("url", "the address did not return iCalendar data")
        name, tz = _header_value(text, "X-WR-CALNAME"), _header_value(text, "X-WR-TIMEZONE")
        label = name or _label(url)
        return ConnectionSetup(
            label=label,
            settings={"name": name},
            credentials={"url": url},
            calendars=(RemoteCalendar(FEED_ID, label, False, tz, primary=True),),
        )

    @classmethod
    def account_key(cls, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> str:
        """The feed's address, normalised (``net.url_key``)."""
        return net.url_key(str(credentials.get("url") or ""))

    # -- HTTP -------------------------------------------------------------

    @property
    def url(self) -> str:
        return str(self.credentials.get("url") or "")

    def fetch(self, etag: str = "", last_modified: str = "", peek: int = 0) -> Feed:
        """GET the feed (following redirects by hand, each hop guarded).

        ``peek``: stop after that many bytes (the body is then only the feed's start).
        """
        limit = int(self.config.get("ICS_MAX_BYTES") or DEFAULT_MAX_BYTES)
        timeout = net.timeout(self.config)
        deadline = time.monotonic() + timeout
        headers = {"Accept": "text/calendar, */*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        url = net.check_url(self.url)
        http = net.session(self.config)
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                response = http.get(
                    url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
                )
                try:  # a streamed response holds its connection until closed
                    if response.is_redirect and response.headers.get("Location"):
                        url = net.check_url(urljoin(url, response.headers["Location"]))
                        continue
                    return self._read(response, limit, deadline, peek)
                finally:
                    response.close()
            raise ProviderError("the feed redirects too often")
        except niquests.exceptions.RequestException as exc:  # timeouts too
            raise net.unreachable(url, exc) from exc
        finally:
            http.close()

    @staticmethod
    def _read(response: Any, limit: int, deadline: float, peek: int = 0) -> Feed:
        status = response.status_code
        if status == 304:
            return Feed(None, response.headers.get("ETag", ""), "")
        if status in (401, 403):
            raise CredentialsInvalid(f"the feed refused access (HTTP {status})")
        if status in (404, 410):
            raise NotFound(f"the feed is gone (HTTP {status})")
        if status == 429:
            retry = response.headers.get("Retry-After", "")
            raise RateLimited(
                "the feed server asks us to slow down", float(retry) if retry.isdigit() else None
            )
        if status >= 500:
            raise Transient(f"the feed server failed (HTTP {status})")
        if status != 200:
            raise ProviderError(f"the feed answered HTTP {status}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ProviderError(f"the feed is larger than {limit // (1024 * 1024)} MB")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ProviderError(f"the feed is larger than {limit // (1024 * 1024)} MB")
            if time.monotonic() > deadline:
                raise Transient("the feed was too slow to download")
            chunks.append(chunk)
            if peek and size >= peek:
                break
        return Feed(
            b"".join(chunks),
            response.headers.get("ETag", ""),
            response.headers.get("Last-Modified", ""),
        )

    # -- contract ---------------------------------------------------------

    _fetched: Feed | None = None  # the fetch of this refresh, shared by list and sync
    _cursors: Mapping[str, Mapping[str, Any]] = {}

    def use_cursors(self, cursors: Mapping[str, Mapping[str, Any]]) -> None:
        self._cursors = cursors

    def list_calendars(self) -> list[RemoteCalendar]:
        # Conditional on the last refresh's cursor: an unchanged feed costs one 304, and
        # its name and zone come from that cursor. Events are read (if changed) by sync_busy.
        state = self._cursors.get(FEED_ID) or {}
        if "name" not in state:
            state = {}  # a cursor from before names were kept: read the feed
        feed = self._fetched = self._conditional(state)
        name, tz = (state["name"], state["timezone"]) if feed.body is None else feed.header()
        name = name or str(self.settings.get("name") or "")
        return [RemoteCalendar(FEED_ID, name or _label(self.url), False, tz, primary=True)]

    def _spans(self, body: bytes | str, calendar: CalendarRef, start, end) -> list[BusyInterval]:
        return icalbusy.busy_intervals(
            icalbusy.parse(body),
            start,
            end,
            calendar.timezone,
            tentative_is_busy=bool(self.config.get("TENTATIVE_IS_BUSY", True)),
            all_busy=calendar.all_busy,
        )

    def busy(
        self, calendars: Sequence[CalendarRef], start: datetime, end: datetime
    ) -> dict[str, list[BusyInterval]]:
        if not calendars:
            return {}
        body = self.fetch().body or b""
        return {c.external_id: self._spans(body, c, start, end) for c in calendars}

    def _conditional(self, state: Mapping[str, Any]) -> Feed:
        """The feed, unless the cursor's validators say the server has nothing new (304)."""
        asked = _validators(state)
        feed = self.fetch(*asked)
        feed.asked = asked
        return feed

    @staticmethod
    def _unchanged(feed: Feed, state: Mapping[str, Any]) -> bool:
        """A 304, or the very body the cursor was made from (servers without validators)."""
        return feed.body is None or bool(state.get("sha256")) and feed.digest == state["sha256"]

    def recheck(
        self,
        calendars: Sequence[CalendarRef],
        start: datetime,
        end: datetime,
        cursors: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, list[BusyInterval] | None]:
        """One conditional GET; an unchanged feed is the cache, a changed one is narrowed.

        Only the events that may touch the window are parsed
        (:func:`icalbusy.narrow`), so even a large feed answers in milliseconds.
        """
        if not calendars:
            return {}
        state = cursors.get(FEED_ID) or {}
        feed = self._conditional(state)
        if self._unchanged(feed, state):
            return {c.external_id: None for c in calendars}
        text = icalbusy.narrow(feed.body or b"", start, end)
        return {c.external_id: self._spans(text, c, start, end) for c in calendars}

    def sync_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime, state: Mapping[str, Any]
    ) -> BusyChanges:
        # The feed list_calendars just fetched (same refresh, same cursor) is not fetched twice.
        feed, self._fetched = self._fetched, None
        if feed is None or feed.asked != _validators(state):
            feed = self._conditional(state)
        if state.get("etag") and feed.etag == state["etag"] and feed.body is not None:
            feed.body = None  # the server sent it whole, but it is the version we have
        if self._unchanged(feed, state):
            return BusyChanges(full=False, state=feed.state(state), unchanged=True)
        grouped: dict[str, list[BusyInterval]] = {}
        for span in self._spans(feed.body or b"", calendar, start, end):
            grouped.setdefault(span.source_id, []).append(span)
        return BusyChanges(
            full=True, busy={k: tuple(v) for k, v in grouped.items()}, state=feed.state(state)
        )

    def create_event(self, calendar_id: str, event: EventData) -> WrittenEvent:
        raise PermissionDenied("an ICS feed is read-only")

    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, etag: str = ""
    ) -> WrittenEvent:
        raise PermissionDenied("an ICS feed is read-only")

    def delete_event(self, calendar_id: str, external_id: str, etag: str = "") -> None:
        raise PermissionDenied("an ICS feed is read-only")
