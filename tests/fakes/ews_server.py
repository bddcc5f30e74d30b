"""A fake on-premises Exchange server: EWS SOAP and SOAP Autodiscover over HTTPS.

``python -m tests.fakes.ews_server --port 0 --cert C --key K`` prints
``PORT <n>``; then ``https://127.0.0.1:<n>/EWS/Exchange.asmx`` is the EWS
endpoint and ``…/autodiscover/autodiscover.svc`` the Autodiscover one. It is a
real process on 127.0.0.1 (TLS, keep-alive, a real NTLM handshake with
pyspnego as the acceptor, Basic), so exchangelib is exercised over real
sockets. :class:`EwsFake` is the test-side handle; it makes the local CA and
the server certificate with ``cryptography``.

Implemented exactly as far as exchangelib goes for Kairos, in the shapes of
Microsoft's EWS reference: ``ConvertId`` (version and auth detection),
``GetFolder`` (the calendar, with ``EffectiveRights``), ``FindItem`` (paged
or ``CalendarView``, ``IsEqualTo``/``And``/``Or``/``Not``/``Exists``
restrictions on field and extended-property paths), ``GetItem``,
``CreateItem``, ``UpdateItem`` (change keys and ``ConflictResolution``),
``DeleteItem``, ``GetServerTimeZones`` (built from ``zoneinfo``),
``GetUserAvailability`` (request time zone honoured, ``Detailed`` and merged
views) and Autodiscover ``GetUserSettings`` (with address redirects).

Access is checked as Exchange does: the owner; a delegate with a calendar
permission level (``Reviewer`` reads, ``Author``/``Editor`` write);
``ApplicationImpersonation`` (``ExchangeImpersonation`` header); and the
organisation's free/busy default for availability. Unknown mailboxes answer
``ErrorNonExistentMailbox`` (availability: ``ErrorMailRecipientNotFound``).

Admin (JSON over the same port, no authentication):
``POST /_admin/reset`` ``{"auth": ["ntlm", "basic"], "build": "15.1.2507.6"}``;
``POST /_admin/users`` ``{"smtp", "password", "domain", "sam", "name"}`` (a
mailbox too); ``POST /_admin/mailboxes/<smtp>`` ``{"delegates": {smtp:
level}, "impersonators": [smtp], "free_busy": "FreeBusyTimeOnly"|"None"}``;
``PUT /_admin/mailboxes/<smtp>/events`` replaces the seeded events;
``GET /_admin/mailboxes/<smtp>/events`` lists every item as stored;
``POST /_admin/redirects`` ``{smtp: other_smtp}`` (Autodiscover);
``POST|DELETE /_admin/faults`` — ``{"operation": "GetUserAvailability" | "*",
"mailbox": smtp?, "times": 1}`` plus one of ``"status": 401`` (an HTTP
answer), ``"soap": "ErrorServerBusy", "back_off_ms": 1500`` (a SOAP fault) or
``"response": "ErrorAccessDenied"`` (an error response message) or ``"after": true``
(the work is done, then the connection drops without an answer);
``GET|DELETE /_admin/log`` — ``[{"operation", "user", "mailboxes", "status"}]``.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import copy
import http.server
import itertools
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from tests.support.processes import start_announced, stop_process
from tests.support.servers import answer

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


# RequestServerVersion values a server of a given major.minor build accepts.
API_VERSIONS = {
    (15, 1): ["Exchange2016", "Exchange2013_SP1", "Exchange2013", "Exchange2010_SP2"],
    (15, 0): ["Exchange2013_SP1", "Exchange2013", "Exchange2010_SP2", "Exchange2010_SP1"],
    (14, 3): ["Exchange2010_SP2", "Exchange2010_SP1", "Exchange2010", "Exchange2007_SP1"],
}
API_VERSIONS_ALL = ["Exchange2007", "Exchange2007_SP1", "Exchange2010", "Exchange2010_SP1"]

# Windows time zone ids the fake knows (GetServerTimeZones), with their IANA zone.
WINDOWS_ZONES = {
    "UTC": ("UTC", "(UTC) Coordinated Universal Time"),
    "GMT Standard Time": ("Europe/London", "(UTC+00:00) Dublin, Edinburgh, Lisbon, London"),
    "W. Europe Standard Time": (
        "Europe/Berlin",
        "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
    ),
    "Romance Standard Time": ("Europe/Paris", "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris"),
    "Central European Standard Time": ("Europe/Warsaw", "(UTC+01:00) Sarajevo, Warsaw, Zagreb"),
    "Eastern Standard Time": ("America/New_York", "(UTC-05:00) Eastern Time (US & Canada)"),
    "Pacific Standard Time": ("America/Los_Angeles", "(UTC-08:00) Pacific Time (US & Canada)"),
    "Tokyo Standard Time": ("Asia/Tokyo", "(UTC+09:00) Osaka, Sapporo, Tokyo"),
    "AUS Eastern Standard Time": ("Australia/Sydney", "(UTC+10:00) Canberra, Melbourne, Sydney"),
}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
BUSY_DIGITS = {"Free": "0", "Tentative": "1", "Busy": "2", "OOF": "3", "WorkingElsewhere": "4"}
BUSY_RANK = {"Free": 0, "WorkingElsewhere": 1, "Tentative": 2, "Busy": 3, "OOF": 4}

FAULT_TEXT = {
    "ErrorServerBusy": "The server cannot service this request right now. Try again later.",
    "ErrorAccessDenied": "Access is denied. Check credentials and try again.",
    "ErrorNonExistentMailbox": "The SMTP address has no mailbox associated with it.",
    "ErrorMailRecipientNotFound": "The specified recipient could not be found.",
    "ErrorNoFreeBusyAccess": "Unable to retrieve free/busy information because the requester "
    "does not have the required permissions.",
    "ErrorItemNotFound": "The specified object was not found in the store.",
    "ErrorFolderNotFound": "The specified folder could not be found in the store.",
    "ErrorIrresolvableConflict": "The send or update operation could not be performed because "
    "the change key passed in the request does not match the current change key for the item.",
    "ErrorImpersonateUserDenied": "The account does not have permission to impersonate the "
    "requested user.",
    "ErrorInvalidServerVersion": "The specified server version is invalid.",
    "ErrorInvalidRequest": "The request is invalid.",
    "ErrorSendMeetingInvitationsRequired": "SendMeetingInvitations attribute is required for "
    "calendar items.",
    "ErrorUnsupportedPathForQuery": "The property can not be used with this type of restriction.",
}


# --------------------------------------------------------------------------- state


@dataclass
class User:
    smtp: str
    password: str
    domain: str
    sam: str
    name: str

    def login_names(self) -> set[str]:
        """User names Exchange accepts: SMTP address, DOMAIN\\user and the bare account name."""
        return {self.smtp.lower(), f"{self.domain}\\{self.sam}".lower(), self.sam.lower()}


@dataclass
class Item:
    id: str
    changekey: str
    mailbox: str
    start: datetime
    end: datetime
    subject: str = ""
    body: str = ""
    body_type: str = "Text"
    location: str = ""
    is_all_day: bool = False
    show_as: str = "Busy"
    is_cancelled: bool = False
    uid: str = ""
    attendees: list[dict[str, str]] = field(default_factory=list)
    # extended property key → {"uri": its attributes, "name", "value"}
    extended: dict[str, dict[str, Any]] = field(default_factory=dict)
    item_type: str = "Single"
    series: str = ""
    seeded: bool = False
    start_timezone: str = ""
    sensitivity: str = "Normal"
    invitations: str = ""  # SendMeetingInvitations[OrCancellations] of the last write
    created_by: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "changekey": self.changekey,
            "subject": self.subject,
            "body": self.body,
            "location": self.location,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "is_all_day": self.is_all_day,
            "show_as": self.show_as,
            "is_cancelled": self.is_cancelled,
            "uid": self.uid,
            "attendees": self.attendees,
            "extended": {v["name"]: v["value"] for v in self.extended.values()},
            "type": self.item_type,
            "seeded": self.seeded,
            "start_timezone": self.start_timezone,
            "invitations": self.invitations,
            "created_by": self.created_by,
        }


@dataclass
class Mailbox:
    smtp: str
    name: str
    folder_id: str
    delegates: dict[str, str] = field(default_factory=dict)  # user smtp → permission level
    impersonators: set[str] = field(default_factory=set)
    free_busy: str = "FreeBusyTimeOnly"  # the "Default" free/busy permission
    items: dict[str, Item] = field(default_factory=dict)
    deleted: dict[str, Item] = field(default_factory=dict)


class SoapFault(Exception):
    """A SOAP-level fault (HTTP 500), as Exchange sends for throttling and bad headers."""

    def __init__(self, code: str, back_off_ms: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.back_off_ms = back_off_ms


class MessageError(Exception):
    """An error response message for one element of a request."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class State:
    def __init__(self, ntlm_file: Path) -> None:
        self.lock = threading.RLock()
        self.ntlm_file = ntlm_file
        self.reset()

    def reset(self, auth: list[str] | None = None, build: str = "15.1.2507.6") -> None:
        with self.lock:
            self.users: dict[str, User] = {}
            self.mailboxes: dict[str, Mailbox] = {}
            self.redirects: dict[str, str] = {}
            self.faults: list[dict[str, Any]] = []
            self.log: list[dict[str, Any]] = []
            self.auth = [a.lower() for a in (auth or ["ntlm", "basic"])]
            self.build = tuple(int(p) for p in build.split("."))
            self.counter = itertools.count(1)
            self.write_ntlm_file()

    # -- users ------------------------------------------------------------

    def add_user(self, smtp: str, password: str, domain: str, sam: str, name: str) -> None:
        with self.lock:
            smtp = smtp.lower()
            self.users[smtp] = User(smtp, password, domain.upper(), sam, name)
            if smtp not in self.mailboxes:
                folder_id = "AQMkAD" + _b64(f"{smtp}/calendar")
                self.mailboxes[smtp] = Mailbox(smtp, name, folder_id)
            self.write_ntlm_file()

    def write_ntlm_file(self) -> None:
        """pyspnego's acceptor reads ``DOMAIN:USER:PASSWORD`` lines (the Heimdal format)."""
        lines = []
        for u in self.users.values():
            lines += [f"{u.domain}:{u.sam}:{u.password}", f":{u.smtp}:{u.password}"]
            lines.append(f":{u.sam}:{u.password}")
        tmp = self.ntlm_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.ntlm_file)

    def user_for_login(self, login: str) -> User | None:
        login = login.lower().lstrip("\\")
        for user in self.users.values():
            if login in user.login_names():
                return user
        return None

    # -- items ------------------------------------------------------------

    def new_id(self) -> str:
        return "AAMkAD" + _b64(uuid.uuid4().bytes.hex()) + "AAA="

    def new_changekey(self) -> str:
        return "DwAAABYAAA" + _b64(str(next(self.counter)).zfill(6))

    def find_item(self, item_id: str) -> tuple[Mailbox, Item]:
        for mailbox in self.mailboxes.values():
            if item_id in mailbox.items:
                return mailbox, mailbox.items[item_id]
        raise MessageError("ErrorItemNotFound")

    # -- faults -----------------------------------------------------------

    def take_fault(self, operation: str, mailboxes: list[str]) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.faults:
                if rule.get("operation", "*") not in ("*", operation):
                    continue
                if rule.get("mailbox") and rule["mailbox"].lower() not in mailboxes:
                    continue
                rule["times"] -= 1
                if rule["times"] <= 0:
                    self.faults.remove(rule)
                return rule
        return None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --------------------------------------------------------------------------- XML helpers


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def text_of(elem: Any, *path: str, default: str = "") -> str:
    """Text of a descendant reached through ``path`` (types-namespace names unless prefixed)."""
    node = elem
    for part in path:
        if node is None:
            return default
        ns, _, name = part.rpartition(":")
        node = node.find(q({"m": M, "a": A, "": T}[ns], name))
    if node is None or node.text is None:
        return default
    return node.text


