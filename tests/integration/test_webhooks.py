"""Webhooks end to end against a local receiver (http.server in a thread) that checks
every signature the way the settings page tells hosts to."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs.webhooks import DeliveryFailed, deliver, fan_out
from portal import crypto
from portal.booking import service
from portal.calendars.providers import net
from portal.models import Booking, MeetingType, Outbox, User, Webhook, WebhookDelivery, db
from portal.notify import webhooks
from portal.runtime.outbox import RETRY
from portal.runtime.worker import run_worker
from tests.support import clock
from tests.support.api import Api, matches_schema
from tests.support.app import AuthActions, Hosts, make_app


class _QuietServer(ThreadingHTTPServer):
    """The app stops reading long answers early by design; a broken pipe is not news."""

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Receiver:
    """A local endpoint: records each POST and whether its signature checked out."""

    def __init__(self) -> None:
        self.secret = ""
        self.status = 200
        self.delay = 0.0
        self.location = ""
        self.seen: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.seen.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "valid": receiver.valid(self.headers.get("X-Kairos-Signature", ""), body),
                    }
                )
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                answer = b'{"thanks": true}' + b" " * 20_000
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/kairos"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def valid(self, header: str, body: bytes) -> bool:
        """The receiver's own check (as documented), not the app's helper."""
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        if "t" not in parts or abs(time.time() - int(parts["t"])) > 300:
            return False
        mac = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(mac.hexdigest(), parts.get("v1", ""))

    def bodies(self) -> list[dict]:
        return [json.loads(s["body"]) for s in self.seen]


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def app(tmp_path, redis_url):
    app = make_app(tmp_path, redis_url, ALLOW_HTTP_WEBHOOKS=True, HTTP_TIMEOUT=1)
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture
def alice(app):
    hosts = Hosts(app)
    user = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    hosts.meeting_type(user, "intro", name="Intro call")
    return user


NOW = clock.NOW
SLOT = clock.at(1, 9, tz="Europe/Berlin")  # Tuesday after the test clock's Monday


def book(app, start=SLOT) -> Booking:
    with app.test_request_context(), db.connection_context():
        host = User.get(User.slug == "alice")
        mt = MeetingType.get(MeetingType.slug == "intro")
        return service.book(host, mt, start, "Ada", "ada@example.com", now=NOW).booking


def add_hook(app, alice, url, events=webhooks.EVENTS) -> tuple[Webhook, str]:
    with app.app_context(), db.connection_context():
        return webhooks.create(User.get_by_id(alice.id), url, list(events))


def deliveries(app) -> list[WebhookDelivery]:
    with app.app_context(), db.connection_context():
        return list(WebhookDelivery.select().order_by(WebhookDelivery.id))


def in_app(app, fn, *args, **kw):
    with app.app_context(), db.connection_context():
        return fn(*args, **kw)


# ---------------------------------------------------------------- end to end


def test_register_in_settings_book_and_receive_a_signed_delivery(app, alice, receiver, client):
    auth = AuthActions(client)
    auth.login()
    r = auth.post(
        "/settings/webhooks",
        {
            "url": receiver.url,
            "events": ["booking.created", "booking.cancelled"],
            "description": "CRM",
        },
    )
    assert r.status_code == 200
    receiver.secret = re.search(
        r'id="webhook-secret" class="code" type="text" value="([^"]+)"', r.text
    ).group(1)
    assert receiver.secret.startswith("whsec_") and len(receiver.secret) > 40
    assert "webhook-secret" not in client.get("/settings/webhooks").text  # shown once
    with app.app_context(), db.connection_context():
        hook = Webhook.get()
        assert receiver.secret not in hook.secret and hook.event_list() == [
            "booking.created",
            "booking.cancelled",
        ]
        assert webhooks.secret_of(hook) == receiver.secret  # sealed, bound to its row
        assert (Webhook, "secret") in crypto.SECRET_FIELDS

    b = book(app)  # the outbox is relayed on commit; the worker does the rest
    run_worker(app, burst=True)
    run_worker(app, burst=True)  # the fan-out enqueued the delivery
    [seen] = receiver.seen
    assert seen["valid"] and seen["path"] == "/hooks/kairos"
    assert seen["headers"]["X-Kairos-Event"] == "booking.created"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["X-Kairos-Delivery"].startswith("dlv_")
    body = json.loads(seen["body"])
    assert body["type"] == "booking.created" and body["id"].startswith("evt_")
    assert body["data"]["booking"]["uid"] == b.uid
    assert body["data"]["booking"]["start"] == SLOT.isoformat()
    assert body["data"]["booking"]["email"] == "ada@example.com"
    assert body["data"]["booking"]["host_url"].endswith(f"/settings/appointments/{b.uid}")
    assert "manage_url" not in body["data"]["booking"]  # the invitee's secret stays theirs
    assert body["host"]["slug"] == "alice"
    [d] = deliveries(app)
    assert (d.status, d.attempts, d.response_status) == ("delivered", 1, 200)
    assert d.response_body.startswith('{"thanks": true}') and len(d.response_body) == 2000
    assert d.payload.encode() == seen["body"]  # the log keeps the exact body

    page = client.get(f"/settings/webhooks/{d.webhook_id}").text
    assert "Delivered" in page and "HTTP 200" in page and "Replay" in page
    detail = client.get(f"/settings/webhooks/{d.webhook_id}/deliveries/{d.id}").text
    assert b.uid in detail and "&#34;booking.created&#34;" in detail


def test_events_go_only_where_subscribed(app, alice, receiver):
    everything, secret = add_hook(app, alice, receiver.url)
    add_hook(app, alice, receiver.url + "?only=cancelled", ["booking.cancelled"])
    receiver.secret = secret
    b = book(app)
    with app.test_request_context(), db.connection_context():
        moved = service.reschedule(
            Booking.get_by_id(b.id), SLOT + timedelta(days=1, hours=1), now=NOW
        )
        service.cancel(moved, by="host", reason="ill", now=NOW)
    for event, booking_id in (
        ("created", b.id),
        ("rescheduled", moved.id),
        ("cancelled", moved.id),
    ):
        in_app(app, fan_out, booking_id, event, now=NOW)
    for d in deliveries(app):
        in_app(app, deliver, d.id)
    kinds = sorted((s["path"], json.loads(s["body"])["type"]) for s in receiver.seen)
    assert kinds == [
        ("/hooks/kairos", "booking.cancelled"),
        ("/hooks/kairos", "booking.created"),
        ("/hooks/kairos", "booking.rescheduled"),
        ("/hooks/kairos?only=cancelled", "booking.cancelled"),
    ]
    by_type = {b["type"]: b for b in receiver.bodies() if "only" not in b}
    assert by_type["booking.rescheduled"]["data"]["booking"]["rescheduled_from"] == b.uid
    cancelled = by_type["booking.cancelled"]["data"]["booking"]
    assert (cancelled["status"], cancelled["cancelled_by"], cancelled["cancel_reason"]) == (
        "cancelled",
        "host",
        "ill",
    )
    assert sum(s["valid"] for s in receiver.seen) == 3  # the other hook has its own secret
    assert everything.id


def test_a_second_fan_out_sends_nothing_twice(app, alice, receiver):
    add_hook(app, alice, receiver.url)
    b = book(app)
    assert in_app(app, fan_out, b.id, "created", now=NOW) == 1
    assert in_app(app, fan_out, b.id, "created", now=NOW) == 0
    assert len(deliveries(app)) == 1


def test_retries_then_failure_then_replay(app, alice, receiver, client):
    hook, receiver.secret = add_hook(app, alice, receiver.url)
    b = book(app)
    in_app(app, fan_out, b.id, "created", now=NOW)
    [d] = deliveries(app)
    receiver.status = 500
    for attempt in range(1, RETRY.max + 1):
        with pytest.raises(DeliveryFailed):
            in_app(app, deliver, d.id)
        [d] = deliveries(app)
        assert (d.status, d.attempts, d.response_status) == ("retrying", attempt, 500)
        assert d.last_error == "the receiver answered HTTP 500"
    assert in_app(app, deliver, d.id) == "failed"  # the last attempt gives up quietly
    [d] = deliveries(app)
    assert (d.status, d.attempts) == ("failed", RETRY.max + 1)
    assert in_app(app, deliver, d.id) == "skipped"

    receiver.status = 200
    auth = AuthActions(client)
    auth.login()
    r = auth.post(
        f"/settings/webhooks/{hook.id}/deliveries/{d.id}/replay", headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and "Sent again" in r.text
    original, replay = deliveries(app)
    assert replay.replay_of_id == original.id and replay.event_id == original.event_id
    assert replay.payload == original.payload and replay.uid != original.uid
    run_worker(app, burst=True)  # the replay was relayed to RQ on commit
    replay = deliveries(app)[1]
    assert replay.status == "delivered"
    ids = {json.loads(s["body"])["id"] for s in receiver.seen}
    assert ids == {original.event_id}  # receivers can drop the duplicate
    assert len({s["headers"]["X-Kairos-Delivery"] for s in receiver.seen}) == 2
    assert all(s["valid"] for s in receiver.seen)


@pytest.mark.parametrize(
    "status, location, error",
    [(302, "https://elsewhere.example/", "HTTP 302"), (404, "", "HTTP 404")],
)
def test_redirects_and_errors_are_failed_attempts(app, alice, receiver, status, location, error):
    add_hook(app, alice, receiver.url)
    receiver.status, receiver.location = status, location
    in_app(app, fan_out, book(app).id, "created", now=NOW)
    with pytest.raises(DeliveryFailed):
        in_app(app, deliver, deliveries(app)[0].id)
    assert error in deliveries(app)[0].last_error
    assert len(receiver.seen) == 1  # the redirect was not followed


def test_a_slow_receiver_times_out(app, alice, receiver):
    add_hook(app, alice, receiver.url)
    receiver.delay = 2.5  # HTTP_TIMEOUT is 1 s here
    in_app(app, fan_out, book(app).id, "created", now=NOW)
    with pytest.raises(DeliveryFailed):
        in_app(app, deliver, deliveries(app)[0].id)
    # A timeout reads like every other unreachable address: no open/closed port oracle.
    assert deliveries(app)[0].last_error == net.UNREACHABLE


def test_rotating_the_secret_signs_with_the_new_one(app, alice, receiver):
    hook, old = add_hook(app, alice, receiver.url)
    new = in_app(app, lambda: webhooks.rotate_secret(Webhook.get_by_id(hook.id)))
    assert new != old
    receiver.secret = new
    in_app(app, fan_out, book(app).id, "created", now=NOW)
    in_app(app, deliver, deliveries(app)[0].id)
    assert receiver.seen[0]["valid"]
    header = receiver.seen[0]["headers"]["X-Kairos-Signature"]
    assert not webhooks.verify(old, header, receiver.seen[0]["body"], time.time())
    assert webhooks.verify(new, header, receiver.seen[0]["body"], time.time())
    assert not webhooks.verify(new, header, receiver.seen[0]["body"], time.time() + 3600)


# ---------------------------------------------------------------- where deliveries may go


@pytest.fixture
def strict_app(tmp_path, redis_url):
    """Production defaults: https only, no private addresses."""
    app = make_app(tmp_path, redis_url, ALLOW_PRIVATE_URLS=False)
    yield app
    if not db.is_closed():
        db.close()


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://hooks.example.com/k", "enter an https:// URL"),
        ("ftp://hooks.example.com/k", "enter an https:// URL"),
        ("https://127.0.0.1/k", "private or local network"),
        ("https://localhost:8443/k", "private or local network"),
        ("https://[::1]/k", "private or local network"),
        ("https://10.1.2.3/k", "private or local network"),
        ("https://user:pw@hooks.example.com/k", "no user name or password"),
        ("https://hooks.example.com/k#x", "no #fragment"),
        ("", "enter the URL"),
    ],
)
def test_targets_are_checked(strict_app, url, message):
    with pytest.raises(webhooks.WebhookError) as caught:
        webhooks.check_target(url, strict_app.config)
    assert caught.value.field == "url" and message in caught.value.message


def test_the_settings_form_shows_the_problem_by_the_field(strict_app):
    Hosts(strict_app).create("alice")
    client = strict_app.test_client()
    auth = AuthActions(client)
    auth.login()
    r = auth.post("/settings/webhooks", {"url": "http://hooks.example.com/k", "events": []})
    assert 'id="url-error"' in r.text and "enter an https:// URL" in r.text
    assert 'id="events-error"' in r.text and "choose at least one event" in r.text


@pytest.fixture
def lan_app(tmp_path, redis_url):
    """http:// allowed (a LAN), private addresses not."""
    app = make_app(tmp_path, redis_url, ALLOW_PRIVATE_URLS=False, ALLOW_HTTP_WEBHOOKS=True)
    yield app
    if not db.is_closed():
        db.close()


