"""Schemathesis over the served /api/v1/openapi.json, in-process: no 5xx, answers as documented.

One app for the module, a seeded host (alice, with a meeting type, a booking, a
webhook with a delivery and an ICS connection) whose bearer token goes with every
operation that has security; public operations go anonymous. Half the cases of an
operation's valid cases name alice's real resources in the path, so bodies and queries reach the
code behind the 404. Bounded and derandomized: the same cases on every run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from portal.calendars import sync
from portal.models import Booking, Calendar, Webhook, WebhookDelivery, db
from portal.notify import webhooks
from tests.support.api import at, bookable_monday, document
from tests.support.app import Hosts, make_app
from tests.support.servers import FeedServer

EXAMPLES = int(os.environ.get("KAIROS_FUZZ_EXAMPLES", "20"))
EMPTY = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Rota\r\nEND:VCALENDAR\r\n"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
]


@pytest.fixture(scope="module")
def feed():
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, redis_url, feed):
    app = make_app(tmp_path_factory.mktemp("fuzz"), redis_url)
    hosts = Hosts(app)
    alice = hosts.create("alice")
    hosts.meeting_type(alice, "intro")
    token = hosts.token(alice)
    client = app.test_client()
    assert client.get("/api/v1/openapi.json").get_json() == document()
    TARGET.app = app
    headers = {"Authorization": f"Bearer {token}"}
    made = client.post(
        "/api/v1/hosts/alice/intro/bookings",
        json={"start": at(bookable_monday(), "10:00"), "name": "Carol", "email": "c@example.com"},
    )
    assert made.status_code == 201, made.json
    with app.app_context(), db.connection_context():
        conn = sync.connect(alice, "ics", {"url": feed.publish("/fuzz.ics", EMPTY)})
        hook, _ = webhooks.create(alice, "https://hooks.example/in", list(webhooks.EVENTS), "")
        booking = Booking.get(Booking.uid == made.json["uid"])
        delivery = WebhookDelivery.create(
            webhook=hook,
            uid="d-fuzz",
            event_id="e-fuzz",
            event="booking.created",
            booking_uid=booking.uid,
            status="failed",
            payload="{}",
        )
        ids = {
            "host": "alice",
            "type": "intro",
            "slug": "intro",
            "uid": booking.uid,
            "webhook_id": hook.id,
            "delivery_id": delivery.id,
            "connection_id": conn.id,
            "calendar_id": Calendar.get(Calendar.connection == conn).id,
            "user_id": alice.id,
        }
        assert Webhook.select().count() == 1
    return app, headers, ids


class _Target:
    """The WSGI app the cases go to: the module's seeded app, once `seeded` has made it."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


TARGET = _Target()
# Cases are generated at collection, before any app exists, from the same generated
# document; `seeded` checks that the app serves exactly this one. (Schemathesis' lazy
# fixture loader does not run under pytest 9.)
schema = schemathesis.openapi.from_dict(document())
schema.app = TARGET
# A refused body may also be too large (413) or its URL too long (414): both documented.
schema.config.checks.negative_data_rejection.expected_statuses += ["413", "414"]
_calls: dict[str, int] = {}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_api_answers_as_documented(case, seeded):
    _app, headers, ids = seeded
    label = case.operation.label
    _calls[label] = _calls.get(label, 0) + 1
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if positive and _calls[label] % 2 and case.path_parameters:
        case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
    auth = headers if case.operation.definition.raw.get("security") else {}
    case.call_and_validate(headers=auth, checks=CHECKS)
