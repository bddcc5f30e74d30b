"""API: the questions a meeting type asks invitees (the host's, and the public list)."""

from __future__ import annotations

from flask import jsonify

from portal.api.base import operation, require_token
from portal.api.bookings import public_type
from portal.api.details import bp
from portal.api.schemas.details import QuestionList, QuestionsRequest
from portal.api.types import own_type
from portal.booking import questions
from portal.models import MeetingType, db


def _questions(mt: MeetingType):
    return jsonify(questions=[questions.question_dict(q) for q in mt.question_list()])


@bp.get("/meeting-types/<slug>/questions")
@require_token
@operation(
    "The questions a meeting type asks invitees",
    "meeting types",
    {200: ("questions, in order", QuestionList)},
)
def get_questions(slug: str):
    return _questions(own_type(slug))


@bp.put("/meeting-types/<slug>/questions")
@require_token
@operation(
    "Replace a meeting type's questions",
    "meeting types",
    {200: ("the stored questions", QuestionList)},
    body=QuestionsRequest,
    description="Answers given to earlier questions stay with their bookings.",
)
def put_questions(slug: str, body: QuestionsRequest):
    """Replace the type's questions with this ordered list (answers given earlier stay)."""
    mt = own_type(slug)
    specs = questions.clean_specs([q.model_dump(exclude_unset=True) for q in body.questions])
    with db.atomic():
        questions.replace_all(mt, specs)
    return _questions(mt)


@bp.get("/hosts/<host>/<type>/questions")
@operation(
    "The questions a booking must answer (public)",
    "public",
    {200: ("questions, in order", QuestionList)},
)
def public_questions(host: str, type: str):
    """What the booking body's ``answers`` must answer (public, like the slots)."""
    _user, mt = public_type(host, type)
    return _questions(mt)
