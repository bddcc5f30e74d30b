"""What invitees can book: a host's meeting types and the questions each asks."""

from __future__ import annotations

import json

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from portal.models.base import BaseModel, compiled_sql, to_db, utcnow
from portal.models.users import User


class MeetingType(BaseModel):
    user = ForeignKeyField(User, backref="meeting_types", on_delete="CASCADE")
    slug = CharField()
    name = CharField()
    description = TextField(default="")
    duration_minutes = IntegerField(default=30)
    buffer_before_minutes = IntegerField(default=0)
    buffer_after_minutes = IntegerField(default=0)
    lead_time_minutes = IntegerField(default=0)
    window_days = IntegerField(default=60)
    slot_interval_minutes = IntegerField(null=True)
    daily_limit = IntegerField(null=True)
    location = CharField(default="")
    # How ``location`` is read: custom | link | phone | address | personal | google_meet | teams
    # (portal.booking.locations); "custom" is the text as written.
    location_kind = CharField(default="custom")
    # Comma-separated minutes before the start, e.g. "1440,60".
    reminder_offsets = CharField(default="1440,60")
    is_active = BooleanField(default=True)
    created_at = DateTimeField(default=lambda: to_db(utcnow()))

    class Meta:
        indexes = ((("user", "slug"), True),)

    def question_list(self) -> list[Question]:
        """The invitee questions of this type, in the host's order (asked on every booking
        and booking form, so its SQL is compiled once)."""
        sql = compiled_sql(
            "questions",
            lambda: (
                Question.select()
                .where(Question.meeting_type == 0)
                .order_by(Question.position, Question.id)
            ),
        )
        return list(Question.raw(sql, self.id))

    def reminder_minutes(self) -> list[int]:
        """Reminder offsets in minutes, largest first; blanks, junk and duplicates dropped."""
        out = set()
        for part in (self.reminder_offsets or "").split(","):
            part = part.strip()
            if part.isdigit() and 0 < int(part) <= 60 * 24 * 366:
                out.add(int(part))
        return sorted(out, reverse=True)


class Question(BaseModel):
    """One question a meeting type asks invitees (portal.booking.questions).

    ``key`` names it in the API.
    """

    meeting_type = ForeignKeyField(MeetingType, backref="questions", on_delete="CASCADE")
    key = CharField()
    label = CharField()
    kind = CharField()  # short_text | long_text | single_choice | checkboxes | phone
    required = BooleanField(default=False)
    options = TextField(default="[]")  # JSON list of choices (single_choice, checkboxes)
    position = IntegerField(default=0)

    class Meta:
        indexes = ((("meeting_type", "key"), True), (("meeting_type", "position"), False))

    def option_list(self) -> list[str]:
        return json.loads(self.options or "[]")
