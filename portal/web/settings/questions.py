"""Settings → Meeting types → Questions: what a meeting type asks invitees, in order.

One page per type lists its questions with move up / down, edit and delete,
and a form to add one. The rules (kinds, choices, keys) are
``portal.booking.questions``'; this module only maps its errors onto form fields.
"""

from __future__ import annotations

from flask import abort, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField

from portal.booking import questions
from portal.models import MeetingType, Question, db
from portal.web.render import is_htmx, render
from portal.web.settings import bp, done
from portal.web.settings.types import owned_type


class QuestionForm(FlaskForm):
    label = StringField(_l("Question"), render_kw={"maxlength": questions.MAX_LABEL})
    kind = SelectField(
        _l("Answer"),
        choices=[SelectChoice(k, label) for k, label in questions.KINDS.items()],
        default="short_text",
    )
    options = TextAreaField(
        _l("Choices"),
        description=_l("For single choice and checkboxes: one choice per line."),
        render_kw={"rows": 4},
    )
    required = BooleanField(_l("Invitees must answer"))
    key = StringField(
        _l("API key (optional)"),
        description=_l(
            "The name of the answer in the API and webhooks, e.g. company. "
            "Made from the question when left empty."
        ),
        render_kw={"spellcheck": "false", "autocapitalize": "none"},
    )

    def spec(self, taken: list[str]) -> questions.QuestionSpec | None:
        """The checked question, or None with the problem shown next to its field."""
        if not self.validate_on_submit():
            return None
        data = {
            "label": self.label.data or "",
            "kind": self.kind.data,
            "required": bool(self.required.data),
            "key": (self.key.data or "").strip(),
        }
        if self.kind.data in questions.CHOICE_KINDS or (self.options.data or "").strip():
            data["options"] = self.options.data or ""
        try:
            return questions.clean_spec(data, "", taken)
        except questions.QuestionError as exc:
            getattr(self, exc.field, self.label).errors.append(exc.message)
            return None


def owned_question(mt: MeetingType, question_id: int) -> Question:
    row = Question.get_or_none(Question.id == question_id, Question.meeting_type == mt.id)
    if row is None:
        abort(404)
    return row


def _list(mt: MeetingType, form: QuestionForm, message: str = "", status: int = 200):
    return render(
        "details/questions.html",
        "questions",
        status=status,
        mt=mt,
        items=mt.question_list(),
        form=form,
        kinds=questions.KINDS,
        message=message,
        limit=questions.MAX_QUESTIONS,
    )


def _renumber(mt: MeetingType, ordered: list[Question]) -> None:
    for position, row in enumerate(ordered):
        if row.position != position:
            Question.update(position=position).where(Question.id == row.id).execute()


@bp.route("/types/<int:type_id>/questions", methods=["GET", "POST"])
def types_questions(type_id: int):
    """The type's questions; a POST adds one at the end."""
    mt = owned_type(type_id)
    form = QuestionForm()
    if request.method == "POST":
        existing = mt.question_list()
        if len(existing) >= questions.MAX_QUESTIONS:
            form.validate_on_submit()
            form.label.errors.append(
                _("a meeting type asks at most %(num)d questions", num=questions.MAX_QUESTIONS)
            )
            return _list(mt, form)
        spec = form.spec([q.key for q in existing])
        if spec is not None:
            with db.atomic():
                questions.store(mt, spec, len(existing))
            message = _("Added “%(name)s”.", name=spec.label)
            if not is_htmx():
                return done(message, "settings.types_questions", type_id=mt.id)
            return _list(mt, QuestionForm(formdata=None), message)
    return _list(mt, form)


@bp.route("/types/<int:type_id>/questions/<int:question_id>", methods=["GET", "POST"])
def types_question_edit(type_id: int, question_id: int):
    """Change one question. Answers already given keep the wording they were given under."""
    mt = owned_type(type_id)
    row = owned_question(mt, question_id)
    form = QuestionForm(
        data={
            "label": row.label,
            "kind": row.kind,
            "required": row.required,
            "key": row.key,
            "options": "\n".join(row.option_list()),
        }
    )
    if request.method == "POST":
        taken = [q.key for q in mt.question_list() if q.id != row.id]
        spec = form.spec(taken)
        if spec is not None:
            with db.atomic():
                questions.store(mt, spec, row.position, row)
            return done(
                _("Saved “%(name)s”.", name=spec.label), "settings.types_questions", type_id=mt.id
            )
    return render("details/question_form.html", "question_form", mt=mt, row=row, form=form)


@bp.route("/types/<int:type_id>/questions/<int:question_id>/delete", methods=["POST"])
def types_question_delete(type_id: int, question_id: int):
    mt = owned_type(type_id)
    row = owned_question(mt, question_id)
    label = row.label
    with db.atomic():
        row.delete_instance()
        _renumber(mt, mt.question_list())
    message = _("Deleted “%(name)s”.", name=label)
    if not is_htmx():
        return done(message, "settings.types_questions", type_id=mt.id)
    return _list(mt, QuestionForm(formdata=None), message)


@bp.route("/types/<int:type_id>/questions/<int:question_id>/move", methods=["POST"])
def types_question_move(type_id: int, question_id: int):
    """Move a question one place up or down (``direction``), the order invitees see."""
    mt = owned_type(type_id)
    row = owned_question(mt, question_id)
    step = -1 if request.form.get("direction") == "up" else 1
    with db.atomic():
        ordered = mt.question_list()
        at = next(i for i, q in enumerate(ordered) if q.id == row.id)
        to = at + step
        if 0 <= to < len(ordered):
            ordered[at], ordered[to] = ordered[to], ordered[at]
        _renumber(mt, ordered)
    if not is_htmx():
        return done(_("Order saved."), "settings.types_questions", type_id=mt.id)
    return _list(mt, QuestionForm(formdata=None))
