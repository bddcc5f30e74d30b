"""WebDAV answers read: the calendar home's listing and a collection's sync cursor.

One PROPFIND lists calendars with their writability
(``current-user-privilege-set``) and zone (``calendar-timezone``); another
reads a collection's RFC 6578 sync token and its ctag.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree

from portal.calendars.providers.base import RemoteCalendar

NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav", "cs": "http://calendarserver.org/ns/"}
LIST_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:prop><d:resourcetype/><d:displayname/><d:current-user-privilege-set/>"
    "<c:calendar-timezone/><c:supported-calendar-component-set/></d:prop></d:propfind>"
)
CURSOR_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
    "<d:prop><d:sync-token/><cs:getctag/></d:prop></d:propfind>"
)
WRITE_PRIVILEGES = {"write", "write-content", "bind", "all"}


def path_of(url: object) -> str:
    """The unquoted path of an href/URL: one spelling for the same resource."""
    return unquote(urlsplit(str(url)).path)


def tzid(vcalendar_text: str) -> str:
    """The zone a ``calendar-timezone`` VTIMEZONE names, when it is one we know."""
    match = re.search(r"^TZID:(.+)$", vcalendar_text or "", re.MULTILINE)
    if not match:
        return ""
    name = match.group(1).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    return name


def _props(item: etree._Element) -> dict[str, etree._Element]:
    """The properties a multistatus response found (status 200), by local name."""
    props: dict[str, etree._Element] = {}
    for propstat in item.findall("d:propstat", NS):
        if " 200 " not in (propstat.findtext("d:status", "", NS) + " "):
            continue
        prop_list = propstat.find("d:prop", NS)
        for prop in prop_list if prop_list is not None else ():
            props[etree.QName(prop).localname] = prop
    return props


def calendars(root: etree._Element, home: str) -> list[RemoteCalendar]:
    """The event calendars of a home's PROPFIND answer; the first writable one is primary."""
    out: list[RemoteCalendar] = []
    for item in root.findall("d:response", NS):
        href = item.findtext("d:href", "", NS)
        props = _props(item)
        rtype = props.get("resourcetype")
        if rtype is None or rtype.find("c:calendar", NS) is None:
            continue
        comps = props.get("supported-calendar-component-set")
        if comps is not None and len(comps):
            names = {c.get("name", "").upper() for c in comps.findall("c:comp", NS)}
            if "VEVENT" not in names:
                continue
        privileges = props.get("current-user-privilege-set")
        if privileges is None:
            writable = True  # servers without the property let owners write
        else:
            granted = {etree.QName(p).localname for p in privileges.iter() if len(p) == 0}
            writable = bool(granted & WRITE_PRIVILEGES)
        tz = props.get("calendar-timezone")
        url = urljoin(home, href)
        name = (props["displayname"].text or "").strip() if "displayname" in props else ""
        out.append(
            RemoteCalendar(
                external_id=url,
                name=name or path_of(url).rstrip("/").rsplit("/", 1)[-1],
                writable=writable,
                timezone=tzid(tz.text or "") if tz is not None else "",
            )
        )
    out.sort(key=lambda c: c.name.lower())
    first_writable = next((c for c in out if c.writable), None)
    if first_writable is not None:
        out[out.index(first_writable)] = RemoteCalendar(
            first_writable.external_id,
            first_writable.name,
            True,
            first_writable.timezone,
            primary=True,
        )
    return out


def cursor(root: etree._Element) -> dict[str, str]:
    """``sync_token`` and ``ctag`` of a collection's PROPFIND answer (either may be missing)."""
    found = {}
    token = root.findtext(".//d:sync-token", "", NS).strip()
    ctag = root.findtext(".//cs:getctag", "", NS).strip()
    if token:
        found["sync_token"] = token
    if ctag:
        found["ctag"] = ctag
    return found
