"""A fake Google Calendar API v3 (plus Google's OAuth endpoints) in one process.

``python -m tests.fakes.google_server --port 0`` prints ``PORT <n>``; then
``http://127.0.0.1:<n>/calendar/v3`` is ``GOOGLE_API_BASE``,
``…/o/oauth2/v2/auth`` the authorize URL and ``…/token`` the token URL.

Implemented exactly as far as the adapter uses Google, with Google's request
and response shapes: ``calendarList.list`` (paged), ``freebusy.query``
(per-calendar ``errors``, at most 50 calendars and 90 days), ``events.list``
(``timeMin``/``timeMax``, ``singleEvents``, paging, ``nextSyncToken`` /
``syncToken`` with deletions, 410 ``fullSyncRequired``), ``events.instances``,
``events.get``, ``events.insert`` (client ids: base32hex, 5–1024 characters,
409 ``duplicate`` when taken, deleted events included), ``events.patch`` and
``events.delete`` (410 ``deleted`` the second time). Scopes are enforced the
way Google does: ``calendar.events.owned`` reads and writes only calendars
the user owns.

Admin (besides :mod:`tests.fakes.common` and the OAuth ones):
``POST /_admin/reset``; ``POST /_admin/calendars`` ``{"owner", "id", "summary",
"timeZone", "primary", "roles": {email: accessRole}}``; ``PUT
/_admin/calendars/<id>/events`` with a list of event resources (replaces the
calendar's events; missing ones become deletions a sync token reports);
``GET /_admin/calendars/<id>/events`` (live events as stored);
``POST /_admin/sync_tokens/expire`` (every sync token answers 410);
``POST /_admin/page_size`` ``{"size": n}``; ``POST /_admin/conferences``
``{"mode": "success" | "failure" | "pending" | "pending_once" | "none"}`` — how
Meet create requests end (``pending_once``: pending in the write's answer,
created by the next read; ``none``: no conference, as for accounts without Meet).

Google Meet: with ``conferenceDataVersion=1``, an insert or patch carrying
``conferenceData.createRequest`` (``hangoutsMeet``) gets ``conferenceData``
(``createRequest.status.statusCode``, ``entryPoints``, ``conferenceId``) and a
``hangoutLink``; a create request with the event's current ``requestId`` is
ignored, as Google does; without the parameter ``conferenceData`` is dropped.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from flask import Flask, Response, g, jsonify, request

from tests.fakes.common import FakeProcess, Faults, google_error, serve_cli
from tests.fakes.oauth_server import GOOGLE_SCOPE_PREFIX, OAuthState, oauth_blueprint

S = GOOGLE_SCOPE_PREFIX
EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
FREEBUSY_MAX_DAYS = 90
FREEBUSY_MAX_CALENDARS = 50
EXPANSION_LIMIT = 730  # occurrences of an open-ended series

READ_LIST = {S + "calendar.calendarlist.readonly", S + "calendar.calendarlist", S + "calendar"}
READ_FREEBUSY = {
    S + "calendar.events.freebusy",
    S + "calendar.freebusy",
    S + "calendar.readonly",
    S + "calendar",
}
ALL_EVENTS = {S + "calendar.events", S + "calendar"}
OWNED_EVENTS = {S + "calendar.events.owned"}


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Store:
    """Calendars and events of every test user, with a change sequence for sync tokens."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calendars: dict[str, dict[str, Any]] = {}
            self.events: dict[str, dict[str, dict[str, Any]]] = {}
            self.seq = 0
            self.tombstones: list[tuple[int, str, dict[str, Any]]] = []  # (seq, cal, item)
            self.token_floor = 0  # sync tokens below this answer 410
            self.page_size = 250
            self.inserts: dict[str, int] = {}  # event id → accepted inserts
            self.conference_mode = "success"

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    # -- calendars ----------------------------------------------------------

    def add_calendar(self, data: dict[str, Any]) -> dict[str, Any]:
        owner = data["owner"].lower()
        cal = {
            "id": data.get("id") or owner,
            "summary": data.get("summary") or owner,
            "timeZone": data.get("timeZone", "UTC"),
            "owner": owner,
            "primary": bool(data.get("primary")),
            "roles": {owner: "owner"} | {k.lower(): v for k, v in data.get("roles", {}).items()},
        }
        with self.lock:
            self.calendars[cal["id"]] = cal
            self.events.setdefault(cal["id"], {})
        return cal

    def resolve(self, cal_id: str, email: str) -> dict[str, Any] | None:
        with self.lock:
            if cal_id == "primary":
                for cal in self.calendars.values():
                    if cal["owner"] == email and cal["primary"]:
                        return cal
                return None
            cal = self.calendars.get(cal_id)
            if cal is None or email not in cal["roles"]:
                return None
            return cal

    # -- events ---------------------------------------------------------------

    def put(self, cal_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Store (insert or replace) one event, logging what a sync token must report."""
        with self.lock:
            store = self.events[cal_id]
            old = store.get(event["id"])
            if old is not None and old.get("recurrence"):
                gone = {i["id"] for i in self.instances(cal_id, old)}
                keep = {i["id"] for i in self.instances(cal_id, event)}
                seq = self.tick()
                for instance_id in sorted(gone - keep):
                    item = {"id": instance_id, "status": "cancelled", "recurringEventId": old["id"]}
                    self.tombstones.append((seq, cal_id, item))
            event["_seq"] = self.tick()
            event["etag"] = f'"{event["_seq"]}{uuid.uuid4().int % 10**9}"'
            event["updated"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            store[event["id"]] = event
            return event

    def replace_all(self, cal_id: str, events: list[dict[str, Any]]) -> None:
        with self.lock:
            wanted = {e["id"] for e in events}
            for event_id, old in list(self.events[cal_id].items()):
                if event_id not in wanted and old.get("status") != "cancelled":
                    self.put(cal_id, {**old, "status": "cancelled"})
            for event in events:
                body = {"status": "confirmed", "iCalUID": event["id"] + "@google.com"} | event
                self.put(cal_id, body)

    def zone(self, cal_id: str) -> ZoneInfo:
        return ZoneInfo(self.calendars[cal_id]["timeZone"])

    def bounds(self, cal_id: str, event: dict[str, Any]) -> tuple[datetime, datetime]:
        """An event's [start, end) as aware instants (all-day: midnights in the calendar zone)."""
        zone = self.zone(cal_id)

        def point(p: dict[str, Any]) -> datetime:
            if "date" in p:
                return datetime.combine(date.fromisoformat(p["date"]), datetime.min.time(), zone)
            value = parse_time(p["dateTime"])
            if value.tzinfo is None:
                value = value.replace(tzinfo=ZoneInfo(p.get("timeZone") or zone.key))
            return value

        return point(event["start"]), point(event["end"])

    def instances(self, cal_id: str, master: dict[str, Any]) -> list[dict[str, Any]]:
        """A series expanded the way ``singleEvents=true`` shows it (exceptions applied)."""
        if not master.get("recurrence"):
            return [master]
        if master.get("status") == "cancelled":
            return []
        all_day = "date" in master["start"]
        start, end = self.bounds(cal_id, master)
        zone = (
            self.zone(cal_id)
            if all_day
            else ZoneInfo(master["start"].get("timeZone") or self.zone(cal_id).key)
        )
        local = start.astimezone(zone).replace(tzinfo=None)
        duration = end - start
        rules, exdates = [], set()
        for line in master["recurrence"]:
            name, _, value = line.partition(":")
            if name.startswith("RRULE"):
                rules.append(value)
            elif name.startswith("EXDATE"):
                for part in value.split(","):
                    exdates.add(_local_stamp(name, part, zone))
        exceptions = {
            _original_key(e, zone): e
            for e in self.events[cal_id].values()
            if e.get("recurringEventId") == master["id"]
        }
        out = []
        for rule in rules:
            occurrences = rrulestr(rule, dtstart=local, cache=False)
            for n, occ in enumerate(occurrences):
                if n >= EXPANSION_LIMIT:
                    break
                key = occ.strftime("%Y%m%d") if all_day else occ.strftime("%Y%m%dT%H%M%S")
                if key in exdates:
                    continue
                begin = occ.replace(tzinfo=zone)
                instance_id = instance_event_id(master["id"], occ.date() if all_day else begin)
                if key in exceptions:
                    exception = exceptions[key]
                    if exception.get("status") == "cancelled":
                        continue
                    out.append({**exception, "id": instance_id, "recurringEventId": master["id"]})
                    continue
                inst = {k: v for k, v in master.items() if k not in ("recurrence", "_seq", "etag")}
                inst["id"] = instance_id
                inst["recurringEventId"] = master["id"]
                if all_day:
                    inst["start"] = {"date": occ.date().isoformat()}
                    inst["end"] = {"date": (occ.date() + duration).isoformat()}
                    inst["originalStartTime"] = {"date": occ.date().isoformat()}
                else:
                    inst["start"] = {"dateTime": rfc3339(begin), "timeZone": zone.key}
                    inst["end"] = {"dateTime": rfc3339(begin + duration), "timeZone": zone.key}
                    inst["originalStartTime"] = {"dateTime": rfc3339(begin), "timeZone": zone.key}
                inst["_seq"] = master["_seq"]
                out.append(inst)
        return out

    def expanded(self, cal_id: str, include_cancelled: bool = False) -> list[dict[str, Any]]:
        out = []
        for event in self.events[cal_id].values():
            if event.get("recurringEventId"):
                continue  # exceptions are listed through their series
            if event.get("status") == "cancelled" and not include_cancelled:
                continue
            out.extend(self.instances(cal_id, event))
        return out

    def is_busy(self, cal: dict[str, Any], event: dict[str, Any]) -> bool:
        if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
            return False
        for attendee in event.get("attendees", []):
            if attendee.get("email", "").lower() == cal["owner"]:
                return attendee.get("responseStatus") != "declined"
        return True


def instance_event_id(master_id: str, original: datetime | date) -> str:
    """Google's id of one occurrence: the series id, ``_``, the original start in UTC."""
    if isinstance(original, datetime):
        return f"{master_id}_{original.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{master_id}_{original.strftime('%Y%m%d')}"


def _local_stamp(name: str, value: str, zone: ZoneInfo) -> str:
    """An EXDATE value as the local key instances use (``YYYYMMDDTHHMMSS`` or ``YYYYMMDD``)."""
    if "VALUE=DATE" in name and "T" not in value:
        return value
    if value.endswith("Z"):
        instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return instant.astimezone(zone).strftime("%Y%m%dT%H%M%S")
    return value


def _original_key(event: dict[str, Any], zone: ZoneInfo) -> str:
    original = event.get("originalStartTime", {})
    if "date" in original:
        return original["date"].replace("-", "")
    value = parse_time(original["dateTime"])
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(original.get("timeZone") or zone.key))
    return value.astimezone(zone).strftime("%Y%m%dT%H%M%S")


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "calendar#event"} | {k: v for k, v in event.items() if not k.startswith("_")}


