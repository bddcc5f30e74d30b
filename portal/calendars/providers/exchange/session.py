"""One Exchange login over EWS: the pooled protocol, mailboxes as accounts, error translation.

TLS verification is always on. A server with a certificate from a private
CA is trusted by pointing ``REQUESTS_CA_BUNDLE`` at that CA (requests, which
exchangelib uses, reads it). exchangelib's fail-fast retry policy is kept,
so a job never sleeps inside a worker: ``ErrorServerBusy`` becomes
:class:`RateLimited` with the server's ``BackOffMilliseconds``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import requests
import requests_ntlm
from exchangelib import (
    DELEGATE,
    Account,
    Configuration,
    Credentials,
    EWSTimeZone,
    FailFast,
)
from exchangelib import errors as ews
from exchangelib.folders import Calendar, Root
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.protocol import Protocol
from exchangelib.transport import AUTH_TYPE_MAP, NTLM

from portal.calendars.providers import net
from portal.calendars.providers.base import (
    CredentialsInvalid,
    InvalidSetup,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    Transient,
)
from portal.calendars.providers.exchange.autodiscover import check_address
from portal.calendars.providers.exchange.setup import ACCESS_TYPES, AUTH_TYPES, parse_version


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


class EwsSession:
    """The connection's login: endpoint, credentials, stored auth type and version.

    Built lazily and dropped by :meth:`close` (and on errors that may mean
    stale secrets or a dead socket), so the next call signs in afresh.
    """

    def __init__(
        self, settings: Mapping[str, Any], credentials: Mapping[str, Any], config: Mapping[str, Any]
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.config = config
        self._accounts: dict[str, Account] = {}
        self._protocol: Protocol | None = None

    @property
    def login(self) -> str:
        return str(self.settings.get("username") or self.settings["email"])

    def protocol(self) -> Protocol:
        """The exchangelib protocol, made on first use."""
        if self._protocol is None:
            url = str(self.settings.get("ews_url") or "")
            if not url:
                raise InvalidSetup("ews_url", "this connection has no EWS URL")
            if not self.settings.get("corporate"):  # the admin's own server is trusted
                check_address(url, self.config)
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
