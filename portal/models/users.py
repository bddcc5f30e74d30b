"""Hosts and how they sign in: accounts, browser sessions, API tokens, password resets, OAuth."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField
from werkzeug.security import check_password_hash, generate_password_hash

from portal.models.base import BaseModel, hash_token, new_token, to_db, utcnow


class User(BaseModel):
    email = CharField(unique=True)
    password_hash = CharField(default="")
    slug = CharField(unique=True)
    name = CharField(default="")
    timezone = CharField(default="UTC")
    # Language of the host's settings and e-mails (portal.i18n); "" = the browser's.
    locale = CharField(default="")
    lead_time_minutes = IntegerField(default=0)
    is_admin = BooleanField(default=False)
    is_active = BooleanField(default=True)
    allow_booking = BooleanField(default=True)
    # Newline-separated origins (scheme://host[:port]) allowed to frame booking pages.
    embed_origins = TextField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    # Where meetings of the "personal link" kind happen (Zoom, Teams, any http(s) URL).
    meeting_link = TextField(default="")
    email_signature = TextField(default="")  # plain text under the host's e-mails to invitees
    # Private ICS feed: the token is HMAC(secret key, salt) (portal.notify.feeds); "" = no feed.
    feed_salt = CharField(default="")
    feed_token_hash = CharField(null=True, unique=True)

    # flask-login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def session_version(self) -> str:
        """Changes with the password, so other sessions end when it changes (see extensions)."""
        return hashlib.sha256(f"session:{self.password_hash}".encode()).hexdigest()[:16]

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def display_name(self) -> str:
        return self.name or self.slug

    def origins(self) -> list[str]:
        return [o for o in self.embed_origins.split() if o]

    @classmethod
    def by_email(cls, email: str) -> User | None:
        return cls.get_or_none(cls.email == email.strip().lower())


class UserSession(BaseModel):
    """One signed-in browser. The signed session cookie carries the id; this row makes it valid.

    A signed cookie alone stays valid as long as it is not expired, even after its
    owner signs out; deleting the row on sign-out ends a copied or replayed cookie too.
    Only a hash of the id is kept, so the table gives nobody a session.
    """

    user = ForeignKeyField(User, on_delete="CASCADE", backref="sessions")
    token_hash = CharField(unique=True)
    created_at = DateTimeField(default=lambda: to_db(utcnow()))

    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(f"session:{token}".encode()).hexdigest()

    @classmethod
    def start(cls, user: User, lifetime: timedelta) -> str:
        """A new session id for ``user``; their sessions older than ``lifetime`` go."""
        token = secrets.token_urlsafe(32)
        cls.delete().where(
            (cls.user == user) & (cls.created_at < to_db(utcnow() - lifetime))
        ).execute()
        cls.create(user=user, token_hash=cls._hash(token))
        return token

    @classmethod
    def is_live(cls, user_id: int, token: str | None) -> bool:
        if not token:
            return False
        return cls.select().where(cls.user == user_id, cls.token_hash == cls._hash(token)).exists()

    @classmethod
    def end(cls, token: str | None) -> None:
        if token:
            cls.delete().where(cls.token_hash == cls._hash(token)).execute()


class ApiToken(BaseModel):
    user = ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    name = CharField(default="")
    token_hash = CharField(unique=True)
    prefix = CharField(default="")  # first characters, to recognise a token in the list
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    last_used_at = DateTimeField(null=True)

    @classmethod
    def issue(cls, user: User, name: str = "") -> tuple[ApiToken, str]:
        """Create a token; the plain value is returned once and never stored."""
        plain = "kai_" + new_token(32)
        row = cls.create(user=user, name=name, token_hash=hash_token(plain), prefix=plain[:8])
        return row, plain

    @classmethod
    def lookup(cls, plain: str) -> ApiToken | None:
        return (
            cls.select(cls, User)
            .join(User)
            .where(cls.token_hash == hash_token(plain), User.is_active == True)  # noqa: E712
            .first()
        )


class PasswordReset(BaseModel):
    """A single-use, expiring password reset for a host.

    The link's token is HMAC(secret key, salt + the user's password hash), like
    the manage links, so the e-mail job can rebuild it while the database keeps
    only its hash; see portal.org.passwords.
    """

    user = ForeignKeyField(User, backref="password_resets", on_delete="CASCADE")
    salt = CharField()
    token_hash = CharField(unique=True)
    created_at = DateTimeField(index=True, default=lambda: to_db(utcnow()))
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)


class OAuthFlow(BaseModel):
    """An OAuth browser flow in progress: the server half of ``state``.

    Kept by portal.calendars.oauth_accounts. Single use (deleted when the
    provider sends the browser back) and short lived; bound to the browser
    session that started it. A sign-in that may also connect the calendar
    keeps its grant here, sealed, until the host answers the offer.
    """

    nonce = CharField(unique=True)
    provider = CharField()
    purpose = CharField()  # connect | login | offer
    user = ForeignKeyField(User, null=True, backref="oauth_flows", on_delete="CASCADE")
    session_hash = CharField()  # SHA-256 of a random value kept in the session
    code_verifier = CharField(default="")  # PKCE
    redirect_uri = CharField(default="")
    next_path = CharField(default="")  # where to land afterwards (allow-listed)
    connection_id = IntegerField(null=True)  # the connection a reconnect renews
    secret = TextField(default="")  # sealed grant of an "offer" (portal.crypto)
    label = CharField(default="")  # account shown in the offer
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    expires_at = DateTimeField(index=True)

    class Meta:
        table_name = "oauth_flow"


class OAuthIdentity(BaseModel):
    """A Google / Microsoft account that signs a host in (provider + stable subject id)."""

    user = ForeignKeyField(User, backref="oauth_identities", on_delete="CASCADE")
    provider = CharField()
    subject = CharField()
    email = CharField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    last_login_at = DateTimeField(null=True)

    class Meta:
        table_name = "oauth_identity"
        indexes = ((("provider", "subject"), True),)
