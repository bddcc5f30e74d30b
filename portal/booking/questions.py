"""Invitee questions of a meeting type: what a host may ask, and checking the answers.

The one place the rules live, so the booking form, the JSON API and the
settings editor agree. A question has a ``key`` (its name in the API's
``answers`` object and in error fields: ``answers.<key>``), a label, a kind,
whether it is required, and — for choices — its options. Answers are
validated on the server, whatever the browser did, and stored on the booking
as a snapshot (label and kind included), so editing or deleting a question
later never changes what an invitee answered.

Answers are invitee text: templates autoescape them, the .ics and provider
adapters encode them, and :func:`answers_text` strips control characters
before they go into an event description.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.models import MeetingType, Question

KINDS: dict[str, Any] = {  # labels translated when shown
    "short_text": _l("Short text"),
    "long_text": _l("Long text"),
    "single_choice": _l("Single choice"),
    "checkboxes": _l("Checkboxes"),
    "phone": _l("Phone number"),
}
CHOICE_KINDS = ("single_choice", "checkboxes")
MAX_QUESTIONS = 20
MAX_LABEL = 200
MAX_OPTIONS = 30
MAX_OPTION = 100
MAX_SHORT = 500
MAX_LONG = 5000
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()./-]{3,28}[0-9]$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class QuestionError(ValueError):
    """Bad input; ``field`` names it (``answers.<key>``, ``questions[2].label`` …)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class QuestionSpec:
    """A question as the editor and the API describe it, before it is stored."""

    key: str
    label: str
    kind: str
    required: bool = False
    options: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "required": self.required,
            "options": list(self.options),
        }


def question_dict(q: Question) -> dict[str, Any]:
    return {
        "key": q.key,
        "label": q.label,
        "kind": q.kind,
        "required": q.required,
        "options": q.option_list(),
    }


# ---------------------------------------------------------------- defining questions


def key_from_label(label: str, taken: Iterable[str] = ()) -> str:
    """A readable, unique API key from a label: "Company name" → "company_name"."""
    text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:32] or "question"
    if not base[0].isalpha():
        base = "q_" + base
    taken = set(taken)
    key, n = base, 2
    while key in taken:
        key = f"{base}_{n}"
        n += 1
    return key


def clean_options(raw: object, field: str) -> tuple[str, ...]:
    """Choices: a list of strings, or text with one choice per line; trimmed, unique."""
    if isinstance(raw, str):
        raw = raw.splitlines()
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise QuestionError(field, "expected a list of choices")
    out: list[str] = []
    for option in raw:
        option = " ".join(option.split())
        if not option:
            continue
        if len(option) > MAX_OPTION:
            raise QuestionError(field, f"a choice has at most {MAX_OPTION} characters")
        if option in out:
            raise QuestionError(field, f"“{option}” is listed twice")
        out.append(option)
    if len(out) > MAX_OPTIONS:
        raise QuestionError(field, f"at most {MAX_OPTIONS} choices")
    return tuple(out)


def clean_spec(data: Mapping[str, Any], field: str, taken: Iterable[str] = ()) -> QuestionSpec:
    """One question from the editor or the API; ``field`` prefixes error names."""
    label = data.get("label")
    if not isinstance(label, str) or not " ".join(label.split()):
        raise QuestionError(f"{field}label", "the question needs a label")
    label = " ".join(label.split())
    if len(label) > MAX_LABEL:
        raise QuestionError(f"{field}label", f"at most {MAX_LABEL} characters")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:  # an object is unhashable: TypeError
        raise QuestionError(f"{field}kind", "expected one of " + ", ".join(KINDS))
    required = data.get("required", False)
    if not isinstance(required, bool):
        raise QuestionError(f"{field}required", "expected true or false")
    options: tuple[str, ...] = ()
    if kind in CHOICE_KINDS:
        options = clean_options(data.get("options", []), f"{field}options")
        if len(options) < (2 if kind == "single_choice" else 1):
            raise QuestionError(
                f"{field}options",
                "give at least two choices" if kind == "single_choice" else "give at least one",
            )
    elif data.get("options") not in (None, [], ""):
        raise QuestionError(f"{field}options", "only choice questions have options")
    key = data.get("key")
    if key in (None, ""):
        key = key_from_label(label, taken)
    elif not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise QuestionError(
            f"{field}key", "use a lowercase letter, then letters, digits or _ (at most 40)"
        )
    elif key in set(taken):
        raise QuestionError(f"{field}key", f"another question already has the key “{key}”")
    return QuestionSpec(key, label, kind, required, options)


def clean_specs(items: object, field: str = "questions") -> list[QuestionSpec]:
    """A whole ordered list (API PUT): each item checked, keys unique."""
    if not isinstance(items, list):
        raise QuestionError(field, "expected a list of questions")
    if len(items) > MAX_QUESTIONS:
        raise QuestionError(field, f"at most {MAX_QUESTIONS} questions")
    specs: list[QuestionSpec] = []
    # Keys given explicitly are reserved first, so a generated key never takes one.
    keys = (i.get("key") for i in items if isinstance(i, dict))
    given = [key for key in keys if isinstance(key, str) and key]
    for i, item in enumerate(items):
        where = f"{field}[{i}]."
        if not isinstance(item, dict):
            raise QuestionError(f"{field}[{i}]", "expected an object")
        unknown = set(item) - {"key", "label", "kind", "required", "options"}
        if unknown:
            raise QuestionError(where + sorted(unknown)[0], "unknown field")
        others = [s.key for s in specs] + [k for k in given if k != item.get("key")]
        specs.append(clean_spec(item, where, others))
    return specs


