"""Exchange on-premises over EWS, on ``exchangelib``: personal and corporate accounts.

* **Connecting** (:meth:`ExchangeProvider.prepare`): e-mail + password (or an
  app password), an optional EWS URL and an optional user name — blank (the
  e-mail is used), the e-mail, ``DOMAIN\\user`` or a bare account name. With
  no URL, SOAP Autodiscover runs *once*; the endpoint, the authentication
  scheme the server offers (NTLM or Basic) and the server version are then
  stored in the connection's settings, so every later call goes straight to
  work without discovery, auth probing or version guessing. A failed connect
  names the field to change and what to try next (the URL, then the user name
  forms), instead of a bare error.
* **Corporate** (``settings["access"]``): one dedicated mailbox reaches each
  member's calendar with delegate access or ``ApplicationImpersonation``;
  the calendar's external id is the *member's* address, so events land in
  the member's own calendar, owned by the member.
* **Busy**: ``GetUserAvailability`` in UTC (exchangelib's ``EWSTimeZone``),
  which needs only free/busy rights: ``Busy``/``OOF`` are busy, ``Tentative``
  follows ``TENTATIVE_IS_BUSY``, ``Free``/``WorkingElsewhere``/``NoData`` are
  free. Recurrences and all-day events arrive expanded by the server.
* **Writes**: the invitee is a required attendee; Exchange sends nothing
  (``SendToNone``: Kairos mails the invitation itself). Each item carries the
  booking's iCalendar UID twice — as ``UID`` and in a Kairos extended
  property, which is searchable — so a retried create finds the item it made
  before instead of making a second one. Item id and change key are returned
  for storage.
* **Failures**: exchangelib's fail-fast retry policy is kept, so a job never
  sleeps inside a worker: ``ErrorServerBusy`` becomes :class:`RateLimited`
  with the server's ``BackOffMilliseconds``, and the job is re-enqueued after
  it; a refused sign-in becomes :class:`CredentialsInvalid`.

TLS verification is always on. A server with a certificate from a private
CA is trusted by pointing ``REQUESTS_CA_BUNDLE`` at that CA (requests, which
exchangelib uses, reads it). A host-typed URL must not reach the machine's
own network unless ``ALLOW_PRIVATE_URLS`` is set (checked by DNS before each
connection; exchangelib never follows EWS redirects itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import requests_ntlm
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    Account,
    Attendee,
    Body,
    CalendarItem,
    Configuration,
    Credentials,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    FailFast,
)
from exchangelib import errors as ews
from exchangelib.autodiscover.protocol import AutodiscoverProtocol
from exchangelib.folders import Calendar, Root
from exchangelib.items import ALWAYS_OVERWRITE, MOVE_TO_DELETED_ITEMS, SEND_TO_NONE
from exchangelib.properties import (
    DaylightTime,
    DistinguishedFolderId,
    FreeBusyViewOptions,
    Mailbox,
    MailboxData,
    StandardTime,
    TimeWindow,
    TimeZone,
)
from exchangelib.protocol import Protocol
from exchangelib.services import GetUserAvailability
from exchangelib.transport import AUTH_TYPE_MAP, BASIC, NTLM
from exchangelib.version import Build, Version

from portal.calendars.providers import net
from portal.calendars.providers.base import (
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

ACCESS_TYPES = (DELEGATE, IMPERSONATION)
AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC}
EWS_PATH = "/EWS/Exchange.asmx"
AUTODISCOVER_PATH = "/autodiscover/autodiscover.svc"
# Exchange refuses availability windows longer than 62 days; stay well inside.
AVAILABILITY_CHUNK = timedelta(days=42)
BUSY_TYPES = frozenset({"Busy", "OOF"})
# The availability request's zone: UTC, with the zero-bias rules servers expect to see.
UTC_AVAILABILITY_ZONE = TimeZone(
    bias=0,
    standard_time=StandardTime(bias=0, time=time(0), occurrence=1, iso_month=1, weekday=1),
    daylight_time=DaylightTime(bias=0, time=time(0), occurrence=5, iso_month=12, weekday=7),
)
MAX_AUTODISCOVER_HOPS = 10
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DOMAIN_USER_RE = re.compile(r"^[^\\/\s@]+\\[^\\/\s]+$")
PLAIN_USER_RE = re.compile(r"^[^\\/\s@]+$")


class KairosBookingUid(ExtendedProperty):
    """The booking's iCalendar UID on the item, in Kairos' own property set.

    ``calendar:UID`` cannot be used in a FindItem restriction; this named
    property can, which is what makes a retried create idempotent.
    """

    property_set_id = "0c2b3c6e-4f0a-4d1e-9a57-2e8f5b6a7d31"
    property_name = "KairosBookingUid"
    property_type = "String"


with suppress(ValueError):  # already registered (module reloaded in the same process)
    CalendarItem.register("kairos_uid", KairosBookingUid)


class ChannelBoundNtlmAuth(requests_ntlm.HttpNtlmAuth):
    """requests-ntlm's NTLM, reading the server certificate without leaking a socket file.

    NTLM over TLS sends a channel binding (a hash of the server's
    certificate) that Exchange with Extended Protection requires. The stock
    class reaches the certificate through ``response.raw._fp.fp``, which under
    urllib3-future opens a file on the socket that is never closed; the
    connection then leaks when the pool closes it. Reading the certificate
    from the socket itself keeps the binding and the cleanup.
    """

    def _get_server_cert(self, response: requests.Response) -> bytes | None:
        if not self.send_cbt:
            return None
        sock = getattr(getattr(response.raw, "_fp", None), "_sock", None)
        getpeercert = getattr(sock, "getpeercert", None)
        if getpeercert is None:
            return super()._get_server_cert(response)
        der = getpeercert(True)
        return requests_ntlm.requests_ntlm._get_certificate_hash(der) if der else None


# exchangelib builds its sessions' auth from this map; NTLM gets the class above.
AUTH_TYPE_MAP[NTLM] = ChannelBoundNtlmAuth


# --------------------------------------------------------------------------- pure helpers


def username_form(username: str, email: str) -> str:
    """Which of the accepted user-name forms this is: ``email``, ``domain`` or ``plain``."""
    name = username.strip()
    if not name or name.lower() == email.lower() or EMAIL_RE.match(name):
        return "email"
    if DOMAIN_USER_RE.match(name):
        return "domain"
    return "plain"


def check_username(username: str) -> str:
    """Normalise the optional user name or raise :class:`InvalidSetup` naming ``username``."""
    name = username.strip()
    if len(name) > 256:
        raise InvalidSetup("username", "the user name is too long")
    if name and not (
        EMAIL_RE.match(name) or DOMAIN_USER_RE.match(name) or PLAIN_USER_RE.match(name)
    ):
        raise InvalidSetup(
            "username",
            "use your e-mail address, DOMAIN\\user (e.g. CORP\\alice) or leave it blank",
        )
    return name


def check_ews_url(url: str, field: str = "ews_url") -> str:
    """An https EWS endpoint; a bare server address gets Exchange's standard path."""
    url = net.check_url(url, field)
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise InvalidSetup(field, "Exchange needs an https:// address (TLS is always verified)")
    if parts.path in ("", "/"):
        url = url.rstrip("/") + EWS_PATH
    return url


