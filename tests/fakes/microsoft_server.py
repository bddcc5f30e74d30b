"""A fake Microsoft Graph v1.0 (calendar part) plus the Microsoft identity platform.

``python -m tests.fakes.microsoft_server --port 0`` prints ``PORT <n>``; then
``http://127.0.0.1:<n>/v1.0`` is ``MS_GRAPH_BASE`` and ``http://127.0.0.1:<n>``
is ``MS_LOGIN_BASE`` (``/{tenant}/oauth2/v2.0/authorize|token``; refresh
tokens rotate and the old one dies at once).

Implemented as far as the adapter uses Graph, in Graph's shapes: ``GET /me``,
``GET /me/calendars`` (``canEdit``, ``isDefaultCalendar``, ``$top`` paging
through ``@odata.nextLink``), ``GET /me/calendars/{id}/calendarView``
(occurrences of series expanded, exceptions applied, ``showAs``,
``isCancelled``, ``isAllDay``, times in the zone the ``Prefer:
outlook.timezone`` header asks for, default page of 10 with
``@odata.nextLink``), ``POST /me/calendars/{id}/events`` (``transactionId``:
a second POST with the same id returns the first event instead of a copy),
``GET|PATCH|DELETE /me/events/{id}``. Errors are Graph's ``{"error": {"code",
"message"}}``; 429 carries ``Retry-After``.

Admin: ``POST /_admin/reset``; ``POST /_admin/calendars`` ``{"owner", "id",
"name", "canEdit", "isDefaultCalendar"}``; ``PUT /_admin/calendars/<id>/events``
with event resources (series masters may carry ``_exdates``: local start
times to leave out; exceptions carry ``seriesMasterId`` and
``_originalStart``); ``GET /_admin/calendars/<id>/events``;
``POST /_admin/mailbox`` ``{"email", "timeZone"}`` (the zone all-day events
float in); ``POST /_admin/page_size``; ``POST /_admin/teams`` ``{"email",
"enabled"}`` (a mailbox without Teams, like a personal Outlook.com account).

Teams: an event created or patched with ``isOnlineMeeting: true`` and
``onlineMeetingProvider: teamsForBusiness`` gets ``onlineMeeting.joinUrl``
(kept on later patches); for a mailbox without Teams the flag stays false and
no meeting is made — silently, as Graph does.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from flask import Flask, Response, g, jsonify, request

from tests.fakes.common import FakeProcess, Faults, graph_error, serve_cli
from tests.fakes.oauth_server import OAuthState, oauth_blueprint

API = "/v1.0"
EXPANSION_LIMIT = 730
READ = {"Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic"}
WRITE = {"Calendars.ReadWrite"}
PREFER_TZ = re.compile(r'outlook\.timezone\s*=\s*"([^"]+)"')
DAY_CODES = {
    "monday": "MO",
    "tuesday": "TU",
    "wednesday": "WE",
    "thursday": "TH",
    "friday": "FR",
    "saturday": "SA",
    "sunday": "SU",
}


def graph_time(value: datetime) -> str:
    """Graph's dateTime text: no offset, seven fractional digits."""
    return value.strftime("%Y-%m-%dT%H:%M:%S") + ".0000000"


def parse_dtz(value: dict[str, Any]) -> datetime:
    """A ``dateTimeTimeZone`` as an aware instant."""
    text = value["dateTime"]
    if "." in text:
        text = text.split(".", 1)[0]
    naive = datetime.fromisoformat(text)
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))


def to_rrule(recurrence: dict[str, Any]) -> str:
    """A Graph ``patternedRecurrence`` (the kinds the adapter's hosts create) as an RRULE."""
    pattern, rng = recurrence["pattern"], recurrence["range"]
    kind = pattern["type"]
    parts = [f"INTERVAL={int(pattern.get('interval', 1))}"]
    if kind == "daily":
        parts.insert(0, "FREQ=DAILY")
    elif kind == "weekly":
        parts.insert(0, "FREQ=WEEKLY")
        days = [DAY_CODES[d.lower()] for d in pattern.get("daysOfWeek", [])]
        if days:
            parts.append("BYDAY=" + ",".join(days))
    elif kind == "absoluteMonthly":
        parts += ["FREQ=MONTHLY", f"BYMONTHDAY={pattern['dayOfMonth']}"]
    elif kind == "absoluteYearly":
        parts += [
            "FREQ=YEARLY",
            f"BYMONTH={pattern['month']}",
            f"BYMONTHDAY={pattern['dayOfMonth']}",
        ]
    else:
        raise ValueError(f"pattern {kind} is not supported by this fake")
    if rng["type"] == "numbered":
        parts.append(f"COUNT={int(rng['numberOfOccurrences'])}")
    elif rng["type"] == "endDate":
        parts.append("UNTIL=" + rng["endDate"].replace("-", "") + "T235959")
    return ";".join(parts)