def _private_hook(app, receiver) -> None:
    user = Hosts(app).create("alice")
    Hosts(app).meeting_type(user, "intro")
    with app.app_context(), db.connection_context():
        hook = Webhook.create(user=user.id, url=receiver.url, events="booking.created")
        crypto.seal(hook, "secret", {"secret": "whsec_x"})
        hook.save()
    in_app(app, fan_out, book(app).id, "created", now=NOW)


def test_a_private_target_saved_earlier_is_refused_at_delivery(lan_app, receiver):
    """Configuration may tighten after a URL was saved: every delivery checks it again."""
    _private_hook(lan_app, receiver)
    with pytest.raises(DeliveryFailed):
        in_app(lan_app, deliver, deliveries(lan_app)[0].id)
    # Refused before connecting, so saying why reveals nothing about the address.
    assert "private or local network" in deliveries(lan_app)[0].last_error
    assert receiver.seen == []


def test_the_connected_address_is_checked_too(lan_app, receiver, monkeypatch):
    """A name that resolves to a public address when checked and a private one when used
    (DNS rebinding) is caught on the socket (portal.calendars.providers.net's guard)."""
    _private_hook(lan_app, receiver)
    monkeypatch.setattr("portal.calendars.providers.net.check_host", lambda url: None)
    with pytest.raises(DeliveryFailed):
        in_app(lan_app, deliver, deliveries(lan_app)[0].id)
    assert deliveries(lan_app)[0].last_error == net.UNREACHABLE
    assert receiver.seen == []


