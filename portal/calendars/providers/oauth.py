"""The base of the OAuth adapters (Google, Microsoft): token upkeep and HTTP error mapping.

:class:`OAuthProvider` keeps the credentials dict (``access_token``,
``refresh_token``, ``expires_at``, ``scope``), refreshes shortly *before*
expiry and once more on a 401, and maps HTTP answers to contract errors.
Refreshing happens inside ``refresh_guard()``: a context manager supplied by
the sync layer that holds a per-connection lock and yields the credentials
as stored *now*. Microsoft rotates refresh tokens and a spent one is
refused, so two processes refreshing the same account at once would lose
it; under the guard the second one finds the first one's fresh token and
uses it. The new credentials — always including a rotated refresh token —
go to ``on_credentials_updated`` while the lock is still held.

The grant itself (authorization URL, code exchange, refresh) lives in
``oauth_grant``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import requests

from portal.calendars.providers.base import (
    CalendarProvider,
    CredentialsInvalid,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TokenCallback,
    Transient,
)
from portal.calendars.providers.oauth_grant import (
    DEFAULT_TIMEOUT,
    OAuthApp,
    oauth_app,
    refresh,
    retry_after,
)

#: seconds before ``expires_at`` at which a token counts as expired
LEEWAY = 120

#: a refresh guard yields the credentials stored for the account right now (or None)
RefreshGuard = Callable[[], AbstractContextManager[Mapping[str, Any] | None]]


# Process-local fallback when no guard is supplied (tests, one-off scripts): one refresh
# at a time per refresh token inside this process.
_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


@contextmanager
def _process_lock(key: str) -> Iterator[None]:
    with _local_locks_guard:
        lock = _local_locks.setdefault(key, threading.Lock())
    with lock:
        yield None


class OAuthProvider(CalendarProvider):
    """Base of the OAuth adapters: token upkeep and HTTP error mapping."""

    oauth = True
    #: "google" / "microsoft": which :func:`oauth_app` to use
    oauth_name: ClassVar[str] = ""

    def __init__(
        self,
        settings: Mapping[str, Any],
        credentials: Mapping[str, Any],
        config: Mapping[str, Any] | None = None,
        on_credentials_updated: TokenCallback | None = None,
        refresh_guard: RefreshGuard | None = None,
    ) -> None:
        super().__init__(settings, credentials, config, on_credentials_updated, refresh_guard)
        self.timeout = float(self.config.get("HTTP_TIMEOUT") or DEFAULT_TIMEOUT)
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "Kairos calendar sync"

    def close(self) -> None:
        self.http.close()

    # -- tokens -------------------------------------------------------------

    def app(self) -> OAuthApp:
        app = oauth_app(self.oauth_name, self.config)
        if app is None:
            raise ProviderError(f"{self.title} is not configured (client id and secret)")
        return app

    def scopes(self) -> set[str]:
        return set(str(self.credentials.get("scope") or "").split())

    def _expired(self, creds: Mapping[str, Any]) -> bool:
        if not creds.get("access_token"):
            return True
        expires_at = float(creds.get("expires_at") or 0)
        return bool(expires_at) and expires_at - LEEWAY <= time.time()

    def _guard(self) -> AbstractContextManager[Mapping[str, Any] | None]:
        if self.refresh_guard is not None:
            return self.refresh_guard()
        return _process_lock(f"{self.name}:{self.credentials.get('refresh_token', '')}")

    def refresh_token(self, force: bool = True) -> dict[str, Any] | None:
        """Renew the access token now, one refresh per account at a time.

        Under the guard: when the stored credentials already carry a newer,
        valid access token (another process refreshed meanwhile) that one is
        adopted and nothing is sent. Otherwise the newest stored refresh token
        is used, and the result is handed to ``on_credentials_updated`` before
        the guard is released.
        """
        stale = self.credentials.get("access_token")
        with self._guard() as stored:
            if stored:
                fresher = stored.get("access_token") != stale and not self._expired(stored)
                self.credentials = dict(stored)
                if fresher or (not force and not self._expired(stored)):
                    return dict(self.credentials)
            new = refresh(self.app(), str(self.credentials.get("refresh_token") or ""))
            self.credentials = {**self.credentials, **new}
            if self.on_credentials_updated is not None:
                self.on_credentials_updated(dict(self.credentials))
        return dict(self.credentials)

    def _ensure_token(self) -> str:
        if self._expired(self.credentials):
            self.refresh_token(force=False)
        return str(self.credentials.get("access_token") or "")

    # -- HTTP -----------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> requests.Response:
        """One authenticated call; answers outside ``ok`` become contract errors.

        A 401 refreshes the token and tries once more; a second 401 means the
        grant no longer works (:class:`CredentialsInvalid`).
        """
        for attempt in (1, 2):
            token = self._ensure_token()
            sent = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            sent.update(headers or {})
            try:
                response = self.http.request(
                    method, url, params=params, json=json, headers=sent, timeout=self.timeout
                )
            except requests.Timeout as exc:
                raise Transient(f"{self.title} did not answer in {self.timeout:g} s") from exc
            except requests.RequestException as exc:
                raise Transient(f"{self.title} could not be reached: {exc}") from exc
            if response.status_code == 401 and attempt == 1:
                self.refresh_token()
                continue
            if response.status_code in ok:
                return response
            raise self.error_for(response)
        raise AssertionError("unreachable")

    def error_for(self, response: requests.Response) -> ProviderError:
        """The contract error for an answer; adapters add their provider's special cases."""
        status = response.status_code
        message = self.error_message(response)
        if status == 401:
            return CredentialsInvalid(f"{self.title} refused our access token: {message}")
        if status == 429 or (status == 503 and response.headers.get("Retry-After")):
            return RateLimited(
                f"{self.title} asks us to slow down: {message}", retry_after(response)
            )
        if status >= 500:
            return Transient(f"{self.title} failed (HTTP {status}): {message}")
        if status == 403:
            return PermissionDenied(f"{self.title} refused: {message}")
        return ProviderError(f"{self.title} answered HTTP {status}: {message}")

    @staticmethod
    def error_message(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.reason or ""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or "")
        return str(error or "")

    @staticmethod
    def error_reason(response: requests.Response) -> str:
        """Google's ``errors[0].reason`` or Graph's ``error.code``."""
        try:
            error = response.json().get("error", {})
        except (ValueError, AttributeError):
            return ""
        if not isinstance(error, dict):
            return ""
        details = error.get("errors") or []
        if details and isinstance(details[0], dict) and details[0].get("reason"):
            return str(details[0]["reason"])
        return str(error.get("code") or "")
