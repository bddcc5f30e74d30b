"""The calendar provider contract: declared once, here.

Every provider (ICS, CalDAV, Google, Microsoft, Exchange) is an adapter that
subclasses :class:`CalendarProvider` and is listed in
``portal.calendars.providers.REGISTRY``. Adapters *translate* between a remote calendar
service and the plain values below; they never import models, never read
``flask.g`` or the request, and never write to the database. Everything they
need arrives through the constructor:

``settings``
    non-secret per-account settings (base URL, user name, discovered
    endpoints), a JSON-able dict stored in ``Connection.settings``;
``credentials``
    the *decrypted* secret dict (password, OAuth tokens) stored encrypted in
    ``Connection.secret``;
``config``
    plain application configuration values the adapter may read
    (``GOOGLE_API_BASE``, ``MS_GRAPH_BASE``, ``HTTP_TIMEOUT`` seconds,
    ``ALLOW_PRIVATE_URLS``, ``TENTATIVE_IS_BUSY`` …);
``on_credentials_updated``
    called with the complete new credentials dict whenever the adapter
    refreshes an OAuth token, so ``portal.calendars.sync`` can re-encrypt and store it;
``refresh_guard`` (optional, OAuth adapters)
    a zero-argument callable returning a context manager that holds a
    per-connection lock and yields the credentials as stored *now*; OAuth
    adapters refresh inside it, so two processes never spend the same
    (rotating) refresh token — see ``portal/calendars/providers/oauth.py``.

All datetimes crossing this boundary are timezone-aware; instants returned by
adapters are in UTC. Errors leave an adapter only as subclasses of
:class:`ProviderError`, so the sync layer can decide between "retry later",
"needs reconnect" and "give up" without knowing any HTTP library.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class RemoteCalendar:
    """A calendar as the provider lists it."""

    external_id: str  # stable id used in every later call (href, Graph id, …)
    name: str
    writable: bool  # the account may create events in it
    timezone: str = ""  # IANA zone the calendar declares, "" when unknown
    primary: bool = False  # the account's default calendar (pre-selected as write calendar)


@dataclass(frozen=True)
class CalendarRef:
    """What the sync layer tells an adapter about a calendar it should read.

    ``timezone`` is the *effective* zone for all-day events and floating
    times: the calendar's own zone when it has one, else the host's zone.
    ``all_busy`` is the host's "treat every event as busy" switch (servers
    that never set TRANSP); adapters that cannot honour it ignore it.
    """

    external_id: str
    timezone: str = "UTC"
    all_busy: bool = False


@dataclass(frozen=True)
class BusyInterval:
    """One busy span. Deliberately no title, no attendees: we cache only time.

    ``source_id`` names the remote event the span came from (href, event id),
    so incremental syncs can replace or drop one event's spans; "" when the
    provider reports anonymous free/busy only. ``uid`` is the event's
    iCalendar UID when the provider says it ("" otherwise): the sync layer
    recognises Kairos's own written-back events by it (``portal.calendars.own_events``).
    """

    start: datetime  # aware, UTC
    end: datetime  # aware, UTC, > start
    source_id: str = ""
    uid: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("BusyInterval needs aware datetimes")
        if self.end <= self.start:
            raise ValueError("BusyInterval must have end > start")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))


@dataclass(frozen=True)
class EventData:
    """A booking as it should appear in the host's calendar.

    ``ical_uid`` is the booking's stable iCalendar UID (it survives
    reschedules); adapters derive any deterministic remote id from it, which
    is what makes :meth:`CalendarProvider.create_event` idempotent.
    """

    booking_uid: str
    ical_uid: str
    summary: str
    description: str
    start: datetime  # aware
    end: datetime  # aware
    attendee_name: str
    attendee_email: str
    location: str = ""  # meeting link or place
    sequence: int = 0  # iCalendar SEQUENCE; rises on every reschedule
    organizer_name: str = ""
    organizer_email: str = ""
    timezone: str = "UTC"  # host zone, for providers that want a display zone
    # Further attendees as (name, email): the co-workers of a meeting a host set up with them.
    more_attendees: tuple[tuple[str, str], ...] = ()
    # A conference the provider should attach: "google_meet" (Google) or "teams"
    # (Microsoft); adapters that cannot make the one asked for ignore it, and the
    # caller sees no ``join_url`` in the answer.
    conference: str = ""

    def attendees(self) -> tuple[tuple[str, str], ...]:
        """Everyone invited, as (name, email): the invitee first."""
        return ((self.attendee_name, self.attendee_email), *self.more_attendees)


@dataclass(frozen=True)
class WrittenEvent:
    """Where an event landed: the remote id and its version tag."""

    external_id: str  # href / event id, used for update and delete
    etag: str = ""  # etag / change key; "" when the provider has none
    join_url: str = ""  # the conference link the provider attached (EventData.conference)
    conference_error: str = ""  # why the provider attached none, when it said

    def __iter__(self):  # allows ``external_id, etag = provider.create_event(...)``
        return iter((self.external_id, self.etag))


@dataclass(frozen=True)
class BusyChanges:
    """Result of :meth:`CalendarProvider.sync_busy` for one calendar.

    ``full``: ``busy`` replaces everything cached for the calendar.
    Otherwise ``busy`` maps each *changed* source event to its complete new
    list of spans in the window (an empty tuple = the event is now free), and
    ``removed`` names source events that disappeared. ``state`` is the opaque
    cursor (sync token, ctag, ETag …) to pass to the next call.
    ``unchanged`` is a shortcut for "nothing happened" (HTTP 304, same ctag).
    """

    full: bool
    busy: Mapping[str, tuple[BusyInterval, ...]] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    state: Mapping[str, Any] = field(default_factory=dict)
    unchanged: bool = False


@dataclass(frozen=True)
class ConnectionSetup:
    """What :meth:`CalendarProvider.prepare` derives from a connect form."""

    label: str  # shown to the host: account e-mail, user@server, feed URL
    settings: Mapping[str, Any]  # non-secret, stored as JSON
    credentials: Mapping[str, Any]  # secret, stored encrypted
    # The account's calendars when prepare() knows them without reading everything (a
    # feed is one calendar): connecting then lists nothing, and the first refresh job
    # does the reading while the connection shows "syncing".
    calendars: tuple[RemoteCalendar, ...] | None = None


# --------------------------------------------------------------------------- errors


class ProviderError(Exception):
    """Base of every error an adapter may raise.

    ``retryable`` tells jobs whether trying again later can help.
    """

    retryable: ClassVar[bool] = False


class CredentialsInvalid(ProviderError):
    """Wrong password, revoked or expired grant: the host must reconnect."""


class PermissionDenied(ProviderError):
    """Authenticated, but not allowed (read-only calendar, missing scope)."""


class NotFound(ProviderError):
    """The calendar or event does not exist (any more)."""


class SyncTokenExpired(ProviderError):
    """The incremental cursor is no longer accepted; do a full sync."""


class Transient(ProviderError):
    """Network error, timeout, 5xx: worth retrying later."""

    retryable = True


class RateLimited(Transient):
    """The provider asked us to slow down; ``retry_after`` in seconds if it said."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class InvalidSetup(ProviderError):
    """A connect form value is unusable; ``field`` names the form/API field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# --------------------------------------------------------------------------- interface

TokenCallback = Callable[[dict[str, Any]], None]


class CalendarProvider(abc.ABC):
    """One account at one calendar service.

    Subclasses set the class attributes and implement the abstract methods.
    Contract (checked by tests/contract/test_provider_contract.py for every
    adapter in the registry):

    * ``list_calendars`` raises :class:`CredentialsInvalid` for bad
      credentials and :class:`Transient` when the server is unreachable.
    * ``busy`` returns a dict with one entry per requested calendar id, each
      a list of :class:`BusyInterval` clipped to nothing in particular but
      overlapping ``[start, end)``; transparent/free and cancelled events are
      absent; tentative ones follow ``config["TENTATIVE_IS_BUSY"]``; all-day
      events cover whole days in ``CalendarRef.timezone``; recurrences are
      expanded.
    * ``create_event`` is idempotent per ``event.ical_uid``: calling it again
      after a lost response returns the existing event instead of making a
      second one.
    * ``update_event`` raises :class:`NotFound` when the event is gone.
    * ``delete_event`` succeeds silently when the event is already gone.
    * Read-only adapters (``writable = False``) raise
      :class:`PermissionDenied` from the three write methods.
    """

    #: registry key, stored in ``Connection.provider``
    name: ClassVar[str] = ""
    #: human name for settings pages
    title: ClassVar[str] = ""
    #: False for read-only sources (ICS)
    writable: ClassVar[bool] = True
    #: True when connected through an OAuth redirect in the browser
    oauth: ClassVar[bool] = False
    #: what a duplicate connection is called, and the form field blamed for it
    account_noun: ClassVar[str] = "account"
    account_field: ClassVar[str] = "url"

    def __init__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, Any],
        config: Mapping[str, Any] | None = None,
        on_credentials_updated: TokenCallback | None = None,
        refresh_guard: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = dict(settings)
        self.credentials = dict(credentials)
        self.config = dict(config or {})
        self.on_credentials_updated = on_credentials_updated
        self.refresh_guard = refresh_guard

    # -- connecting -------------------------------------------------------

    @classmethod
    def prepare(cls, fields: Mapping[str, Any], config: Mapping[str, Any]) -> ConnectionSetup:
        """Validate a connect form / API body and split it into settings and secrets.

        May talk to the server (discovery). Raises :class:`InvalidSetup`
        naming the offending field. OAuth adapters connect in the browser
        instead and need not override this.
        """
        raise InvalidSetup("provider", f"{cls.title or cls.name} is connected in the browser")

    @classmethod
    def account_key(cls, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> str:
        """What makes two connections of this provider the same account ("": never compared).

        ``portal.calendars.sync`` refuses to connect an account the host already has;
        OAuth adapters match their accounts by the provider's user id instead.
        """
        return ""

    # -- reading ----------------------------------------------------------

    def use_cursors(self, cursors: Mapping[str, Mapping[str, Any]]) -> None:  # noqa: B027
        """The cursors the last refresh stored, per calendar id, given before a refresh.

        Optional: a feed adapter makes its :meth:`list_calendars` conditional with them.
        """

    @abc.abstractmethod
    def list_calendars(self) -> list[RemoteCalendar]:
        """Every calendar of the account, with writability and zone."""

    @abc.abstractmethod
    def busy(
        self, calendars: Sequence[CalendarRef], start: datetime, end: datetime
    ) -> dict[str, list[BusyInterval]]:
        """Busy intervals overlapping ``[start, end)`` per calendar external id."""

    def recheck(
        self,
        calendars: Sequence[CalendarRef],
        start: datetime,
        end: datetime,
        cursors: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, list[BusyInterval] | None]:
        """The confirm-time re-check of a short window (one slot): cheap and bounded.

        ``cursors`` holds, per calendar external id, the cursor the last
        :meth:`sync_busy` returned. A value of ``None`` in the answer means
        "unchanged since that cursor": the cache is current and nothing more
        needs reading. The default asks :meth:`busy` for just the window
        (free/busy queries, time-range REPORTs); whole-feed sources override it.
        """
        return dict(self.busy(calendars, start, end))

    def sync_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime, state: Mapping[str, Any]
    ) -> BusyChanges:
        """Incremental hook: what changed since ``state`` (the previous cursor).

        The default is a full read through :meth:`busy`; adapters with sync
        tokens, ctags or ETags override it. Raise :class:`SyncTokenExpired`
        when the cursor is refused — the caller then retries with ``{}``.
        """
        spans = self.busy([calendar], start, end).get(calendar.external_id, [])
        grouped: dict[str, list[BusyInterval]] = {}
        for span in spans:
            grouped.setdefault(span.source_id, []).append(span)
        return BusyChanges(full=True, busy={k: tuple(v) for k, v in grouped.items()}, state={})

    # -- writing ----------------------------------------------------------

    @abc.abstractmethod
    def create_event(self, calendar_id: str, event: EventData) -> WrittenEvent:
        """Create the booking's event; idempotent per ``event.ical_uid``."""

    @abc.abstractmethod
    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, etag: str = ""
    ) -> WrittenEvent:
        """Replace the event's time and details (a reschedule)."""

    @abc.abstractmethod
    def delete_event(self, calendar_id: str, external_id: str, etag: str = "") -> None:
        """Remove the event; no error if it is already gone."""

    # -- OAuth ------------------------------------------------------------

    def refresh_token(self) -> dict[str, Any] | None:
        """Refresh OAuth credentials now; return the new credentials dict.

        Adapters refresh on their own when a call finds the token expired and
        report through ``on_credentials_updated``; this hook lets the
        scheduled job renew ahead of time. Non-OAuth adapters return None.
        """
        return None

    def close(self) -> None:  # noqa: B027 — optional hook, nothing to release by default
        """Release sessions/sockets; called by the sync layer when done."""
