"""Peewee models and the small queries that belong to them.

No network here. Instants are stored as naive UTC datetimes; the helpers
``to_db`` / ``from_db`` are the only place that converts.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from peewee import (
    BooleanField,
    CharField,
    DatabaseProxy,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from werkzeug.security import check_password_hash, generate_password_hash

db = DatabaseProxy()

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# Words the app's own routes use; a host or meeting type may not take them.
RESERVED_SLUGS = frozenset(
    [
        "login",
        "logout",
        "setup",
        "settings",
        "api",
        "embed",
        "booking",
        "static",
        "oauth",
        "admin",
        "invite",
        "reset",
        "password",
        "health",
        "healthz",
        "metrics",
        "feeds",
        "feed",
        "webhooks",
        "help",
        "about",
        "terms",
        "privacy",
        "signup",
        "register",
        "www",
        "account",
        "accounts",
        "user",
        "users",
        "auth",
        "static-files",
        "assets",
        "favicon.ico",
        "robots.txt",
    ]
)

# Row ids fit a signed 64-bit column (SQLite's INTEGER, PostgreSQL's bigint); a bigger
# number names no row, and SQLite cannot even bind it (OverflowError).
MAX_ID = 2**63 - 1


def parse_id(text: str) -> int | None:
    """The row id written in ``text`` (a URL part, a form value), or None if it can be none."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:  # "²".isdigit() is True
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db(value: datetime | None) -> datetime | None:
    """Aware instant → naive UTC for storage."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db(value: datetime | None) -> datetime | None:
    """Stored naive UTC → aware UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC)


def hash_token(token: str) -> str:
    """Tokens carry ≥128 random bits, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def validate_slug(slug: str) -> str | None:
    """Return an error message, or None when the slug is acceptable."""
    if not SLUG_RE.fullmatch(slug or ""):  # fullmatch: "$" alone lets "x\n" through
        return "use 1–40 lowercase letters, digits and dashes"
    if slug in RESERVED_SLUGS:
        return "this word is reserved"
    return None


class BaseModel(Model):
    if TYPE_CHECKING:
        # peewee adds ``id`` and the ``<fk>_id`` accessors at runtime; tell mypy so.
        id: Any

        def __getattr__(self, name: str) -> Any: ...

    class Meta:
        database = db
        legacy_table_names = False


class User(BaseModel):
    email = CharField(unique=True)
    password_hash = CharField(default="")
    slug = CharField(unique=True)
    name = CharField(default="")
    timezone = CharField(default="UTC")
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


class MeetingType(BaseModel):
    user = ForeignKeyField(User, backref="meeting_types", on_delete="CASCADE")
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
    # How ``location`` is read: custom | link | phone | address | personal | google_meet | teams
    # (portal.booking.locations); "custom" is the text as written.
    location_kind = CharField(default="custom")
    # Comma-separated minutes before the start, e.g. "1440,60".
    reminder_offsets = CharField(default="1440,60")
    is_active = BooleanField(default=True)
    created_at = DateTimeField(default=lambda: to_db(utcnow()))

    class Meta:
        indexes = ((("user", "slug"), True),)

    def question_list(self) -> list[Question]:
        """The invitee questions of this type, in the host's order."""
        return list(
            Question.select()
            .where(Question.meeting_type == self.id)
            .order_by(Question.position, Question.id)
        )

    def reminder_minutes(self) -> list[int]:
        """Reminder offsets in minutes, largest first; blanks, junk and duplicates dropped."""
        out = set()
        for part in (self.reminder_offsets or "").split(","):
            part = part.strip()
            if part.isdigit() and 0 < int(part) <= 60 * 24 * 366:
                out.add(int(part))
        return sorted(out, reverse=True)


