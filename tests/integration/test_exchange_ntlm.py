"""A real NTLM handshake against the fake Exchange, with pyspnego as the acceptor.

The fake enforces Extended Protection (the NTLM answer must carry the
channel binding of its TLS certificate), so a successful sign-in proves
the binding Kairos sends is the right one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
import requests_ntlm

from portal.calendars.providers import CalendarRef, CredentialsInvalid
from portal.calendars.providers.exchange import ExchangeProvider
from portal.calendars.providers.exchange.session import ChannelBoundNtlmAuth

CONFIG = {"ALLOW_PRIVATE_URLS": True, "HTTP_TIMEOUT": 5}
CONVERT_ID = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
    '<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>'
    '<s:Body><m:ConvertId DestinationFormat="EntryId"><m:SourceIds>'
    '<t:AlternateId Format="EwsId" Id="DUMMY" Mailbox="DUMMY"/>'
    "</m:SourceIds></m:ConvertId></s:Body></s:Envelope>"
)


@pytest.fixture
def alice(ews):
    ews.reset(auth=("ntlm",))
    ews.add_user("alice@example.com", "alice-secret", domain="EXAMPLE", sam="alice")
    return "alice@example.com"


def post(ews, auth) -> requests.Response:
    with requests.Session() as session:
        return session.post(
            ews.ews_url,
            data=CONVERT_ID,
            headers={"Content-Type": "text/xml; charset=utf-8"},
            auth=auth,
            timeout=5,
        )


def test_ntlm_handshake_with_channel_binding(ews, alice):
    answer = post(ews, ChannelBoundNtlmAuth("EXAMPLE\\alice", "alice-secret"))
    assert answer.status_code == 200
    assert b"ServerVersionInfo" in answer.content
    # negotiate → challenge → authenticate, then the answer, on one connection
    assert [h.status_code for h in answer.history] == [401, 401]
    assert answer.history[1].headers["WWW-Authenticate"].startswith("NTLM ")
    [entry] = [e for e in ews.log() if e["status"] == 200]
    assert (entry["user"], entry["auth"]) == (alice, "ntlm")


def test_the_acceptor_refuses_a_wrong_password_and_a_missing_binding(ews, alice):
    assert post(ews, ChannelBoundNtlmAuth("EXAMPLE\\alice", "wrong")).status_code == 401
    unbound = requests_ntlm.HttpNtlmAuth("EXAMPLE\\alice", "alice-secret", send_cbt=False)
    assert post(ews, unbound).status_code == 401  # Extended Protection wants the binding
    assert not [e for e in ews.log() if e["status"] == 200]


def test_the_adapter_signs_in_over_ntlm(ews, alice):
    setup = ExchangeProvider.prepare(
        {"email": alice, "password": "alice-secret", "ews_url": ews.ews_url}, CONFIG
    )
    assert setup.settings["auth_type"] == "ntlm"
    provider = ExchangeProvider(setup.settings, setup.credentials, CONFIG)
    ews.clear_log()
    busy = provider.busy(
        [CalendarRef(alice)], datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    )
    assert busy == {alice: []}
    assert {e["auth"] for e in ews.log() if e["status"] == 200} == {"ntlm"}
    provider.close()

    wrong = ExchangeProvider(setup.settings, {"password": "wrong"}, CONFIG)
    with pytest.raises(CredentialsInvalid):
        wrong.list_calendars()
    wrong.close()
