"""Outbound HTTP for adapters whose URL a host types in (ICS feeds, CalDAV servers).

A host-supplied URL must not become a way to reach the machine's own
network (server-side request forgery): loopback, private, link-local and
other non-global addresses are refused unless ``ALLOW_PRIVATE_URLS`` is set.
The check runs on the *connected peer address* (niquests' ``pre_send`` hook,
after DNS and before the request is written), so a DNS answer that changes
between check and use is caught. niquests does not run that hook for
redirect hops, so a redirect target is resolved and checked before it is
followed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import niquests

from portal.calendars.providers.base import InvalidSetup, ProviderError, Transient

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "Kairos calendar sync (+https://github.com/kairos)"


log = logging.getLogger(__name__)

# The one answer for any address that cannot be used: refused by the guard below,
# connection refused, unreachable, unknown name, or silent. Saying which would let a
# host map the machine's network (an open port is refused by the guard, a closed one
# by the kernel) and would show the HTTP library's internals; the log keeps the detail.
UNREACHABLE = "nothing answered at this address, or it is one Kairos may not connect to"


class AddressNotAllowed(ProviderError):
    """The URL points into a private network and configuration forbids that."""

    def __init__(self, message: str = UNREACHABLE):
        super().__init__(message)


def unreachable(url: str, exc: BaseException) -> Transient:
    """The uniform error for a failed connection; what really happened goes to the log."""
    log.warning("could not reach %s: %s: %s", _where(url), type(exc).__name__, exc)
    return Transient(UNREACHABLE)


def _where(url: str) -> str:
    """Scheme, host and port of ``url`` for the log (its path may carry a feed's secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, field: str = "url") -> str:
    """Normalise a typed-in URL (``webcal://`` → ``https://``) or raise InvalidSetup."""
    url = (url or "").strip()
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    if len(url) > 2000:
        raise InvalidSetup(field, "the URL is too long")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSetup(field, "enter an http:// or https:// URL")
    return url


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


def _escapes(text: str) -> str:
    """RFC 3986 §6.2.2: unreserved characters unescaped, other escapes in upper case."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _ESCAPE.sub(one, text)


def url_key(url: str) -> str:
    """One spelling of an address however it was typed, to recognise the same feed or server.

    Case of scheme and host, the default port, an empty path, percent-escapes
    (RFC 3986 §6.2.2–6.2.3) and the fragment (never sent) make no difference;
    neither does the scheme among ``webcal``/``http``/``https``, because the
    same feed is published under each and servers redirect one to the other.
    Path and query are compared as written (they are case-sensitive and often
    carry the feed's secret).
    """
    parts = urlsplit(check_url(url))
    host = (parts.hostname or "").rstrip(".")
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: compared as typed
        port = None
        host = parts.netloc.rsplit("@", 1)[-1].lower()
    default = 443 if parts.scheme == "https" else 80
    where = host if port in (None, default) else f"{host}:{port}"
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    query = _escapes(parts.query)
    return f"//{userinfo}{where}{_escapes(parts.path) or '/'}" + (f"?{query}" if query else "")


def timeout(config: Mapping[str, Any]) -> float:
    return float(config.get("HTTP_TIMEOUT") or DEFAULT_TIMEOUT)


def _refuse(url: str, address: object) -> AddressNotAllowed:
    log.warning("refused %s: %s is not a public address", _where(url), address)
    return AddressNotAllowed()


def check_host(url: str) -> None:
    """Resolve the URL's host and refuse it when any address is not public."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return  # the request itself will fail with a clear connection error
    for info in infos:
        if not is_public_address(str(info[4][0])):
            raise _refuse(url, info[4][0])


class GuardedSession(niquests.Session):
    """A session that refuses private peers and private redirect targets."""

    def __init__(self, allow_private: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_private = allow_private
        self.headers["User-Agent"] = USER_AGENT
        if not allow_private:
            self.hooks["pre_send"].append(self._check_peer)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Refuse a private host before connecting, so its open and closed ports look alike.

        The peer check after connecting still catches a DNS answer that changed since.
        """
        if not self.allow_private:
            check_host(str(url))
        return super().request(method, url, *args, **kwargs)

    @staticmethod
    def _check_peer(request: Any, **_: Any) -> Any:
        peer = getattr(getattr(request, "conn_info", None), "destination_address", None)
        if not peer or not is_public_address(str(peer[0])):
            raise _refuse(str(request.url), peer and peer[0])
        return request

    def get_redirect_target(self, resp: Any) -> str | None:
        target = super().get_redirect_target(resp)
        if target and not self.allow_private:
            check_host(urljoin(resp.url or "", target))
        return target


def session(config: Mapping[str, Any]) -> GuardedSession:
    """The session adapters use for host-supplied URLs."""
    return GuardedSession(allow_private=bool(config.get("ALLOW_PRIVATE_URLS")))
