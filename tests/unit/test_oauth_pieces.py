"""Pure pieces of the OAuth adapters: ids, tokens, Retry-After, busy semantics (no I/O)."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests

from portal.calendars.providers import (
    CredentialsInvalid,
    PermissionDenied,
    ProviderError,
    RateLimited,
    SyncTokenExpired,
)
from portal.calendars.providers.google import GoogleProvider
from portal.calendars.providers.google.events import event_id_for, event_span
from portal.calendars.providers.microsoft import MicrosoftProvider, _is_busy, _span, transaction_id
from portal.calendars.providers.oauth_grant import (
    OAuthApp,
    id_token_claims,
    normalize_token,
    oauth_app,
    retry_after,
)

APP = OAuthApp("google", "client-1", "secret", "https://a", "https://t", ("openid",))


def response(status: int, body=None, headers=None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body or {}).encode()
    r.headers.update(headers or {})
    return r


def jwt(claims: dict) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(b'{}')}.{b64(json.dumps(claims).encode())}.sig"


@pytest.mark.parametrize("uid", ["bk-1@kairos.test", "x", "ü" * 300])
def test_google_event_ids_follow_googles_rules(uid):
    event_id = event_id_for(uid)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", event_id)
    assert event_id == event_id_for(uid) != event_id_for(uid + "2")


def test_transaction_id_is_stable_per_booking():
    assert transaction_id("a@b") == transaction_id("a@b") != transaction_id("a@c")


def test_retry_after_reads_seconds_and_dates():
    assert retry_after(response(429, headers={"Retry-After": "7"})) == 7
    later = datetime.fromtimestamp(time.time() + 60, UTC)
    got = retry_after(response(429, headers={"Retry-After": format_datetime(later, usegmt=True)}))
    assert got is not None and 55 <= got <= 61
    assert retry_after(response(429)) is None
    assert retry_after(response(429, headers={"Retry-After": "soon"})) is None


def test_id_token_claims_need_our_audience_and_a_live_token():
    now = int(time.time())
    good = {"aud": "client-1", "exp": now + 60, "sub": "1", "email": "a@b"}
    assert id_token_claims({"id_token": jwt(good)}, APP)["sub"] == "1"
    assert id_token_claims({"id_token": jwt(good | {"aud": "someone-else"})}, APP) == {}
    assert id_token_claims({"id_token": jwt(good | {"exp": now - 3600})}, APP) == {}
    assert id_token_claims({"id_token": "not.a-token"}, APP) == {}
    assert id_token_claims({}, APP) == {}


def test_normalize_token_keeps_what_calls_need():
    token = normalize_token({"access_token": "a", "expires_in": 60, "scope": ["x", "y"]})
    assert token["scope"] == "x y" and abs(token["expires_at"] - (time.time() + 60)) < 5
    assert "refresh_token" not in token


def test_unconfigured_providers_have_no_app():
    assert oauth_app("google", {"GOOGLE_CLIENT_ID": "x"}) is None
    assert oauth_app("microsoft", {}) is None
    app = oauth_app(
        "microsoft",
        {
            "MS_CLIENT_ID": "i",
            "MS_CLIENT_SECRET": "s",
            "MS_LOGIN_BASE": "https://l/",
            "MS_TENANT": "t",
        },
    )
    assert app is not None and app.token_url == "https://l/t/oauth2/v2.0/token"


def test_google_error_mapping():
    google = GoogleProvider({}, {})

    def reason(status, why, headers=None):
        body = {"error": {"code": status, "message": why, "errors": [{"reason": why}]}}
        return google.error_for(response(status, body, headers))

    limited = reason(403, "userRateLimitExceeded")
    assert isinstance(limited, RateLimited)  # Google throttles with 403 too
    assert isinstance(reason(429, "rateLimitExceeded", {"Retry-After": "5"}), RateLimited)
    assert isinstance(reason(410, "fullSyncRequired"), SyncTokenExpired)
    assert isinstance(reason(403, "forbidden"), PermissionDenied)
    assert isinstance(reason(401, "authError"), CredentialsInvalid)


def test_google_listing_semantics():
    zone = __import__("zoneinfo").ZoneInfo("America/New_York")
    window = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))

    def span(item):
        return event_span({"id": "e", **item}, zone, *window)

    timed = {
        "start": {"dateTime": "2026-12-02T10:00:00Z"},
        "end": {"dateTime": "2026-12-02T11:00:00Z"},
    }
    assert span(timed) is not None
    assert span(timed | {"transparency": "transparent"}) is None
    assert span(timed | {"status": "cancelled"}) is None
    declined = [{"email": "me@x", "self": True, "responseStatus": "declined"}]
    assert span(timed | {"attendees": declined}) is None
    day = span({"start": {"date": "2026-12-03"}, "end": {"date": "2026-12-04"}})
    assert (day.start, day.end) == (
        datetime(2026, 12, 3, 5, tzinfo=UTC),
        datetime(2026, 12, 4, 5, tzinfo=UTC),
    )
    # clipped to the window, as free/busy answers are
    edge = span(
        {"start": {"dateTime": "2026-11-30T22:00:00Z"}, "end": {"dateTime": "2026-12-01T02:00:00Z"}}
    )
    assert edge.start == window[0]


@pytest.mark.parametrize(
    "show, cancelled, tentative_busy, all_busy, busy",
    [
        ("busy", False, True, False, True),
        ("oof", False, True, False, True),
        ("tentative", False, True, False, True),
        ("tentative", False, False, False, False),
        ("free", False, True, False, False),
        ("workingElsewhere", False, True, False, False),
        ("free", False, True, True, True),
        ("busy", True, True, True, False),
    ],
)
def test_graph_show_as(show, cancelled, tentative_busy, all_busy, busy):
    item = {"showAs": show, "isCancelled": cancelled}
    assert _is_busy(item, tentative_busy, all_busy) is busy


def test_graph_times_and_all_day_dates():
    item = {
        "id": "x",
        "start": {"dateTime": "2026-12-02T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-02T09:30:00.0000000", "timeZone": "UTC"},
    }
    got = _span(item, "Europe/Berlin")
    assert (got.start, got.end) == (
        datetime(2026, 12, 2, 9, tzinfo=UTC),
        datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
    )
    all_day = {
        "isAllDay": True,
        "start": {"dateTime": "2026-12-03T00:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-05T00:00:00.0000000", "timeZone": "UTC"},
    }
    got = _span(all_day, "Europe/Berlin")
    assert (got.start, got.end) == (
        datetime(2026, 12, 2, 23, tzinfo=UTC),
        datetime(2026, 12, 4, 23, tzinfo=UTC),
    )


def test_graph_refuses_paging_links_to_other_hosts():
    graph = MicrosoftProvider({}, {"access_token": "t", "expires_at": time.time() + 3600}, {})

    class Answer:
        def __init__(self, body):
            self.body = body

        def json(self):
            return self.body

    pages = iter([Answer({"value": [1], "@odata.nextLink": "https://evil.example/next"})])
    graph.request = lambda *a, **k: next(pages)  # type: ignore[method-assign]
    with pytest.raises(ProviderError, match="another host"):
        list(graph._pages("https://graph.microsoft.com/v1.0/me/calendars"))
