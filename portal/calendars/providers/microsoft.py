"""Microsoft 365 / Outlook.com adapter over Microsoft Graph v1.0.

* Calendars: ``GET /me/calendars``; writable = ``canEdit``; the default
  calendar is the primary one. Graph gives calendars no zone of their own,
  so all-day events use the zone the sync layer passes (the host's).
* Busy: ``GET /me/calendars/{id}/calendarView`` (occurrences of series
  expanded by Graph), paged through ``@odata.nextLink``, times asked for in
  UTC with ``Prefer: outlook.timezone="UTC"``. ``showAs`` busy / oof is
  busy, free / workingElsewhere is free, tentative follows
  ``TENTATIVE_IS_BUSY``; cancelled meetings are free; the calendar's "treat
  every event as busy" switch counts free ones too.
* Writes: ``POST /me/calendars/{id}/events`` with a ``transactionId``
  derived from the booking's iCalendar UID — Graph answers a repeated POST
  with the event the first one created, so a retry after a lost answer does
  not make a second event; ``PATCH`` / ``DELETE /me/events/{id}``.
* 429 (and 503 with ``Retry-After``) → :class:`RateLimited` with the delay
  Graph asked for, so the job comes back after it.
* Teams (``EventData.conference == "teams"``): writes carry
  ``isOnlineMeeting: true`` and ``onlineMeetingProvider: teamsForBusiness``;
  Graph answers with ``onlineMeeting.joinUrl``, which becomes
  ``WrittenEvent.join_url``. Accounts without Teams (personal Outlook.com
  ones) get no meeting, and Graph says nothing: that is reported in
  ``conference_error``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.calendars.providers.base import (
    BusyInterval,
    CalendarRef,
    EventData,
    NotFound,
    ProviderError,
    RemoteCalendar,
    WrittenEvent,
)
from portal.calendars.providers.oauth import OAuthProvider
from portal.calendars.providers.oauth_grant import Account

DEFAULT_GRAPH_BASE = "https://graph.microsoft.com/v1.0"
PREFER_UTC = 'outlook.timezone="UTC"'
#: namespace for transaction ids: uuid5(namespace, iCalendar UID)
TRANSACTION_NAMESPACE = uuid.UUID("6f1c1d2e-6a4b-4b8e-9a51-2f0a4c1c7e11")
BUSY = {"busy", "oof"}
FREE = {"free", "workingElsewhere"}
VIEW_FIELDS = "id,showAs,isAllDay,isCancelled,start,end,type,seriesMasterId"


def transaction_id(ical_uid: str) -> str:
    """The same booking always sends the same ``transactionId``."""
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, ical_uid))


def parse_graph_time(value: Mapping[str, Any]) -> datetime:
    """A Graph ``dateTimeTimeZone`` (seven fractional digits, zone apart) as aware UTC."""
    text = str(value["dateTime"]).split(".", 1)[0]
    naive = datetime.fromisoformat(text)
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    zone_name = str(value.get("timeZone") or "UTC")
    try:
        zone = ZoneInfo("UTC" if zone_name in ("UTC", "tzone://Microsoft/Utc") else zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProviderError(f"Graph answered in an unexpected time zone {zone_name!r}") from exc
    return naive.replace(tzinfo=zone).astimezone(UTC)


def graph_time(value: datetime) -> dict[str, str]:
    return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


class MicrosoftProvider(OAuthProvider):
    name = "microsoft"
    title = "Microsoft 365 / Outlook"
    oauth_name = "microsoft"

    @property
    def base(self) -> str:
        return str(self.config.get("MS_GRAPH_BASE") or DEFAULT_GRAPH_BASE).rstrip("/")

    def error_for(self, response: Any) -> ProviderError:
        if response.status_code in (404, 410):
            return NotFound(self.error_message(response) or "not found")
        return super().error_for(response)

    # -- account ----------------------------------------------------------------

    @classmethod
    def account(cls, token: Mapping[str, Any], config: Mapping[str, Any]) -> Account:
        """Who granted ``token``: ``GET /me`` (the ``User.Read`` scope).

        The sign-in name (``userPrincipalName``) must end in a domain the
        tenant has verified, unlike ``mail``, which a tenant admin can set to
        anything — so only the former may match an existing Kairos account.
        Guests (``#EXT#``) have no such guarantee.
        """
        provider = cls({}, dict(token), config)
        try:
            me = provider.request("GET", f"{provider.base}/me").json()
        finally:
            provider.close()
        upn = str(me.get("userPrincipalName") or "")
        mail = str(me.get("mail") or upn)
        verified = upn if "@" in upn and "#EXT#" not in upn.upper() else ""
        return Account(
            subject=str(me.get("id") or ""),
            email=mail.lower(),
            name=str(me.get("displayName") or ""),
            verified_email=verified.lower(),
        )

    # -- reading ------------------------------------------------------------------

    def _pages(self, url: str, params: Mapping[str, Any] | None = None) -> Iterator[dict]:
        """Items of every page, following ``@odata.nextLink`` — on Graph's own host only."""
        origin = urlsplit(self.base)[:2]
        headers = {"Prefer": PREFER_UTC}
        next_url: str | None = url
        next_params = params
        while next_url:
            page = self.request("GET", next_url, params=next_params, headers=headers).json()
            yield from page.get("value", [])
            next_url = page.get("@odata.nextLink")
            next_params = None  # the link carries the query
            if next_url and urlsplit(next_url)[:2] != origin:
                raise ProviderError("Graph sent a paging link to another host")

    def list_calendars(self) -> list[RemoteCalendar]:
        params = {"$top": 100, "$select": "id,name,canEdit,isDefaultCalendar"}
        return [
            RemoteCalendar(
                external_id=item["id"],
                name=item.get("name") or "Calendar",
                writable=bool(item.get("canEdit")),
                timezone="",
                primary=bool(item.get("isDefaultCalendar")),
            )
            for item in self._pages(f"{self.base}/me/calendars", params)
        ]

    def busy(
        self, calendars: Sequence[CalendarRef], start: datetime, end: datetime
    ) -> dict[str, list[BusyInterval]]:
        tentative_busy = bool(self.config.get("TENTATIVE_IS_BUSY", True))
        out: dict[str, list[BusyInterval]] = {}
        for ref in calendars:
            url = f"{self.base}/me/calendars/{quote(ref.external_id, safe='')}/calendarView"
            params = {
                "startDateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endDateTime": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "$select": VIEW_FIELDS,
                "$top": 250,
            }
            spans = []
            for item in self._pages(url, params):
                if not _is_busy(item, tentative_busy, ref.all_busy):
                    continue
                span = _span(item, ref.timezone)
                if span is not None:
                    spans.append(span)
            out[ref.external_id] = spans
        return out

    # -- writing ------------------------------------------------------------------

    def _body(self, event: EventData) -> dict[str, Any]:
        text = event.description
        if event.location and event.location not in text:
            text = f"{text}\n\n{event.location}".strip()
        body: dict[str, Any] = {
            "subject": event.summary,
            "body": {"contentType": "text", "content": text},
            "start": graph_time(event.start),
            "end": graph_time(event.end),
            "showAs": "busy",
            "isReminderOn": True,
            "attendees": [
                {"emailAddress": {"address": email, "name": name}, "type": "required"}
                for name, email in event.attendees()
            ],
        }
        if event.location:
            body["location"] = {"displayName": event.location}
        if event.conference == "teams":
            body["isOnlineMeeting"] = True
            body["onlineMeetingProvider"] = "teamsForBusiness"
        return body

    @staticmethod
    def _written(data: Mapping[str, Any], event: EventData, default_id: str) -> WrittenEvent:
        """The write's answer, with the Teams join link when one was asked for."""
        written = WrittenEvent(str(data.get("id", default_id)), str(data.get("changeKey", "")))
        if event.conference != "teams":
            return written
        link = str((data.get("onlineMeeting") or {}).get("joinUrl") or "")
        if link:
            return replace(written, join_url=link)
        return replace(
            written,
            conference_error="Microsoft added no Teams meeting (the account may not have Teams)",
        )

    def create_event(self, calendar_id: str, event: EventData) -> WrittenEvent:
        body = {**self._body(event), "transactionId": transaction_id(event.ical_uid)}
        data = self.request(
            "POST", f"{self.base}/me/calendars/{quote(calendar_id, safe='')}/events", json=body
        ).json()
        return self._written(data, event, data["id"])

    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, etag: str = ""
    ) -> WrittenEvent:
        # No If-Match: the host's own edits (a note, a colour) must not block a reschedule.
        data = self.request(
            "PATCH", f"{self.base}/me/events/{quote(external_id, safe='')}", json=self._body(event)
        ).json()
        return self._written(data, event, external_id)

    def delete_event(self, calendar_id: str, external_id: str, etag: str = "") -> None:
        try:
            self.request("DELETE", f"{self.base}/me/events/{quote(external_id, safe='')}")
        except NotFound:
            return  # already gone is what we wanted


