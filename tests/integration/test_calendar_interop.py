"""Calendar interop found from outside (issue 16): feeds with a byte-order mark, the same
account connected twice, through the API and the settings pages, on real servers."""

from __future__ import annotations

import email
import re
import threading
from datetime import UTC, datetime, time, timedelta
from email import policy
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import requests
from werkzeug.serving import make_server

from jobs import outbox as outbox_jobs
from portal.booking import links
from portal.booking import service as booking
from portal.calendars import sync
from portal.models import BusyBlock, Calendar, Connection, Outbox, User, db, from_db
from portal.notify import booking_mail, feeds
from tests.support.app import Hosts
from tests.support.clock import NOW


def outlook_feed(start: datetime) -> str:
    """A feed as Outlook publishes it, with one hour busy at ``start``."""
    stamp = "%Y%m%dT%H%M%SZ"
    end = start + timedelta(hours=1)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Microsoft Corporation//Outlook 16.0//EN\r\n"
        "X-WR-CALNAME:Kalender Büro\r\nBEGIN:VEVENT\r\nUID:bom-1\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start.strftime(stamp)}\r\nDTEND:{end.strftime(stamp)}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


FEED = outlook_feed(NOW + timedelta(days=2, hours=2))  # where the date does not matter


def run_write_backs() -> None:
    """Run the write-back outbox rows not done yet, oldest first, as the worker would."""
    pending = Outbox.select().where(Outbox.kind == "write_back", Outbox.status != "done")
    for row in list(pending.order_by(Outbox.id)):
        outbox_jobs.run(row.id)


