"""The one registry of calendar providers.

Add a provider by writing an adapter module (see ``base.py`` for the
contract) and adding one line to :data:`REGISTRY`. Entries are dotted paths
resolved on first use so that heavy client libraries (exchangelib, caldav)
are imported only by processes that talk to that provider.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from portal.calendars.providers.base import (
    BusyChanges,
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
    SyncTokenExpired,
    TokenCallback,
    Transient,
    WrittenEvent,
)

#: provider name (``Connection.provider``) → "module:ClassName"
REGISTRY: dict[str, str] = {
    "ics": "portal.calendars.providers.ics:IcsProvider",
    "caldav": "portal.calendars.providers.caldav:CalDavProvider",
    "google": "portal.calendars.providers.google:GoogleProvider",
    "microsoft": "portal.calendars.providers.microsoft:MicrosoftProvider",
    "exchange": "portal.calendars.providers.exchange:ExchangeProvider",
}

#: configuration keys handed to adapters (see ``base.py``, ``config``)
CONFIG_KEYS = (
    "HTTP_TIMEOUT",
    "ICS_MAX_BYTES",
    "ALLOW_PRIVATE_URLS",
    "TENTATIVE_IS_BUSY",
    "GOOGLE_API_BASE",
    "GOOGLE_AUTHORIZE_URL",
    "GOOGLE_TOKEN_URL",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "MS_GRAPH_BASE",
    "MS_LOGIN_BASE",
    "MS_TENANT",
    "MS_CLIENT_ID",
    "MS_CLIENT_SECRET",
    "EWS_AUTODISCOVER_URL",
)


def provider_class(name: str) -> type[CalendarProvider]:
    """The adapter class registered under ``name``; KeyError when unknown."""
    module_name, _, attr = REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, CalendarProvider)):
        raise TypeError(f"{REGISTRY[name]} is not a CalendarProvider")
    return cls


def provider_config(app_config: Mapping[str, Any]) -> dict[str, Any]:
    """The slice of Flask's config that adapters may read, as a plain dict."""
    return {k: app_config[k] for k in CONFIG_KEYS if k in app_config}


def get_provider(
    name: str,
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    on_credentials_updated: TokenCallback | None = None,
    refresh_guard: Callable[[], Any] | None = None,
) -> CalendarProvider:
    """Build an adapter for one account. ``config`` is :func:`provider_config`'s output.

    ``refresh_guard`` is passed only when given, so adapters written before it
    existed keep working.
    """
    cls = provider_class(name)
    if refresh_guard is None:
        return cls(settings, credentials, config or {}, on_credentials_updated)
    return cls(settings, credentials, config or {}, on_credentials_updated, refresh_guard)


__all__ = [
    "REGISTRY",
    "CONFIG_KEYS",
    "provider_class",
    "provider_config",
    "get_provider",
    "BusyChanges",
    "BusyInterval",
    "CalendarProvider",
    "CalendarRef",
    "ConnectionSetup",
    "CredentialsInvalid",
    "EventData",
    "InvalidSetup",
    "NotFound",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "RemoteCalendar",
    "SyncTokenExpired",
    "TokenCallback",
    "Transient",
    "WrittenEvent",
]
