"""The Exchange adapter's pure pieces: user-name forms, advice, URLs, busy types, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.calendars.providers import InvalidSetup
from portal.calendars.providers.exchange.autodiscover import autodiscover_urls
from portal.calendars.providers.exchange.availability import (
    AVAILABILITY_CHUNK,
    busy_type_blocks,
    windows,
)
from portal.calendars.providers.exchange.setup import (
    check_ews_url,
    check_username,
    member_settings,
    parse_version,
    sign_in_advice,
    username_form,
)


@pytest.mark.parametrize(
    ("username", "form"),
    [
        ("", "email"),
        ("alice@example.com", "email"),
        ("ALICE@EXAMPLE.COM", "email"),
        ("alice@corp.example.local", "email"),  # a UPN looks like an address
        ("CORP\\alice", "domain"),
        ("alice", "plain"),
    ],
)
def test_user_name_forms(username, form):
    assert username_form(username, "alice@example.com") == form


@pytest.mark.parametrize("bad", ["a b", "CORP\\al\\ice", "x" * 300, "al/ice", "@@"])
def test_unusable_user_names_are_refused(bad):
    with pytest.raises(InvalidSetup) as err:
        check_username(bad)
    assert err.value.field == "username"


def test_usable_user_names_are_kept_trimmed():
    assert check_username("  CORP\\alice ") == "CORP\\alice"
    assert check_username("") == ""


def test_advice_lists_the_forms_not_tried_yet():
    blank = sign_in_advice("alice@example.com", "")
    assert "“alice@example.com”" in blank and "app password" in blank
    assert "DOMAIN\\user (e.g. CORP\\alice)" in blank and "(alice)" in blank
    domain = sign_in_advice("alice@example.com", "CORP\\alice")
    assert "your e-mail address (alice@example.com)" in domain and "CORP\\alice (" not in domain
    plain = sign_in_advice("alice@example.com", "alice")
    assert "your e-mail address" in plain and "DOMAIN\\user" in plain


def test_ews_urls():
    assert check_ews_url("https://mail.example.com") == "https://mail.example.com/EWS/Exchange.asmx"
    assert (
        check_ews_url(" https://mail.example.com/ ") == "https://mail.example.com/EWS/Exchange.asmx"
    )
    kept = "https://mail.example.com/ews/exchange.asmx"
    assert check_ews_url(kept) == kept
    for bad in ("http://mail.example.com/EWS/Exchange.asmx", "mail.example.com", "", "ftp://x"):
        with pytest.raises(InvalidSetup) as err:
            check_ews_url(bad)
        assert err.value.field == "ews_url"


def test_autodiscover_candidates():
    assert autodiscover_urls("Alice@Example.COM") == [
        "https://example.com/autodiscover/autodiscover.svc",
        "https://autodiscover.example.com/autodiscover/autodiscover.svc",
    ]
    configured = "https://ad.example.net/autodiscover/autodiscover.svc"
    assert autodiscover_urls("alice@example.com", configured) == [configured]


@pytest.mark.parametrize(
    ("busy_type", "tentative_is_busy", "blocks"),
    [
        ("Busy", False, True),
        ("OOF", False, True),
        ("Tentative", True, True),
        ("Tentative", False, False),
        ("Free", True, False),
        ("WorkingElsewhere", True, False),
        ("NoData", True, False),
    ],
)
def test_busy_types(busy_type, tentative_is_busy, blocks):
    assert busy_type_blocks(busy_type, tentative_is_busy) is blocks


def test_windows_cover_the_range_without_gaps_or_overlap():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    end = start + timedelta(days=100)
    parts = list(windows(start, end))
    assert parts[0][0] == start and parts[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    assert all(upper - lower <= AVAILABILITY_CHUNK for lower, upper in parts)
    assert list(windows(start, start)) == []


def test_stored_versions():
    version = parse_version({"version": "15.1.2507.6", "api_version": "Exchange2016"})
    assert str(version.build) == "15.1.2507.6" and version.api_version == "Exchange2016"
    assert parse_version({"version": "15.1", "api_version": "Exchange2016"}).build.major_build == 0
    assert parse_version({}) is None
    assert parse_version({"version": "x.y", "api_version": "Exchange2016"}) is None


def test_member_settings_sign_in_as_the_organisation_on_the_members_mailbox():
    service = {
        "email": "kairos@example.com",
        "username": "",
        "ews_url": "https://mail.example.com/EWS/Exchange.asmx",
        "auth_type": "ntlm",
        "version": "15.1.2507.6",
        "api_version": "Exchange2016",
        "access": "impersonation",
        "mailboxes": {"3": "bob@example.com"},
    }
    settings = member_settings(service, " Bob@Example.com ")
    assert settings == {
        "email": "bob@example.com",
        "username": "kairos@example.com",
        "ews_url": "https://mail.example.com/EWS/Exchange.asmx",
        "auth_type": "ntlm",
        "version": "15.1.2507.6",
        "api_version": "Exchange2016",
        "access": "impersonation",
        "corporate": True,
        "service_email": "kairos@example.com",
    }
    assert member_settings(service | {"username": "CORP\\svc"}, "b@x.io")["username"] == "CORP\\svc"