class Mailboxes:
    """Calendars and events of every test user."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calendars: dict[str, dict[str, Any]] = {}
            self.events: dict[str, dict[str, Any]] = {}  # event id → event (with _calendar)
            self.zones: dict[str, str] = {}  # mailbox → zone all-day events float in
            self.page_size = 1000
            self.posts: dict[str, int] = {}  # transactionId → POSTs seen
            self.no_teams: set[str] = set()  # mailboxes that cannot have Teams meetings

    def add_calendar(self, data: dict[str, Any]) -> dict[str, Any]:
        owner = data["owner"].lower()
        cal = {
            "id": data.get("id") or "AAMk" + uuid.uuid4().hex,
            "name": data.get("name", "Calendar"),
            "color": "auto",
            "canEdit": bool(data.get("canEdit", True)),
            "canShare": True,
            "canViewPrivateItems": True,
            "isDefaultCalendar": bool(data.get("isDefaultCalendar", False)),
            "changeKey": uuid.uuid4().hex[:16],
            "owner": {"name": data.get("ownerName", owner), "address": owner},
            "_mailbox": owner,
        }
        with self.lock:
            self.calendars[cal["id"]] = cal
        return cal

    def zone(self, mailbox: str) -> ZoneInfo:
        return ZoneInfo(self.zones.get(mailbox, "UTC"))

    def stamp(self, event: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        event["changeKey"] = uuid.uuid4().hex[:20]
        event["@odata.etag"] = f'W/"{event["changeKey"]}"'
        event["lastModifiedDateTime"] = now
        event.setdefault("createdDateTime", now)
        return event

    def of_calendar(self, cal_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if e["_calendar"] == cal_id]

    def bounds(self, event: dict[str, Any], mailbox: str) -> tuple[datetime, datetime]:
        if event.get("isAllDay"):
            zone = self.zone(mailbox)
            start = datetime.combine(
                date.fromisoformat(event["start"]["dateTime"][:10]), datetime.min.time(), zone
            )
            end = datetime.combine(
                date.fromisoformat(event["end"]["dateTime"][:10]), datetime.min.time(), zone
            )
            return start, end
        return parse_dtz(event["start"]), parse_dtz(event["end"])

    def occurrences(self, master: dict[str, Any], mailbox: str) -> list[dict[str, Any]]:
        all_day = bool(master.get("isAllDay"))
        zone_name = master["recurrence"]["range"].get("recurrenceTimeZone") or master["start"].get(
            "timeZone", "UTC"
        )
        zone = self.zone(mailbox) if all_day else ZoneInfo(zone_name)
        start, end = self.bounds(master, mailbox)
        local = start.astimezone(zone).replace(tzinfo=None)
        duration = end - start
        skip = set(master.get("_exdates", []))
        exceptions = {
            e["_originalStart"]: e
            for e in self.events.values()
            if e.get("seriesMasterId") == master["id"]
        }
        out = []
        for n, occ in enumerate(
            rrulestr(to_rrule(master["recurrence"]), dtstart=local, cache=False)
        ):
            if n >= EXPANSION_LIMIT:
                break
            key = occ.isoformat()
            if key in skip:
                continue
            if key in exceptions:
                if not exceptions[key].get("_deleted"):
                    out.append(exceptions[key])
                continue
            begin = occ.replace(tzinfo=zone)
            inst = {k: v for k, v in master.items() if k not in ("recurrence", "_exdates")}
            inst["id"] = f"{master['id']}_OCC{occ.strftime('%Y%m%d%H%M')}"
            inst["type"] = "occurrence"
            inst["seriesMasterId"] = master["id"]
            tz = "UTC"
            inst["start"] = {"dateTime": graph_time(begin.astimezone(UTC)), "timeZone": tz}
            inst["end"] = {
                "dateTime": graph_time((begin + duration).astimezone(UTC)),
                "timeZone": tz,
            }
            if all_day:
                inst["start"] = {
                    "dateTime": occ.strftime("%Y-%m-%dT00:00:00.0000000"),
                    "timeZone": tz,
                }
                stop = occ.date() + timedelta(days=duration.days or 1)
                inst["end"] = {
                    "dateTime": stop.strftime("%Y-%m-%dT00:00:00.0000000"),
                    "timeZone": tz,
                }
            out.append(inst)
        return out


def _online_meeting(event: dict[str, Any], mailbox: str, no_teams: set[str]) -> None:
    """Graph's answer to ``isOnlineMeeting`` (see the module docstring), applied in place."""
    if not event.get("isOnlineMeeting") or event.get("onlineMeeting"):
        return
    if event.get("onlineMeetingProvider") != "teamsForBusiness" or mailbox in no_teams:
        event["isOnlineMeeting"] = False
        event["onlineMeeting"] = None
        return
    thread = uuid.uuid4().hex
    event["onlineMeeting"] = {
        "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
        f"{thread}%40thread.v2/0?context=%7b%22Tid%22%3a%22{uuid.uuid4()}%22%7d"
    }


