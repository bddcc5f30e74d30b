"""'Add to Google Calendar' and 'Add to Outlook' links: the event's times, title and details."""

from __future__ import annotations

from datetime import UTC, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from portal.notify import calendar_links


def test_google_link_in_utc(now):
    start = now.astimezone(ZoneInfo("Europe/Berlin"))
    end = start + timedelta(minutes=30)
    url = calendar_links.google("Intro call with Alice", start, end, "Where: x", "https://meet/x")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == calendar_links.GOOGLE
    query = parse_qs(parts.query)
    stamp = "%Y%m%dT%H%M%SZ"
    assert query["action"] == ["TEMPLATE"] and query["text"] == ["Intro call with Alice"]
    end = now + timedelta(minutes=30)
    assert query["dates"] == [f"{now.astimezone(UTC):{stamp}}/{end.astimezone(UTC):{stamp}}"]
    assert query["details"] == ["Where: x"] and query["location"] == ["https://meet/x"]


def test_outlook_link_in_utc_without_empty_location(now):
    end = now + timedelta(hours=1)
    url = calendar_links.outlook("Call & chat", now, end, "Line one\n\nLine two", "")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(calendar_links.OUTLOOK + "?")
    assert query["subject"] == ["Call & chat"] and query["rru"] == ["addevent"]
    assert query["startdt"] == [f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"]
    assert query["enddt"] == [f"{end.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"]
    assert query["body"] == ["Line one\n\nLine two"] and "location" not in query