def _is_busy(item: Mapping[str, Any], tentative_busy: bool, all_busy: bool) -> bool:
    if item.get("isCancelled"):
        return False
    if all_busy:
        return True
    show = item.get("showAs", "busy")
    if show in BUSY:
        return True
    if show == "tentative":
        return tentative_busy
    return show not in FREE and show != "unknown"


def _span(item: Mapping[str, Any], zone_name: str) -> BusyInterval | None:
    """One event's busy span; all-day events cover whole days in ``zone_name``.

    Graph reports all-day events as midnight-to-midnight *dates*, floating in
    whatever zone it was asked for, so only their dates are read.
    """
    try:
        if item.get("isAllDay"):
            try:
                zone = ZoneInfo(zone_name or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                zone = ZoneInfo("UTC")
            first = date.fromisoformat(str(item["start"]["dateTime"])[:10])
            last = date.fromisoformat(str(item["end"]["dateTime"])[:10])
            start = datetime.combine(first, datetime.min.time(), zone)
            end = datetime.combine(last, datetime.min.time(), zone)
        else:
            start, end = parse_graph_time(item["start"]), parse_graph_time(item["end"])
    except (KeyError, ValueError):
        return None
    if end <= start:
        return None
    return BusyInterval(start, end, str(item.get("id", "")))