def xml_bool(value: bool) -> str:
    return "true" if value else "false"


def parse_time(value: str, tz: Any = UTC) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = tz.localize(parsed) if hasattr(tz, "localize") else parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def utc_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(minutes: int) -> str:
    """Microsoft's xs:duration spelling, e.g. ``-P0DT1H0M0.0S``."""
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    return f"{sign}P0DT{minutes // 60}H{minutes % 60}M0.0S"


def envelope(body: str, build: tuple[int, ...], version: str) -> str:
    major, minor, major_build, minor_build = (list(build) + [0, 0, 0, 0])[:4]
    header = (
        f'<h:ServerVersionInfo MajorVersion="{major}" MinorVersion="{minor}" '
        f'MajorBuildNumber="{major_build}" MinorBuildNumber="{minor_build}" '
        f'Version="{version}" xmlns:h="{T}" xmlns="{T}" '
        f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{XSI}"/>'
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{S}"><s:Header>{header}</s:Header>'
        f'<s:Body xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body}</s:Body>'
        "</s:Envelope>"
    )


def soap_fault(code: str, back_off_ms: int | None) -> str:
    """A SOAP fault as Exchange writes it (ErrorServerBusy carries BackOffMilliseconds)."""
    text = FAULT_TEXT.get(code, code)
    extra = ""
    if back_off_ms is not None:
        extra = (
            f'<t:MessageXml xmlns:t="{T}"><t:Value Name="BackOffMilliseconds">{back_off_ms}'
            "</t:Value></t:MessageXml>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{S}"><s:Body><s:Fault>'
        f'<faultcode xmlns:a="{T}">a:{code}</faultcode>'
        f'<faultstring xml:lang="en-US">{escape(text)}</faultstring>'
        f'<detail><e:ResponseCode xmlns:e="{E}">{code}</e:ResponseCode>'
        f'<e:Message xmlns:e="{E}">{escape(text)}</e:Message>{extra}</detail>'
        "</s:Fault></s:Body></s:Envelope>"
    )


def ok_message(op: str, inner: str = "") -> str:
    return (
        f'<m:{op}ResponseMessage ResponseClass="Success">'
        f"<m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{op}ResponseMessage>"
    )


def error_message(op: str, code: str, inner: str = "") -> str:
    return (
        f'<m:{op}ResponseMessage ResponseClass="Error">'
        f"<m:MessageText>{escape(FAULT_TEXT.get(code, code))}</m:MessageText>"
        f"<m:ResponseCode>{code}</m:ResponseCode>"
        f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{inner}</m:{op}ResponseMessage>"
    )


def response(op: str, messages: list[str]) -> str:
    return (
        f'<m:{op}Response xmlns:m="{M}" xmlns:t="{T}">'
        f"<m:ResponseMessages>{''.join(messages)}</m:ResponseMessages></m:{op}Response>"
    )


# --------------------------------------------------------------------------- time zones


