"""Initial schema: hosts, availability, meeting types, bookings, tokens, outbox, connections."""

from peewee import *


def up(migrator, db):
    class User(Model):
        email = CharField(unique=True)
        password_hash = CharField(default="")
        slug = CharField(unique=True)
        name = CharField(default="")
        timezone = CharField(default="UTC")
        lead_time_minutes = IntegerField(default=0)
        is_admin = BooleanField(default=False)
        is_active = BooleanField(default=True)
        allow_booking = BooleanField(default=True)
        embed_origins = TextField(default="")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "user"

    db.create_tables([User])

    class ApiToken(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(default="")
        token_hash = CharField(unique=True)
        prefix = CharField(default="")
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_token"

    db.create_tables([ApiToken])

    class AppSetting(Model):
        key = CharField(unique=True)
        value = TextField(default="null")

        class Meta:
            database = db
            table_name = "app_setting"

    db.create_tables([AppSetting])

    class MeetingType(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
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
        reminder_offsets = CharField(default="1440,60")
        is_active = BooleanField(default=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "meeting_type"
            indexes = ((("user", "slug"), True),)

    db.create_tables([MeetingType])

    class Booking(Model):
        uid = CharField(unique=True)
        host = ForeignKeyField(User, on_delete="CASCADE")
        meeting_type = ForeignKeyField(MeetingType, null=True, on_delete="SET NULL")
        start = DateTimeField(index=True)
        end = DateTimeField()
        buffer_before_minutes = IntegerField(default=0)
        buffer_after_minutes = IntegerField(default=0)
        type_slug = CharField(default="")
        invitee_name = CharField()
        invitee_email = CharField()
        invitee_timezone = CharField(default="UTC")
        notes = TextField(default="")
        status = CharField(index=True, default="confirmed")
        manage_token_hash = CharField(unique=True)
        manage_salt = CharField(default="")
        idempotency_key = CharField(null=True)
        ical_uid = CharField()
        sequence = IntegerField(default=0)
        rescheduled_from = ForeignKeyField("self", null=True)
        cancel_reason = TextField(default="")
        cancelled_by = CharField(default="")
        location = CharField(default="")
        created_at = DateTimeField()
        cancelled_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "booking"
            indexes = ((("host", "idempotency_key"), True),)

    db.create_tables([Booking])

    class Connection(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        provider = CharField()
        label = CharField(default="")
        status = CharField(default="ok")
        settings = TextField(default="{}")
        secret = TextField(default="")
        sync_state = TextField(default="{}")
        last_synced_at = DateTimeField(null=True)
        last_error = TextField(default="")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "connection"

    db.create_tables([Connection])

    class Calendar(Model):
        connection = ForeignKeyField(Connection, on_delete="CASCADE")
        external_id = CharField()
        name = CharField(default="")
        writable = BooleanField(default=False)
        timezone = CharField(default="")
        conflict = BooleanField(default=True)
        write = BooleanField(default=False)
        all_busy = BooleanField(default=False)
        sync_state = TextField(default="{}")
        last_synced_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "calendar"
            indexes = ((("connection", "external_id"), True),)

    db.create_tables([Calendar])

    class BusyBlock(Model):
        calendar = ForeignKeyField(Calendar, on_delete="CASCADE")
        start = DateTimeField()
        end = DateTimeField()
        external_id = CharField(default="")

        class Meta:
            database = db
            table_name = "busy_block"
            indexes = ((("calendar", "start"), False),)

    db.create_tables([BusyBlock])

    class CalendarEvent(Model):
        booking = ForeignKeyField(Booking, on_delete="CASCADE")
        calendar = ForeignKeyField(Calendar, null=True, on_delete="SET NULL")
        status = CharField(default="pending")
        external_id = CharField(default="")
        etag = CharField(default="")
        last_error = TextField(default="")
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "calendar_event"

    db.create_tables([CalendarEvent])

    class DateOverride(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        date = DateField()
        intervals = TextField(default="[]")

        class Meta:
            database = db
            table_name = "date_override"
            indexes = ((("user", "date"), True),)

    db.create_tables([DateOverride])

    class LoginThrottle(Model):
        key = CharField(unique=True)
        failures = IntegerField(default=0)
        last_failure_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "login_throttle"

    db.create_tables([LoginThrottle])

    class Outbox(Model):
        kind = CharField()
        payload = TextField(default="{}")
        status = CharField(index=True, default="pending")
        run_at = DateTimeField(null=True)
        attempts = IntegerField(default=0)
        last_error = TextField(default="")
        created_at = DateTimeField()
        enqueued_at = DateTimeField(null=True)
        done_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "outbox"

    db.create_tables([Outbox])

    class SentEmail(Model):
        key = CharField(unique=True)
        booking = ForeignKeyField(Booking, null=True, on_delete="CASCADE")
        to = CharField()
        subject = CharField(default="")
        sent_at = DateTimeField()

        class Meta:
            database = db
            table_name = "sent_email"

    db.create_tables([SentEmail])

    class WeeklyHours(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        weekday = IntegerField()
        start = CharField(max_length=5)
        end = CharField(max_length=5)

        class Meta:
            database = db
            table_name = "weekly_hours"
            indexes = ((("user", "weekday", "start"), True),)

    db.create_tables([WeeklyHours])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("weekly_hours"))
    migrator.migrate(migrator.drop_table("sent_email"))
    migrator.migrate(migrator.drop_table("outbox"))
    migrator.migrate(migrator.drop_table("login_throttle"))
    migrator.migrate(migrator.drop_table("date_override"))
    migrator.migrate(migrator.drop_table("calendar_event"))
    migrator.migrate(migrator.drop_table("busy_block"))
    migrator.migrate(migrator.drop_table("calendar"))
    migrator.migrate(migrator.drop_table("connection"))
    migrator.migrate(migrator.drop_table("booking"))
    migrator.migrate(migrator.drop_table("meeting_type"))
    migrator.migrate(migrator.drop_table("app_setting"))
    migrator.migrate(migrator.drop_table("api_token"))
    migrator.migrate(migrator.drop_table("user"))
