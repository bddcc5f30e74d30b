"""SOAP Autodiscover: from an e-mail address to its EWS endpoint, once per connect.

The result is stored in the connection's settings, so later calls never
repeat it. Address redirects restart at the first endpoint with the new
address; URL redirects must stay on https; a host-typed address must not
reach the machine's own network unless ``ALLOW_PRIVATE_URLS`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from exchangelib import Configuration, Credentials, FailFast
from exchangelib import errors as ews
from exchangelib.autodiscover.protocol import AutodiscoverProtocol

from portal.calendars.providers import net
from portal.calendars.providers.base import InvalidSetup
from portal.calendars.providers.exchange.setup import check_ews_url, sign_in_advice

AUTODISCOVER_PATH = "/autodiscover/autodiscover.svc"
MAX_AUTODISCOVER_HOPS = 10


def autodiscover_urls(email: str, configured: str = "") -> list[str]:
    """Where SOAP Autodiscover is tried: the configured endpoint, or the two standard hosts."""
    if configured:
        return [configured]
    domain = email.rpartition("@")[2].lower()
    return [
        f"https://{domain}{AUTODISCOVER_PATH}",
        f"https://autodiscover.{domain}{AUTODISCOVER_PATH}",
    ]


def check_address(url: str, config: Mapping[str, Any]) -> None:
    """Refuse a private address unless the configuration allows them (checked by DNS)."""
    if not config.get("ALLOW_PRIVATE_URLS"):
        net.check_host(url)


def autodiscover(
    email: str, login: str, password: str, config: Mapping[str, Any], username: str = ""
) -> tuple[str, str]:
    """``(EWS URL, primary address)``, following redirects; :class:`InvalidSetup` otherwise."""
    configured = str(config.get("EWS_AUTODISCOVER_URL") or "")
    credentials = Credentials(login, password)
    seen_emails = {email}
    queue = autodiscover_urls(email, configured)
    hops, last_error, refused = 0, "no Autodiscover endpoint answered", False
    while queue and hops < MAX_AUTODISCOVER_HOPS:
        url = queue.pop(0)
        hops += 1
        try:
            check_address(url, config)
            answer = _user_settings(url, email, credentials, config)
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
            raise InvalidSetup("email", f"the Exchange server knows no mailbox {email}") from exc
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


def _user_settings(
    url: str, email: str, credentials: Credentials, config: Mapping[str, Any]
) -> Any:
    protocol = AutodiscoverProtocol(
        config=Configuration(service_endpoint=url, credentials=credentials, retry_policy=FailFast())
    )
    protocol.TIMEOUT = net.timeout(config)
    try:
        return protocol.get_user_settings(user=email)
    finally:
        protocol.close()