def _zone_rules(iana: str, year: int) -> tuple[int, int, list[tuple[datetime, int, int]]]:
    """(standard offset, daylight offset, [(local wall time of change, from, to)]) in minutes."""
    zone = ZoneInfo(iana)

    def offset(moment: datetime) -> int:
        return int(moment.astimezone(zone).utcoffset().total_seconds() // 60)  # type: ignore[union-attr]

    changes = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    previous = offset(moment)
    while moment.year == year:
        step = moment + timedelta(days=1)
        if offset(step) != previous:
            probe = moment
            while offset(probe + timedelta(minutes=15)) == previous:
                probe += timedelta(minutes=15)
            change = probe + timedelta(minutes=15)
            local = (change + timedelta(minutes=previous)).replace(tzinfo=None)
            changes.append((local, previous, offset(step)))
            previous = offset(step)
        moment = step
    offsets = {offset(datetime(year, m, 15, tzinfo=UTC)) for m in (1, 7)}
    return min(offsets), max(offsets), changes


def timezone_definition(ms_id: str, full: bool) -> str:
    iana, name = WINDOWS_ZONES[ms_id]
    head = f"<t:TimeZoneDefinition Id={quoteattr(ms_id)} Name={quoteattr(name)}>"
    if not full:
        return head + "</t:TimeZoneDefinition>"
    std, dst, changes = _zone_rules(iana, datetime.now(UTC).year)
    std_id = f"trule:Microsoft/Registry/{ms_id}/2006-Standard"
    dst_id = f"trule:Microsoft/Registry/{ms_id}/2006-Daylight"
    periods = f'<t:Period Bias="{duration(-std)}" Name="Standard" Id={quoteattr(std_id)}/>'
    if not changes:
        group = f'<t:Transition><t:To Kind="Period">{escape(std_id)}</t:To></t:Transition>'
    else:
        periods += f'<t:Period Bias="{duration(-dst)}" Name="Daylight" Id={quoteattr(dst_id)}/>'
        group = ""
        for local, _before, after in changes:
            target = dst_id if after == dst else std_id
            nth = (local.day - 1) // 7 + 1
            if local.day + 7 > calendar.monthrange(local.year, local.month)[1]:
                nth = -1  # Exchange's "last"
            group += (
                f'<t:RecurringDayTransition><t:To Kind="Period">{escape(target)}</t:To>'
                f"<t:TimeOffset>{duration(local.hour * 60 + local.minute)}</t:TimeOffset>"
                f"<t:Month>{local.month}</t:Month>"
                f"<t:DayOfWeek>{WEEKDAYS[local.weekday()]}</t:DayOfWeek>"
                f"<t:Occurrence>{nth}</t:Occurrence></t:RecurringDayTransition>"
            )
    return (
        head
        + f"<t:Periods>{periods}</t:Periods>"
        + f'<t:TransitionsGroups><t:TransitionsGroup Id="0">{group}</t:TransitionsGroup>'
        + "</t:TransitionsGroups>"
        + '<t:Transitions><t:Transition><t:To Kind="Group">0</t:To></t:Transition></t:Transitions>'
        + "</t:TimeZoneDefinition>"
    )


@dataclass
class RequestZone:
    """The availability ``TimeZone`` of a request: a base bias and two yearly rules."""

    bias: int
    std: dict[str, Any] | None
    dst: dict[str, Any] | None

    @classmethod
    def parse(cls, elem: Any) -> RequestZone:
        def rule(name: str) -> dict[str, Any] | None:
            node = elem.find(q(T, name))
            if node is None:
                return None
            hh, mm, *_ = (text_of(node, "Time") or "00:00:00").split(":")
            return {
                "bias": int(text_of(node, "Bias") or 0),
                "minutes": int(hh) * 60 + int(mm),
                "order": int(text_of(node, "DayOrder") or 1),
                "month": int(text_of(node, "Month") or 1),
                "weekday": WEEKDAYS.index(text_of(node, "DayOfWeek") or "Sunday"),
            }

        return cls(int(text_of(elem, "Bias") or 0), rule("StandardTime"), rule("DaylightTime"))

    @staticmethod
    def _nth(year: int, rule: dict[str, Any]) -> datetime:
        days = calendar.monthrange(year, rule["month"])[1]
        matches = [
            d
            for d in range(1, days + 1)
            if date(year, rule["month"], d).weekday() == rule["weekday"]
        ]
        day = matches[min(rule["order"], len(matches)) - 1]
        return datetime(year, rule["month"], day) + timedelta(minutes=rule["minutes"])

    def offset(self, moment: datetime) -> timedelta:
        """UTC → local offset at ``moment`` (an aware instant)."""
        std_bias = self.std["bias"] if self.std else 0
        if not self.std or not self.dst or self.dst["bias"] == std_bias:
            return timedelta(minutes=-(self.bias + std_bias))
        year = moment.astimezone(UTC).year
        dst_start = self._nth(year, self.dst) + timedelta(minutes=self.bias + std_bias)
        std_start = self._nth(year, self.std) + timedelta(minutes=self.bias + self.dst["bias"])
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        if dst_start < std_start:
            in_dst = dst_start <= naive < std_start
        else:
            in_dst = naive >= dst_start or naive < std_start
        return timedelta(minutes=-(self.bias + (self.dst["bias"] if in_dst else std_bias)))

    def to_local(self, moment: datetime) -> str:
        return (moment.astimezone(UTC) + self.offset(moment)).strftime("%Y-%m-%dT%H:%M:%S")

    def to_utc(self, local: str) -> datetime:
        parsed = datetime.fromisoformat(local.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        guess = parsed.replace(tzinfo=UTC)
        return (guess - self.offset(guess - self.offset(guess))).astimezone(UTC)


# --------------------------------------------------------------------------- items ⇄ XML

ITEM_FIELDS = {
    "item:Subject": "Subject",
    "item:Body": "Body",
    "item:Sensitivity": "Sensitivity",
    "calendar:UID": "UID",
    "calendar:Start": "Start",
    "calendar:End": "End",
    "calendar:IsAllDayEvent": "IsAllDayEvent",
    "calendar:LegacyFreeBusyStatus": "LegacyFreeBusyStatus",
    "calendar:Location": "Location",
    "calendar:IsCancelled": "IsCancelled",
    "calendar:CalendarItemType": "CalendarItemType",
    "calendar:RequiredAttendees": "RequiredAttendees",
    "calendar:StartTimeZone": "StartTimeZone",
    "calendar:Organizer": "Organizer",
}
DEFAULT_SHAPE = {
    "item:Subject",
    "calendar:Start",
    "calendar:End",
    "calendar:IsAllDayEvent",
    "calendar:LegacyFreeBusyStatus",
    "calendar:Location",
    "calendar:CalendarItemType",
    "calendar:Organizer",
}


def ext_key(uri: Any) -> str:
    """Identity of an extended property: its property set (or tag) plus its name (or id)."""
    pset = uri.get("PropertySetId") or uri.get("DistinguishedPropertySetId") or ""
    name = uri.get("PropertyName") or uri.get("PropertyId") or uri.get("PropertyTag") or ""
    return f"{pset.lower()}|{name}"


def ext_uri_xml(prop: dict[str, str]) -> str:
    attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in prop["uri"].items())
    return f"<t:ExtendedFieldURI {attrs}/>"


@dataclass
class Shape:
    """Which properties a FindItem/GetItem answer carries (BaseShape + AdditionalProperties)."""

    fields: set[str]
    extended: set[str]

    @classmethod
    def parse(cls, elem: Any) -> Shape:
        if elem is None:
            return cls(set(DEFAULT_SHAPE), set())
        base = text_of(elem, "BaseShape", default="IdOnly")
        fields = set(DEFAULT_SHAPE) if base in ("Default", "AllProperties") else set()
        if base == "AllProperties":
            fields |= set(ITEM_FIELDS)
        extended = set()
        extra = elem.find(q(T, "AdditionalProperties"))
        if extra is not None:
            for uri in extra:
                if uri.tag == q(T, "FieldURI"):
                    fields.add(uri.get("FieldURI"))
                elif uri.tag == q(T, "ExtendedFieldURI"):
                    extended.add(ext_key(uri))
        return cls(fields, extended)


def item_xml(item: Item, mailbox: Mailbox, shape: Shape, owner: User | None) -> str:
    """One ``t:CalendarItem`` in schema order, carrying the properties the shape asks for."""
    f = shape.fields
    out = [f"<t:ItemId Id={quoteattr(item.id)} ChangeKey={quoteattr(item.changekey)}/>"]
    out.append(f'<t:ParentFolderId Id="{mailbox.folder_id}" ChangeKey="AQAAAA=="/>')
    if "item:Subject" in f:
        out.append(f"<t:Subject>{escape(item.subject)}</t:Subject>")
    if "item:Sensitivity" in f:
        out.append(f"<t:Sensitivity>{item.sensitivity}</t:Sensitivity>")
    if "item:Body" in f:
        out.append(f"<t:Body BodyType={quoteattr(item.body_type)}>{escape(item.body)}</t:Body>")
    for key, prop in item.extended.items():
        if key in shape.extended:
            out.append(
                f"<t:ExtendedProperty>{ext_uri_xml(prop)}"
                f"<t:Value>{escape(prop['value'])}</t:Value></t:ExtendedProperty>"
            )
    if "calendar:UID" in f and item.uid:
        out.append(f"<t:UID>{escape(item.uid)}</t:UID>")
    if "calendar:Start" in f:
        out.append(f"<t:Start>{utc_text(item.start)}</t:Start>")
    if "calendar:End" in f:
        out.append(f"<t:End>{utc_text(item.end)}</t:End>")
    if "calendar:IsAllDayEvent" in f:
        out.append(f"<t:IsAllDayEvent>{xml_bool(item.is_all_day)}</t:IsAllDayEvent>")
    if "calendar:LegacyFreeBusyStatus" in f:
        out.append(f"<t:LegacyFreeBusyStatus>{item.show_as}</t:LegacyFreeBusyStatus>")
    if "calendar:Location" in f and item.location:
        out.append(f"<t:Location>{escape(item.location)}</t:Location>")
    if "calendar:IsCancelled" in f:
        out.append(f"<t:IsCancelled>{xml_bool(item.is_cancelled)}</t:IsCancelled>")
    if "calendar:CalendarItemType" in f:
        out.append(f"<t:CalendarItemType>{item.item_type}</t:CalendarItemType>")
    if "calendar:Organizer" in f and owner is not None:
        out.append(
            f"<t:Organizer><t:Mailbox><t:Name>{escape(owner.name)}</t:Name>"
            f"<t:EmailAddress>{escape(owner.smtp)}</t:EmailAddress>"
            "<t:RoutingType>SMTP</t:RoutingType></t:Mailbox></t:Organizer>"
        )
    if "calendar:RequiredAttendees" in f and item.attendees:
        people = "".join(
            f"<t:Attendee><t:Mailbox><t:Name>{escape(a['name'])}</t:Name>"
            f"<t:EmailAddress>{escape(a['email'])}</t:EmailAddress>"
            "<t:RoutingType>SMTP</t:RoutingType></t:Mailbox>"
            "<t:ResponseType>Unknown</t:ResponseType></t:Attendee>"
            for a in item.attendees
        )
        out.append(f"<t:RequiredAttendees>{people}</t:RequiredAttendees>")
    if "calendar:StartTimeZone" in f and item.start_timezone in WINDOWS_ZONES:
        out.append(
            f"<t:StartTimeZone Id={quoteattr(item.start_timezone)} "
            f"Name={quoteattr(WINDOWS_ZONES[item.start_timezone][1])}/>"
        )
    return "<t:CalendarItem>" + "".join(out) + "</t:CalendarItem>"


def check_times(item: Item) -> None:
    """Exchange validates the finished item, after every SetItemField of an update."""
    if item.end < item.start:
        raise MessageError("ErrorCalendarEndDateIsEarlierThanStartDate")


def apply_item(item: Item, elem: Any) -> None:
    """Copy the properties present in a request's ``t:CalendarItem`` onto ``item``."""
    for child in elem:
        name = child.tag.rpartition("}")[2]
        value = child.text or ""
        if name == "Subject":
            item.subject = value
        elif name == "Body":
            item.body, item.body_type = value, child.get("BodyType", "Text")
        elif name == "Sensitivity":
            item.sensitivity = value
        elif name == "ExtendedProperty":
            uri = child.find(q(T, "ExtendedFieldURI"))
            item.extended[ext_key(uri)] = {
                "uri": dict(uri.attrib),
                "name": uri.get("PropertyName") or uri.get("PropertyId") or "",
                "value": text_of(child, "Value"),
            }
        elif name == "UID":
            item.uid = value
        elif name == "Start":
            item.start = parse_time(value)
        elif name == "End":
            item.end = parse_time(value)
        elif name == "IsAllDayEvent":
            item.is_all_day = value == "true"
        elif name == "LegacyFreeBusyStatus":
            item.show_as = value
        elif name == "Location":
            item.location = value
        elif name in ("RequiredAttendees", "OptionalAttendees"):
            item.attendees = [
                {
                    "email": text_of(a, "Mailbox", "EmailAddress"),
                    "name": text_of(a, "Mailbox", "Name"),
                }
                for a in child.findall(q(T, "Attendee"))
            ]
        elif name in ("StartTimeZone", "MeetingTimeZone"):
            item.start_timezone = child.get("Id") or child.get("TimeZoneName") or ""


def clear_field(item: Item, uri: Any) -> None:
    if uri.tag == q(T, "ExtendedFieldURI"):
        item.extended.pop(ext_key(uri), None)
        return
    name = uri.get("FieldURI", "")
    if name == "calendar:Location":
        item.location = ""
    elif name == "item:Body":
        item.body = ""
    elif name in ("calendar:RequiredAttendees", "calendar:OptionalAttendees"):
        item.attendees = []


def matches(item: Item, restriction: Any) -> bool:
    """Evaluate the subset of EWS restrictions exchangelib produces for simple filters."""
    name = restriction.tag.rpartition("}")[2]
    children = list(restriction)
    if name == "And":
        return all(matches(item, c) for c in children)
    if name == "Or":
        return any(matches(item, c) for c in children)
    if name == "Not":
        return not matches(item, children[0])
    if name == "Exists":
        return _value(item, children[0]) is not None
    if name in ("IsEqualTo", "IsNotEqualTo"):
        constant = restriction.find(f"{q(T, 'FieldURIOrConstant')}/{q(T, 'Constant')}")
        equal = _value(item, children[0]) == constant.get("Value")
        return equal if name == "IsEqualTo" else not equal
    raise SoapFault("ErrorUnsupportedPathForQuery")


def _value(item: Item, uri: Any) -> str | None:
    if uri.tag == q(T, "ExtendedFieldURI"):
        prop = item.extended.get(ext_key(uri))
        return prop["value"] if prop else None
    name = uri.get("FieldURI")
    if name == "item:Subject":
        return item.subject
    if name == "calendar:Location":
        return item.location or None
    raise SoapFault("ErrorUnsupportedPathForQuery")


# --------------------------------------------------------------------------- operations


class Ews:
    """One EWS request: the authenticated user, the impersonated mailbox, the operation."""

    def __init__(self, state: State, user: User, root: Any, handler_host: str) -> None:
        self.state = state
        self.user = user
        self.root = root
        self.host = handler_host
        header = root.find(q(S, "Header"))
        self.header = header
        self.version = ""
        self.acting = user.smtp
        self.mailboxes: list[str] = []
        if header is not None:
            node = header.find(q(T, "RequestServerVersion"))
            if node is not None:
                self.version = node.get("Version", "")
            imp = header.find(q(T, "ExchangeImpersonation"))
            if imp is not None:
                sid = imp.find(q(T, "ConnectingSID"))
                target = (
                    text_of(sid, "PrimarySmtpAddress")
                    or text_of(sid, "SmtpAddress")
                    or text_of(sid, "PrincipalName")
                ).lower()
                mailbox = state.mailboxes.get(target)
                if mailbox is None:
                    raise SoapFault("ErrorNonExistentMailbox")
                if user.smtp not in mailbox.impersonators:
                    raise SoapFault("ErrorImpersonateUserDenied")
                self.acting = target
        body = root.find(q(S, "Body"))
        self.op_elem = body[0]
        self.operation = self.op_elem.tag.rpartition("}")[2].removesuffix("Request")

    def check_version(self) -> None:
        allowed = API_VERSIONS.get(self.state.build[:2], []) + API_VERSIONS_ALL
        if self.version and self.version not in allowed:
            raise SoapFault("ErrorInvalidServerVersion")

    def server_version_name(self) -> str:
        # Exchange 2016 reports its schema revision rather than an API name
        return "V2017_07_11" if self.state.build[:2] == (15, 1) else self.version or "Exchange2013"

    # -- access -----------------------------------------------------------

    def level(self, mailbox: Mailbox) -> str:
        if self.acting == mailbox.smtp:
            return "Owner"
        return mailbox.delegates.get(self.acting, "None")

    def require(self, mailbox: Mailbox, need: str) -> None:
        level = self.level(mailbox)
        ok = {
            "read": level in ("Owner", "Editor", "Author", "Reviewer"),
            "write": level in ("Owner", "Editor", "Author"),
        }[need]
        if not ok:
            raise MessageError("ErrorAccessDenied")

    def folder_mailbox(self, elem: Any) -> Mailbox:
        """The mailbox whose calendar a FolderId/DistinguishedFolderId element names."""
        if elem.tag == q(T, "DistinguishedFolderId"):
            if elem.get("Id") != "calendar":
                raise MessageError("ErrorFolderNotFound")
            address = (text_of(elem, "Mailbox", "EmailAddress") or self.acting).lower()
            mailbox = self.state.mailboxes.get(address)
            if mailbox is None:
                raise MessageError("ErrorNonExistentMailbox")
            return mailbox
        for mailbox in self.state.mailboxes.values():
            if mailbox.folder_id == elem.get("Id"):
                return mailbox
        raise MessageError("ErrorFolderNotFound")

    def targets(self) -> list[str]:
        """Mailboxes a request touches (for the log and for targeted faults)."""
        found: list[str] = []
        for folder in self.op_elem.iter(q(T, "DistinguishedFolderId")):
            found.append((text_of(folder, "Mailbox", "EmailAddress") or self.acting).lower())
        for data in self.op_elem.iter(q(T, "MailboxData")):
            found.append(text_of(data, "Email", "Address").lower())
        for node in self.op_elem.iter(q(T, "FolderId"), q(T, "ItemId")):
            for mailbox in self.state.mailboxes.values():
                if node.get("Id") == mailbox.folder_id or node.get("Id") in mailbox.items:
                    found.append(mailbox.smtp)
        if self.acting != self.user.smtp:
            found.append(self.acting)
        return sorted(set(found)) or [self.acting]

    # -- dispatch ---------------------------------------------------------

    def run(self, injected: str | None) -> str:
        self.injected = injected
        handler = getattr(self, "op_" + self.operation, None)
        if handler is None:
            raise SoapFault("ErrorInvalidRequest")
        return handler()

    def each(self, op: str, elems: list[Any], work) -> str:
        messages = []
        for elem in elems:
            try:
                if self.injected:
                    raise MessageError(self.injected)
                messages.append(ok_message(op, work(elem)))
            except MessageError as e:
                messages.append(error_message(op, e.code))
        return response(op, messages)

    def op_ConvertId(self) -> str:  # noqa: N802 — EWS operation names
        ids = self.op_elem.find(q(M, "SourceIds"))
        return self.each("ConvertId", list(ids), self._convert)

    def _convert(self, elem: Any) -> str:
        raise MessageError("ErrorInvalidIdMalformed")

    def op_GetFolder(self) -> str:  # noqa: N802
        return self.each("GetFolder", list(self.op_elem.find(q(M, "FolderIds"))), self._get_folder)

    def _get_folder(self, elem: Any) -> str:
        mailbox = self.folder_mailbox(elem)
        self.require(mailbox, "read")
        level = self.level(mailbox)
        write = level in ("Owner", "Editor", "Author")
        rights = (
            f"<t:CreateAssociated>{xml_bool(level == 'Owner')}</t:CreateAssociated>"
            f"<t:CreateContents>{xml_bool(write)}</t:CreateContents>"
            f"<t:CreateHierarchy>{xml_bool(level == 'Owner')}</t:CreateHierarchy>"
            f"<t:Delete>{xml_bool(level in ('Owner', 'Editor'))}</t:Delete>"
            f"<t:Modify>{xml_bool(level in ('Owner', 'Editor'))}</t:Modify>"
            "<t:Read>true</t:Read>"
            f"<t:ViewPrivateItems>{xml_bool(level == 'Owner')}</t:ViewPrivateItems>"
        )
        return (
            "<m:Folders><t:CalendarFolder>"
            f'<t:FolderId Id="{mailbox.folder_id}" ChangeKey="AgAAABYAAAA="/>'
            f'<t:ParentFolderId Id="AQMkAD{_b64(mailbox.smtp + "/root")}" ChangeKey="AQAAAA=="/>'
            "<t:FolderClass>IPF.Appointment</t:FolderClass>"
            "<t:DisplayName>Calendar</t:DisplayName>"
            f"<t:TotalCount>{len(mailbox.items)}</t:TotalCount>"
            "<t:ChildFolderCount>0</t:ChildFolderCount>"
            f"<t:EffectiveRights>{rights}</t:EffectiveRights>"
            "</t:CalendarFolder></m:Folders>"
        )

    def op_FindItem(self) -> str:  # noqa: N802
        parents = list(self.op_elem.find(q(M, "ParentFolderIds")))
        return self.each("FindItem", parents, self._find)

    def _find(self, parent: Any) -> str:
        mailbox = self.folder_mailbox(parent)
        self.require(mailbox, "read")
        shape = Shape.parse(self.op_elem.find(q(M, "ItemShape")))
        items = sorted(mailbox.items.values(), key=lambda i: (i.start, i.id))
        view = self.op_elem.find(q(M, "CalendarView"))
        if view is not None:
            start, end = parse_time(view.get("StartDate")), parse_time(view.get("EndDate"))
            items = [i for i in items if i.start < end and i.end > start]
        else:
            # without a calendar view a series shows as its master, not as occurrences
            masters, seen = [], set()
            for i in items:
                if i.series:
                    if i.series in seen:
                        continue
                    seen.add(i.series)
                masters.append(i)
            items = masters
        restriction = self.op_elem.find(q(M, "Restriction"))
        if restriction is not None and len(restriction):
            items = [i for i in items if matches(i, restriction[0])]
        total = len(items)
        offset, last = 0, True
        paging = self.op_elem.find(q(M, "IndexedPageItemView"))
        if paging is not None:
            offset = int(paging.get("Offset", "0"))
            limit = int(paging.get("MaxEntriesReturned", "1000"))
            last = offset + limit >= total
            items = items[offset : offset + limit]
        owner = self.state.users.get(mailbox.smtp)
        body = "".join(item_xml(i, mailbox, shape, owner) for i in items)
        attrs = f'TotalItemsInView="{total}" IncludesLastItemInRange="{xml_bool(last)}"'
        if paging is not None:
            attrs = f'IndexedPagingOffset="{offset + len(items)}" ' + attrs
        return f"<m:RootFolder {attrs}><t:Items>{body}</t:Items></m:RootFolder>"

    def op_GetItem(self) -> str:  # noqa: N802
        shape = Shape.parse(self.op_elem.find(q(M, "ItemShape")))

        def get(elem: Any) -> str:
            mailbox, item = self.state.find_item(elem.get("Id", ""))
            self.require(mailbox, "read")
            owner = self.state.users.get(mailbox.smtp)
            return f"<m:Items>{item_xml(item, mailbox, shape, owner)}</m:Items>"

        return self.each("GetItem", list(self.op_elem.find(q(M, "ItemIds"))), get)

    def op_CreateItem(self) -> str:  # noqa: N802
        invitations = self.op_elem.get("SendMeetingInvitations", "")
        target = self.op_elem.find(q(M, "SavedItemFolderId"))
        items = list(self.op_elem.find(q(M, "Items")))

        def create(elem: Any) -> str:
            if not invitations:
                raise MessageError("ErrorSendMeetingInvitationsRequired")
            folder = target[0] if target is not None else None
            if folder is None:
                mailbox = self.state.mailboxes[self.acting]
            else:
                mailbox = self.folder_mailbox(folder)
            self.require(mailbox, "write")
            item = Item(
                id=self.state.new_id(),
                changekey=self.state.new_changekey(),
                mailbox=mailbox.smtp,
                start=datetime.now(UTC),
                end=datetime.now(UTC) + timedelta(minutes=30),
                invitations=invitations,
                created_by=self.user.smtp,
            )
            apply_item(item, elem)
            check_times(item)
            if not item.uid:
                item.uid = uuid.uuid4().hex.upper()
            mailbox.items[item.id] = item
            return (
                "<m:Items><t:CalendarItem>"
                f"<t:ItemId Id={quoteattr(item.id)} ChangeKey={quoteattr(item.changekey)}/>"
                "</t:CalendarItem></m:Items>"
            )

        return self.each("CreateItem", items, create)

    def op_UpdateItem(self) -> str:  # noqa: N802
        resolution = self.op_elem.get("ConflictResolution", "AutoResolve")
        invitations = self.op_elem.get("SendMeetingInvitationsOrCancellations", "")
        changes = list(self.op_elem.find(q(M, "ItemChanges")))

        def update(change: Any) -> str:
            ref = change.find(q(T, "ItemId"))
            mailbox, current = self.state.find_item(ref.get("Id", ""))
            self.require(mailbox, "write")
            given = ref.get("ChangeKey")
            if resolution != "AlwaysOverwrite" and given and given != current.changekey:
                raise MessageError("ErrorIrresolvableConflict")
            item = copy.deepcopy(current)  # an update applies whole or not at all
            for update in change.find(q(T, "Updates")):
                kind = update.tag.rpartition("}")[2]
                if kind in ("SetItemField", "AppendToItemField"):
                    apply_item(item, update.find(q(T, "CalendarItem")))
                elif kind == "DeleteItemField":
                    clear_field(item, update[0])
            check_times(item)
            item.changekey = self.state.new_changekey()
            item.invitations = invitations
            mailbox.items[item.id] = item
            return (
                "<m:Items><t:CalendarItem>"
                f"<t:ItemId Id={quoteattr(item.id)} ChangeKey={quoteattr(item.changekey)}/>"
                "</t:CalendarItem></m:Items>"
                "<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>"
            )

        return self.each("UpdateItem", changes, update)

    def op_DeleteItem(self) -> str:  # noqa: N802
        kind = self.op_elem.get("DeleteType", "HardDelete")

        def delete(elem: Any) -> str:
            mailbox, item = self.state.find_item(elem.get("Id", ""))
            self.require(mailbox, "write")
            del mailbox.items[item.id]
            if kind != "HardDelete":
                mailbox.deleted[item.id] = item
            return ""

        return self.each("DeleteItem", list(self.op_elem.find(q(M, "ItemIds"))), delete)

    def op_GetServerTimeZones(self) -> str:  # noqa: N802
        full = self.op_elem.get("ReturnFullTimeZoneData", "true").lower() == "true"
        ids_elem = self.op_elem.find(q(M, "Ids"))
        ids = [i.text for i in ids_elem] if ids_elem is not None else list(WINDOWS_ZONES)
        if self.injected:
            return response(
                "GetServerTimeZones", [error_message("GetServerTimeZones", self.injected)]
            )
        unknown = [i for i in ids if i not in WINDOWS_ZONES]
        if unknown:
            return response(
                "GetServerTimeZones", [error_message("GetServerTimeZones", "ErrorTimeZone")]
            )
        defs = "".join(timezone_definition(i, full) for i in ids)
        inner = f"<m:TimeZoneDefinitions>{defs}</m:TimeZoneDefinitions>"
        return response("GetServerTimeZones", [ok_message("GetServerTimeZones", inner)])

    def op_GetUserAvailability(self) -> str:  # noqa: N802
        zone = RequestZone.parse(self.op_elem.find(q(T, "TimeZone")))
        options = self.op_elem.find(q(T, "FreeBusyViewOptions"))
        window = options.find(q(T, "TimeWindow"))
        start = zone.to_utc(text_of(window, "StartTime"))
        end = zone.to_utc(text_of(window, "EndTime"))
        interval = int(text_of(options, "MergedFreeBusyIntervalInMinutes") or 30)
        view = text_of(options, "RequestedView") or "DetailedMerged"
        answers = []
        for data in self.op_elem.find(q(M, "MailboxDataArray")):
            address = text_of(data, "Email", "Address").lower()
            try:
                if self.injected:
                    raise MessageError(self.injected)
                answers.append(self._availability(address, zone, start, end, interval, view))
            except MessageError as e:
                answers.append(
                    '<FreeBusyResponse><ResponseMessage ResponseClass="Error">'
                    f"<MessageText>{escape(FAULT_TEXT.get(e.code, e.code))}</MessageText>"
                    f"<ResponseCode>{e.code}</ResponseCode>"
                    "<DescriptiveLinkKey>0</DescriptiveLinkKey></ResponseMessage>"
                    "<FreeBusyView><FreeBusyViewType "
                    f'xmlns="{T}">None</FreeBusyViewType></FreeBusyView></FreeBusyResponse>'
                )
        return (
            f'<GetUserAvailabilityResponse xmlns="{M}">'
            f"<FreeBusyResponseArray>{''.join(answers)}</FreeBusyResponseArray>"
            "</GetUserAvailabilityResponse>"
        )

    def _availability(
        self,
        address: str,
        zone: RequestZone,
        start: datetime,
        end: datetime,
        interval: int,
        view: str,
    ) -> str:
        mailbox = self.state.mailboxes.get(address)
        if mailbox is None:
            raise MessageError("ErrorMailRecipientNotFound")
        level = self.level(mailbox)
        if level == "None" and mailbox.free_busy == "None":
            raise MessageError("ErrorNoFreeBusyAccess")
        details = level in ("Owner", "Editor", "Author", "Reviewer") and view.startswith("Detailed")
        items = sorted(
            (i for i in mailbox.items.values() if i.start < end and i.end > start),
            key=lambda i: (i.start, i.id),
        )
        events = []
        for i in items:
            busy = "Free" if i.is_cancelled else i.show_as
            detail = ""
            if details:
                detail = (
                    f"<CalendarEventDetails><ID>{escape(i.id)}</ID>"
                    f"<Subject>{escape(i.subject)}</Subject>"
                    f"<Location>{escape(i.location)}</Location>"
                    f"<IsMeeting>{xml_bool(bool(i.attendees))}</IsMeeting>"
                    f"<IsRecurring>{xml_bool(bool(i.series))}</IsRecurring>"
                    "<IsException>false</IsException><IsReminderSet>true</IsReminderSet>"
                    "<IsPrivate>false</IsPrivate></CalendarEventDetails>"
                )
            events.append(
                f"<CalendarEvent><StartTime>{zone.to_local(i.start)}</StartTime>"
                f"<EndTime>{zone.to_local(i.end)}</EndTime><BusyType>{busy}</BusyType>"
                f"{detail}</CalendarEvent>"
            )
        merged = ""
        if view.endswith("Merged") or view == "MergedOnly":
            digits, cursor = [], start
            while cursor < end:
                step = cursor + timedelta(minutes=interval)
                worst = "Free"
                for i in items:
                    overlaps = i.start < step and i.end > cursor and not i.is_cancelled
                    if overlaps and BUSY_RANK.get(i.show_as, 0) > BUSY_RANK.get(worst, 0):
                        worst = i.show_as
                digits.append(BUSY_DIGITS.get(worst, "0"))
                cursor = step
            merged = f'<MergedFreeBusy xmlns="{T}">{"".join(digits)}</MergedFreeBusy>'
        working = (
            f'<WorkingHours xmlns="{T}"><TimeZone><Bias>0</Bias>'
            "<StandardTime><Bias>0</Bias><Time>00:00:00</Time><DayOrder>1</DayOrder>"
            "<Month>1</Month><DayOfWeek>Sunday</DayOfWeek></StandardTime>"
            "<DaylightTime><Bias>0</Bias><Time>00:00:00</Time><DayOrder>1</DayOrder>"
            "<Month>1</Month><DayOfWeek>Sunday</DayOfWeek></DaylightTime></TimeZone>"
            "<WorkingPeriodArray><WorkingPeriod>"
            "<DayOfWeek>Monday Tuesday Wednesday Thursday Friday</DayOfWeek>"
            "<StartTimeInMinutes>480</StartTimeInMinutes><EndTimeInMinutes>1020</EndTimeInMinutes>"
            "</WorkingPeriod></WorkingPeriodArray></WorkingHours>"
        )
        return (
            '<FreeBusyResponse><ResponseMessage ResponseClass="Success">'
            "<ResponseCode>NoError</ResponseCode></ResponseMessage>"
            f'<FreeBusyView><FreeBusyViewType xmlns="{T}">{view}</FreeBusyViewType>{merged}'
            f'<CalendarEventArray xmlns="{T}">{"".join(events)}</CalendarEventArray>{working}'
            "</FreeBusyView></FreeBusyResponse>"
        )


def autodiscover(state: State, user: User, root: Any, host: str) -> str:
    """``GetUserSettings`` for each requested user, with ``RedirectAddress`` where configured."""
    body = root.find(q(S, "Body"))
    request = body[0].find(q(A, "Request"))
    answers = []
    for node in request.find(q(A, "Users")):
        address = text_of(node, "a:Mailbox").lower()
        if address in state.redirects:
            answers.append(
                "<UserResponse><ErrorCode>RedirectAddress</ErrorCode>"
                "<ErrorMessage>Redirection address.</ErrorMessage>"
                f"<RedirectTarget>{escape(state.redirects[address])}</RedirectTarget>"
                "<UserSettingErrors/><UserSettings/></UserResponse>"
            )
            continue
        target = state.users.get(address)
        if target is None:
            answers.append(
                "<UserResponse><ErrorCode>InvalidUser</ErrorCode>"
                f"<ErrorMessage>Invalid user: '{escape(address)}'</ErrorMessage>"
                f'<RedirectTarget i:nil="true" xmlns:i="{XSI}"/>'
                "<UserSettingErrors/><UserSettings/></UserResponse>"
            )
            continue
        ews_url = f"https://{host}/EWS/Exchange.asmx"
        schemas = ", ".join(API_VERSIONS.get(state.build[:2], ["Exchange2013"])[::-1])
        settings = {
            "UserDisplayName": target.name,
            "AutoDiscoverSMTPAddress": target.smtp,
            "InternalEwsUrl": ews_url,
            "ExternalEwsUrl": ews_url,
            "EwsSupportedSchemas": schemas,
            "CasVersion": ".".join(str(p) for p in state.build),
        }
        rendered = "".join(
            f'<UserSetting i:type="StringSetting" xmlns:i="{XSI}"><Name>{k}</Name>'
            f"<Value>{escape(v)}</Value></UserSetting>"
            for k, v in settings.items()
        )
        answers.append(
            "<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>"
            f'<RedirectTarget i:nil="true" xmlns:i="{XSI}"/><UserSettingErrors/>'
            f"<UserSettings>{rendered}</UserSettings></UserResponse>"
        )
    major, minor, major_build, minor_build = (list(state.build) + [0, 0, 0, 0])[:4]
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{S}" xmlns:a="http://www.w3.org/2005/08/addressing">'
        "<s:Header>"
        '<a:Action s:mustUnderstand="1">'
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/"
        "GetUserSettingsResponse</a:Action>"
        f'<h:ServerVersionInfo xmlns:h="{A}" xmlns:i="{XSI}">'
        f"<h:MajorVersion>{major}</h:MajorVersion><h:MinorVersion>{minor}</h:MinorVersion>"
        f"<h:MajorBuildNumber>{major_build}</h:MajorBuildNumber>"
        f"<h:MinorBuildNumber>{minor_build}</h:MinorBuildNumber>"
        "<h:Version>Exchange2015</h:Version></h:ServerVersionInfo></s:Header>"
        f'<s:Body><GetUserSettingsResponseMessage xmlns="{A}">'
        "<Response><ErrorCode>NoError</ErrorCode><ErrorMessage/>"
        f"<UserResponses>{''.join(answers)}</UserResponses></Response>"
        "</GetUserSettingsResponseMessage></s:Body></s:Envelope>"
    )


