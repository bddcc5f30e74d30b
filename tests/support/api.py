"""Helpers shared by the API tests: hosts with tokens, dates, schema checks.

Over HTTP the app's clock applies (the test app's ``CLOCK``, which starts at the
tests' "now", a Monday: tests/support/clock.py), so dates are chosen relative to it: the
Monday a week later is always a bookable weekday inside the default 60-day window.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator, FormatChecker

from portal import create_app
from portal.api.schemas.document import document as app_document
from portal.models import db
from tests.support.app import Hosts
from tests.support.clock import NOW

BERLIN = "Europe/Berlin"


@cache
def document() -> dict:
    """The OpenAPI document the app serves, for tests that are collected before any app exists.

    It is generated from the routes alone, so an app built just for its url_map
    (never serving a request) gives the same document as every test app.
    """
    # create_app binds the shared database proxy; hand it back to the test app that had it.
    bound = db.obj
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": tmp,
                "DATABASE_URL": f"sqlite:///{tmp}/doc.db",
                "SECRET_KEY": "document-only",
                "REDIS_URL": "redis://127.0.0.1:1/0",  # never dialled: no request is served
            }
        )
        try:
            return app_document(app)
        finally:
            if bound is not None:
                db.initialize(bound)


def bookable_monday() -> date:
    """The Monday a week after the test clock's: inside hours, window and any lead time we use."""
    return NOW.date() + timedelta(days=7)


def at(day: date, hhmm: str, tz: str = BERLIN) -> str:
    """ISO 8601 instant with the offset of ``tz``, as the API prints slots."""
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz)).isoformat()


class Api:
    """A test client that sends one host's bearer token (or none)."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __getattr__(self, method: str):
        send = getattr(self.client, method)

        def call(path: str, **kw):
            headers = self.headers | kw.pop("headers", {})
            return send(path, headers=headers, **kw)

        return call


@dataclass
class Env:
    app: object
    alice: object
    bob: object
    intro: object
    alice_api: Api
    bob_api: Api
    public: Api


def make_env(app) -> Env:
    """Hosts alice (Berlin, Mon–Fri 09–17, type "intro" 30 min) and bob, each with a token."""
    hosts = Hosts(app)
    alice = hosts.create("alice", tz=BERLIN)
    bob = hosts.create("bob", tz="America/New_York")
    intro = hosts.meeting_type(alice, "intro", duration_minutes=30)
    hosts.meeting_type(bob, "intro", duration_minutes=30)
    client = app.test_client()
    return Env(
        app=app,
        alice=alice,
        bob=bob,
        intro=intro,
        alice_api=Api(client, hosts.token(alice)),
        bob_api=Api(client, hosts.token(bob)),
        public=Api(client, None),
    )


def book(env: Env, start: str, **fields):
    body = {"start": start, "name": "Carol", "email": "carol@example.com"} | fields
    return env.public.post("/api/v1/hosts/alice/intro/bookings", json=body)


def matches_schema(response, method: str, path: str) -> None:
    """Assert the JSON answer fits the OpenAPI document's schema for this route and status."""
    op = document()["paths"][path][method.lower()]
    answer = op["responses"].get(str(response.status_code))
    assert answer is not None, f"{method} {path} documents no {response.status_code}"
    content = answer.get("content")
    if content is None:
        assert not response.data, "an answer documented without content has a body"
        return
    schema = dict(content["application/json"]["schema"])
    schema["components"] = document()["components"]
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(response.get_json()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
