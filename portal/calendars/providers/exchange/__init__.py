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

This module holds the adapter; its parts live beside it: ``setup`` (the
form's fields, advice, stored settings), ``autodiscover``, ``session`` (the
login and error translation), ``availability`` (busy time) and ``items``
(the bookings written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from exchangelib import DELEGATE
from exchangelib import errors as ews
from exchangelib.folders import Calendar

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
    RemoteCalendar,
    WrittenEvent,
)
from portal.calendars.providers.exchange import availability, items
from portal.calendars.providers.exchange.autodiscover import autodiscover
from portal.calendars.providers.exchange.session import EwsSession
from portal.calendars.providers.exchange.setup import (
    ACCESS_TYPES,
    EMAIL_RE,
    check_ews_url,
    check_username,
    sign_in_advice,
    unreachable_advice,
)


class ExchangeProvider(CalendarProvider):
    """One Exchange login reaching one or more mailboxes' calendars (external id = address)."""

    name = "exchange"
    title = "Exchange (on-premises)"
    account_noun = "mailbox"
    account_field = "email"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = EwsSession(self.settings, self.credentials, self.config)

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
            url, email = autodiscover(email, login, password, config, username)
            settings.update(ews_url=url, email=email, autodiscovered=True)
        provider = cls(settings, {"password": password}, config)
        try:
            provider.list_calendars()
            settings.update(provider.session.learned_settings())
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
            raise InvalidSetup("ews_url", unreachable_advice(settings, exc)) from exc
        finally:
            provider.close()
        return ConnectionSetup(label=email, settings=settings, credentials={"password": password})

    @classmethod
    def account_key(cls, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> str:
        """The mailbox: one calendar read through two logins is still one calendar."""
        return str(settings.get("email") or "").strip().lower()

    def close(self) -> None:
        self.session.close()

    # -- reading ----------------------------------------------------------

    def mailboxes(self) -> list[str]:
        """The calendars this connection covers: its own mailbox (a member's, for corporate)."""
        return [str(self.settings["email"]).lower()]

    def list_calendars(self) -> list[RemoteCalendar]:
        out = []
        for mailbox in self.mailboxes():
            with self.session.errors():
                try:
                    folder = Calendar.resolve(
                        account=self.session.account(mailbox),
                        folder=self.session.calendar(mailbox),
                    )
                except ews.ErrorAccessDenied:
                    # free/busy rights only: still a busy-time source, never a booking target
                    availability.probe(self.session, mailbox, datetime.now(UTC))
                    out.append(RemoteCalendar(mailbox, f"Calendar of {mailbox} (free/busy)", False))
                    continue
            rights = folder.effective_rights
            writable = True if rights is None else bool(rights.create_contents)
            out.append(RemoteCalendar(mailbox, folder.name or "Calendar", writable, primary=True))
        return out

    def busy(
        self, calendars: Sequence[CalendarRef], start: datetime, end: datetime
    ) -> dict[str, list[BusyInterval]]:
        tentative = bool(self.config.get("TENTATIVE_IS_BUSY", True))
        return availability.busy(self.session, calendars, start, end, tentative)

    # -- writing ----------------------------------------------------------

    def create_event(self, calendar_id: str, event: EventData) -> WrittenEvent:
        return items.create(self.session, calendar_id, event)

    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, etag: str = ""
    ) -> WrittenEvent:
        return items.update(self.session, calendar_id, external_id, event, etag)

    def delete_event(self, calendar_id: str, external_id: str, etag: str = "") -> None:
        items.delete(self.session, calendar_id, external_id, etag)
