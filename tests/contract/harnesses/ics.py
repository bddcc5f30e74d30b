"""ICS feed harness: the adapter against a real local HTTP server (read-only)."""

from __future__ import annotations

import uuid

import pytest
from harness import Harness, to_ics

from portal.calendars.providers import CalendarRef, get_provider
from portal.calendars.providers.ics import FEED_ID
from tests.support.processes import closed_url

CONFIG = {"ALLOW_PRIVATE_URLS": True, "HTTP_TIMEOUT": 5, "TENTATIVE_IS_BUSY": True}


@pytest.fixture
def harness_ics(feed_server):
    path = f"/feeds/{uuid.uuid4().hex}.ics"
    zone = "America/New_York"
    url = feed_server.publish(path, to_ics([], calendar_zone=zone))
    feed_server.passwords["/private.ics"] = ("u", "right")
    feed_server.publish("/private.ics", to_ics([]))

    def make(config=None, url=url):
        return get_provider("ics", {}, {"url": url}, CONFIG | (config or {}))

    yield Harness(
        name="ics",
        provider=make(),
        # the feed declares X-WR-TIMEZONE; the ref's zone is the host fallback
        calendar=CalendarRef(FEED_ID, timezone=zone),
        seed=lambda events: feed_server.publish(path, to_ics(events, calendar_zone=zone)),
        bad_credentials=lambda: make(
            url=feed_server.url.replace("://", "://u:wrong@") + "/private.ics"
        ),
        unreachable=lambda: make(url=closed_url() + "feed.ics"),
        with_config=make,
    )