def replace_all(mt: MeetingType, specs: list[QuestionSpec]) -> list[Question]:
    """Store ``specs`` as the type's questions, in order (caller holds a transaction)."""
    Question.delete().where(Question.meeting_type == mt.id).execute()
    return [store(mt, spec, position) for position, spec in enumerate(specs)]


def store(mt: MeetingType, spec: QuestionSpec, position: int, row: Question | None = None):
    row = row or Question(meeting_type=mt.id)
    row.key, row.label, row.kind = spec.key, spec.label, spec.kind
    row.required, row.options, row.position = spec.required, json.dumps(spec.options), position
    row.save()
    return row


# ---------------------------------------------------------------- answering


def normalize_phone(value: str) -> str | None:
    """A phone number as typed, tidied (one space between groups), or None if it is not one.

    Lenient on purpose: people write numbers in many national styles. Digits,
    spaces, ``+ ( ) . / -``; 5 to 15 digits (E.164's maximum).
    """
    text = " ".join(value.split())
    if not PHONE_RE.fullmatch(text):
        return None
    digits = sum(ch.isdigit() for ch in text)
    return text if 5 <= digits <= 15 else None


def _text(value: object, field: str, limit: int, one_line: bool) -> str:
    if not isinstance(value, str):
        raise QuestionError(field, _("expected text"))
    value = value.replace("\r\n", "\n").strip()
    if one_line and "\n" in value:
        raise QuestionError(field, _("use a single line"))
    if len(value) > limit:
        raise QuestionError(field, _("at most %(max)d characters", max=limit))
    return value


def clean_answer(q: Question, value: object) -> str | list[str]:
    """One answer checked against its question; raises QuestionError on ``answers.<key>``."""
    field = f"answers.{q.key}"
    if q.kind == "checkboxes":
        if value in (None, ""):
            value = []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise QuestionError(field, _("expected a list of choices"))
        options = q.option_list()
        unknown = [v for v in value if v not in options]
        if unknown:
            raise QuestionError(
                field, _("“%(answer)s” is not one of the choices", answer=unknown[0][:80])
            )
        chosen = [o for o in options if o in value]  # the host's order, no duplicates
        if q.required and not chosen:
            raise QuestionError(field, _("please choose at least one"))
        return chosen
    if value is None:
        value = ""
    if q.kind == "long_text":
        text = _text(value, field, MAX_LONG, one_line=False)
    else:
        text = _text(value, field, MAX_SHORT, one_line=True)
    if not text:
        if q.required:
            raise QuestionError(field, _("this question needs an answer"))
        return ""
    if q.kind == "single_choice" and text not in q.option_list():
        raise QuestionError(field, _("please pick one of the choices"))
    if q.kind == "phone":
        phone = normalize_phone(text)
        if phone is None:
            raise QuestionError(field, _("enter a phone number, e.g. +49 30 1234567"))
        return phone
    return text


def clean_answers(mt: MeetingType, raw: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every question's answer, in order, as stored on the booking.

    ``raw`` maps question keys to values (a string, or a list for
    checkboxes); an unknown key is refused, so a typo in an API client shows.
    """
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise QuestionError("answers", _("expected an object of question keys to answers"))
    questions = mt.question_list()
    known = {q.key for q in questions}
    for key in raw:
        if key not in known:
            raise QuestionError(f"answers.{key}", _("this meeting type has no such question"))
    return [
        {"key": q.key, "label": q.label, "kind": q.kind, "value": clean_answer(q, raw.get(q.key))}
        for q in questions
    ]


def from_form(mt: MeetingType, form: Any) -> dict[str, Any]:
    """The ``answers.<key>`` fields of a posted form (a MultiDict) for :func:`clean_answers`."""
    out: dict[str, Any] = {}
    for q in mt.question_list():
        name = f"answers.{q.key}"
        out[q.key] = form.getlist(name) if q.kind == "checkboxes" else form.get(name, "")
    return out


def answered(answers: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, answer as one string) for the answers that say something."""
    out = []
    for item in answers:
        value = item.get("value")
        text = ", ".join(value) if isinstance(value, list) else str(value or "")
        if text:
            out.append((str(item.get("label", "")), text))
    return out


def answers_text(answers: list[dict[str, Any]]) -> str:
    """The answers as plain text for an event description: "Label: answer" per question.

    Control and bidi-override characters are dropped and continuation lines of
    long answers indented, so an answer cannot pass itself off as another line
    of the description.
    """
    lines = []
    for label, text in answered(answers):
        label = _CONTROL.sub("", label)
        body = [_CONTROL.sub("", line) for line in text.split("\n")]
        lines.append(f"{label}: {body[0]}")
        lines += [f"  {line}" for line in body[1:]]
    return "\n".join(lines)