class Booking(BaseModel):
    uid = CharField(unique=True)
    host = ForeignKeyField(User, backref="bookings", on_delete="CASCADE")
    meeting_type = ForeignKeyField(MeetingType, backref="bookings", null=True, on_delete="SET NULL")
    start = DateTimeField(index=True)  # naive UTC
    end = DateTimeField()
    # Buffers copied from the type at booking time, so editing a type later
    # does not change what an existing booking blocks.
    buffer_before_minutes = IntegerField(default=0)
    buffer_after_minutes = IntegerField(default=0)
    type_slug = CharField(default="")
    invitee_name = CharField()
    invitee_email = CharField()
    invitee_timezone = CharField(default="UTC")
    notes = TextField(default="")
    status = CharField(default="confirmed", index=True)  # confirmed | cancelled | rescheduled
    manage_token_hash = CharField(unique=True)
    # Random per-booking salt; the manage token is HMAC(secret key, uid + salt), so jobs
    # (e-mails) can rebuild the link while the database only holds its hash.
    manage_salt = CharField(default="")
    idempotency_key = CharField(null=True)
    # The calendar identity survives reschedules: same iCalendar UID, rising SEQUENCE.
    ical_uid = CharField()
    sequence = IntegerField(default=0)
    rescheduled_from = ForeignKeyField("self", null=True, backref="rescheduled_to")
    cancel_reason = TextField(default="")
    cancelled_by = CharField(default="")  # invitee | host
    location = CharField(default="")
    # Subject of a meeting a host set up with co-workers ("find a time"); those have no type.
    title = CharField(default="")
    location_kind = CharField(default="custom")  # the type's kind at booking time
    # The link to join: the host's personal link, or the Meet/Teams link the calendar made.
    join_url = TextField(default="")
    join_status = CharField(default="")  # "" (none needed) | pending | created | failed
    join_error = TextField(default="")  # why no link could be made, for the host
    answers = TextField(
        default="[]"
    )  # JSON [{"key", "label", "kind", "value"}] (portal.booking.questions)
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    cancelled_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("host", "idempotency_key"), True),)

    @property
    def start_utc(self) -> datetime:
        return from_db(self.start)  # type: ignore[return-value]

    @property
    def end_utc(self) -> datetime:
        return from_db(self.end)  # type: ignore[return-value]

    def answer_list(self) -> list[dict]:
        """The invitee's answers as stored (label and kind copied at booking time)."""
        try:
            value = json.loads(self.answers or "[]")
        except ValueError:
            return []
        return value if isinstance(value, list) else []


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


class Outbox(BaseModel):
    """Work caused by a state change, committed in the same transaction.

    A relay moves pending rows to RQ; the job marks the row done, so a row
    enqueued twice still runs its work once.
    """

    kind = CharField()  # name of a handler in jobs.outbox.HANDLERS
    payload = TextField(default="{}")
    status = CharField(default="pending", index=True)  # pending | enqueued | done | failed
    run_at = DateTimeField(null=True)  # naive UTC; None = as soon as possible
    attempts = IntegerField(default=0)
    last_error = TextField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    enqueued_at = DateTimeField(null=True)
    done_at = DateTimeField(null=True)
    # The lease of whoever is responsible for the row now (portal.runtime.outbox): naive UTC.
    lease_until = DateTimeField(null=True)
    lease_owner = CharField(null=True)  # the run holding it (jobs.outbox.run)

    @classmethod
    def add(cls, kind: str, run_at: datetime | None = None, **payload: object) -> Outbox:
        return cls.create(kind=kind, payload=json.dumps(payload), run_at=to_db(run_at))

    def data(self) -> dict:
        return json.loads(self.payload)


class Connection(BaseModel):
    """A connected calendar account (Google, Microsoft, Exchange, CalDAV, ICS)."""

    user = ForeignKeyField(User, backref="connections", on_delete="CASCADE")
    provider = CharField()
    label = CharField(default="")  # account e-mail or URL shown to the host
    status = CharField(default="ok")  # ok | syncing | needs_reconnect | error
    # Non-secret settings (URLs, user names, discovered endpoints), JSON.
    settings = TextField(default="{}")
    # Encrypted credentials (MultiFernet), bound to this row; see portal.crypto.
    secret = TextField(default="")
    sync_state = TextField(default="{}")  # provider cursors: sync tokens, ctags, etags
    last_synced_at = DateTimeField(null=True)
    last_error = TextField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    failures = IntegerField(default=0)  # consecutive failed refreshes (backoff)
    next_sync_at = DateTimeField(null=True)  # naive UTC; None = due now

    def settings_dict(self) -> dict:
        return json.loads(self.settings or "{}")


class Calendar(BaseModel):
    connection = ForeignKeyField(Connection, backref="calendars", on_delete="CASCADE")
    external_id = CharField()
    name = CharField(default="")
    writable = BooleanField(default=False)
    timezone = CharField(default="")
    conflict = BooleanField(default=True)  # checked for busy times
    write = BooleanField(default=False)  # receives new bookings (one per host)
    all_busy = BooleanField(default=False)  # treat every event as busy (servers without TRANSP)
    # An "additional booking calendar": gets a copy of every booking (see BookingCopy).
    copy_bookings = BooleanField(default=False)
    sync_state = TextField(default="{}")
    last_synced_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("connection", "external_id"), True),)


class BusyBlock(BaseModel):
    """Cached busy interval of a calendar (no titles are ever stored)."""

    calendar = ForeignKeyField(Calendar, backref="busy_blocks", on_delete="CASCADE")
    start = DateTimeField()
    end = DateTimeField()
    external_id = CharField(default="")  # source event, for incremental updates

    class Meta:
        indexes = (
            (("calendar", "start", "end"), False),
            (("calendar", "external_id"), False),
        )


