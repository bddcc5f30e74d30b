"""Google Calendar (API v3) adapter.

* Calendars: ``calendarList.list``. Writable means the account may add events
  there with the scopes it granted: ``calendar.events.owned`` (what Kairos
  asks for) reaches calendars the host *owns*; a grant with the broader
  ``calendar.events`` also reaches ``writer`` calendars.
* Busy: ``freebusy.query`` — Google applies transparency, declines and
  recurrences itself. Windows longer than Google accepts are cut into
  chunks, and at most 50 calendars go into one query. A calendar answered
  with ``errors`` is *unknown*, never free: the call raises.
* Incremental refresh: ``events.list`` with ``singleEvents=true`` gives a
  ``nextSyncToken``; later calls send only ``syncToken`` and get what
  changed, deletions included. 410 ``fullSyncRequired`` → a full read. When
  the scopes do not allow reading a calendar's events (one the host does not
  own), the calendar falls back to full ``freeBusy`` reads.
* Writes: events are inserted with a client-chosen id derived from the
  booking's iCalendar UID (base32hex, as Google requires), so a retried
  insert answers 409 ``duplicate`` and the existing event is brought up to
  date instead of a second one being made. ``sendUpdates=none``: Kairos
  sends its own confirmation with an ``.ics``. Google renders descriptions as
  HTML; Kairos writes plain text (invitee notes and answers among it), so the
  description is HTML-escaped.
* Google Meet (``EventData.conference == "google_meet"``): the write carries
  ``conferenceData.createRequest`` (``hangoutsMeet``) with
  ``conferenceDataVersion=1`` and a request id derived from the iCalendar UID,
  so a retried write asks for the same conference rather than a second one.
  The answer's ``hangoutLink`` becomes ``WrittenEvent.join_url``; a creation
  still ``pending`` is read once more and otherwise retried (Transient); a
  ``failure`` (or no conference at all) is reported in ``conference_error``.

This module holds the adapter; ``events`` beside it maps event resources.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from portal.calendars.providers.base import (
    BusyChanges,
    BusyInterval,
    CalendarRef,
    EventData,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RemoteCalendar,
    SyncTokenExpired,
    Transient,
    WrittenEvent,
)
from portal.calendars.providers.google.events import (
    chunks,
    event_body,
    event_id_for,
    event_span,
    meet_link,
    merge,
    parse_time,
    rfc3339,
    write_params,
    zone,
)
from portal.calendars.providers.oauth import OAuthProvider
from portal.calendars.providers.oauth_grant import (
    GOOGLE_SCOPE,
    Account,
    id_token_claims,
    oauth_app,
    retry_after,
)

DEFAULT_API_BASE = "https://www.googleapis.com/calendar/v3"
#: Google refuses free/busy ranges longer than about three months; stay well inside
FREEBUSY_CHUNK = timedelta(days=60)
FREEBUSY_MAX_CALENDARS = 50
#: scopes that let the account write to calendars it does not own (``writer`` role)
BROAD_EVENT_SCOPES = {GOOGLE_SCOPE + "calendar.events", GOOGLE_SCOPE + "calendar"}
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class GoogleProvider(OAuthProvider):
    name = "google"
    title = "Google Calendar"
    oauth_name = "google"

    @property
    def base(self) -> str:
        return str(self.config.get("GOOGLE_API_BASE") or DEFAULT_API_BASE).rstrip("/")

    def _cal(self, calendar_id: str) -> str:
        return f"{self.base}/calendars/{quote(calendar_id, safe='')}"

    def error_for(self, response: Any) -> ProviderError:
        status, reason = response.status_code, self.error_reason(response)
        message = self.error_message(response)
        if status in (403, 429) and reason in RATE_REASONS:
            # Google says "slow down" with 403 as often as with 429.
            return RateLimited(f"Google asks us to slow down: {message}", retry_after(response))
        if status == 410 and reason == "fullSyncRequired":
            return SyncTokenExpired(message or "the sync token expired")
        if status in (404, 410):
            return NotFound(message or "not found")
        return super().error_for(response)

    # -- account ----------------------------------------------------------------

    @classmethod
    def account(cls, token: Mapping[str, Any], config: Mapping[str, Any]) -> Account:
        """Who granted ``token``: the ID token that came with it (``openid email``)."""
        app = oauth_app("google", config)
        claims = id_token_claims(token, app) if app is not None else {}
        if not claims.get("sub") or not claims.get("email"):
            raise ProviderError("Google did not say which account was connected")
        email = str(claims["email"]).lower()
        return Account(
            subject=str(claims["sub"]),
            email=email,
            name=str(claims.get("name") or ""),
            verified_email=email if claims.get("email_verified") is True else "",
        )

    # -- calendars ------------------------------------------------------------

    def list_calendars(self) -> list[RemoteCalendar]:
        broad = bool(self.scopes() & BROAD_EVENT_SCOPES)
        out = []
        for item in self._pages(f"{self.base}/users/me/calendarList", {"maxResults": 250}):
            if item.get("deleted"):
                continue
            role = item.get("accessRole", "")
            out.append(
                RemoteCalendar(
                    external_id=item["id"],
                    name=item.get("summaryOverride") or item.get("summary") or item["id"],
                    writable=role == "owner" or (broad and role == "writer"),
                    timezone=item.get("timeZone", ""),
                    primary=bool(item.get("primary")),
                )
            )
        return out

    def _pages(self, url: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for page in self._raw_pages(url, params):
            yield from page.get("items", [])

    def _raw_pages(self, url: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        params = dict(params)
        while True:
            page = self.request("GET", url, params=params).json()
            yield page
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    # -- busy -------------------------------------------------------------------

    def busy(
        self, calendars: Sequence[CalendarRef], start: datetime, end: datetime
    ) -> dict[str, list[BusyInterval]]:
        out: dict[str, list[BusyInterval]] = {c.external_id: [] for c in calendars}
        ids = list(out)
        for chunk_start, chunk_end in chunks(start, end, FREEBUSY_CHUNK):
            for i in range(0, len(ids), FREEBUSY_MAX_CALENDARS):
                group = ids[i : i + FREEBUSY_MAX_CALENDARS]
                body = {
                    "timeMin": rfc3339(chunk_start),
                    "timeMax": rfc3339(chunk_end),
                    "timeZone": "UTC",
                    "items": [{"id": cid} for cid in group],
                }
                answer = self.request("POST", f"{self.base}/freeBusy", json=body).json()
                found = answer.get("calendars", {})
                for cid in group:
                    entry = found.get(cid)
                    if entry is None:
                        raise Transient(f"Google returned no free/busy for calendar {cid}")
                    if entry.get("errors"):
                        reasons = ", ".join(e.get("reason", "?") for e in entry["errors"])
                        # Unknown is never free: the caller keeps its cache or refuses to book.
                        if "notFound" in reasons:
                            raise NotFound(f"Google calendar {cid} is not available ({reasons})")
                        raise Transient(f"Google could not read calendar {cid} ({reasons})")
                    out[cid] += [
                        BusyInterval(parse_time(b["start"]), parse_time(b["end"]))
                        for b in entry.get("busy", [])
                    ]
        return {cid: merge(spans) for cid, spans in out.items()}

    def sync_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime, state: Mapping[str, Any]
    ) -> BusyChanges:
        if state.get("mode") == "freebusy":
            return self._freebusy_full(calendar, start, end)
        window = [rfc3339(start), rfc3339(end)]
        if state.get("sync_token") and state.get("window") == window:
            try:
                return self._incremental(calendar, start, end, state)
            except SyncTokenExpired:
                pass  # 410: the cursor is gone; read everything again
        try:
            return self._full(calendar, start, end)
        except PermissionDenied:
            # Our scopes read events only on calendars the host owns; others are
            # still readable as free/busy.
            return self._freebusy_full(calendar, start, end)

    def _freebusy_full(self, calendar: CalendarRef, start: datetime, end: datetime) -> BusyChanges:
        spans = self.busy([calendar], start, end)[calendar.external_id]
        return BusyChanges(full=True, busy={"": tuple(spans)}, state={"mode": "freebusy"})

    def _full(self, calendar: CalendarRef, start: datetime, end: datetime) -> BusyChanges:
        params = {
            "singleEvents": "true",
            "timeMin": rfc3339(start),
            "timeMax": rfc3339(end),
            "maxResults": 2500,
        }
        busy: dict[str, tuple[BusyInterval, ...]] = {}
        token = ""
        for page in self._raw_pages(f"{self._cal(calendar.external_id)}/events", params):
            listing_zone = zone(page.get("timeZone") or calendar.timezone)
            for item in page.get("items", []):
                span = event_span(item, listing_zone, start, end)
                if span is not None:
                    busy[item["id"]] = (span,)
            token = page.get("nextSyncToken") or token
        state = {"sync_token": token, "window": [rfc3339(start), rfc3339(end)]}
        return BusyChanges(full=True, busy=busy, state=state)

    def _incremental(
        self, calendar: CalendarRef, start: datetime, end: datetime, state: Mapping[str, Any]
    ) -> BusyChanges:
        params = {"singleEvents": "true", "syncToken": state["sync_token"], "maxResults": 2500}
        busy: dict[str, tuple[BusyInterval, ...]] = {}
        removed: set[str] = set()
        token = str(state["sync_token"])
        for page in self._raw_pages(f"{self._cal(calendar.external_id)}/events", params):
            listing_zone = zone(page.get("timeZone") or calendar.timezone)
            for item in page.get("items", []):
                if item.get("status") == "cancelled":
                    removed.add(item["id"])
                    busy.pop(item["id"], None)
                    continue
                removed.discard(item["id"])
                span = event_span(item, listing_zone, start, end)
                busy[item["id"]] = (span,) if span is not None else ()
            token = page.get("nextSyncToken") or token
        new_state = {**state, "sync_token": token}
        if not busy and not removed:
            return BusyChanges(full=False, state=new_state, unchanged=True)
        return BusyChanges(full=False, busy=busy, removed=frozenset(removed), state=new_state)

    # -- writing ----------------------------------------------------------------

    def _written(
        self, calendar_id: str, data: Mapping[str, Any], event: EventData, default_id: str
    ) -> WrittenEvent:
        """The write's answer, with the Meet link when one was asked for."""
        event_id = str(data.get("id", default_id))
        written = WrittenEvent(event_id, str(data.get("etag", "")))
        if event.conference != "google_meet":
            return written
        link, status = meet_link(data)
        if not link and status == "pending":
            # Google makes some conferences asynchronously: look once more, then retry later.
            data = self.request(
                "GET", f"{self._cal(calendar_id)}/events/{quote(event_id, safe='')}"
            ).json()
            link, status = meet_link(data)
            if not link and status == "pending":
                raise Transient("Google is still creating the Google Meet link")
            written = WrittenEvent(event_id, str(data.get("etag", written.etag)))
        if link:
            return replace(written, join_url=link)
        reason = (
            "Google could not create a Google Meet link"
            if status == "failure"
            else "Google did not add a Google Meet link to the event"
        )
        return replace(written, conference_error=reason)

    def create_event(self, calendar_id: str, event: EventData) -> WrittenEvent:
        event_id = event_id_for(event.ical_uid)
        body = {"id": event_id, **event_body(event)}
        response = self.request(
            "POST",
            f"{self._cal(calendar_id)}/events",
            params=write_params(event),
            json=body,
            ok=(200, 201, 409),
        )
        if response.status_code == 409:
            # Written before (a lost answer) — or deleted before: Google keeps a
            # deleted event's id, so bring that one back with this booking's details.
            response = self.request(
                "PATCH",
                f"{self._cal(calendar_id)}/events/{event_id}",
                params=write_params(event),
                json={**event_body(event), "status": "confirmed"},
            )
        return self._written(calendar_id, response.json(), event, event_id)

    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, etag: str = ""
    ) -> WrittenEvent:
        # No If-Match: a host who added a note to the event in Google must not
        # block the reschedule; the patch only touches the fields Kairos owns.
        response = self.request(
            "PATCH",
            f"{self._cal(calendar_id)}/events/{quote(external_id, safe='')}",
            params=write_params(event),
            json=event_body(event),
        )
        data = response.json()
        if data.get("status") == "cancelled":
            raise NotFound("the event was deleted in Google Calendar")
        return self._written(calendar_id, data, event, external_id)

    def delete_event(self, calendar_id: str, external_id: str, etag: str = "") -> None:
        try:
            self.request(
                "DELETE",
                f"{self._cal(calendar_id)}/events/{quote(external_id, safe='')}",
                params={"sendUpdates": "none"},
            )
        except NotFound:
            return  # 404 or 410 "deleted": already gone is what we wanted
