"""Server-side sessions (sign-out ends a copied cookie too); sign-in throttling moved to Redis."""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class UserSession(Model):
        user = ForeignKeyField(User, on_delete="CASCADE", backref="+")
        token_hash = CharField(unique=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "user_session"

    db.create_tables([UserSession])
    migrator.migrate(migrator.drop_table("login_throttle"))


def down(migrator, db):
    class LoginThrottle(Model):
        key = CharField(unique=True)
        failures = IntegerField(default=0)
        last_failure_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "login_throttle"

    db.create_tables([LoginThrottle])
    migrator.migrate(migrator.drop_table("user_session"))
