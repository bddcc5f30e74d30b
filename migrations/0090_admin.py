"""Small-business admin: invitations, co-workers on a host's meeting, and a meeting title."""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class Booking(Model):
        class Meta:
            database = db
            table_name = "booking"

    class Invite(Model):
        email = CharField(index=True)
        salt = CharField()
        token_hash = CharField(unique=True)
        is_admin = BooleanField(default=False)
        invited_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
        user = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
        created_at = DateTimeField()
        expires_at = DateTimeField()
        accepted_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "invite"

    class BookingAttendee(Model):
        booking = ForeignKeyField(Booking, on_delete="CASCADE", backref="+")
        user = ForeignKeyField(User, on_delete="CASCADE", backref="+")
        name = CharField(default="")
        email = CharField()

        class Meta:
            database = db
            table_name = "booking_attendee"
            indexes = ((("booking", "user"), True), (("user",), False))

    db.create_tables([Invite, BookingAttendee])
    # A meeting a host sets up with co-workers has a subject instead of a meeting type.
    migrator.migrate(migrator.add_column("booking", "title", CharField(default="")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("booking", "title"))
    migrator.migrate(migrator.drop_table("booking_attendee"))
    migrator.migrate(migrator.drop_table("invite"))
