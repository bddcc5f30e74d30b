"""The private ICS feed: a secret URL per host serving their bookings, revocable."""

from __future__ import annotations

import json
import re

import pytest
from icalendar import Calendar

from portal.booking import service
from portal.models import Booking, MeetingType, User, db
from portal.notify import feeds
from tests.support import clock
from tests.support.api import Api, matches_schema
from tests.support.app import AuthActions, Hosts

NOW = clock.NOW


@pytest.fixture
def world(app, hosts):
    alice = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    bob = hosts.create("bob", tz="Europe/Berlin")
    hosts.meeting_type(alice, "intro", name="Intro call", location="https://meet.example/a")
    hosts.meeting_type(bob, "intro", name="Bob's call")
    with app.test_request_context(), db.connection_context():
        a, b = User.get(User.slug == "alice"), User.get(User.slug == "bob")
        mt_a = MeetingType.get(MeetingType.user == a)
        mt_b = MeetingType.get(MeetingType.user == b)

        def make(host, mt, day, hour, name):
            start = clock.at(day, hour)
            return service.book(
                host, mt, start, name, f"{name.lower()}@example.com", now=NOW
            ).booking

        kept = make(a, mt_a, 1, 9, "Ada")
        gone = service.cancel(make(a, mt_a, 1, 10, "Cy"), by="host", now=NOW)
        moved_from = make(a, mt_a, 2, 9, "Dee")
        moved = service.reschedule(moved_from, clock.at(3, 9), now=NOW)
        make(b, mt_b, 1, 9, "Eve")
    return {"alice": alice, "kept": kept, "gone": gone, "moved": moved, "moved_from": moved_from}


def feed_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_create_subscribe_regenerate_revoke(app, client, world):
    auth = AuthActions(client)
    auth.login()
    page = client.get("/settings/feed").text
    assert "No feed yet" in page and "/feeds/" not in page
    r = auth.post("/settings/feed", headers={"HX-Request": "true"})
    url = re.search(r'id="feed-url" class="code" type="text" value="([^"]+)"', r.text).group(1)
    assert re.fullmatch(r"http://localhost/feeds/[A-Za-z0-9_-]{43}\.ics", url)
    assert url in client.get("/settings/feed").text  # shown again later: derived, not stored
    with app.app_context(), db.connection_context():
        alice = User.get(User.slug == "alice")
        token = url.rsplit("/", 1)[1][:-4]
        assert token not in (alice.feed_salt, alice.feed_token_hash)

    anonymous = app.test_client()  # calendar apps send no cookie
    r = anonymous.get(feed_path(url))
    assert r.status_code == 200 and r.mimetype == "text/calendar"
    assert r.headers["Cache-Control"] == "private, max-age=300"
    cal = Calendar.from_ical(r.data)
    assert str(cal["METHOD"]) == "PUBLISH" and str(cal["X-WR-CALNAME"]) == "Kairos: Alice Example"
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    kept, moved = world["kept"], world["moved"]
    # Confirmed bookings only: the cancelled one and the moved-away one are omitted.
    assert set(events) == {kept.ical_uid, moved.ical_uid}
    assert (
        moved.ical_uid == world["moved_from"].ical_uid
        and int(events[moved.ical_uid]["SEQUENCE"]) == 1
    )
    event = events[kept.ical_uid]
    assert event.decoded("DTSTART") == clock.at(1, 9)
    assert str(event["LOCATION"]) == "https://meet.example/a"
    assert str(event["URL"]).endswith(f"/settings/appointments/{kept.uid}")
    assert str(event["SUMMARY"]) == "Intro call: Alice Example and Ada"
    assert b"Bob's call" not in r.data and b"token=" not in r.data  # no manage links

    again = anonymous.get(feed_path(url), headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304

    r = auth.post("/settings/feed")
    assert r.status_code == 302
    new_url = re.search(
        r'id="feed-url" class="code" type="text" value="([^"]+)"', client.get("/settings/feed").text
    ).group(1)
    assert new_url != url
    assert anonymous.get(feed_path(url)).status_code == 404
    assert anonymous.get(feed_path(new_url)).status_code == 200

    auth.post("/settings/feed/revoke")
    assert anonymous.get(feed_path(new_url)).status_code == 404
    assert "No feed yet" in client.get("/settings/feed").text


@pytest.mark.parametrize("token", ["x", "0" * 43, "A" * 43, "0" * 44, "../../etc/passwd"])
def test_unknown_tokens_are_404(client, world, token):
    assert client.get(f"/feeds/{token}.ics").status_code == 404


def test_a_deactivated_host_has_no_feed(app, client, world):
    with app.test_request_context(), db.connection_context():
        url = feeds.regenerate(User.get(User.slug == "alice"))
    assert client.get(feed_path(url)).status_code == 200
    with app.app_context(), db.connection_context():
        User.update(is_active=False).where(User.slug == "alice").execute()
    assert client.get(feed_path(url)).status_code == 404


def test_changing_the_secret_key_changes_the_url(app, client, world):
    with app.test_request_context(), db.connection_context():
        url = feeds.regenerate(User.get(User.slug == "alice"))
    app.config["SECRET_KEY"] = "another-secret"
    assert client.get(feed_path(url)).status_code == 404


def test_feed_api(app, hosts, world):
    api = Api(app.test_client(), hosts.token(world["alice"]))
    r = api.get("/api/v1/feed")
    matches_schema(r, "get", "/api/v1/feed")
    assert r.json == {"active": False, "url": None}
    r = api.post("/api/v1/feed")
    assert r.status_code == 201 and r.json["active"]
    matches_schema(r, "post", "/api/v1/feed")
    url = r.json["url"]
    assert app.test_client().get(feed_path(url)).status_code == 200
    assert api.get("/api/v1/feed").json["url"] == url
    assert api.delete("/api/v1/feed").status_code == 204
    assert app.test_client().get(feed_path(url)).status_code == 404
    assert api.get("/api/v1/feed").json["active"] is False


def test_the_feed_holds_answers_and_join_links(app, client, world):
    with app.test_request_context(), db.connection_context():
        Booking.update(
            join_url="https://meet.google.com/abc-defg-hij",
            answers=json.dumps(
                [{"key": "topic", "label": "Topic", "kind": "short_text", "value": "Q1 plan"}]
            ),
        ).where(Booking.id == world["kept"].id).execute()
        url = feeds.regenerate(User.get(User.slug == "alice"))
    cal = Calendar.from_ical(client.get(feed_path(url)).data)
    event = next(e for e in cal.walk("VEVENT") if str(e["UID"]) == world["kept"].ical_uid)
    assert str(event["LOCATION"]) == "https://meet.google.com/abc-defg-hij"
    assert "Topic: Q1 plan" in str(event["DESCRIPTION"])


def test_feed_tokens_on_each_backend(backend_app):
    """Hosts without a feed share a NULL hash (unique allows it); lookups work on both."""
    make = Hosts(backend_app)
    make.create("alice")
    make.create("bob")
    with backend_app.test_request_context(), db.connection_context():
        alice, bob = User.get(User.slug == "alice"), User.get(User.slug == "bob")
        assert alice.feed_token_hash is None and bob.feed_token_hash is None
        url = feeds.regenerate(alice)
        token = url.rsplit("/", 1)[1][:-4]
        assert feeds.find_host(token).id == alice.id
        feeds.revoke(alice)
        assert feeds.find_host(token) is None
