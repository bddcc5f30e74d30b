"""Meeting details: where a meeting happens, invitee questions, webhooks, the private ICS feed.

* ``user``: the host's personal meeting link and e-mail signature; the feed
  secret (a salt the token is derived from, and the token's SHA-256 to find it).
* ``meeting_type.location_kind``: how ``location`` is read (``custom`` keeps
  what existing rows meant: the text as written).
* ``booking``: the kind copied at booking time, the join link (a provider's
  Meet/Teams link or the host's personal link) with its state, and the answers.
* New tables: ``question``, ``webhook``, ``webhook_delivery``.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("user", "meeting_link", TextField(default="")),
        migrator.add_column("user", "email_signature", TextField(default="")),
        migrator.add_column("user", "feed_salt", CharField(default="")),
        migrator.add_column("user", "feed_token_hash", CharField(null=True)),
        migrator.add_index("user", ("feed_token_hash",), True),
        migrator.add_column("meeting_type", "location_kind", CharField(default="custom")),
        migrator.add_column("booking", "location_kind", CharField(default="custom")),
        migrator.add_column("booking", "join_url", TextField(default="")),
        migrator.add_column("booking", "join_status", CharField(default="")),
        migrator.add_column("booking", "join_error", TextField(default="")),
        migrator.add_column("booking", "answers", TextField(default="[]")),
    )

    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class MeetingType(Model):
        class Meta:
            database = db
            table_name = "meeting_type"

    class Question(Model):
        meeting_type = ForeignKeyField(MeetingType, on_delete="CASCADE", backref="+")
        key = CharField()
        label = CharField()
        kind = CharField()
        required = BooleanField(default=False)
        options = TextField(default="[]")
        position = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "question"
            indexes = ((("meeting_type", "key"), True), (("meeting_type", "position"), False))

    class Webhook(Model):
        user = ForeignKeyField(User, on_delete="CASCADE", backref="+")
        url = TextField()
        events = CharField(default="")
        secret = TextField(default="")
        is_active = BooleanField(default=True)
        description = CharField(default="")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "webhook"

    class WebhookDelivery(Model):
        webhook = ForeignKeyField(Webhook, on_delete="CASCADE", backref="+")
        uid = CharField(unique=True)
        event_id = CharField()
        event = CharField()
        booking_uid = CharField(default="")
        payload = TextField()
        dedup_key = CharField(null=True, unique=True)
        replay_of = ForeignKeyField("self", null=True, on_delete="SET NULL", backref="+")
        status = CharField(default="pending")
        attempts = IntegerField(default=0)
        response_status = IntegerField(null=True)
        response_body = TextField(default="")
        last_error = TextField(default="")
        duration_ms = IntegerField(null=True)
        created_at = DateTimeField(index=True)
        last_attempt_at = DateTimeField(null=True)
        delivered_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "webhook_delivery"
            indexes = ((("webhook", "created_at"), False),)

    db.create_tables([Question, Webhook, WebhookDelivery])


def down(migrator, db):
    for table in ("webhook_delivery", "webhook", "question"):
        migrator.migrate(migrator.drop_table(table))
    migrator.migrate(
        migrator.drop_index("user", "user_feed_token_hash"),
        *[
            migrator.drop_column("booking", c)
            for c in ("location_kind", "join_url", "join_status", "join_error", "answers")
        ],
        migrator.drop_column("meeting_type", "location_kind"),
        *[
            migrator.drop_column("user", c)
            for c in ("meeting_link", "email_signature", "feed_salt", "feed_token_hash")
        ],
    )