def _public(event: dict[str, Any], zone: ZoneInfo | None = None) -> dict[str, Any]:
    """The event as Graph shows it, times converted to the preferred zone."""
    out = {k: v for k, v in event.items() if not k.startswith("_")}
    out["@odata.type"] = "#microsoft.graph.event"
    if zone is not None and not event.get("isAllDay"):
        for key in ("start", "end"):
            if key in event:
                instant = parse_dtz(event[key]).astimezone(zone)
                out[key] = {"dateTime": graph_time(instant), "timeZone": zone.key}
    elif zone is not None:
        for key in ("start", "end"):
            out[key] = {
                "dateTime": event[key]["dateTime"][:10] + "T00:00:00.0000000",
                "timeZone": zone.key,
            }
    return out


def create_app(client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    oauth = OAuthState("microsoft", client_id, client_secret)
    boxes = Mailboxes()
    Faults("microsoft").install(app, boxes.reset, oauth.reset)
    app.register_blueprint(oauth_blueprint(oauth))

    def authed(scopes_any: set[str]) -> Response | None:
        found = oauth.check_access(request.headers.get("Authorization", ""))
        if found is None:
            response = graph_error(401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
            return response
        user, scopes = found
        if not scopes & scopes_any:
            return graph_error(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        g.user, g.scopes = user, scopes
        return None

    def own_calendar(cal_id: str) -> dict[str, Any] | Response:
        cal = boxes.calendars.get(cal_id)
        if cal is None or cal["_mailbox"] != g.user.email:
            return graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return cal

    def own_event(event_id: str) -> dict[str, Any] | Response:
        event = boxes.events.get(event_id)
        if (
            event is None
            or event.get("_deleted")
            or boxes.calendars[event["_calendar"]]["_mailbox"] != g.user.email
        ):
            return graph_error(404)
        return event

    def preferred_zone() -> ZoneInfo:
        found = PREFER_TZ.search(request.headers.get("Prefer", ""))
        try:
            return ZoneInfo(found.group(1)) if found else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def paged(items: list[dict[str, Any]], default_top: int) -> Response:
        top = min(int(request.args.get("$top", default_top)), boxes.page_size)
        skip = int(request.args.get("$skip", 0))
        body: dict[str, Any] = {
            "@odata.context": f"{request.host_url}v1.0/$metadata#Collection",
            "value": items[skip : skip + top],
        }
        if skip + top < len(items):
            args = {k: v for k, v in request.args.items() if k != "$skip"} | {"$skip": skip + top}
            body["@odata.nextLink"] = (
                request.base_url + "?" + urlencode(args, quote_via=quote, safe="$:")
            )
        return jsonify(body)

    @app.get(f"{API}/me")
    def me() -> Any:
        if (denied := authed({"User.Read"})) is not None:
            return denied
        user = g.user
        return jsonify(
            {
                "@odata.context": f"{request.host_url}v1.0/$metadata#users/$entity",
                "id": user.subject,
                "displayName": user.name,
                "mail": user.mail or user.email,
                "userPrincipalName": user.email,
            }
        )

    @app.get(f"{API}/me/calendars")
    def calendars() -> Any:
        if (denied := authed(READ)) is not None:
            return denied
        with boxes.lock:
            mine = [_public(c) for c in boxes.calendars.values() if c["_mailbox"] == g.user.email]
        for c in mine:
            c.pop("@odata.type", None)
        return paged(mine, 10)

    @app.get(f"{API}/me/calendars/<cal_id>/calendarView")
    def calendar_view(cal_id: str) -> Any:
        if (denied := authed(READ)) is not None:
            return denied
        cal = own_calendar(cal_id)
        if isinstance(cal, Response):
            return cal
        try:
            start = datetime.fromisoformat(request.args["startDateTime"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(request.args["endDateTime"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
            )
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        zone = preferred_zone()
        mailbox = cal["_mailbox"]
        with boxes.lock:
            items = []
            for event in boxes.of_calendar(cal_id):
                if event.get("_deleted") or event.get("type") == "exception":
                    continue
                expanded = (
                    boxes.occurrences(event, mailbox)
                    if event.get("type") == "seriesMaster"
                    else [event]
                )
                for inst in expanded:
                    s, e = boxes.bounds(inst, mailbox)
                    if s < end and e > start:
                        items.append((s, inst))
            items.sort(key=lambda pair: pair[0])
            value = [_public(inst, zone) for _, inst in items]
        response = paged(value, 10)
        response.headers["Preference-Applied"] = f'outlook.timezone="{zone.key}"'
        return response

    @app.post(f"{API}/me/calendars/<cal_id>/events")
    def create_event(cal_id: str) -> Any:
        if (denied := authed(WRITE)) is not None:
            return denied
        cal = own_calendar(cal_id)
        if isinstance(cal, Response):
            return cal
        if not cal["canEdit"]:
            return graph_error(403)
        body = request.get_json(force=True)
        if "start" not in body or "end" not in body:
            return graph_error(400, "ErrorInvalidRequest", "Your request can't be completed.")
        with boxes.lock:
            txn = body.get("transactionId")
            if txn:
                boxes.posts[txn] = boxes.posts.get(txn, 0) + 1
                for existing in boxes.events.values():
                    if (
                        existing.get("transactionId") == txn
                        and not existing.get("_deleted")
                        and existing["_calendar"] == cal_id
                    ):
                        response = jsonify(_public(existing))
                        response.status_code = 201
                        return response
            event_id = "AAMkAG" + uuid.uuid4().hex + uuid.uuid4().hex
            event = {
                "id": event_id,
                "iCalUId": "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper(),
                "type": "singleInstance",
                "isAllDay": False,
                "isCancelled": False,
                "showAs": "busy",
                "isOrganizer": True,
                "organizer": {"emailAddress": {"name": g.user.name, "address": g.user.email}},
                "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}",
            } | body
            event["_calendar"] = cal_id
            _online_meeting(event, cal["_mailbox"], boxes.no_teams)
            boxes.events[event_id] = boxes.stamp(event)
            response = jsonify(_public(event))
            response.status_code = 201
            return response

    @app.route(f"{API}/me/events/<event_id>", methods=["GET", "PATCH", "DELETE"])
    def one_event(event_id: str) -> Any:
        if (denied := authed(READ if request.method == "GET" else WRITE)) is not None:
            return denied
        with boxes.lock:
            event = own_event(event_id)
            if isinstance(event, Response):
                return event
            if request.method == "GET":
                return jsonify(_public(event))
            match = request.headers.get("If-Match")
            if match and match != event["@odata.etag"]:
                return graph_error(412)
            if request.method == "DELETE":
                event["_deleted"] = True
                return Response(status=204)
            body = request.get_json(force=True)
            for key in ("id", "transactionId", "iCalUId"):
                body.pop(key, None)
            event.update(body)
            _online_meeting(event, boxes.calendars[event["_calendar"]]["_mailbox"], boxes.no_teams)
            return jsonify(_public(boxes.stamp(event)))

    # -- admin ------------------------------------------------------------------

    @app.post("/_admin/calendars")
    def admin_calendar() -> Any:
        cal = boxes.add_calendar(request.get_json(force=True))
        return jsonify({k: v for k, v in cal.items() if not k.startswith("_")})

    @app.post("/_admin/mailbox")
    def admin_mailbox() -> Any:
        data = request.get_json(force=True)
        boxes.zones[data["email"].lower()] = data["timeZone"]
        return jsonify({"ok": True})

    @app.route("/_admin/calendars/<cal_id>/events", methods=["GET", "PUT"])
    def admin_events(cal_id: str) -> Any:
        with boxes.lock:
            if cal_id not in boxes.calendars:
                return graph_error(404)
            if request.method == "PUT":
                for event in boxes.of_calendar(cal_id):
                    del boxes.events[event["id"]]
                for data in request.get_json(force=True):
                    event = {
                        "type": "singleInstance",
                        "isAllDay": False,
                        "isCancelled": False,
                        "showAs": "busy",
                    } | data
                    event.setdefault("id", "AAMkAG" + uuid.uuid4().hex)
                    event["_calendar"] = cal_id
                    boxes.events[event["id"]] = boxes.stamp(event)
            live = [
                _public(e)
                for e in boxes.of_calendar(cal_id)
                if not e.get("_deleted") and e.get("type") != "exception"
            ]
            return jsonify({"items": live})

    @app.get("/_admin/posts")
    def admin_posts() -> Any:
        with boxes.lock:
            return jsonify(dict(boxes.posts))

    @app.post("/_admin/page_size")
    def admin_page_size() -> Any:
        boxes.page_size = int(request.get_json(force=True)["size"])
        return jsonify({"ok": True})

    @app.post("/_admin/teams")
    def admin_teams() -> Any:
        data = request.get_json(force=True)
        mailbox = str(data["email"]).lower()
        if data.get("enabled", True):
            boxes.no_teams.discard(mailbox)
        else:
            boxes.no_teams.add(mailbox)
        return jsonify({"ok": True})

    return app


if __name__ == "__main__":
    serve_cli(lambda args: create_app(args.client_id, args.client_secret))


class MicrosoftFake(FakeProcess):
    """Test-side handle of this server (started by the ``fake_microsoft`` fixtures)."""

    CLIENT_ID = "00000000-0000-4000-8000-00000000c1d0"
    CLIENT_SECRET = "microsoft-test-secret"
    TENANT = "common"

    def __init__(self) -> None:
        super().__init__("tests.fakes.microsoft_server", self.CLIENT_ID, self.CLIENT_SECRET)

    def config(self) -> dict[str, str]:
        """The Kairos settings that point at this server."""
        return {
            "MS_GRAPH_BASE": self.url + "/v1.0",
            "MS_LOGIN_BASE": self.url,
            "MS_TENANT": self.TENANT,
            "MS_CLIENT_ID": self.CLIENT_ID,
            "MS_CLIENT_SECRET": self.CLIENT_SECRET,
        }

    def add_calendar(
        self,
        owner: str = "test.user@example.com",
        name: str = "Calendar",
        can_edit: bool = True,
        default: bool = False,
    ) -> str:
        cal = self.admin(
            "POST",
            "/_admin/calendars",
            {"owner": owner, "name": name, "canEdit": can_edit, "isDefaultCalendar": default},
        )
        return cal["id"]

    def mailbox_zone(self, email: str, zone: str) -> None:
        self.admin("POST", "/_admin/mailbox", {"email": email, "timeZone": zone})

    def put_events(self, calendar_id: str, events: list[dict[str, Any]]) -> None:
        self.admin("PUT", f"/_admin/calendars/{calendar_id}/events", events)

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        return self.admin("GET", f"/_admin/calendars/{calendar_id}/events")["items"]

    def posts(self) -> dict[str, int]:
        """POSTs seen per transactionId (a repeat is answered with the first event)."""
        return self.admin("GET", "/_admin/posts")

    def page_size(self, size: int) -> None:
        self.admin("POST", "/_admin/page_size", {"size": size})

    def teams(self, email: str, enabled: bool) -> None:
        """Whether ``email``'s mailbox can have Teams meetings (default: yes)."""
        self.admin("POST", "/_admin/teams", {"email": email, "enabled": enabled})