def sign_in_advice(email: str, username: str) -> str:
    """What to try after a refused sign-in: the password, then the other user-name forms."""
    local = email.partition("@")[0] or "user"
    form = username_form(username, email)
    login = username or email
    tries = {
        "email": f"your e-mail address ({email})",
        "domain": f"DOMAIN\\user (e.g. CORP\\{local})",
        "plain": f"the account name alone ({local})",
    }
    others = [text for key, text in tries.items() if key != form]
    return (
        f"Exchange refused the sign-in as “{login}”. Check the password — with two-step "
        "verification, create an app password and use that. If the password is right, "
        f"enter the user name as {others[0]}, or as {others[1]}."
    )


def busy_type_blocks(busy_type: str, tentative_is_busy: bool) -> bool:
    """EWS free/busy semantics: Busy/OOF block, Tentative per setting, the rest is free."""
    if busy_type == "Tentative":
        return tentative_is_busy
    return busy_type in BUSY_TYPES


def windows(start: datetime, end: datetime, size: timedelta = AVAILABILITY_CHUNK):
    """``[start, end)`` cut into consecutive windows no longer than ``size``."""
    cursor = start
    while cursor < end:
        upper = min(cursor + size, end)
        yield cursor, upper
        cursor = upper


def autodiscover_urls(email: str, configured: str = "") -> list[str]:
    """Where SOAP Autodiscover is tried: the configured endpoint, or the two standard hosts."""
    if configured:
        return [configured]
    domain = email.rpartition("@")[2].lower()
    return [
        f"https://{domain}{AUTODISCOVER_PATH}",
        f"https://autodiscover.{domain}{AUTODISCOVER_PATH}",
    ]


