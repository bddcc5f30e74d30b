"""OAuth: browser flows in progress (single-use state) and identities linked to hosts."""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class OAuthFlow(Model):
        nonce = CharField(unique=True)
        provider = CharField()
        purpose = CharField()
        user = ForeignKeyField(User, null=True, on_delete="CASCADE")
        session_hash = CharField()
        code_verifier = CharField(default="")
        redirect_uri = CharField(default="")
        next_path = CharField(default="")
        connection_id = IntegerField(null=True)
        secret = TextField(default="")
        label = CharField(default="")
        created_at = DateTimeField()
        expires_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "oauth_flow"

    class OAuthIdentity(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        provider = CharField()
        subject = CharField()
        email = CharField(default="")
        created_at = DateTimeField()
        last_login_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "oauth_identity"
            indexes = ((("provider", "subject"), True),)

    db.create_tables([OAuthFlow, OAuthIdentity])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("oauth_identity"))
    migrator.migrate(migrator.drop_table("oauth_flow"))