# ---------------------------------------------------------------- API


def test_api(app, alice, receiver):
    hosts = Hosts(app)
    api = Api(app.test_client(), hosts.token(alice))
    bob = Api(app.test_client(), hosts.token(hosts.create("bob")))
    r = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["booking.created"]})
    assert r.status_code == 201, r.json
    matches_schema(r, "post", "/api/v1/webhooks")
    hook_id, receiver.secret = r.json["id"], r.json["secret"]
    assert r.headers["Location"].endswith(f"/api/v1/webhooks/{hook_id}")
    r = api.get("/api/v1/webhooks")
    matches_schema(r, "get", "/api/v1/webhooks")
    assert "secret" not in r.json["webhooks"][0]
    assert bob.get(f"/api/v1/webhooks/{hook_id}").status_code == 404
    assert bob.get(f"/api/v1/webhooks/{hook_id}/deliveries").status_code == 404

    r = api.patch(f"/api/v1/webhooks/{hook_id}", json={"events": ["booking.nope"]})
    assert r.status_code == 422 and r.json["error"]["field"] == "events"
    r = api.patch(f"/api/v1/webhooks/{hook_id}", json={"url": "ftp://x"})
    assert r.status_code == 422 and r.json["error"]["field"] == "url"
    r = api.patch(f"/api/v1/webhooks/{hook_id}", json={"description": "CRM", "active": True})
    assert r.status_code == 200 and r.json["description"] == "CRM"
    matches_schema(r, "patch", "/api/v1/webhooks/{webhook_id}")

    in_app(app, fan_out, book(app).id, "created", now=NOW)
    [d] = deliveries(app)
    r = api.post(f"/api/v1/webhooks/{hook_id}/deliveries/{d.id}/replay")
    assert r.status_code == 409 and r.json["error"]["code"] == "not_finished"
    in_app(app, deliver, d.id)
    r = api.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    matches_schema(r, "get", "/api/v1/webhooks/{webhook_id}/deliveries")
    assert r.json["deliveries"][0]["status"] == "delivered"
    assert json.loads(r.json["deliveries"][0]["payload"])["type"] == "booking.created"
    r = api.post(f"/api/v1/webhooks/{hook_id}/deliveries/{d.id}/replay")
    assert r.status_code == 202
    matches_schema(r, "post", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay")
    r = api.post(f"/api/v1/webhooks/{hook_id}/secret")
    matches_schema(r, "post", "/api/v1/webhooks/{webhook_id}/secret")
    assert r.json["secret"] != receiver.secret
    r = api.get(f"/api/v1/webhooks/{hook_id}")
    matches_schema(r, "get", "/api/v1/webhooks/{webhook_id}")
    assert r.json["last_delivery"]["replay_of"] == d.id
    assert api.delete(f"/api/v1/webhooks/{hook_id}").status_code == 204
    assert deliveries(app) == [] and api.get(f"/api/v1/webhooks/{hook_id}").status_code == 404


def test_deliveries_wait_for_a_video_link(app, alice, receiver):
    """booking.created carries the Meet/Teams link: the fan-out waits while it is being made."""
    add_hook(app, alice, receiver.url)
    b = book(app)
    with app.app_context(), db.connection_context():
        Booking.update(join_status="pending", location_kind="google_meet").where(
            Booking.id == b.id
        ).execute()
    assert in_app(app, fan_out, b.id, "created") == 0  # real clock: the booking is new
    assert deliveries(app) == []
    with app.app_context(), db.connection_context():
        later = [o for o in Outbox.select().where(Outbox.kind == "webhooks") if o.run_at]
        assert len(later) == 1
        from portal.booking import locations

        locations.record_written(b.id, "https://meet.google.com/abc-defg-hij")
        woken = [o for o in Outbox.select().where(Outbox.kind == "webhooks") if o.run_at is None]
        assert len(woken) == 2  # the booking's own row, and the wake-up
    assert in_app(app, fan_out, b.id, "created") == 1
    body = json.loads(deliveries(app)[0].payload)
    assert body["data"]["booking"]["meeting_link"] == "https://meet.google.com/abc-defg-hij"


def test_fan_out_and_replay_on_each_backend(backend_app):
    """The once-per-event key is unique; replays (NULL key) may be many, on both databases."""
    hosts = Hosts(backend_app)
    user = hosts.create("alice")
    hosts.meeting_type(user, "intro")
    hook, _ = add_hook(backend_app, user, "https://hooks.example.com/k")
    b = book(backend_app)
    assert in_app(backend_app, fan_out, b.id, "created", now=NOW) == 1
    assert in_app(backend_app, fan_out, b.id, "created", now=NOW) == 0
    with backend_app.app_context(), db.connection_context():
        original = WebhookDelivery.get()
        WebhookDelivery.update(status="delivered").execute()
        first = webhooks.replay(WebhookDelivery.get_by_id(original.id))
        second = webhooks.replay(WebhookDelivery.get_by_id(original.id))
        assert first.dedup_key is None and second.dedup_key is None
        assert WebhookDelivery.select().count() == 3
        assert Outbox.select().where(Outbox.kind == "webhook_delivery").count() == 3