# --------------------------------------------------------------------------- HTTP


def _operation_name(body: bytes) -> str:
    """The EWS operation of a request body (for the log of refused requests)."""
    from lxml import etree

    try:
        soap_body = etree.fromstring(body).find(q(S, "Body"))
        return soap_body[0].tag.rpartition("}")[2].removesuffix("Request")
    except (etree.XMLSyntaxError, TypeError, IndexError, AttributeError, ValueError):
        return "?"


class Handler(http.server.BaseHTTPRequestHandler):
    """One TLS connection. NTLM authenticates the connection, so its state lives here."""

    protocol_version = "HTTP/1.1"
    state: State  # set on the class by serve()
    bindings: Any = None  # the certificate's tls-server-end-point channel binding

    def setup(self) -> None:
        super().setup()
        # headers and body leave in two writes: without this, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ntlm: Any = None
        self.principal: User | None = None

    def log_message(self, *args: Any) -> None:
        pass

    # -- plumbing ---------------------------------------------------------

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        answer(self, status, body, headers)

    def _xml(self, status: int, text: str) -> None:
        self._send(status, text.encode(), {"Content-Type": "text/xml; charset=utf-8"})

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _challenge(self, token: str | None = None) -> None:
        """401 with the schemes IIS offers; the connection stays open for NTLM."""
        self.send_response(401)
        if token:
            self.send_header("WWW-Authenticate", f"NTLM {token}")
        else:
            if "ntlm" in self.state.auth:
                self.send_header("WWW-Authenticate", "Negotiate")
                self.send_header("WWW-Authenticate", "NTLM")
            if "basic" in self.state.auth:
                self.send_header("WWW-Authenticate", 'Basic realm="127.0.0.1"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _authenticate(self) -> tuple[User | None, str]:
        """The user behind this request, or None after answering 401 (scheme for the log)."""
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and "basic" in self.state.auth:
            try:
                login, _, password = base64.b64decode(token).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                login, password = "", ""
            user = self.state.user_for_login(login)
            if user is not None and password == user.password:
                return user, "basic"
            self._challenge()
            return None, "basic"
        if scheme in ("ntlm", "negotiate") and "ntlm" in self.state.auth:
            import spnego
            from spnego.exceptions import SpnegoError

            raw = base64.b64decode(token)
            if raw[8:12] == b"\x01\x00\x00\x00":  # NEGOTIATE_MESSAGE starts a new handshake
                # Extended Protection: the client must bind NTLM to this TLS certificate
                self.ntlm = spnego.server(protocol="ntlm", channel_bindings=self.bindings)
                self.principal = None
            if self.ntlm is None:
                self._challenge()
                return None, "ntlm"
            try:
                out = self.ntlm.step(raw)
            except SpnegoError:
                self.ntlm = None
                self._challenge()
                return None, "ntlm"
            if not self.ntlm.complete:
                self._challenge(base64.b64encode(out or b"").decode())
                return None, "ntlm"
            principal = self.ntlm.client_principal or ""
            self.ntlm = None
            self.principal = self.state.user_for_login(principal)
            if self.principal is None:
                self._challenge()
            return self.principal, "ntlm"
        if not header and self.principal is not None:
            return self.principal, "ntlm"  # an NTLM-authenticated connection
        self._challenge()
        return None, ""

    # -- verbs ------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/_admin/"):
            return self._admin("GET", b"")
        self._send(404, b"")

    def do_DELETE(self) -> None:  # noqa: N802
        if self.path.startswith("/_admin/"):
            return self._admin("DELETE", self._read())
        self._send(404, b"")

    def do_PUT(self) -> None:  # noqa: N802
        if self.path.startswith("/_admin/"):
            return self._admin("PUT", self._read())
        self._send(404, b"")

    def do_POST(self) -> None:  # noqa: N802
        body = self._read()
        path = self.path.split("?", 1)[0].lower()
        if path.startswith("/_admin/"):
            return self._admin("POST", body)
        if path not in ("/ews/exchange.asmx", "/autodiscover/autodiscover.svc"):
            return self._send(404, b"")
        state = self.state
        operation = "Autodiscover" if path.startswith("/autodiscover") else ""
        with state.lock:
            early = state.take_fault("HTTP", []) if not operation else None
        if early and early.get("status"):
            return self._answer_status(int(early["status"]), "HTTP")
        user, scheme = self._authenticate()
        if user is None:
            with state.lock:
                name = operation or _operation_name(body)
                state.log.append({"operation": name, "status": 401, "auth": scheme})
            return
        from lxml import etree

        try:
            root = etree.fromstring(body)
        except etree.XMLSyntaxError:
            return self._xml(500, soap_fault("ErrorInvalidRequest", None))
        host = self.headers.get("Host", "127.0.0.1")
        with state.lock:
            if operation:
                state.log.append(
                    {"operation": "Autodiscover", "user": user.smtp, "status": 200, "auth": scheme}
                )
                return self._xml(200, autodiscover(state, user, root, host))
            try:
                ews = Ews(state, user, root, host)
                ews.check_version()
            except SoapFault as fault:
                state.log.append({"operation": "?", "user": user.smtp, "status": 500})
                return self._xml(500, soap_fault(fault.code, fault.back_off_ms))
            targets = ews.targets()
            entry = {
                "operation": ews.operation,
                "user": user.smtp,
                "acting": ews.acting,
                "mailboxes": targets,
                "version": ews.version,
                "auth": scheme,
            }
            rule = state.take_fault(ews.operation, targets)
            if rule and rule.get("status"):
                entry["status"] = int(rule["status"])
                state.log.append(entry)
                return self._answer_status(int(rule["status"]), ews.operation)
            if rule and rule.get("soap"):
                entry["status"] = 500
                state.log.append(entry)
                back_off = rule.get("back_off_ms")
                return self._xml(500, soap_fault(rule["soap"], back_off))
            try:
                answer = ews.run(rule.get("response") if rule else None)
            except SoapFault as fault:
                entry["status"] = 500
                state.log.append(entry)
                return self._xml(500, soap_fault(fault.code, fault.back_off_ms))
            if rule and rule.get("after"):
                # the work is done, but the answer is lost: the connection just drops
                entry["status"] = 0
                state.log.append(entry)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            entry["status"] = 200
            state.log.append(entry)
            self._xml(200, envelope(answer, state.build, ews.server_version_name()))

    def _answer_status(self, status: int, operation: str) -> None:
        if status == 401:
            self.principal = None
            return self._challenge()
        self._send(status, b"")

    # -- admin ------------------------------------------------------------

    def _admin(self, method: str, body: bytes) -> None:
        state = self.state
        data = json.loads(body or b"null")
        parts = self.path.split("?", 1)[0].strip("/").split("/")[1:]
        with state.lock:
            if parts == ["reset"]:
                data = data or {}
                state.reset(data.get("auth"), data.get("build", "15.1.2507.6"))
                return self._json({"ok": True})
            if parts == ["users"]:
                state.add_user(
                    data["smtp"],
                    data["password"],
                    data.get("domain", "EXAMPLE"),
                    data.get("sam") or data["smtp"].split("@")[0],
                    data.get("name", ""),
                )
                return self._json({"ok": True})
            if parts == ["redirects"]:
                state.redirects.update({k.lower(): v for k, v in data.items()})
                return self._json({"ok": True})
            if parts == ["faults"]:
                if method == "DELETE":
                    state.faults.clear()
                else:
                    rule = dict(data)
                    rule["times"] = int(rule.get("times", 1))
                    state.faults.append(rule)
                return self._json({"ok": True})
            if parts == ["log"]:
                if method == "DELETE":
                    state.log.clear()
                return self._json(list(state.log))
            if len(parts) >= 2 and parts[0] == "mailboxes":
                mailbox = state.mailboxes.get(parts[1].lower())
                if mailbox is None:
                    return self._json({"error": "no such mailbox"}, 404)
                if len(parts) == 2:
                    if "delegates" in data:
                        mailbox.delegates = {k.lower(): v for k, v in data["delegates"].items()}
                    if "impersonators" in data:
                        mailbox.impersonators = {s.lower() for s in data["impersonators"]}
                    if "free_busy" in data:
                        mailbox.free_busy = data["free_busy"]
                    return self._json({"ok": True})
                if parts[2] == "events" and method == "PUT":
                    for key in [k for k, i in mailbox.items.items() if i.seeded]:
                        del mailbox.items[key]
                    for raw in data:
                        item = Item(
                            id=state.new_id(),
                            changekey=state.new_changekey(),
                            mailbox=mailbox.smtp,
                            start=parse_time(raw["start"]),
                            end=parse_time(raw["end"]),
                            subject=raw.get("subject", "Busy"),
                            is_all_day=bool(raw.get("is_all_day")),
                            show_as=raw.get("show_as", "Busy"),
                            is_cancelled=bool(raw.get("is_cancelled")),
                            uid=raw.get("uid", ""),
                            item_type=raw.get("type", "Single"),
                            series=raw.get("series", ""),
                            seeded=True,
                        )
                        mailbox.items[item.id] = item
                    return self._json({"ok": True})
                if parts[2] == "events":
                    items = sorted(mailbox.items.values(), key=lambda i: (i.start, i.id))
                    return self._json([i.as_json() for i in items])
                if parts[2] == "deleted":
                    return self._json([i.as_json() for i in mailbox.deleted.values()])
        self._json({"error": "unknown admin path"}, 404)


class TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext) -> None:
        super().__init__(address, Handler)
        self.context = context

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # the handshake happens in the connection's own thread (see finish_request)
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(30)
            request.do_handshake()
        except (OSError, ssl.SSLError):
            return
        super().finish_request(request, client_address)


