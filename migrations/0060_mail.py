"""E-mail: a delivery state on sent_email (claim → sent) and single-use password resets."""

from peewee import *


def up(migrator, db):
    # Existing rows were delivered; new claims start as "sending" until SMTP accepts.
    migrator.migrate(migrator.add_column("sent_email", "status", CharField(default="sent")))

    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class PasswordReset(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        salt = CharField()
        token_hash = CharField(unique=True)
        created_at = DateTimeField(index=True)
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "password_reset"

    db.create_tables([PasswordReset])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("password_reset"))
    migrator.migrate(migrator.drop_column("sent_email", "status"))
