"""When a host is bookable: weekly hours and date overrides, as stored."""

from __future__ import annotations

import json

from peewee import CharField, DateField, ForeignKeyField, IntegerField, TextField

from portal.models.base import BaseModel
from portal.models.users import User


class WeeklyHours(BaseModel):
    user = ForeignKeyField(User, backref="weekly_hours", on_delete="CASCADE")
    weekday = IntegerField()  # 0 = Monday
    start = CharField(max_length=5)  # "HH:MM"
    end = CharField(max_length=5)  # "HH:MM", "24:00" = end of day

    class Meta:
        indexes = ((("user", "weekday", "start"), True),)


class DateOverride(BaseModel):
    user = ForeignKeyField(User, backref="overrides", on_delete="CASCADE")
    date = DateField()
    intervals = TextField(default="[]")  # JSON [["HH:MM","HH:MM"], ...]; [] = day off

    class Meta:
        indexes = ((("user", "date"), True),)

    def interval_list(self) -> list[list[str]]:
        return json.loads(self.intervals)


# A new host's week when the organisation sets no other: Monday to Friday, 09:00–17:00.
DEFAULT_WEEKLY = {d: (("09:00", "17:00"),) for d in range(5)}
