"""CalDAV adapter (iCloud, Fastmail, Nextcloud, Radicale …) on the ``caldav`` library.

* Discovery: from a base URL, the library finds the principal and its
  calendar home; one PROPFIND then lists calendars with their writability
  (``current-user-privilege-set``) and zone (``calendar-timezone``).
* Busy: a server-side time-range search returns the events, which are
  expanded locally by :mod:`icalbusy` — the same reading of TRANSP, STATUS,
  all-day and recurrences as ICS feeds get.
* Incremental: RFC 6578 sync tokens (only changed resources are fetched,
  with one calendar-multiget), falling back to the calendar's ctag.
* Writes: each booking lives at a *deterministic* href derived from its
  iCalendar UID and is created with ``If-None-Match: *``, so a retry after a
  lost response finds the event instead of making a second one. The invitee
  is an ATTENDEE with ``SCHEDULE-AGENT=CLIENT`` (Kairos sends the invitation
  itself; the server must not send another) and the meeting link is the
  LOCATION and URL.

This module holds the adapter; ``listing`` (WebDAV answers read) and ``events``
(the bookings stored) live beside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import niquests
from caldav.collection import Calendar as DavCalendar
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from lxml import etree

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
    SyncTokenExpired,
    Transient,
    WrittenEvent,
)
from portal.calendars.providers.caldav import listing
from portal.calendars.providers.caldav.events import event_ical, resource_name

ICS_HEADERS = {"Content-Type": "text/calendar; charset=utf-8"}


class CalDavProvider(CalendarProvider):
    name = "caldav"
    title = "CalDAV"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: DAVClient | None = None

    # -- connecting -------------------------------------------------------

    @classmethod
    def prepare(cls, fields: Mapping[str, Any], config: Mapping[str, Any]) -> ConnectionSetup:
        """Check the account by discovering its calendar home; keep the password secret."""
        url = net.check_url(str(fields.get("url") or ""))
        if not url.endswith("/"):
            url += "/"
        username = str(fields.get("username") or "").strip()
        password = str(fields.get("password") or "")
        if not username:
            raise InvalidSetup("username", "the user name is required")
        if len(username) > 320:
            raise InvalidSetup("username", "the user name is too long")
        if not password:
            raise InvalidSetup("password", "the password is required")
        provider = cls({"url": url, "username": username}, {"password": password}, config)
        try:
            home = provider.discover()
        except CredentialsInvalid as exc:
            raise InvalidSetup(
                "password", "the server refused this user name and password"
            ) from exc
        except (net.AddressNotAllowed, Transient) as exc:
            raise InvalidSetup("url", str(exc)) from exc
        except ProviderError as exc:
            raise InvalidSetup(
                "url", f"no CalDAV account was found at this address: {exc}"
            ) from exc
        finally:
            provider.close()
        host = urlsplit(url).hostname or url
        return ConnectionSetup(
            label=f"{username} @ {host}",
            settings={"url": url, "username": username, "home_url": home},
            credentials={"password": password},
        )

    @classmethod
    def account_key(cls, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> str:
        """The server's address (normalised, ``net.url_key``) and the user name as typed."""
        url = str(settings.get("url") or "")
        url = url if url.endswith("/") else url + "/"  # as prepare() stores it
        return net.url_key(url) + " " + str(settings.get("username") or "").strip()

    # -- plumbing ---------------------------------------------------------

    def client(self) -> DAVClient:
        if self._client is None:
            client = DAVClient(
                url=str(self.settings["url"]),
                username=str(self.settings.get("username") or ""),
                password=str(self.credentials.get("password") or ""),
                timeout=net.timeout(self.config),  # type: ignore[arg-type]
                enable_rfc6764=False,
            )
            client.session.close()
            client.session = net.session(self.config)
            self._client = client
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate the library's and the network's errors into the contract's."""
        try:
            yield
        except ProviderError:
            self.close()
            raise
        except dav_error.RateLimitError as exc:
            raise RateLimited(str(exc), exc.retry_after_seconds) from exc
        except dav_error.AuthorizationError as exc:
            if "{DAV:}valid-sync-token" in exc.preconditions:
                raise SyncTokenExpired("the sync token was refused") from exc
            if exc.status == 403:
                raise PermissionDenied(f"the server refused this ({exc.reason})") from exc
            raise CredentialsInvalid("the server refused the user name and password") from exc
        except dav_error.NotFoundError as exc:
            raise NotFound("the server has nothing at this address (HTTP 404)") from exc
        except dav_error.DAVError as exc:
            if exc.status and exc.status >= 500:
                raise Transient(f"the CalDAV server failed (HTTP {exc.status})") from exc
            raise ProviderError(f"the CalDAV server refused the request: {exc.reason}") from exc
        except niquests.exceptions.RequestException as exc:
            self.close()
            raise net.unreachable(str(self.settings.get("url") or ""), exc) from exc
        except etree.XMLSyntaxError as exc:
            raise ProviderError("the server's answer is not CalDAV") from exc

    def _request(
        self, url: str, method: str, body: str = "", headers: Mapping[str, str] | None = None
    ) -> Any:
        response = self.client().request(url, method, body, dict(headers or {}))
        if response.status >= 500:
            raise Transient(f"the CalDAV server failed (HTTP {response.status})")
        return response

    def _calendar(self, url: str) -> DavCalendar:
        return DavCalendar(client=self.client(), url=url)

    # -- discovery and listing ---------------------------------------------

    def discover(self) -> str:
        """The calendar home URL (cached in settings as ``home_url``)."""
        with self.errors():
            principal = self.client().principal()
            return str(principal.calendar_home_set.url)

    def list_calendars(self) -> list[RemoteCalendar]:
        with self.errors():
            home = str(self.settings.get("home_url") or "") or self.discover()
            response = self._request(home, "PROPFIND", listing.LIST_BODY, {"Depth": "1"})
            if response.status == 404:
                raise NotFound("the calendar home is gone")
            if response.status not in (200, 207):
                raise ProviderError(f"listing calendars failed (HTTP {response.status})")
            root = response.tree
            if root is None:
                raise ProviderError("the server's answer is not CalDAV")
        return listing.calendars(root, home)

    # -- busy -------------------------------------------------------------

    def _spans(self, data: str, calendar: CalendarRef, start, end, href: str) -> list[BusyInterval]:
        return icalbusy.busy_intervals(
            icalbusy.parse(data),
            start,
            end,
            calendar.timezone,
            tentative_is_busy=bool(self.config.get("TENTATIVE_IS_BUSY", True)),
            all_busy=calendar.all_busy,
            source_id=href,
        )

    def _search(self, calendar: CalendarRef, start: datetime, end: datetime) -> dict[str, list]:
        """Time-range search; spans grouped by resource path (events with none map to [])."""
        with self.errors():
            # a synchronous client: the library's sync/async union is always a list here
            objects: Any = self._calendar(calendar.external_id).search(
                start=start, end=end, event=True, expand=False, post_filter=False
            )
            grouped: dict[str, list[BusyInterval]] = {}
            for obj in objects:
                href = listing.path_of(obj.url)
                grouped[href] = self._spans(obj.data, calendar, start, end, href)
        return grouped

    def busy(
        self, calendars: Sequence[CalendarRef], start: datetime, end: datetime
    ) -> dict[str, list[BusyInterval]]:
        out: dict[str, list[BusyInterval]] = {}
        for calendar in calendars:
            spans = [s for group in self._search(calendar, start, end).values() for s in group]
            out[calendar.external_id] = sorted(spans, key=lambda b: (b.start, b.end))
        return out

    def _cursor(self, url: str) -> dict[str, str]:
        """The collection's current sync token and ctag (one PROPFIND)."""
        response = self._request(url, "PROPFIND", listing.CURSOR_BODY, {"Depth": "0"})
        if response.status == 404:
            raise NotFound("the calendar is gone")
        if response.status not in (200, 207):
            return {}
        root = response.tree
        return {} if root is None else listing.cursor(root)

    def sync_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime, state: Mapping[str, Any]
    ) -> BusyChanges:
        url = calendar.external_id
        with self.errors():
            if state.get("sync_token"):
                return self._sync_changes(calendar, start, end, str(state["sync_token"]))
            cursor = self._cursor(url)
            if state.get("ctag") and cursor.get("ctag") == state["ctag"]:
                return BusyChanges(full=False, state=cursor, unchanged=True)
        # Full read. The cursor was taken first: a change racing with the
        # search is reported again next time, never lost.
        grouped = self._search(calendar, start, end)
        return BusyChanges(full=True, busy={k: tuple(v) for k, v in grouped.items()}, state=cursor)

    def _sync_changes(
        self, calendar: CalendarRef, start: datetime, end: datetime, token: str
    ) -> BusyChanges:
        cal = self._calendar(calendar.external_id)
        try:
            result: Any = cal.get_objects_by_sync_token(
                sync_token=token, load_objects=False, disable_fallback=True
            )
        except dav_error.DAVError as exc:
            if "{DAV:}valid-sync-token" in exc.preconditions or exc.status in (403, 409, 412):
                if exc.status == 401:
                    raise
                raise SyncTokenExpired("the sync token was refused") from exc
            raise
        removed = {listing.path_of(u) for u in result.deleted_urls}
        changed = [o.url for o in result.objects if listing.path_of(o.url) not in removed]
        busy: dict[str, tuple[BusyInterval, ...]] = {}
        if changed:
            loaded: Any = cal.multiget(changed)
            for obj in loaded:
                href = listing.path_of(obj.url)
                if obj.data:
                    busy[href] = tuple(self._spans(obj.data, calendar, start, end, href))
                else:
                    removed.add(href)
        return BusyChanges(
            full=False,
            busy=busy,
            removed=frozenset(removed),
            state={"sync_token": str(result.sync_token)},
            unchanged=not busy and not removed,
        )

    # -- writing ----------------------------------------------------------

    def _href(self, calendar_id: str, ical_uid: str) -> str:
        return calendar_id.rstrip("/") + "/" + resource_name(ical_uid)

    def _etag(self, href: str) -> str:
        response = self._request(href, "GET")
        if response.status == 404:
            raise NotFound("the event is gone")
        return str(response.headers.get("ETag") or "")

    def _put(self, href: str, body: str, condition: dict[str, str]) -> Any:
        return self._request(href, "PUT", body, ICS_HEADERS | condition)

    def create_event(self, calendar_id: str, event: EventData) -> WrittenEvent:
        href = self._href(calendar_id, event.ical_uid)
        body = event_ical(event)
        with self.errors():
            response = self._put(href, body, {"If-None-Match": "*"})
            if response.status == 412:
                # Already there: a retry after a lost response. Bring it up to date.
                response = self._put(href, body, {"If-Match": "*"})
            self._raise_for_write(response)
            return WrittenEvent(href, str(response.headers.get("ETag") or "") or self._etag(href))

    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, etag: str = ""
    ) -> WrittenEvent:
        with self.errors():
            # If-Match: * — move our event, but never resurrect one the host deleted.
            response = self._put(external_id, event_ical(event), {"If-Match": "*"})
            if response.status in (404, 412):
                raise NotFound("the event is no longer in the calendar")
            self._raise_for_write(response)
            etag = str(response.headers.get("ETag") or "") or self._etag(external_id)
            return WrittenEvent(external_id, etag)

    def delete_event(self, calendar_id: str, external_id: str, etag: str = "") -> None:
        with self.errors():
            response = self._request(external_id, "DELETE")
            if response.status in (404, 410):
                return
            self._raise_for_write(response)

    @staticmethod
    def _raise_for_write(response: Any) -> None:
        if response.status in (200, 201, 204):
            return
        if response.status in (403, 405):
            raise PermissionDenied(f"the calendar refused the write (HTTP {response.status})")
        if response.status == 404:
            raise NotFound("the calendar is gone")
        if response.status == 429:
            raise RateLimited("the CalDAV server asks us to slow down")
        raise ProviderError(f"the CalDAV server refused the write (HTTP {response.status})")