def api(client, token, method, path, body=None):
    return client.open(
        f"/api/v1{path}", method=method, json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_feed_with_a_utf8_byte_order_mark_connects_and_refreshes(
    app, client, hosts, feed_server, now
):
    token = hosts.token(hosts.create("alice"))
    busy = now + timedelta(days=1)
    url = feed_server.publish("/outlook.ics", b"\xef\xbb\xbf" + outlook_feed(busy).encode())
    answer = api(client, token, "POST", "/connections", {"provider": "ics", "url": url})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["label"] == "Kalender Büro"
    assert [c["name"] for c in body["calendars"]] == ["Kalender Büro"]
    with app.app_context(), db.connection_context():
        assert sync.refresh_connection(body["id"], now=now) == "ok"
        block = BusyBlock.get()
        assert (from_db(block.start), from_db(block.end)) == (busy, busy + timedelta(hours=1))


# ---------------------------------------------------------------- the same account twice


def test_the_same_feed_twice_is_refused_naming_the_url(app, client, hosts, feed_server):
    alice = hosts.create("alice")
    token = hosts.token(alice)
    url = feed_server.publish("/team/rota.ics", FEED)
    first = api(client, token, "POST", "/connections", {"provider": "ics", "url": url})
    assert first.status_code == 201
    # The same address as people paste it: another scheme, escapes, a fragment.
    where = url.split("//", 1)[1].split("/", 1)[0]
    spellings = [
        url,
        f" {url}#today",
        f"WEBCAL://{where}/team/%72ota.ics",
        f"HTTPS://{where}/team/rota.ics",
    ]
    for spelling in spellings:
        answer = api(client, token, "POST", "/connections", {"provider": "ics", "url": spelling})
        assert answer.status_code == 422, (spelling, answer.get_json())
        error = answer.get_json()["error"]
        assert error["field"] == "url"
        assert "already connected" in error["message"] and "Kalender Büro" in error["message"]
    # Another path is another feed; another host may connect the same one.
    other = feed_server.publish("/team/other.ics", FEED)
    answer = api(client, token, "POST", "/connections", {"provider": "ics", "url": other})
    assert answer.status_code == 201
    bob = hosts.token(hosts.create("bob"))
    assert (
        api(client, bob, "POST", "/connections", {"provider": "ics", "url": url}).status_code == 201
    )
    with app.app_context(), db.connection_context():
        assert Connection.select().where(Connection.user == alice.id).count() == 2
        assert Calendar.select().count() == 3


def test_the_settings_form_names_the_field_of_a_duplicate(app, client, auth, hosts, feed_server):
    hosts.create("alice")
    auth.login()
    url = feed_server.publish("/rota.ics", FEED)
    assert auth.post("/settings/connections/add/ics", {"ics-url": url}).status_code == 302
    answer = auth.post("/settings/connections/add/ics", {"ics-url": url.replace("http:", "HTTP:")})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert re.search(r'id="ics-url-error">[^<]*already connected', page)
    with app.app_context(), db.connection_context():
        assert Connection.select().count() == 1


def test_the_same_caldav_account_twice_is_refused(app, client, hosts, radicale):
    token = hosts.token(hosts.create("alice"))
    user, password = radicale.add_user()
    radicale.make_calendar(user, "Work")
    fields = {"provider": "caldav", "url": radicale.url, "username": user, "password": password}
    assert api(client, token, "POST", "/connections", fields).status_code == 201
    # Without the trailing slash, in capitals: the same server and user.
    twice = fields | {"url": radicale.url.rstrip("/").upper()}
    answer = api(client, token, "POST", "/connections", twice)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == "url"
    other_user, other_password = radicale.add_user()
    other = fields | {"username": other_user, "password": other_password}
    assert api(client, token, "POST", "/connections", other).status_code == 201


def test_reconnecting_to_another_connections_feed_is_refused(app, auth, hosts, feed_server):
    host = hosts.create("alice")
    a = feed_server.publish("/a.ics", FEED)
    b = feed_server.publish("/b.ics", FEED)
    with app.app_context(), db.connection_context():
        first = sync.connect(host, "ics", {"url": a})
        second = sync.connect(host, "ics", {"url": b})
    auth.login()
    answer = auth.post(f"/settings/connections/{second.id}/reconnect", {"ics-url": a})
    assert re.search(r'id="ics-url-error">[^<]*already connected', answer.get_data(as_text=True))
    with app.app_context(), db.connection_context():
        assert sync.credentials(Connection.get_by_id(second.id)) == {"url": b}
        # Its own address again is a plain reconnect.
        sync.reconnect(Connection.get_by_id(first.id), {"url": a + "#again"})


def test_racing_identical_connects_make_one_connection(backend_app, feed_server):
    """The check and the insert are one transaction under the host's lock, on both databases."""
    h = Hosts(backend_app)
    host = h.create("alice")
    token = h.token(host)
    url = feed_server.publish("/rota.ics", FEED)
    server = make_server("127.0.0.1", 0, backend_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    racers = 8
    barrier = threading.Barrier(racers)
    codes = [0] * racers

    def go(i: int) -> None:
        barrier.wait()
        codes[i] = requests.post(
            f"http://127.0.0.1:{server.server_port}/api/v1/connections",
            json={"provider": "ics", "url": url},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).status_code

    threads = [threading.Thread(target=go, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.shutdown()
    assert sorted(codes) == [201] + [422] * (racers - 1)
    with backend_app.app_context(), db.connection_context():
        assert Connection.select().count() == 1 and Calendar.select().count() == 1


# ---------------------------------------------------------------- reschedule and write-back


def local(now: datetime, days: int, hour: int, tz: str = "Europe/Berlin") -> datetime:
    """``hour``:00 in ``tz`` on the day ``days`` after ``now``'s, as a UTC instant."""
    day = (now + timedelta(days=days)).date()
    return datetime.combine(day, time(hour), ZoneInfo(tz)).astimezone(UTC)


def test_the_moved_away_booking_reports_its_event_superseded(
    app, client, auth, hosts, radicale, now
):
    host = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(host, "intro", duration_minutes=30)
    token = hosts.token(host)
    user, password = radicale.add_user()
    bookings_url = radicale.make_calendar(user, "Bookings")
    with app.test_request_context(), db.connection_context():
        sync.connect(host, "caldav", {"url": radicale.url, "username": user, "password": password})
        write = Calendar.get(Calendar.external_id == bookings_url)
        sync.set_calendar_flags(write, write=True)
        first = booking.book(host, mt, local(now, 1, 10), "Ada", "ada@example.com", now=now).booking
        run_write_backs()
    old = api(client, token, "GET", f"/bookings/{first.uid}").get_json()
    assert old["calendar_event"] == {"status": "written", "calendar_id": write.id}

    later = local(now, 2, 14).isoformat()
    moved = api(client, token, "POST", f"/bookings/{first.uid}/reschedule", {"start": later})
    assert moved.status_code == 201, moved.get_json()
    new_uid = moved.get_json()["uid"]
    with app.app_context(), db.connection_context():
        run_write_backs()
    old = api(client, token, "GET", f"/bookings/{first.uid}").get_json()
    assert old["status"] == "rescheduled" and old["rescheduled_to"] == new_uid
    assert old["calendar_event"] == {"status": "superseded", "calendar_id": write.id}
    new = api(client, token, "GET", f"/bookings/{new_uid}").get_json()
    assert new["calendar_event"] == {"status": "written", "calendar_id": write.id}
    assert len(radicale.hrefs(bookings_url, user=user)) == 1  # one event, moved

    # Moved twice: the first booking still points at where the event is now.
    again = api(
        client,
        token,
        "POST",
        f"/bookings/{new_uid}/reschedule",
        {"start": local(now, 3, 9).isoformat()},
    )
    assert again.status_code == 201
    old = api(client, token, "GET", f"/bookings/{first.uid}").get_json()
    assert old["calendar_event"] == {"status": "superseded", "calendar_id": write.id}

    auth.login()
    page = client.get(f"/settings/appointments/{first.uid}").get_data(as_text=True)
    assert "Moved with the booking, in Bookings" in page
    assert "Being added" not in page and "Not added" not in page


# ---------------------------------------------------------------- invitations and downloads


def parts_of(msg) -> list[tuple[str, str | None, str | None]]:
    """Every leaf part: content type, iTIP method parameter, disposition."""
    return [
        (p.get_content_type(), p.get_param("method"), p.get_content_disposition())
        for p in msg.walk()
        if not p.is_multipart()
    ]


def vevent_of(data: bytes):
    cal = icalendar.Calendar.from_ical(data)
    (event,) = cal.walk("VEVENT")
    return str(cal["METHOD"]), event


def test_invitations_are_alternatives_and_downloads_are_published(app, client, hosts, now):
    host = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(host, "intro", duration_minutes=30)
    with app.test_request_context(), db.connection_context():
        b = booking.book(host, mt, local(now, 1, 10), "Ada", "ada@example.com", now=now).booking
        sent = [
            (event, booking_mail.booking_message(b, event, role, now))
            for event, role in (("created", "invitee"), ("created", "host"))
        ]
        cancelled = booking.cancel(b, by="host", now=now)
        sent.append(
            ("cancelled", booking_mail.booking_message(cancelled, "cancelled", "invitee", now))
        )
        manage = links.manage_path(b)
        owner = User.get_by_id(host.id)
        feeds.regenerate(owner)
        feed_path = urlsplit(feeds.feed_url(owner)).path

    for event, built in sent:
        msg = email.message_from_bytes(built.as_bytes(), policy=policy.default)
        method = "CANCEL" if event == "cancelled" else "REQUEST"
        # What Outlook needs for its buttons, and the file for everyone else.
        assert msg.get_content_type() == "multipart/mixed"
        alternative = next(msg.iter_parts())
        assert alternative.get_content_type() == "multipart/alternative"
        assert parts_of(msg) == [
            ("text/plain", None, None),
            ("text/html", None, None),
            ("text/calendar", method, None),
            ("text/calendar", None, "attachment"),
        ]
        itip, file = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
        assert itip.get_payload(decode=True) == file.get_payload(decode=True)
        assert file.get_filename() == ("cancel.ics" if method == "CANCEL" else "invite.ics")
        found, vevent = vevent_of(itip.get_payload(decode=True))
        assert found == method  # RFC 6047: the parameter and the body agree
        assert str(vevent["ORGANIZER"]) == "mailto:alice@example.com"
        assert str(vevent["ATTENDEE"]) == "mailto:ada@example.com"

    download = client.get(f"{manage.replace('?', '/invite.ics?', 1)}")
    assert download.status_code == 200
    found, vevent = vevent_of(download.data)
    assert found == "PUBLISH" and "ATTENDEE" not in vevent and "ORGANIZER" in vevent

    with app.test_request_context(), db.connection_context():
        later = booking.book(host, mt, local(now, 2, 10), "Bo", "bo@example.com", now=now)
    feed = client.get(feed_path)
    assert feed.status_code == 200
    cal = icalendar.Calendar.from_ical(feed.data)
    assert str(cal["METHOD"]) == "PUBLISH"
    events = cal.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [later.booking.ical_uid]
    assert all("ATTENDEE" not in e for e in events)