def parse_version(settings: Mapping[str, Any]) -> Version | None:
    """The stored server version, so exchangelib does not guess it again."""
    build, api = str(settings.get("version") or ""), str(settings.get("api_version") or "")
    if not build or not api:
        return None
    try:
        parts = [int(p) for p in build.split(".")]
        return Version(build=Build(*(parts + [0, 0, 0, 0])[:4]), api_version=api)
    except (TypeError, ValueError):
        return None


def member_settings(service: Mapping[str, Any], mailbox: str) -> dict[str, Any]:
    """A member's connection through the organisation's mailbox (the corporate connection).

    The service login (its user name, or its address) signs in; the member's
    address is the mailbox acted on, so bookings land in the member's own
    calendar. Endpoint, auth type and version are the service account's.
    """
    settings = {
        key: service[key]
        for key in ("ews_url", "auth_type", "version", "api_version", "access")
        if key in service
    }
    settings.update(
        email=mailbox.strip().lower(),
        username=str(service.get("username") or service["email"]),
        corporate=True,
        service_email=str(service["email"]),
    )
    return settings


def _utc(value: Any) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), UTC)


# --------------------------------------------------------------------------- the adapter


class ExchangeProvider(CalendarProvider):
    """One Exchange login reaching one or more mailboxes' calendars (external id = address)."""

    name = "exchange"
    title = "Exchange (on-premises)"
    account_noun = "mailbox"
    account_field = "email"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accounts: dict[str, Account] = {}
        self._protocol: Protocol | None = None

    # -- connecting -------------------------------------------------------

    @classmethod
    def prepare(cls, fields: Mapping[str, Any], config: Mapping[str, Any]) -> ConnectionSetup:
        """Validate the form, discover the endpoint if needed, prove the sign-in works."""
        email = str(fields.get("email") or "").strip().lower()
        password = str(fields.get("password") or "")
        if not EMAIL_RE.match(email) or len(email) > 320:
            raise InvalidSetup("email", "enter the mailbox's e-mail address")
        if not password:
            raise InvalidSetup("password", "the password is required")
        username = check_username(str(fields.get("username") or ""))
        access = str(fields.get("access") or DELEGATE)
        if access not in ACCESS_TYPES:
            raise InvalidSetup("access", "choose delegate access or impersonation")
        raw_url = str(fields.get("ews_url") or "").strip()
        login = username or email
        settings: dict[str, Any] = {"email": email, "username": username, "access": access}
        if raw_url:
            settings["ews_url"] = check_ews_url(raw_url)
        else:
            url, email = cls.autodiscover(email, login, password, config, username)
            settings.update(ews_url=url, email=email, autodiscovered=True)
        provider = cls(settings, {"password": password}, config)
        try:
            provider.list_calendars()
            settings.update(provider.learned_settings())
        except CredentialsInvalid as exc:
            raise InvalidSetup("username", sign_in_advice(email, username)) from exc
        except net.AddressNotAllowed as exc:
            raise InvalidSetup("ews_url", str(exc)) from exc
        except NotFound as exc:
            raise InvalidSetup("email", f"the server has no mailbox for {email}") from exc
        except PermissionDenied as exc:
            raise InvalidSetup(
                "email", f"signed in, but this account may not open the calendar of {email}"
            ) from exc
        except ProviderError as exc:
            raise InvalidSetup("ews_url", cls._unreachable_advice(settings, exc)) from exc
        finally:
            provider.close()
        return ConnectionSetup(label=email, settings=settings, credentials={"password": password})

    @classmethod
    def account_key(cls, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> str:
        """The mailbox: one calendar read through two logins is still one calendar."""
        return str(settings.get("email") or "").strip().lower()

    @staticmethod
    def _unreachable_advice(settings: Mapping[str, Any], exc: ProviderError) -> str:
        url = settings.get("ews_url", "")
        if settings.get("autodiscovered"):
            return (
                f"Autodiscover pointed to {url}, but it did not answer as Exchange ({exc}). "
                "Enter the EWS URL yourself, usually https://mail.example.com/EWS/Exchange.asmx."
            )
        return (
            f"No Exchange server answered at {url} ({exc}). Check the address — it usually "
            "looks like https://mail.example.com/EWS/Exchange.asmx."
        )

    @classmethod
    def autodiscover(
        cls, email: str, login: str, password: str, config: Mapping[str, Any], username: str = ""
    ) -> tuple[str, str]:
        """SOAP Autodiscover: ``(EWS URL, primary address)``, following redirects.

        Runs once per connect; the result is stored so calls never repeat it.
        Address redirects restart at the first endpoint with the new address;
        URL redirects must stay on https.
        """
        configured = str(config.get("EWS_AUTODISCOVER_URL") or "")
        credentials = Credentials(login, password)
        seen_emails = {email}
        queue = autodiscover_urls(email, configured)
        hops, last_error, refused = 0, "no Autodiscover endpoint answered", False
        while queue and hops < MAX_AUTODISCOVER_HOPS:
            url = queue.pop(0)
            hops += 1
            try:
                cls._check_address(url, config)
                answer = cls._user_settings(url, email, credentials, config)
            except ews.UnauthorizedError:
                # the domain's web site may want a login of its own: try the next place first
                refused, last_error = True, "the sign-in was refused"
                continue
            except net.AddressNotAllowed as exc:
                last_error = str(exc)
                continue
            except (ews.TransportError, requests.RequestException, OSError) as exc:
                last_error = str(net.unreachable(url, exc))
                continue
            except ews.EWSError as exc:
                last_error = str(exc) or exc.__class__.__name__
                continue
            if answer.redirect_address:
                target = answer.redirect_address.strip().lower()
                if target in seen_emails:
                    last_error = "Autodiscover redirects in a circle"
                    break
                seen_emails.add(target)
                email, queue = target, autodiscover_urls(target, configured)
                continue
            if answer.redirect_url:
                if answer.redirect_url.lower().startswith("https://"):
                    queue.insert(0, answer.redirect_url)
                continue
            try:
                answer.raise_errors()
            except ews.ErrorNonExistentMailbox as exc:
                raise InvalidSetup(
                    "email", f"the Exchange server knows no mailbox {email}"
                ) from exc
            except ews.EWSError as exc:
                last_error = str(exc)
                continue
            found = answer.ews_url or answer.user_settings.get("internal_ews_url")
            if found:
                address = (answer.autodiscover_smtp_address or email).lower()
                return check_ews_url(found), address
        if refused:
            raise InvalidSetup("username", sign_in_advice(email, username))
        domain = email.rpartition("@")[2]
        raise InvalidSetup(
            "ews_url",
            f"Autodiscover found no Exchange server for {domain} ({last_error}). Enter the EWS "
            "URL, usually https://mail.example.com/EWS/Exchange.asmx (Outlook shows it under "
            "“Test E-mail AutoConfiguration”, or ask your administrator).",
        )

    @staticmethod
    def _user_settings(url: str, email: str, credentials: Credentials, config: Mapping[str, Any]):
        protocol = AutodiscoverProtocol(
            config=Configuration(
                service_endpoint=url, credentials=credentials, retry_policy=FailFast()
            )
        )
        protocol.TIMEOUT = net.timeout(config)
        try:
            return protocol.get_user_settings(user=email)
        finally:
            protocol.close()

    @staticmethod
    def _check_address(url: str, config: Mapping[str, Any]) -> None:
        if not config.get("ALLOW_PRIVATE_URLS"):
            net.check_host(url)

    def learned_settings(self) -> dict[str, Any]:
        """What this session found out (auth scheme, version), to store and skip next time."""
        protocol = self.protocol()
        version = protocol.config.version
        learned: dict[str, Any] = {}
        auth = str(protocol.config.auth_type or "")
        for key, value in AUTH_TYPES.items():
            if value == auth:
                learned["auth_type"] = key
        if version is not None and version.build is not None:
            learned.update(version=str(version.build), api_version=version.api_version)
        return learned

    # -- plumbing ---------------------------------------------------------

    @property
    def login(self) -> str:
        return str(self.settings.get("username") or self.settings["email"])

    def protocol(self) -> Protocol:
        """The exchangelib protocol: endpoint, credentials, stored auth type and version."""
        if self._protocol is None:
            url = str(self.settings.get("ews_url") or "")
            if not url:
                raise InvalidSetup("ews_url", "this connection has no EWS URL")
            if not self.settings.get("corporate"):  # the admin's own server is trusted
                self._check_address(url, self.config)
            config = Configuration(
                service_endpoint=url,
                credentials=Credentials(self.login, str(self.credentials.get("password") or "")),
                auth_type=AUTH_TYPES.get(str(self.settings.get("auth_type") or "")),
                version=parse_version(self.settings),
                retry_policy=FailFast(),
                max_connections=1,
            )
            protocol = Protocol(config=config)
            protocol.TIMEOUT = net.timeout(self.config)
            self._protocol = protocol
        return self._protocol

    def account(self, mailbox: str) -> Account:
        """The mailbox as seen by this login: its own, a delegate's view, or impersonated.

        The login's own mailbox is never impersonated: that needs no rights,
        while impersonating oneself needs the impersonation role in scope.
        """
        mailbox = mailbox.lower()
        if mailbox not in self._accounts:
            protocol = self.protocol()
            own = str(self.settings.get("service_email") or self.settings["email"]).lower()
            access = str(self.settings.get("access") or DELEGATE)
            if mailbox == own or access not in ACCESS_TYPES:
                access = DELEGATE
            self._accounts[mailbox] = Account(
                primary_smtp_address=mailbox,
                config=protocol.config,
                access_type=access,
                autodiscover=False,
                default_timezone=EWSTimeZone("UTC"),
                locale="en_US",
            )
        return self._accounts[mailbox]

    def calendar(self, mailbox: str) -> Calendar:
        """The mailbox's default calendar, addressed by its distinguished id (no lookups)."""
        account = self.account(mailbox)
        return Calendar(
            root=Root(account=account),
            _distinguished_id=DistinguishedFolderId(
                id=Calendar.DISTINGUISHED_FOLDER_ID, mailbox=Mailbox(email_address=mailbox)
            ),
        )

    def close(self) -> None:
        """Drop the pooled sessions; the next job signs in afresh with current secrets."""
        if self._protocol is not None:
            self._protocol.close()
            with suppress(KeyError):
                del Protocol[self._protocol.config]
            self._protocol = None
        self._accounts.clear()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate exchangelib's and the network's errors into the contract's."""
        try:
            yield
        except ProviderError:
            raise
        except ews.ErrorServerBusy as exc:
            self.close()
            raise RateLimited("Exchange asked us to slow down", exc.back_off) from exc
        except ews.UnauthorizedError as exc:
            self.close()
            raise CredentialsInvalid("Exchange refused the user name and password") from exc
        except (ews.ErrorItemNotFound, ews.ErrorFolderNotFound) as exc:
            raise NotFound(str(exc)) from exc
        except (ews.ErrorNonExistentMailbox, ews.ErrorMailRecipientNotFound) as exc:
            raise NotFound(f"the mailbox does not exist: {exc}") from exc
        except (
            ews.ErrorAccessDenied,
            ews.ErrorNoFreeBusyAccess,
            ews.ErrorImpersonateUserDenied,
            ews.ErrorImpersonationDenied,
        ) as exc:
            raise PermissionDenied(
                f"{exc.__class__.__name__.removeprefix('Error')}: {exc}"
            ) from exc
        except (
            ews.ErrorTimeoutExpired,
            ews.ErrorInternalServerError,
            ews.ErrorInternalServerTransientError,
            ews.ErrorTooManyObjectsOpened,
            ews.ErrorExceededConnectionCount,
            ews.ErrorConnectionFailed,
            ews.ErrorMailboxMoveInProgress,
        ) as exc:
            self.close()
            raise Transient(f"Exchange is unavailable: {exc}") from exc
        except ews.ResponseMessageError as exc:
            raise ProviderError(f"Exchange refused the request: {exc}") from exc
        except ews.TransportError as exc:
            self.close()
            raise net.unreachable(str(self.settings.get("ews_url") or ""), exc) from exc
        except ews.EWSError as exc:
            raise ProviderError(f"Exchange failed: {exc}") from exc
        except (requests.RequestException, OSError) as exc:
            self.close()
            raise net.unreachable(str(self.settings.get("ews_url") or ""), exc) from exc

    # -- reading ----------------------------------------------------------

    def mailboxes(self) -> list[str]:
        """The calendars this connection covers: its own mailbox (a member's, for corporate)."""
        return [str(self.settings["email"]).lower()]

    def list_calendars(self) -> list[RemoteCalendar]:
        out = []
        for mailbox in self.mailboxes():
            with self.errors():
                try:
                    folder = Calendar.resolve(
                        account=self.account(mailbox), folder=self.calendar(mailbox)
                    )
                except ews.ErrorAccessDenied:
                    # free/busy rights only: still a busy-time source, never a booking target
                    self._probe_availability(mailbox)
                    out.append(RemoteCalendar(mailbox, f"Calendar of {mailbox} (free/busy)", False))
                    continue
            rights = folder.effective_rights
            writable = True if rights is None else bool(rights.create_contents)
            out.append(RemoteCalendar(mailbox, folder.name or "Calendar", writable, primary=True))
        return out

    def _probe_availability(self, mailbox: str) -> None:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self._availability([mailbox], now, now + timedelta(hours=1))

    def busy(
        self, calendars: Sequence[CalendarRef], start: datetime, end: datetime
    ) -> dict[str, list[BusyInterval]]:
        result: dict[str, list[BusyInterval]] = {c.external_id: [] for c in calendars}
        if not calendars or end <= start:
            return result
        tentative = bool(self.config.get("TENTATIVE_IS_BUSY", True))
        mailboxes = [c.external_id for c in calendars]
        seen: set[tuple[str, datetime, datetime, str]] = set()
        for lower, upper in windows(start.astimezone(UTC), end.astimezone(UTC)):
            for mailbox, events in self._availability(mailboxes, lower, upper):
                for event in events:
                    if event.start is None or event.end is None:
                        continue
                    if not busy_type_blocks(str(event.busy_type), tentative):
                        continue
                    span_start, span_end = _utc(event.start), _utc(event.end)
                    source = str(getattr(event.details, "id", "") or "")
                    key = (mailbox, span_start, span_end, source)
                    if span_end <= span_start or key in seen:
                        continue
                    seen.add(key)  # an event across a window edge is reported by both windows
                    result[mailbox].append(BusyInterval(span_start, span_end, source))
        return result

    def _availability(self, mailboxes: list[str], start: datetime, end: datetime):
        """``(mailbox, calendar events)`` per mailbox from one GetUserAvailability call.

        The request is made in UTC, whose definition never changes, so unlike
        ``Protocol.get_free_busy_info`` it does not first ask the server for
        the zone (``GetServerTimeZones``): one round trip per read, which the
        confirm-time live check feels.
        """
        zone = EWSTimeZone("UTC")
        options = FreeBusyViewOptions(
            time_window=TimeWindow(
                start=EWSDateTime.from_datetime(start).astimezone(zone),
                end=EWSDateTime.from_datetime(end).astimezone(zone),
            ),
            merged_free_busy_interval=30,
            requested_view="Detailed",
        )
        with self.errors():
            views = list(
                GetUserAvailability(self.protocol()).call(
                    tzinfo=zone,
                    mailbox_data=[
                        MailboxData(email=m, attendee_type="Required", exclude_conflicts=False)
                        for m in mailboxes
                    ],
                    timezone=UTC_AVAILABILITY_ZONE,
                    free_busy_view_options=options,
                )
            )
            out = []
            for mailbox, view in zip(mailboxes, views, strict=True):
                if isinstance(view, Exception):
                    raise view
                out.append((mailbox, view.calendar_events or []))
        return out

    # -- writing ----------------------------------------------------------

    def _ews_time(self, value: datetime, zone_name: str) -> EWSDateTime:
        """An instant in the host's zone, so Outlook shows the booking in local time."""
        try:
            zone = EWSTimeZone(zone_name or "UTC")
        except (ews.UnknownTimeZone, ValueError, KeyError):
            zone = EWSTimeZone("UTC")
        return EWSDateTime.from_datetime(value.astimezone(UTC)).astimezone(zone)

    def _fields(self, event: EventData) -> dict[str, Any]:
        body = event.description
        if event.location and event.location not in body:
            body = f"{body}\n\n{event.location}".strip()
        return {
            "subject": event.summary,
            "body": Body(body),
            "start": self._ews_time(event.start, event.timezone),
            "end": self._ews_time(event.end, event.timezone),
            "location": event.location or None,
            "legacy_free_busy_status": "Busy",
            "required_attendees": [
                Attendee(
                    mailbox=Mailbox(email_address=email, name=name or email),
                    response_type="Accept",
                )
                for name, email in event.attendees()
            ],
            "kairos_uid": event.ical_uid,
        }

    def find_booking(self, mailbox: str, ical_uid: str) -> WrittenEvent | None:
        """The item an earlier create left for this booking, if any."""
        with self.errors():
            found = list(
                self.calendar(mailbox).filter(kairos_uid=ical_uid).only("id", "changekey")[:2]
            )
        if not found:
            return None
        return WrittenEvent(str(found[0].id), str(found[0].changekey or ""))

    def create_event(self, calendar_id: str, event: EventData) -> WrittenEvent:
        existing = self.find_booking(calendar_id, event.ical_uid)
        if existing is not None:
            return existing
        with self.errors():
            item = CalendarItem(
                account=self.account(calendar_id),
                folder=self.calendar(calendar_id),
                uid=event.ical_uid,
                **self._fields(event),
            )
            item.save(send_meeting_invitations=SEND_TO_NONE)
        return WrittenEvent(str(item.id), str(item.changekey or ""))

    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, etag: str = ""
    ) -> WrittenEvent:
        account, folder = self.account(calendar_id), self.calendar(calendar_id)
        with self.errors():
            if not etag:
                [current] = list(
                    account.fetch(
                        ids=[(external_id, None)], folder=folder, only_fields=["changekey"]
                    )
                )
                if isinstance(current, Exception):
                    raise current
                etag = str(current.changekey)
            fields = self._fields(event)
            item = CalendarItem(
                account=account, folder=folder, id=external_id, changekey=etag, **fields
            )
            # Kairos owns the booking's time: a change made in Outlook meanwhile is overwritten
            item.save(
                update_fields=list(fields),
                conflict_resolution=ALWAYS_OVERWRITE,
                send_meeting_invitations=SEND_TO_NONE,
            )
        return WrittenEvent(str(item.id), str(item.changekey or ""))

    def delete_event(self, calendar_id: str, external_id: str, etag: str = "") -> None:
        """Move the item to Deleted Items (recoverable); an item already gone is fine."""
        with self.errors():
            [outcome] = self.account(calendar_id).bulk_delete(
                ids=[(external_id, etag or None)],
                delete_type=MOVE_TO_DELETED_ITEMS,
                send_meeting_cancellations=SEND_TO_NONE,
            )
            if isinstance(outcome, ews.ErrorItemNotFound):
                return
            if isinstance(outcome, Exception):
                raise outcome
