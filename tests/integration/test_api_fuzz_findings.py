"""Requests that once caused a 500 (issue 16's outside test), each now a clear 4xx.

Far-future instants, JSON values of the wrong type where a name is expected,
and ids larger than any database integer, on the API and on the pages.
"""

from __future__ import annotations

import re

import pytest

from tests.support.api import at, book, bookable_monday, make_env

FAR = ["9999-12-31T23:30:00+00:00", "9999-12-31T23:30:00Z", "9999-12-31T23:30:00-05:00"]
HUGE = "999999999999999999999999999999"  # more than SQLite's (and any) 64-bit integer


@pytest.fixture
def env(app):
    return make_env(app)


@pytest.mark.parametrize("start", FAR + ["0001-01-01T00:00:00+14:00"])
def test_a_far_start_is_422_naming_start_on_booking_and_reschedule(env, start):
    r = book(env, start)
    assert r.status_code == 422 and r.json["error"]["field"] == "start", r.json
    uid = book(env, at(bookable_monday(), "10:00")).json["uid"]
    r = env.alice_api.post(f"/api/v1/bookings/{uid}/reschedule", json={"start": start})
    assert r.status_code == 422 and r.json["error"]["field"] == "start", r.json
    assert env.alice_api.get(f"/api/v1/bookings/{uid}").json["status"] == "confirmed"


@pytest.mark.parametrize("start", ["9999-12-31T23:30:00Z", "9999-12-31T23:30:00-05:00", "soon"])
def test_a_far_start_on_the_booking_page_is_no_longer_available(env, start):
    r = env.public.get("/alice/intro", query_string={"start": start})
    assert r.status_code == 200
    assert "That time is no longer available" in r.get_data(as_text=True)


@pytest.mark.parametrize("kind", [{"a": 1}, ["link"], 3, None])
def test_location_kind_of_the_wrong_type_is_422(env, kind):
    api = env.alice_api
    new = {"slug": "odd", "name": "Odd", "duration_minutes": 30, "location_kind": kind}
    r = api.post("/api/v1/meeting-types", json=new)
    assert r.status_code == 422 and r.json["error"]["field"] == "location_kind", r.json
    r = api.patch("/api/v1/meeting-types/intro", json={"location_kind": kind})
    assert r.status_code == 422 and r.json["error"]["field"] == "location_kind", r.json
    assert api.get("/api/v1/meeting-types/intro").json["location_kind"] == "custom"


@pytest.mark.parametrize("kind", [{"a": 1}, ["short_text"], 1, None])
def test_question_kind_of_the_wrong_type_is_422(env, kind):
    body = {"questions": [{"label": "Company", "kind": "short_text"}, {"label": "X", "kind": kind}]}
    r = env.alice_api.put("/api/v1/meeting-types/intro/questions", json=body)
    assert r.status_code == 422 and r.json["error"]["field"] == "questions[1].kind", r.json
    assert env.alice_api.get("/api/v1/meeting-types/intro/questions").json == {"questions": []}


def _int_rules(app, api: bool) -> list[tuple[str, str]]:
    """(method, concrete path) of every route with an ``<int:…>`` id, huge ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule or rule.rule.startswith("/api/") != api:
            continue
        path = re.sub(r"<int:\w+>", HUGE, rule.rule)
        path = re.sub(r"<(?:\w+:)?(\w+)>", "alice", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def test_ids_larger_than_any_integer_are_404_on_every_api_route(env):
    routes = _int_rules(env.app, api=True)
    assert len(routes) >= 10
    for method, path in routes:
        r = env.alice_api.open(path, method=method, json={})
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found", (method, path)


def test_ids_larger_than_any_integer_are_404_on_every_settings_page(app, hosts, client, auth):
    hosts.create("alice", admin=True)
    auth.login()
    routes = _int_rules(app, api=False)
    assert len(routes) >= 15
    token = auth.token("/settings/")
    for method, path in routes:
        r = client.open(path, method=method, data={"csrf_token": token})
        assert r.status_code == 404, (method, path, r.status_code)
    # The largest id that fits still reaches the view, which finds no such row.
    r = client.get("/settings/webhooks/9223372036854775807")
    assert r.status_code == 404


@pytest.mark.parametrize("kind", [{"a": 1}, ["link"]])
def test_the_domain_rules_refuse_an_unhashable_kind_too(kind):
    """The checks behind the forms and the API refuse it themselves, whatever calls them."""
    from portal.booking import locations, questions

    with pytest.raises(locations.LocationError) as refused:
        locations.clean_location(kind, "", None)
    assert refused.value.field == "location_kind"
    with pytest.raises(questions.QuestionError) as refused_question:
        questions.clean_specs([{"label": "X", "kind": kind}])
    assert refused_question.value.field == "questions[0].kind"


def test_ids_larger_than_any_integer_in_queries_and_forms_are_ignored(app, hosts, client, auth):
    hosts.create("alice", admin=True)
    hosts.create("bob")
    auth.login()
    r = client.get("/settings/find-time/", query_string={"with": [HUGE, "0", "-1", "²"]})
    assert r.status_code == 200
    page = auth.post("/settings/admin/organisation", {"connect_members": [HUGE, "²"]})
    assert page.status_code < 500


def test_zero_still_reaches_the_view_and_is_not_found(env):
    assert env.alice_api.get("/api/v1/webhooks/0").status_code == 404
    assert env.alice_api.get("/api/v1/webhooks/00000000000000000000000000001").status_code == 404
