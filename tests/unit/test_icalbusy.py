"""Busy semantics of iCalendar data (providers/icalbusy.py), and the adapters' pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
import pytest

from portal.calendars.providers import EventData, InvalidSetup
from portal.calendars.providers.caldav.events import event_ical, resource_name
from portal.calendars.providers.icalbusy import NotICalendar, busy_intervals, parse
from portal.calendars.providers.net import check_url, is_public_address, url_key

START = datetime(2026, 11, 30, tzinfo=UTC)
END = datetime(2027, 1, 31, tzinfo=UTC)


def utc(day, hour, minute=0, month=12):
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def cal(*events, header=""):
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{e}END:VEVENT\r\n" for e in events)
    return parse(f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{header}{body}END:VCALENDAR\r\n")


def spans(c, zone="UTC", **kw):
    return [(b.start, b.end) for b in busy_intervals(c, START, END, zone, **kw)]


def test_timed_event_and_its_uid_as_source():
    c = cal("UID:a\r\nDTSTART:20261202T100000Z\r\nDTEND:20261202T110000Z\r\n")
    [span] = busy_intervals(c, START, END, "UTC")
    assert (span.start, span.end, span.source_id) == (utc(2, 10), utc(2, 11), "a")
    assert busy_intervals(c, START, END, "UTC", source_id="/x.ics")[0].source_id == "/x.ics"


def test_duration_and_date_without_end():
    c = cal(
        "UID:d\r\nDTSTART:20261202T100000Z\r\nDURATION:PT90M\r\n",
        "UID:e\r\nDTSTART;VALUE=DATE:20261205\r\n",
        "UID:f\r\nDTSTART:20261203T100000Z\r\n",  # an instant: blocks nothing
    )
    assert spans(c) == [(utc(2, 10), utc(2, 11, 30)), (utc(5, 0), utc(6, 0))]


@pytest.mark.parametrize(
    "extra, tentative_is_busy, all_busy, busy",
    [
        ("TRANSP:TRANSPARENT\r\n", True, False, False),
        ("TRANSP:TRANSPARENT\r\n", True, True, True),
        ("TRANSP:OPAQUE\r\n", True, False, True),
        ("STATUS:CANCELLED\r\n", True, True, False),
        ("STATUS:TENTATIVE\r\n", True, False, True),
        ("STATUS:TENTATIVE\r\n", False, False, False),
        ("STATUS:TENTATIVE\r\n", False, True, True),
        ("STATUS:CONFIRMED\r\n", False, False, True),
    ],
)
def test_status_and_transparency(extra, tentative_is_busy, all_busy, busy):
    c = cal(f"UID:x\r\nDTSTART:20261202T100000Z\r\nDTEND:20261202T110000Z\r\n{extra}")
    got = spans(c, tentative_is_busy=tentative_is_busy, all_busy=all_busy)
    assert got == ([(utc(2, 10), utc(2, 11))] if busy else [])


def test_zones_x_wr_timezone_beats_the_fallback():
    c = cal(
        "UID:day\r\nDTSTART;VALUE=DATE:20261203\r\nDTEND;VALUE=DATE:20261205\r\n",
        "UID:float\r\nDTSTART:20261210T090000\r\nDTEND:20261210T100000\r\n",
        header="X-WR-TIMEZONE:America/New_York\r\n",
    )
    assert spans(c, "Europe/Berlin") == [(utc(3, 5), utc(5, 5)), (utc(10, 14), utc(10, 15))]
    no_header = cal("UID:float\r\nDTSTART:20261210T090000\r\nDTEND:20261210T100000\r\n")
    assert spans(no_header, "Europe/Berlin") == [(utc(10, 8), utc(10, 9))]
    assert spans(no_header, "Not/AZone") == [(utc(10, 9), utc(10, 10))]  # UTC as last resort


def test_recurrence_rdate_exdate_override_and_cancelled_instance():
    c = cal(
        "UID:r\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nRRULE:FREQ=DAILY;COUNT=5\r\n"
        "EXDATE:20261202T100000Z\r\nRDATE:20261220T150000Z\r\n",
        "UID:r\r\nRECURRENCE-ID:20261203T100000Z\r\nDTSTART:20261203T120000Z\r\nDTEND:20261203T130000Z\r\n",
        "UID:r\r\nRECURRENCE-ID:20261204T100000Z\r\nDTSTART:20261204T100000Z\r\n"
        "DTEND:20261204T110000Z\r\nSTATUS:CANCELLED\r\n",
    )
    assert spans(c) == [
        (utc(1, 10), utc(1, 11)),
        (utc(3, 12), utc(3, 13)),
        (utc(5, 10), utc(5, 11)),
        (utc(20, 15), utc(20, 16)),
    ]


def test_series_starting_long_before_the_window_is_expanded():
    c = cal(
        "UID:old\r\nDTSTART:20200106T090000Z\r\nDTEND:20200106T100000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=WE\r\n"
    )
    got = spans(c)
    assert got[0] == (utc(2, 9), utc(2, 10)) and len(got) == 9


def test_window_clips_by_overlap():
    c = cal("UID:edge\r\nDTSTART:20261129T230000Z\r\nDTEND:20261130T010000Z\r\n")
    assert spans(c) == [
        (datetime(2026, 11, 29, 23, tzinfo=UTC), datetime(2026, 11, 30, 1, tzinfo=UTC))
    ]


@pytest.mark.parametrize("body", ["<html>login</html>", "", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"])
def test_not_icalendar(body):
    with pytest.raises(NotICalendar):
        parse(body)


def test_public_addresses():
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:2800:220:1:248:1893:25c8:1946")
    for private in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",
        "::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ):
        assert not is_public_address(private), private


def test_check_url():
    assert check_url("webcal://example.com/a.ics") == "https://example.com/a.ics"
    for bad in ("ftp://example.com/", "example.com/a.ics", "http://", "javascript:alert(1)"):
        with pytest.raises(InvalidSetup):
            check_url(bad)


def test_event_ical_escapes_and_marks_the_attendee_for_client_scheduling():
    event = EventData(
        booking_uid="b1",
        ical_uid="b1@kairos",
        summary="Intro; with, Ada\nX-INJECTED:1",
        description="Notes:\nline two",
        start=utc(2, 10),
        end=utc(2, 10, 30),
        attendee_name='Ada "Countess" Lovelace',
        attendee_email="ada@example.com",
        location="https://meet.example.com/x",
        sequence=2,
        organizer_email="host@example.com",
    )
    text = event_ical(event)
    parsed = icalendar.Calendar.from_ical(text)
    [ev] = parsed.walk("VEVENT")
    assert "\nX-INJECTED" not in text.replace("\r\n ", "")
    assert str(ev["SUMMARY"]) == event.summary
    assert ev["SEQUENCE"] == 2 and str(ev["URL"]) == event.location
    assert ev["ATTENDEE"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert resource_name("b1@kairos") == "b1_kairos.ics"
    assert resource_name("../../etc") == ".._.._etc.ics"


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: b"\xef\xbb\xbf" + t.encode(),  # UTF-8 BOM (Outlook, WordPress plugins)
        lambda t: "\ufeff" + t,  # the same, already decoded
        lambda t: t.encode("utf-16"),  # UTF-16 with its BOM
    ],
    ids=["utf8-bom-bytes", "utf8-bom-text", "utf16-bom"],
)
def test_byte_order_mark_is_not_part_of_the_data(encode):
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Büro\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART:20261202T100000Z\r\nDTEND:20261202T110000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    c = parse(encode(text))
    assert str(c["X-WR-CALNAME"]) == "Büro"
    assert spans(c) == [(utc(2, 10), utc(2, 11))]


def test_url_key_spells_one_address_one_way():
    same = [
        "https://cal.example.org/feed/Abc.ics?k=X1",
        "webcal://CAL.example.org/feed/Abc.ics?k=X1#week",
        "http://cal.example.org:80/feed/%41bc.ics?k=%58%31",
        "HTTPS://cal.example.org.:443/feed/Abc.ics?k=X1",
    ]
    assert {url_key(u) for u in same} == {"//cal.example.org/feed/Abc.ics?k=X1"}
    different = [
        "https://cal.example.org/feed/abc.ics?k=X1",  # paths are case-sensitive
        "https://cal.example.org/feed/Abc.ics?k=x1",  # so are secret tokens
        "https://cal.example.org:8443/feed/Abc.ics?k=X1",
        "https://other.example.org/feed/Abc.ics?k=X1",
    ]
    assert len({url_key(u) for u in [same[0], *different]}) == 5
    assert url_key("https://h.example") == url_key("https://h.example/")
    assert (
        url_key("https://h.example/a%2fb")
        == url_key("https://h.example/a%2Fb")
        != url_key("https://h.example/a/b")
    )


NARROW_FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:Europe/Berlin\r\n"
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    + "".join(
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{body}END:VEVENT\r\n"
        for uid, body in [
            ("in", "DTSTART:20261202T100000Z\r\nDTEND:20261202T110000Z\r\n"),
            ("far", "DTSTART:20261220T100000Z\r\nDTEND:20261220T110000Z\r\n"),
            ("past", "DTSTART:20261101T100000Z\r\nDTEND:20261101T110000Z\r\n"),
            ("long", "DTSTART;VALUE=DATE:20261125\r\nDTEND;VALUE=DATE:20261210\r\n"),
            ("dur", "DTSTART;TZID=Europe/Berlin:20261128T090000\r\nDURATION:P5D\r\n"),
            ("day", "DTSTART;VALUE=DATE:20261202\r\n"),
            (
                "weekly",
                "DTSTART:20261104T120000Z\r\nDTEND:20261104T130000Z\r\nRRULE:FREQ=WEEKLY\r\n",
            ),
            (
                "fold",
                'DTSTART;TZID="(UTC+01:00) Berlin\r\n ":20261202T150000\r\n'
                "DTEND:20261202T160000Z\r\n",
            ),
            ("floating", "DTSTART:20261202T200000\r\nDTEND:20261202T210000\r\n"),
        ]
    )
    + "END:VCALENDAR\r\n"
)


def test_narrow_keeps_exactly_what_the_window_needs():
    from portal.calendars.providers.icalbusy import narrow

    lo, hi = utc(2, 9), utc(2, 23)
    whole = busy_intervals(parse(NARROW_FEED), lo, hi, "UTC")
    text = narrow(NARROW_FEED.encode(), lo, hi)
    assert busy_intervals(parse(text), lo, hi, "UTC") == whole
    assert {b.uid for b in whole} == {"in", "long", "dur", "day", "weekly", "fold", "floating"}
    assert "UID:far" not in text and "UID:past" not in text and "TZID:Europe/Berlin" in text