def channel_bindings(cert_file: Path) -> Any:
    """RFC 5929 ``tls-server-end-point`` bindings, as NTLM with Extended Protection checks."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from spnego.channel_bindings import GssChannelBindings

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest)


def serve() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fake-ews-"))
    ntlm_file = workdir / "ntlm_users"
    os.environ["NTLM_USER_FILE"] = str(ntlm_file)
    Handler.state = State(ntlm_file)
    Handler.bindings = channel_bindings(Path(args.cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = TLSServer(("127.0.0.1", args.port), context)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()
    server.server_close()


# --------------------------------------------------------------------------- test-side handle


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A local CA and a server certificate for 127.0.0.1/localhost signed by it.

    Returns ``(ca_file, cert_file, key_file)``; clients trust ``ca_file``
    (``REQUESTS_CA_BUNDLE``), so TLS verification stays on in every test.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kairos test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.example.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


class EwsFake:
    """Starts the fake as a process and steers it through ``/_admin``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_file, self.cert_file, self.key_file = make_certificates(directory)
        self.process: subprocess.Popen | None = None
        self.url = ""

    @property
    def ews_url(self) -> str:
        return self.url + "/EWS/Exchange.asmx"

    @property
    def autodiscover_url(self) -> str:
        return self.url + "/autodiscover/autodiscover.svc"

    def start(self) -> EwsFake:
        self.process, port = start_announced(
            "tests.fakes.ews_server", "--cert", str(self.cert_file), "--key", str(self.key_file)
        )
        self.url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.admin("GET", "/_admin/log")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("fake EWS server does not answer")

    def stop(self) -> None:
        stop_process(self.process, 10)

    def admin(self, method: str, path: str, data: Any = None) -> Any:
        import requests

        answer = requests.request(
            method, self.url + path, json=data, timeout=10, verify=str(self.ca_file)
        )
        answer.raise_for_status()
        return answer.json()

    # -- conveniences -----------------------------------------------------

    def reset(self, auth: tuple[str, ...] = ("ntlm", "basic"), build: str = "15.1.2507.6") -> None:
        self.admin("POST", "/_admin/reset", {"auth": list(auth), "build": build})

    def add_user(
        self, smtp: str, password: str, domain: str = "EXAMPLE", sam: str = "", name: str = ""
    ) -> None:
        self.admin(
            "POST",
            "/_admin/users",
            {"smtp": smtp, "password": password, "domain": domain, "sam": sam, "name": name},
        )

    def mailbox(self, smtp: str, **settings: Any) -> None:
        """``delegates={user: level}``, ``impersonators=[user]``, ``free_busy="None"``."""
        self.admin("POST", f"/_admin/mailboxes/{smtp}", settings)

    def seed(self, smtp: str, events: list[dict[str, Any]]) -> None:
        self.admin("PUT", f"/_admin/mailboxes/{smtp}/events", events)

    def events(self, smtp: str) -> list[dict[str, Any]]:
        return self.admin("GET", f"/_admin/mailboxes/{smtp}/events")

    def redirect(self, smtp: str, target: str) -> None:
        self.admin("POST", "/_admin/redirects", {smtp: target})

    def fault(self, operation: str = "*", times: int = 1, **rule: Any) -> None:
        """``status=401`` | ``soap="ErrorServerBusy", back_off_ms=…`` | ``response="Error…"``."""
        self.admin("POST", "/_admin/faults", {"operation": operation, "times": times, **rule})

    def clear_faults(self) -> None:
        self.admin("DELETE", "/_admin/faults")

    def log(self) -> list[dict[str, Any]]:
        return self.admin("GET", "/_admin/log")

    def clear_log(self) -> None:
        self.admin("DELETE", "/_admin/log")

    def calls(self, operation: str) -> int:
        return sum(1 for entry in self.log() if entry.get("operation") == operation)


if __name__ == "__main__":
    serve()
