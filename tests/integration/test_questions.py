"""Invitee questions: defined per meeting type, answered on the form and in the API,
checked on the server, stored with the booking and shown wherever the booking is."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from icalendar import Calendar

from jobs.calendar import event_data
from portal.booking import questions, service
from portal.calendars.providers.google.events import event_body
from portal.models import Booking, MeetingType, Question, User, db
from portal.notify import booking_mail
from tests.integration.test_public_pages import SLOT_AT, form_fields, freeze_clock
from tests.support.api import Api, at, bookable_monday, matches_schema
from tests.support.app import AuthActions, Hosts
from tests.support.clock import NOW, iso_z

SLOT = iso_z(SLOT_AT)  # Tuesday 09:00 Berlin, the day after the test clock's Monday
QUESTIONS = [
    {"label": "Company", "kind": "short_text", "required": True},
    {"label": "What should we cover?", "kind": "long_text", "key": "agenda"},
    {"label": "Team size", "kind": "single_choice", "options": ["1–10", "11–50", "50+"]},
    {"label": "Interested in", "kind": "checkboxes", "options": ["API", "Embed", "Teams"]},
    {"label": "Phone", "kind": "phone", "required": True},
]
GOOD = {
    "company": "Acme <b>& Co</b>",
    "agenda": "Line one\nLine two",
    "team_size": "11–50",
    "interested_in": ["Teams", "API"],
    "phone": "+49  30 1234-567",
}


def define(app, mt, items=QUESTIONS):
    with app.app_context(), db.connection_context():
        questions.replace_all(MeetingType.get_by_id(mt.id), questions.clean_specs(items))


@pytest.fixture
def site(app, hosts, now, monkeypatch):
    freeze_clock(monkeypatch, now)
    alice = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    mt = hosts.meeting_type(alice, "intro", name="Intro call")
    define(app, mt)
    return alice, mt


# ---------------------------------------------------------------- defining


def test_specs_get_keys_and_are_checked():
    specs = questions.clean_specs(QUESTIONS)
    assert [s.key for s in specs] == ["company", "agenda", "team_size", "interested_in", "phone"]
    assert specs[3].options == ("API", "Embed", "Teams")
    # A generated key never takes one given explicitly later in the list.
    specs = questions.clean_specs(
        [{"label": "Topic", "kind": "short_text"}, {"label": "X", "kind": "phone", "key": "topic"}]
    )
    assert [s.key for s in specs] == ["topic_2", "topic"]


@pytest.mark.parametrize(
    "items, field",
    [
        ([{"label": " ", "kind": "short_text"}], "questions[0].label"),
        ([{"label": "A", "kind": "essay"}], "questions[0].kind"),
        ([{"label": "A", "kind": "single_choice", "options": ["only"]}], "questions[0].options"),
        ([{"label": "A", "kind": "checkboxes", "options": ["x", "x"]}], "questions[0].options"),
        ([{"label": "A", "kind": "short_text", "options": ["x"]}], "questions[0].options"),
        ([{"label": "A", "kind": "short_text", "key": "Bad Key"}], "questions[0].key"),
        (
            [
                {"label": "A", "kind": "phone", "key": "a"},
                {"label": "B", "kind": "phone", "key": "a"},
            ],
            "questions[1].key",
        ),
        ([{"label": "A", "kind": "phone", "colour": "red"}], "questions[0].colour"),
        ([{"label": f"Q{i}", "kind": "phone"} for i in range(21)], "questions"),
        ("not a list", "questions"),
    ],
)
def test_bad_specs_name_their_field(items, field):
    with pytest.raises(questions.QuestionError) as caught:
        questions.clean_specs(items)
    assert caught.value.field == field


# ---------------------------------------------------------------- the booking form


def open_form(client):
    resp = client.get("/alice/intro", query_string={"start": SLOT, "tz": "Europe/Berlin"})
    assert resp.status_code == 200
    return resp, form_fields(resp.text)


def post_form(client, fields, answers: dict, **extra):
    data = fields | {"name": "Bob Invitee", "email": "bob@example.com", "notes": ""} | extra
    data |= {f"answers.{key}": value for key, value in answers.items()}  # lists: repeated
    return client.post("/alice/intro", data=data)


def test_the_form_asks_the_questions_in_order(client, site):
    resp, _ = open_form(client)
    labels = re.findall(
        r'<(?:label for="q-[a-z_]+"|legend class="question-legend")>([^<]+)', resp.text
    )
    assert [label.strip() for label in labels] == [q["label"] for q in QUESTIONS]
    assert 'name="answers.phone"' in resp.text and 'type="tel"' in resp.text
    assert resp.text.count('name="answers.interested_in"') == 3
    assert resp.text.count('type="radio"') == 3


@pytest.mark.parametrize(
    "change, key, message",
    [
        ({"company": ""}, "company", "needs an answer"),
        ({"phone": "call me maybe"}, "phone", "enter a phone number"),
        ({"team_size": "1000"}, "team_size", "pick one of the choices"),
        ({"interested_in": ["API", "Space"]}, "interested_in", "not one of the choices"),
        ({"company": "two\nlines"}, "company", "single line"),
    ],
)
def test_a_bad_answer_comes_back_next_to_its_question(client, site, app, change, key, message):
    _, fields = open_form(client)
    resp = post_form(client, fields, GOOD | change)
    assert resp.status_code == 422
    assert f'id="q-{key}-error"' in resp.text and message in resp.text.lower()
    # Everything typed is still there (escaped), so fixing one answer books once.
    assert "Acme &lt;b&gt;&amp; Co&lt;/b&gt;" in resp.text or key == "company"
    assert (
        re.search(r'value="Teams"\s+type="checkbox"\s+checked', resp.text) or key == "interested_in"
    )
    assert form_fields(resp.text)["idempotency_key"] == fields["idempotency_key"]
    with app.app_context(), db.connection_context():
        assert Booking.select().count() == 0


def test_answers_are_stored_and_shown_to_both_sides(client, site, app):
    _, fields = open_form(client)
    resp = post_form(client, fields, GOOD)
    assert resp.status_code == 303, resp.text
    with app.app_context(), db.connection_context():
        b = Booking.get()
        stored = {a["key"]: a["value"] for a in b.answer_list()}
    assert stored == GOOD | {"interested_in": ["API", "Teams"], "phone": "+49 30 1234-567"}

    page = client.get(resp.headers["Location"]).text  # the confirmation page
    assert '<dt>Company</dt><dd class="answer">Acme &lt;b&gt;&amp; Co&lt;/b&gt;</dd>' in page
    assert "API, Teams" in page and "+49 30 1234-567" in page

    auth = AuthActions(client)
    auth.login()
    detail = client.get(f"/settings/appointments/{b.uid}").text
    assert "What should we cover?" in detail and "Line one\nLine two" in detail
    assert "Acme &lt;b&gt;&amp; Co&lt;/b&gt;" in detail and "<b>&" not in detail


def test_answers_in_emails_ics_and_the_calendar_event(site, app, now):
    alice, mt = site
    with app.test_request_context(), db.connection_context():
        b = service.book(
            alice,
            mt,
            SLOT_AT,
            "Eve",
            "eve@example.com",
            now=now,
            answers=GOOD,
        ).booking
        msg = booking_mail.booking_message(b, "created", "host", now)
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        ics = next(p for p in msg.iter_attachments()).get_content()
        data = event_data(b)
    assert "Company:\nAcme <b>& Co</b>" in text  # plain text is not HTML-escaped
    assert "Acme &lt;b&gt;&amp; Co&lt;/b&gt;" in html and "<b>& Co" not in html
    assert "Interested in</td><td" in html and "API, Teams" in html
    event = Calendar.from_ical(ics).walk("VEVENT")[0]
    description = str(event["DESCRIPTION"])
    assert "Company: Acme <b>& Co</b>" in description
    assert "What should we cover?: Line one\n  Line two" in description  # indented: one answer
    assert "Company: Acme <b>& Co</b>" in data.description
    # Google renders descriptions as HTML: the adapter escapes them.
    body = event_body(data)
    assert "Acme &lt;b&gt;&amp; Co&lt;/b&gt;" in body["description"]


def test_reschedule_keeps_the_answers(site, app, now):
    alice, mt = site
    with app.test_request_context(), db.connection_context():
        b = service.book(
            alice,
            mt,
            SLOT_AT,
            "Eve",
            "eve@example.com",
            now=now,
            answers=GOOD,
        ).booking
        moved = service.reschedule(b, SLOT_AT + timedelta(days=1, hours=1), now=now)
        assert moved.answer_list() == b.answer_list()


def test_editing_a_question_later_keeps_what_was_answered(site, app, now):
    alice, mt = site
    with app.test_request_context(), db.connection_context():
        b = service.book(
            alice,
            mt,
            SLOT_AT,
            "Eve",
            "eve@example.com",
            now=now,
            answers=GOOD,
        ).booking
        define(app, mt, [{"label": "Something else", "kind": "short_text"}])
        labels = [a["label"] for a in Booking.get_by_id(b.id).answer_list()]
    assert labels[0] == "Company"


# ---------------------------------------------------------------- the API


@pytest.fixture
def api(app, hosts):
    alice = hosts.create("alice", tz="Europe/Berlin")
    hosts.meeting_type(alice, "intro", duration_minutes=30)
    client = app.test_client()
    return Api(client, hosts.token(alice)), Api(client, None)


def test_api_defines_questions_and_books_with_answers(api):
    host, public = api
    r = host.put("/api/v1/meeting-types/intro/questions", json={"questions": QUESTIONS})
    assert r.status_code == 200, r.json
    matches_schema(r, "put", "/api/v1/meeting-types/{slug}/questions")
    assert [q["key"] for q in r.json["questions"]][:2] == ["company", "agenda"]
    r = public.get("/api/v1/hosts/alice/intro/questions")
    matches_schema(r, "get", "/api/v1/hosts/{host}/{type}/questions")
    assert r.json["questions"][4] == {
        "key": "phone",
        "label": "Phone",
        "kind": "phone",
        "required": True,
        "options": [],
    }

    start = at(bookable_monday(), "10:00")
    body = {"start": start, "name": "Carol", "email": "carol@example.com", "answers": GOOD}
    r = public.post("/api/v1/hosts/alice/intro/bookings", json=body)
    assert r.status_code == 201, r.json
    matches_schema(r, "post", "/api/v1/hosts/{host}/{type}/bookings")
    answers = {a["key"]: a["value"] for a in r.json["answers"]}
    assert answers["interested_in"] == ["API", "Teams"] and answers["company"] == GOOD["company"]
    r = host.get(f"/api/v1/bookings/{r.json['uid']}")
    matches_schema(r, "get", "/api/v1/bookings/{uid}")
    assert r.json["answers"][0] == {"key": "company", "label": "Company", "value": GOOD["company"]}


@pytest.mark.parametrize(
    "answers, field",
    [
        (None, "answers.company"),  # required ones missing
        ({**GOOD, "colour": "red"}, "answers.colour"),
        ({**GOOD, "interested_in": "API"}, None),  # one string for checkboxes is accepted
        ({**GOOD, "interested_in": [1]}, "answers.interested_in"),
        ({**GOOD, "team_size": ["11–50"]}, "answers.team_size"),
        ({**GOOD, "phone": "12"}, "answers.phone"),
        ("yes", "answers"),
    ],
)
def test_api_refuses_bad_answers_naming_the_question(api, answers, field):
    host, public = api
    host.put("/api/v1/meeting-types/intro/questions", json={"questions": QUESTIONS})
    body = {"start": at(bookable_monday(), "11:00"), "name": "Carol", "email": "c@example.com"}
    if answers is not None:
        body["answers"] = answers
    r = public.post("/api/v1/hosts/alice/intro/bookings", json=body)
    if field is None:
        assert r.status_code == 201
        return
    assert r.status_code == 422, r.json
    assert r.json["error"]["field"] == field
    matches_schema(r, "post", "/api/v1/hosts/{host}/{type}/bookings")


def test_api_put_questions_names_the_bad_one(api):
    host, _ = api
    r = host.put(
        "/api/v1/meeting-types/intro/questions",
        json={"questions": [QUESTIONS[0], {"label": "Size", "kind": "single_choice"}]},
    )
    assert r.status_code == 422 and r.json["error"]["field"] == "questions[1].options"
    assert host.get("/api/v1/meeting-types/intro/questions").json == {"questions": []}
    assert (
        host.put("/api/v1/meeting-types/nope/questions", json={"questions": []}).status_code == 404
    )


# ---------------------------------------------------------------- the editor


def test_editor_adds_edits_moves_and_deletes(client, app, hosts):
    alice = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(alice, "intro")
    auth = AuthActions(client)
    auth.login()
    base = f"/settings/types/{mt.id}/questions"
    page = client.get(f"/settings/types/{mt.id}").text
    assert f'href="{base}"' in page and "Add questions" in page

    r = auth.post(base, {"label": "Team size", "kind": "single_choice", "options": "Small\n"})
    assert r.status_code == 200 and "give at least two choices" in r.text  # next to Choices
    assert 'id="options-error"' in r.text
    r = auth.post(base, {"label": "Team size", "kind": "single_choice", "options": "Small\nBig"})
    assert r.status_code == 302
    r = auth.post(
        base, {"label": "Phone", "kind": "phone", "required": "y"}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and 'id="questions"' in r.text and "<html" not in r.text
    with app.app_context(), db.connection_context():
        first, second = MeetingType.get_by_id(mt.id).question_list()
    assert (first.key, second.key, second.required) == ("team_size", "phone", True)

    auth.post(f"{base}/{second.id}/move", {"direction": "up"})
    with app.app_context(), db.connection_context():
        assert [q.key for q in MeetingType.get_by_id(mt.id).question_list()] == [
            "phone",
            "team_size",
        ]

    edit = client.get(f"{base}/{first.id}").text
    assert "Small\nBig</textarea>" in edit
    r = auth.post(
        f"{base}/{first.id}",
        {
            "label": "How many people?",
            "kind": "checkboxes",
            "options": "Small\nBig\nHuge",
            "key": "team_size",
        },
    )
    assert r.status_code == 302
    auth.post(f"{base}/{second.id}/delete")
    with app.app_context(), db.connection_context():
        [only] = MeetingType.get_by_id(mt.id).question_list()
        assert (only.label, only.kind, only.option_list(), only.position) == (
            "How many people?",
            "checkboxes",
            ["Small", "Big", "Huge"],
            0,
        )
        assert Question.select().count() == 1


def test_answers_json_is_a_plain_list(site, app, now):
    """The stored shape, which webhooks and the API read: key, label, kind, value."""
    alice, mt = site
    with app.test_request_context(), db.connection_context():
        b = service.book(
            alice,
            mt,
            SLOT_AT,
            "Eve",
            "eve@example.com",
            now=now,
            answers=GOOD,
        ).booking
        raw = json.loads(Booking.get_by_id(b.id).answers)
    assert raw[0] == {
        "key": "company",
        "label": "Company",
        "kind": "short_text",
        "value": GOOD["company"],
    }


def test_answers_round_trip_on_each_backend(backend_app):
    make = Hosts(backend_app)
    alice = make.create("alice", tz="Europe/Berlin")
    mt = make.meeting_type(alice, "intro")
    define(backend_app, mt)
    with backend_app.test_request_context(), db.connection_context():
        b = service.book(
            User.get_by_id(alice.id),
            MeetingType.get_by_id(mt.id),
            SLOT_AT,
            "Eve",
            "eve@example.com",
            now=NOW,
            answers=GOOD | {"agenda": "Ünïcödé — 日本語 ✓"},
        ).booking
        stored = {a["key"]: a["value"] for a in Booking.get_by_id(b.id).answer_list()}
    assert stored["agenda"] == "Ünïcödé — 日本語 ✓" and stored["interested_in"] == ["API", "Teams"]