def _meet_code() -> str:
    letters = uuid.uuid4().hex
    word = "".join(chr(ord("a") + int(c, 16) % 26) for c in letters)
    return f"{word[:3]}-{word[3:7]}-{word[7:10]}"


def _conference(mode: str, request_id: str) -> tuple[dict[str, Any], str]:
    """(conferenceData, hangoutLink) of a create request that ends as ``mode``."""
    status = "pending" if mode.startswith("pending") else mode
    data: dict[str, Any] = {
        "createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
            "status": {"statusCode": status},
        },
        "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
    }
    if status != "success":
        return data, ""
    code = _meet_code()
    link = f"https://meet.google.com/{code}"
    data["conferenceId"] = code
    data["entryPoints"] = [
        {"entryPointType": "video", "uri": link, "label": f"meet.google.com/{code}"}
    ]
    return data, link


def _apply_conference(body: dict[str, Any], existing: dict[str, Any] | None, mode: str) -> None:
    """Google's handling of ``conferenceData`` in an insert / patch body (see the docstring)."""
    if request.args.get("conferenceDataVersion") != "1":
        body.pop("conferenceData", None)
        body.pop("hangoutLink", None)
        return
    create = (body.get("conferenceData") or {}).get("createRequest")
    if not create:
        return
    current = (existing or {}).get("conferenceData") or {}
    if (current.get("createRequest") or {}).get("requestId") == create.get("requestId"):
        body.pop("conferenceData")  # the same request again: nothing new happens
        return
    if mode == "none":
        body.pop("conferenceData")
        return
    data, link = _conference(mode, str(create.get("requestId", "")))
    body["conferenceData"] = data
    if link:
        body["hangoutLink"] = link
    if mode == "pending_once":
        body["_resolve_conference"] = True


