"""Calendar connections: connect an account, set a calendar's flags; the answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from portal.api.schemas.base import ONE_LINE, Body, DateTime, Patch, Reply, absent

MAX_URL = 2000
MAX_USER = 320
MAX_PASSWORD = 1000

#: the fields each provider takes besides "provider"; Google and Microsoft connect in the browser
CONNECT_FIELDS: dict[str, tuple[str, ...]] = {
    "ics": ("url",),
    "caldav": ("url", "username", "password"),
    "exchange": ("email", "password", "ews_url", "username"),
}

Url = Annotated[str, Field(max_length=MAX_URL), ONE_LINE]
User = Annotated[str, Field(max_length=MAX_USER), ONE_LINE]
Password = Annotated[str, Field(max_length=MAX_PASSWORD), ONE_LINE]


class ConnectionRequest(Body):
    """ICS: `{"provider": "ics", "url"}`; CalDAV: `{"provider": "caldav", "url", "username",
    "password"}` (iCloud: an app-specific password); Exchange: `{"provider": "exchange",
    "email", "password", "ews_url"?, "username"?}`. A field another provider takes is refused
    as unknown. Google and Microsoft accounts are connected in the browser (`provider` 422)."""

    provider: Annotated[
        str,
        Field(max_length=40, examples=list(CONNECT_FIELDS), description="ics, caldav, exchange"),
    ]
    url: Url = ""
    username: User = ""
    password: Password = ""
    email: User = ""
    ews_url: Url = ""


class CalendarPatch(Patch):
    conflict: bool = absent()
    write: bool = absent(description="true moves the write flag here")
    # Echoed fields of a GET answer are accepted and ignored, so a client may send one back.
    id: Any = Field(default=None, json_schema_extra={"readOnly": True})
    name: Any = Field(default=None, json_schema_extra={"readOnly": True})
    writable: Any = Field(default=None, json_schema_extra={"readOnly": True})


class Calendar(Reply):
    id: int
    name: str
    writable: bool = Field(description="the account may create events here")
    conflict: bool = Field(description="its busy times block slots")
    write: bool = Field(description="receives new bookings (one per host)")


class Connection(Reply):
    id: int
    provider: str = Field(examples=["caldav"])
    label: str = Field(description="account name, user @ server, feed name")
    status: Literal["ok", "syncing", "needs_reconnect", "error"]
    last_synced_at: DateTime | None
    last_error: str
    calendars: list[Calendar]


class ConnectionList(Reply):
    connections: list[Connection]
