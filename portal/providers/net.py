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

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import niquests

from .base import InvalidSetup, ProviderError

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "Kairos calendar sync (+https://github.com/kairos)"


class AddressNotAllowed(ProviderError):
    """The URL points into a private network and configuration forbids that."""


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


def timeout(config: Mapping[str, Any]) -> float:
    return float(config.get("HTTP_TIMEOUT") or DEFAULT_TIMEOUT)


def _refuse() -> AddressNotAllowed:
    return AddressNotAllowed("this address is on a private network; it cannot be used")


def check_host(url: str) -> None:
    """Resolve the URL's host and refuse it when any address is not public."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return  # the request itself will fail with a clear connection error
    if any(not is_public_address(str(info[4][0])) for info in infos):
        raise _refuse()


class GuardedSession(niquests.Session):
    """A session that refuses private peers and private redirect targets."""

    def __init__(self, allow_private: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_private = allow_private
        self.headers["User-Agent"] = USER_AGENT
        if not allow_private:
            self.hooks["pre_send"].append(self._check_peer)

    @staticmethod
    def _check_peer(request: Any, **_: Any) -> Any:
        peer = getattr(getattr(request, "conn_info", None), "destination_address", None)
        if not peer or not is_public_address(str(peer[0])):
            raise _refuse()
        return request

    def get_redirect_target(self, resp: Any) -> str | None:
        target = super().get_redirect_target(resp)
        if target and not self.allow_private:
            check_host(urljoin(resp.url or "", target))
        return target


def session(config: Mapping[str, Any]) -> GuardedSession:
    """The session adapters use for host-supplied URLs."""
    return GuardedSession(allow_private=bool(config.get("ALLOW_PRIVATE_URLS")))