class CalendarEvent(BaseModel):
    """The link from a booking to the event written in the host's calendar."""

    booking = ForeignKeyField(Booking, backref="calendar_events", on_delete="CASCADE")
    calendar = ForeignKeyField(Calendar, null=True, backref="events", on_delete="SET NULL")
    status = CharField(default="pending")  # pending | written | failed | deleted
    external_id = CharField(default="")
    etag = CharField(default="")  # etag / change key
    last_error = TextField(default="")
    updated_at = DateTimeField(default=lambda: to_db(utcnow()))
    attempts = IntegerField(default=0)  # write-back runs since the last success or retry


class BookingCopy(BaseModel):
    """A booking's copy in an additional booking calendar (``Calendar.copy_bookings``)."""

    booking = ForeignKeyField(Booking, backref="copies", on_delete="CASCADE")
    calendar = ForeignKeyField(Calendar, null=True, backref="copies", on_delete="SET NULL")
    status = CharField(default="pending")  # pending | written | failed | deleted
    external_id = CharField(default="")
    etag = CharField(default="")  # change key
    last_error = TextField(default="")
    attempts = IntegerField(default=0)
    updated_at = DateTimeField(default=lambda: to_db(utcnow()))

    class Meta:
        table_name = "booking_copy"
        indexes = ((("booking", "calendar"), True),)


class ExchangeOrganisation(BaseModel):
    """The organisation's Exchange mailbox with access to members' calendars (one row).

    Each member who uses it has an ordinary ``exchange`` connection holding a
    sealed copy of this password (``portal.calendars.exchange_org`` keeps them in step),
    so sync and write-back need nothing special for it.
    """

    email = CharField()
    settings = TextField(default="{}")  # EWS URL, user name, access, auth type, version
    secret = TextField(default="")  # sealed {"password"} (portal.crypto)
    status = CharField(default="ok")  # ok | needs_reconnect
    last_error = TextField(default="")
    created_at = DateTimeField(default=lambda: to_db(utcnow()))
    updated_at = DateTimeField(default=lambda: to_db(utcnow()))

    class Meta:
        table_name = "exchange_organisation"

    def settings_dict(self) -> dict:
        return json.loads(self.settings or "{}")


class SentEmail(BaseModel):
    """One row per message handed to SMTP/outbox, so a rerun sends nothing twice.

    The row is claimed ("sending") before delivery and marked "sent" after it;
    see portal.notify.mail.send_once for the crash window.
    """

    key = CharField(unique=True)
    booking = ForeignKeyField(Booking, null=True, backref="emails", on_delete="CASCADE")
    to = CharField()
    subject = CharField(default="")
    status = CharField(default="sent")  # sending | sent
    sent_at = DateTimeField(default=lambda: to_db(utcnow()))  # claim time while "sending"


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


class OAuthFlow(BaseModel):
    """An OAuth browser flow in progress: the server half of ``state`` (portal.calendars.oauth_accounts).

    Single use (deleted when the provider sends the browser back) and short
    lived; bound to the browser session that started it. A sign-in that may
    also connect the calendar keeps its grant here, sealed, until the host
    answers the offer.
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


class BookingAttendee(BaseModel):
    """A co-worker on a meeting another host booked for them both; their time is blocked too."""

    booking = ForeignKeyField(Booking, backref="attendees", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    name = CharField(default="")
    email = CharField()

    class Meta:
        table_name = "booking_attendee"
        indexes = ((("booking", "user"), True), (("user",), False))


class Question(BaseModel):
    """One question a meeting type asks invitees (portal.booking.questions); ``key`` names it in the API."""

    meeting_type = ForeignKeyField(MeetingType, backref="questions", on_delete="CASCADE")
    key = CharField()
    label = CharField()
    kind = CharField()  # short_text | long_text | single_choice | checkboxes | phone
    required = BooleanField(default=False)
    options = TextField(default="[]")  # JSON list of choices (single_choice, checkboxes)
    position = IntegerField(default=0)

    class Meta:
        indexes = ((("meeting_type", "key"), True), (("meeting_type", "position"), False))

    def option_list(self) -> list[str]:
        return json.loads(self.options or "[]")


class Webhook(BaseModel):
    """A host's endpoint for booking events (portal.notify.webhooks); the signing secret is sealed."""

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


ALL_MODELS = [
    User,
    WeeklyHours,
    DateOverride,
    MeetingType,
    Booking,
    ApiToken,
    Outbox,
    Connection,
    Calendar,
    BusyBlock,
    CalendarEvent,
    SentEmail,
    AppSetting,
    UserSession,
    PasswordReset,
    OAuthFlow,
    OAuthIdentity,
    Invite,
    BookingAttendee,
    Question,
    Webhook,
    WebhookDelivery,
    BookingCopy,
    ExchangeOrganisation,
]

DEFAULT_WEEKLY = {d: (("09:00", "17:00"),) for d in range(5)}


def expiry(minutes: int) -> datetime:
    return utcnow() + timedelta(minutes=minutes)
