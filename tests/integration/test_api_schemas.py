"""The generated OpenAPI document on its own: valid 3.1, and its schemas mean what they say."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from portal.api.schemas.document import operations
from tests.support.api import document


def _validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document()["components"]}
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_document_is_valid_openapi_3_1():
    validate(document())
    assert document()["openapi"].startswith("3.1")


def test_each_operation_is_declared_once(app):
    keys = [(method, path) for method, path, _rule, _view, _op in operations(app)]
    assert len(keys) == len(set(keys))
    ids = [op["operationId"] for ops in document()["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_every_schema_is_used_and_every_reference_resolves(app):
    text = repr(document()["paths"]) + repr(document()["components"]["schemas"])
    for name in document()["components"]["schemas"]:
        assert f"#/components/schemas/{name}'" in text, f"unused schema {name}"
    for _method, _path, _rule, _view, op in operations(app):
        for model in [op.body] + [m for _, m in op.responses.values()]:
            assert model is None or model.__name__ in document()["components"]["schemas"]


def test_standard_errors_follow_from_the_flags(app):
    doc = document()
    for method, path, _rule, view, op in operations(app):
        answers = doc["paths"][path][method]["responses"]
        assert ("401" in answers) == bool(getattr(view, "requires_token", False)), path
        if "401" in answers or "{" in path:  # reads the database: portal.web.outage may answer
            assert "503" in answers, path
        if op.body:
            assert {"413", "422"} <= set(answers), path
        if "{" in path:
            assert "404" in answers, path


GOOD_AVAILABILITY = {
    "timezone": "Europe/Berlin",
    "weekly": {"mon": [["09:00", "17:00"]], "sun": [["20:00", "24:00"]]},
    "overrides": [{"date": "2026-12-24", "intervals": []}],
    "lead_time_minutes": 60,
}


@pytest.mark.parametrize(
    "name,instance,ok",
    [
        ("Availability", GOOD_AVAILABILITY, True),
        ("Availability", GOOD_AVAILABILITY | {"weekly": {"mon": [["9:00", "17:00"]]}}, False),
        ("Availability", GOOD_AVAILABILITY | {"weekly": {"monday": []}}, False),
        ("Availability", {k: v for k, v in GOOD_AVAILABILITY.items() if k != "weekly"}, False),
        ("Interval", ["00:00", "24:00"], True),
        ("Interval", ["09:00", "17:00", "18:00"], False),
        ("Interval", ["24:01", "25:00"], False),
        ("MeetingTypeCreate", {"slug": "intro", "name": "Intro", "duration_minutes": 30}, True),
        ("MeetingTypeCreate", {"slug": "Intro", "name": "Intro", "duration_minutes": 30}, False),
        ("MeetingTypeCreate", {"slug": "x", "name": "X", "duration_minutes": 4}, False),
        ("MeetingTypeCreate", {"slug": "x", "name": "X", "duration_minutes": 30, "y": 1}, False),
        ("MeetingTypePatch", {"daily_limit": None, "slot_interval_minutes": 15}, True),
        ("MeetingTypePatch", {"window_days": 731}, False),
        (
            "BookingRequest",
            {"start": "2026-12-01T09:00:00+01:00", "name": "A", "email": "a@b.c"},
            True,
        ),
        ("BookingRequest", {"start": "tomorrow", "name": "A", "email": "a@b.c"}, False),
        ("BookingRequest", {"name": "A", "email": "a@b.c"}, False),
        ("RescheduleRequest", {"start": "2026-12-01T09:00:00Z"}, True),
        ("CancelRequest", {}, True),
        ("CancelRequest", {"reason": 3}, False),
        ("Error", {"error": {"code": "invalid", "message": "m", "field": "start"}}, True),
        ("Error", {"error": {"message": "m"}}, False),
    ],
)
def test_schemas_accept_and_refuse_what_the_api_does(name, instance, ok):
    errors = list(_validator(name).iter_errors(instance))
    assert (not errors) == ok, [e.message for e in errors]
