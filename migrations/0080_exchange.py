"""Exchange corporate connection: the organisation's mailbox, and booking copies.

* ``exchange_organisation`` — the one mailbox the admin configures, with
  delegate access or impersonation to members' calendars (password sealed).
* ``calendar.copy_bookings`` — an *additional booking calendar*: it receives
  a copy of every booking of its host, besides the main booking calendar.
* ``booking_copy`` — where each copy landed (item id, change key, state).
"""

from peewee import *


def up(migrator, db):
    class Booking(Model):
        class Meta:
            database = db
            table_name = "booking"

    class Calendar(Model):
        class Meta:
            database = db
            table_name = "calendar"

    class ExchangeOrganisation(Model):
        email = CharField()
        settings = TextField(default="{}")
        secret = TextField(default="")
        status = CharField(default="ok")
        last_error = TextField(default="")
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "exchange_organisation"

    class BookingCopy(Model):
        booking = ForeignKeyField(Booking, on_delete="CASCADE")
        calendar = ForeignKeyField(Calendar, null=True, on_delete="SET NULL")
        status = CharField(default="pending")
        external_id = CharField(default="")
        etag = CharField(default="")
        last_error = TextField(default="")
        attempts = IntegerField(default=0)
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "booking_copy"
            indexes = ((("booking", "calendar"), True),)

    db.create_tables([ExchangeOrganisation, BookingCopy])
    migrator.migrate(
        migrator.add_column("calendar", "copy_bookings", BooleanField(default=False)),
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("calendar", "copy_bookings"))
    migrator.migrate(migrator.drop_table("booking_copy"))
    migrator.migrate(migrator.drop_table("exchange_organisation"))