def _token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()


def _untoken(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text[4:]) if text.startswith("seq:") and text[4:].isdigit() else None


def create_app(client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    oauth = OAuthState("google", client_id, client_secret)
    store = Store()
    faults = Faults("google")
    faults.install(app, store.reset, oauth.reset)
    app.register_blueprint(oauth_blueprint(oauth))
    api = "/calendar/v3"

    def authed(scopes_any: set[str]) -> Response | None:
        found = oauth.check_access(request.headers.get("Authorization", ""))
        if found is None:
            return google_error(401)
        user, scopes = found
        if not scopes & scopes_any:
            return google_error(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        g.user, g.scopes = user, scopes
        return None

    def calendar_or_404(cal_id: str) -> dict[str, Any] | Response:
        cal = store.resolve(cal_id, g.user.email)
        return cal if cal is not None else google_error(404)

    def may_write(cal: dict[str, Any]) -> bool:
        role = cal["roles"].get(g.user.email)
        if g.scopes & ALL_EVENTS:
            return role in ("owner", "writer")
        return bool(g.scopes & OWNED_EVENTS) and role == "owner"

    def may_read_events(cal: dict[str, Any]) -> bool:
        role = cal["roles"].get(g.user.email)
        if g.scopes & (ALL_EVENTS | {S + "calendar.readonly", S + "calendar.events.readonly"}):
            return role in ("owner", "writer", "reader")
        return bool(g.scopes & OWNED_EVENTS) and role == "owner"

    # -- calendarList -------------------------------------------------------

    @app.get(f"{api}/users/me/calendarList")
    def calendar_list() -> Any:
        if (denied := authed(READ_LIST)) is not None:
            return denied
        with store.lock:
            mine = [c for c in store.calendars.values() if g.user.email in c["roles"]]
        items = [
            {
                "kind": "calendar#calendarListEntry",
                "etag": f'"{abs(hash(c["id"])) % 10**12}"',
                "id": c["id"],
                "summary": c["summary"],
                "timeZone": c["timeZone"],
                "accessRole": c["roles"][g.user.email],
                **({"primary": True} if c["primary"] and c["owner"] == g.user.email else {}),
            }
            for c in mine
        ]
        size = min(int(request.args.get("maxResults", 100)), store.page_size)
        offset = int(request.args.get("pageToken") or 0)
        body: dict[str, Any] = {
            "kind": "calendar#calendarList",
            "etag": '"p1"',
            "items": items[offset : offset + size],
        }
        if offset + size < len(items):
            body["nextPageToken"] = str(offset + size)
        else:
            body["nextSyncToken"] = _token(store.seq)
        return jsonify(body)

    # -- freeBusy -----------------------------------------------------------

    @app.post(f"{api}/freeBusy")
    def free_busy() -> Any:
        if (denied := authed(READ_FREEBUSY)) is not None:
            return denied
        data = request.get_json(force=True)
        try:
            tmin, tmax = parse_time(data["timeMin"]), parse_time(data["timeMax"])
        except (KeyError, ValueError):
            return google_error(400, "required", "Missing timeMin parameter.")
        if tmax <= tmin:
            return google_error(400, "timeRangeEmpty", "The specified time range is empty.")
        if tmax - tmin > timedelta(days=FREEBUSY_MAX_DAYS):
            return google_error(400, "timeRangeTooLong", "The requested time range is too long.")
        items = data.get("items", [])
        if len(items) > FREEBUSY_MAX_CALENDARS:
            return google_error(400, "tooManyCalendarsRequested", "Too many calendars requested.")
        calendars: dict[str, Any] = {}
        with store.lock:
            for item in items:
                cal = store.resolve(item["id"], g.user.email)
                if cal is None:
                    calendars[item["id"]] = {
                        "errors": [{"domain": "global", "reason": "notFound"}],
                        "busy": [],
                    }
                    continue
                spans = []
                for ev in store.expanded(cal["id"]):
                    if not store.is_busy(cal, ev):
                        continue
                    s, e = store.bounds(cal["id"], ev)
                    if s < tmax and e > tmin:
                        spans.append((max(s, tmin), min(e, tmax)))
                merged: list[list[datetime]] = []
                for s, e in sorted(spans):
                    if merged and s <= merged[-1][1]:
                        merged[-1][1] = max(merged[-1][1], e)
                    else:
                        merged.append([s, e])
                calendars[item["id"]] = {
                    "busy": [{"start": rfc3339(s), "end": rfc3339(e)} for s, e in merged]
                }
        return jsonify(
            {
                "kind": "calendar#freeBusy",
                "timeMin": rfc3339(tmin),
                "timeMax": rfc3339(tmax),
                "calendars": calendars,
            }
        )

    # -- events ---------------------------------------------------------------

    def page(items: list[dict[str, Any]], extra: dict[str, Any]) -> Response:
        size = min(int(request.args.get("maxResults", 250)), store.page_size)
        offset = int(request.args.get("pageToken") or 0)
        body = {"kind": "calendar#events", **extra, "items": items[offset : offset + size]}
        if offset + size < len(items):
            body["nextPageToken"] = str(offset + size)
        else:
            body["nextSyncToken"] = _token(store.seq)
        return jsonify(body)

    @app.get(f"{api}/calendars/<path:cal_id>/events")
    def events_list(cal_id: str) -> Any:
        if (denied := authed(ALL_EVENTS | OWNED_EVENTS | {S + "calendar.readonly"})) is not None:
            return denied
        cal = calendar_or_404(cal_id)
        if isinstance(cal, Response):
            return cal
        if not may_read_events(cal):
            return google_error(403, "forbidden", "Forbidden")
        single = request.args.get("singleEvents") == "true"
        extra = {
            "summary": cal["summary"],
            "timeZone": cal["timeZone"],
            "accessRole": cal["roles"][g.user.email],
            "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        sync = request.args.get("syncToken")
        with store.lock:
            if sync:
                if request.args.get("timeMin") or request.args.get("timeMax"):
                    return google_error(
                        400, "invalid", "Sync token cannot be used with time bounds."
                    )
                since = _untoken(sync)
                if since is None or since < store.token_floor:
                    return faults.error(410, request.path)
                items = []
                for event in store.events[cal["id"]].values():
                    if event["_seq"] <= since:
                        continue
                    if event.get("status") == "cancelled":
                        items.append({"id": event["id"], "status": "cancelled"})
                    elif single and event.get("recurrence"):
                        items.extend(store.instances(cal["id"], event))
                    elif single and event.get("recurringEventId"):
                        master = store.events[cal["id"]].get(event["recurringEventId"])
                        if master is not None:
                            key = _original_key(event, store.zone(cal["id"]))
                            items.extend(
                                i
                                for i in store.instances(cal["id"], master)
                                if _original_key(i, store.zone(cal["id"])) == key
                            )
                    else:
                        items.append(event)
                items += [
                    item for seq, c, item in store.tombstones if c == cal["id"] and seq > since
                ]
                return page([_public(i) for i in items], extra)
            tmin = request.args.get("timeMin")
            tmax = request.args.get("timeMax")
            show_deleted = request.args.get("showDeleted") == "true"
            source = (
                store.expanded(cal["id"], show_deleted)
                if single
                else [
                    e
                    for e in store.events[cal["id"]].values()
                    if show_deleted or e.get("status") != "cancelled"
                ]
            )
            items = []
            for event in source:
                if event.get("status") != "cancelled" and (tmin or tmax):
                    s, e = store.bounds(cal["id"], event)
                    if tmin and e <= parse_time(tmin):
                        continue
                    if tmax and s >= parse_time(tmax):
                        continue
                items.append(event)
            items.sort(
                key=lambda e: store.bounds(cal["id"], e)[0].timestamp() if "start" in e else 0.0
            )
            return page([_public(i) for i in items], extra)

    @app.get(f"{api}/calendars/<path:cal_id>/events/<event_id>/instances")
    def events_instances(cal_id: str, event_id: str) -> Any:
        if (denied := authed(ALL_EVENTS | OWNED_EVENTS)) is not None:
            return denied
        cal = calendar_or_404(cal_id)
        if isinstance(cal, Response):
            return cal
        with store.lock:
            master = store.events[cal["id"]].get(event_id)
            if master is None:
                return google_error(404)
            if master.get("status") == "cancelled":
                return google_error(410)
            items = store.instances(cal["id"], master)
            return page([_public(i) for i in items], {"timeZone": cal["timeZone"]})

    @app.get(f"{api}/calendars/<path:cal_id>/events/<event_id>")
    def events_get(cal_id: str, event_id: str) -> Any:
        if (denied := authed(ALL_EVENTS | OWNED_EVENTS)) is not None:
            return denied
        cal = calendar_or_404(cal_id)
        if isinstance(cal, Response):
            return cal
        with store.lock:
            event = store.events[cal["id"]].get(event_id)
            if event is None:
                return google_error(404)
            if event.pop("_resolve_conference", False):
                request_id = event["conferenceData"]["createRequest"]["requestId"]
                data, link = _conference("success", request_id)
                event = store.put(cal["id"], {**event, "conferenceData": data, "hangoutLink": link})
            return jsonify(_public(event))

    @app.post(f"{api}/calendars/<path:cal_id>/events")
    def events_insert(cal_id: str) -> Any:
        if (denied := authed(ALL_EVENTS | OWNED_EVENTS)) is not None:
            return denied
        cal = calendar_or_404(cal_id)
        if isinstance(cal, Response):
            return cal
        if not may_write(cal):
            return google_error(403, "forbidden", "Forbidden")
        body = request.get_json(force=True)
        if "start" not in body or "end" not in body:
            return google_error(400, "required", "Missing end time.")
        event_id = body.get("id") or uuid.uuid4().hex
        if not EVENT_ID_RE.fullmatch(event_id):
            return google_error(400, "invalid", "Invalid resource id value.")
        with store.lock:
            if event_id in store.events[cal["id"]]:
                return google_error(409)
            event = {
                "status": "confirmed",
                "iCalUID": f"{event_id}@google.com",
                "sequence": 0,
                "htmlLink": f"https://calendar.google.com/event?eid={event_id}",
                "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "creator": {"email": g.user.email, "self": True},
                "organizer": {"email": cal["id"], "self": True},
            } | body
            event["id"] = event_id
            _apply_conference(event, None, store.conference_mode)
            store.inserts[event_id] = store.inserts.get(event_id, 0) + 1
            return jsonify(_public(store.put(cal["id"], event)))

    @app.patch(f"{api}/calendars/<path:cal_id>/events/<event_id>")
    def events_patch(cal_id: str, event_id: str) -> Any:
        if (denied := authed(ALL_EVENTS | OWNED_EVENTS)) is not None:
            return denied
        cal = calendar_or_404(cal_id)
        if isinstance(cal, Response):
            return cal
        if not may_write(cal):
            return google_error(403, "forbidden", "Forbidden")
        with store.lock:
            event = store.events[cal["id"]].get(event_id)
            if event is None:
                return google_error(404)
            match = request.headers.get("If-Match")
            if match and match != event["etag"]:
                return google_error(412)
            body = request.get_json(force=True)
            body.pop("id", None)
            _apply_conference(body, event, store.conference_mode)
            return jsonify(_public(store.put(cal["id"], {**event, **body})))

    @app.delete(f"{api}/calendars/<path:cal_id>/events/<event_id>")
    def events_delete(cal_id: str, event_id: str) -> Any:
        if (denied := authed(ALL_EVENTS | OWNED_EVENTS)) is not None:
            return denied
        cal = calendar_or_404(cal_id)
        if isinstance(cal, Response):
            return cal
        if not may_write(cal):
            return google_error(403, "forbidden", "Forbidden")
        with store.lock:
            event = store.events[cal["id"]].get(event_id)
            if event is None:
                return google_error(404)
            if event.get("status") == "cancelled":
                return google_error(410)
            store.put(cal["id"], {**event, "status": "cancelled"})
        return Response(status=204)

    # -- admin ------------------------------------------------------------------

    @app.post("/_admin/calendars")
    def admin_calendar() -> Any:
        return jsonify(store.add_calendar(request.get_json(force=True)))

    @app.route("/_admin/calendars/<path:cal_id>/events", methods=["GET", "PUT"])
    def admin_events(cal_id: str) -> Any:
        with store.lock:
            if cal_id not in store.events:
                return google_error(404)
            if request.method == "PUT":
                store.replace_all(cal_id, request.get_json(force=True))
            live = [
                _public(e) for e in store.events[cal_id].values() if e.get("status") != "cancelled"
            ]
            return jsonify({"items": live, "inserts": store.inserts})

    @app.post("/_admin/sync_tokens/expire")
    def admin_expire_tokens() -> Any:
        with store.lock:
            store.token_floor = store.tick()
        return jsonify({"ok": True})

    @app.post("/_admin/page_size")
    def admin_page_size() -> Any:
        store.page_size = int(request.get_json(force=True)["size"])
        return jsonify({"ok": True})

    @app.post("/_admin/conferences")
    def admin_conferences() -> Any:
        store.conference_mode = str(request.get_json(force=True)["mode"])
        return jsonify({"ok": True})

    return app


if __name__ == "__main__":
    serve_cli(lambda args: create_app(args.client_id, args.client_secret))


class GoogleFake(FakeProcess):
    """Test-side handle of this server (started by the ``fake_google`` fixtures)."""

    CLIENT_ID = "kairos-test.apps.googleusercontent.com"
    CLIENT_SECRET = "google-test-secret"

    def __init__(self) -> None:
        super().__init__("tests.fakes.google_server", self.CLIENT_ID, self.CLIENT_SECRET)

    def config(self) -> dict[str, str]:
        """The Kairos settings that point at this server."""
        return {
            "GOOGLE_API_BASE": self.url + "/calendar/v3",
            "GOOGLE_AUTHORIZE_URL": self.url + "/o/oauth2/v2/auth",
            "GOOGLE_TOKEN_URL": self.url + "/token",
            "GOOGLE_CLIENT_ID": self.CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": self.CLIENT_SECRET,
        }

    def add_calendar(
        self,
        owner: str = "test.user@example.com",
        calendar_id: str = "",
        summary: str = "",
        time_zone: str = "Europe/Berlin",
        primary: bool = False,
        roles: dict[str, str] | None = None,
    ) -> str:
        cal = self.admin(
            "POST",
            "/_admin/calendars",
            {
                "owner": owner,
                "id": calendar_id,
                "summary": summary,
                "timeZone": time_zone,
                "primary": primary,
                "roles": roles or {},
            },
        )
        return cal["id"]

    def put_events(self, calendar_id: str, events: list[dict[str, Any]]) -> None:
        self.admin("PUT", f"/_admin/calendars/{quote(calendar_id, safe='')}/events", events)

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Live (not deleted) events as the server stores them."""
        path = f"/_admin/calendars/{quote(calendar_id, safe='')}/events"
        return self.admin("GET", path)["items"]

    def inserts(self, calendar_id: str) -> dict[str, int]:
        """Accepted inserts per event id (a duplicate-id insert is refused, not counted)."""
        path = f"/_admin/calendars/{quote(calendar_id, safe='')}/events"
        return self.admin("GET", path)["inserts"]

    def expire_sync_tokens(self) -> None:
        self.admin("POST", "/_admin/sync_tokens/expire")

    def page_size(self, size: int) -> None:
        self.admin("POST", "/_admin/page_size", {"size": size})

    def conferences(self, mode: str) -> None:
        """How Meet create requests end from now on (see the module docstring)."""
        self.admin("POST", "/_admin/conferences", {"mode": mode})
