"""The organisation and its hosts' integrations: admin switches, invites, webhooks."""

from __future__ import annotations

import json

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from portal.models.base import BaseModel, to_db, utcnow
from portal.models.users import User


class AppSetting(BaseModel):
    """Organisation-wide switches kept by the admin (key → JSON value)."""

    key = CharField(unique=True)
    value = TextField(default="null")

    @classmethod
    def read(cls, key: str, default: object = None) -> object:
        row = cls.get_or_none(cls.key == key)
        return default if row is None else json.loads(row.value)

    @classmethod
    def write(cls, key: str, value: object) -> None:
        cls.insert(key=key, value=json.dumps(value)).on_conflict(
            conflict_target=[cls.key], update={cls.value: json.dumps(value)}
        ).execute()


class Invite(BaseModel):
    """An admin's single-use, expiring invitation for a co-worker (see portal.org.invites).

    Like password resets, the link's token is HMAC(secret key, salt): the
    database keeps only its hash and the salt, and the e-mail job rebuilds it.
    """

    email = CharField(index=True)
    salt = CharField()
    token_hash = CharField(unique=True)
    is_admin = BooleanField(default=False)
    invited_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")  # who accepted
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    expires_at = DateTimeField()
    accepted_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)


class Webhook(BaseModel):
    """A host's endpoint for booking events (portal.notify.webhooks); secret sealed."""

    user = ForeignKeyField(User, backref="webhooks", on_delete="CASCADE")
    url = TextField()
    events = CharField(default="")  # comma-separated: booking.created,booking.cancelled,…
    secret = TextField(default="")  # sealed {"secret"} (portal.crypto)
    is_active = BooleanField(default=True)
    description = CharField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))

    def event_list(self) -> list[str]:
        return [e for e in self.events.split(",") if e]


class WebhookDelivery(BaseModel):
    """One POST of one event to one webhook: the delivery log, replayable by the host."""

    webhook = ForeignKeyField(Webhook, backref="deliveries", on_delete="CASCADE")
    uid = CharField(unique=True)  # X-Kairos-Delivery
    event_id = CharField()  # the event's id; a replay keeps it, so receivers can dedupe
    event = CharField()  # booking.created | booking.cancelled | booking.rescheduled
    booking_uid = CharField(default="")
    payload = TextField()  # the exact JSON body sent
    # "<webhook id>:<event id>" for first deliveries, NULL for replays: fan-out runs once.
    dedup_key = CharField(null=True, unique=True)
    replay_of = ForeignKeyField("self", null=True, backref="replays", on_delete="SET NULL")
    status = CharField(default="pending")  # pending | retrying | delivered | failed
    attempts = IntegerField(default=0)
    response_status = IntegerField(null=True)
    response_body = TextField(default="")  # first characters of the answer
    last_error = TextField(default="")
    duration_ms = IntegerField(null=True)
    created_at = DateTimeField(index=True, default=lambda: to_db(utcnow()))
    last_attempt_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)

    class Meta:
        table_name = "webhook_delivery"
        indexes = ((("webhook", "created_at"), False),)
