"""Connecting to Exchange: the form's fields checked, the settings stored, advice on failure.

Pure functions (no network): what the connect form accepts as an EWS URL
and a user name, what a refused sign-in or a silent server should try next,
and the settings a corporate member's connection borrows from the
organisation's service mailbox.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from exchangelib import DELEGATE, IMPERSONATION
from exchangelib.transport import BASIC, NTLM
from exchangelib.version import Build, Version

from portal.calendars.providers import net
from portal.calendars.providers.base import InvalidSetup, ProviderError

ACCESS_TYPES = (DELEGATE, IMPERSONATION)
AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC}
EWS_PATH = "/EWS/Exchange.asmx"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DOMAIN_USER_RE = re.compile(r"^[^\\/\s@]+\\[^\\/\s]+$")
PLAIN_USER_RE = re.compile(r"^[^\\/\s@]+$")


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


def unreachable_advice(settings: Mapping[str, Any], exc: ProviderError) -> str:
    """What to check when the endpoint (typed, or found by Autodiscover) did not answer."""
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
