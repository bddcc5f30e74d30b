"""Running a team: organisation settings, invitations, people, and the health of jobs.

The views (``portal/web/admin.py``, ``invite.py``) parse and render; every
rule lives here so the connection code, the CLI and the sign-up paths ask the
same questions:

* **Organisation settings** are ``AppSetting`` rows. ``provider_allowed`` is
  the one answer to "may this member connect this provider?" — the admin's
  per-provider switch (``provider_enabled:<name>``, on by default) and the
  rule for who may connect calendars at all. ``portal.calendars.sync``, the OAuth
  flows and the connect buttons all ask it.
* **Invitations** are single use and expire. The link's token is
  ``HMAC(secret key, "invite:" + salt)`` over a 256-bit random salt, like the
  password-reset links: the database keeps only its SHA-256 and the salt, so
  a database leak alone opens nothing, and the e-mail job rebuilds the link.
* **People**: making admins (never demoting the last one) and deactivating
  members. Deactivation keeps bookings and history but ends every way in at
  once: sessions (the user loader only loads active users), API tokens
  (deleted; ``ApiToken.lookup`` also ignores inactive users) and calendar
  access (sealed secrets wiped, accounts marked "needs reconnect").
* **Job health**: queue counts, the outbox backlog, connection errors, and
  RQ's failed-job registry with retry / discard.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from peewee import IntegrityError, fn

from portal.models import (
    DEFAULT_WEEKLY,
    ApiToken,
    AppSetting,
    Connection,
    Invite,
    OAuthFlow,
    Outbox,
    User,
    db,
    from_db,
    hash_token,
    to_db,
    utcnow,
    validate_slug,
)
from portal.tokens import derived_token

PROVIDERS = ("google", "microsoft", "exchange", "caldav", "ics")
PROVIDER_TITLES = {
    "google": "Google Calendar",
    "microsoft": "Microsoft 365 / Outlook",
    "exchange": "Exchange (personal)",
    "caldav": "CalDAV / iCloud",
    "ics": "ICS feed",
}
CONNECT_POLICIES = ("everyone", "members", "domains")
INVITE_VALID_FOR = timedelta(days=7)
MAX_TOKEN = 200
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_DOMAINS = 50


class AdminError(Exception):
    """A refusal shown to a person; ``field`` names the form input at fault (or None)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# ---------------------------------------------------------------- e-mail domains


def email_domain(email: str) -> str:
    return (email or "").strip().lower().rpartition("@")[2]


def parse_domains(text: str) -> list[str]:
    """``"example.com, @Example.org"`` → ``["example.com", "example.org"]``.

    Raises ValueError naming the entry that is not a domain.
    """
    out: list[str] = []
    for part in (text or "").replace(",", " ").replace(";", " ").split():
        domain = part.strip().lstrip("@").lower().rstrip(".")
        try:
            # The library checks the domain part as it would in an address.
            validate_email(f"x@{domain}", check_deliverability=False)
        except EmailNotValidError:
            raise ValueError(f"“{part}” is not an e-mail domain like example.com") from None
        if domain not in out:
            out.append(domain)
    if len(out) > MAX_DOMAINS:
        raise ValueError(f"at most {MAX_DOMAINS} domains")
    return out


def clean_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AdminError(f"invalid e-mail address: {exc}", "email") from exc


# ---------------------------------------------------------------- organisation settings


def provider_enabled(provider: str) -> bool:
    """The admin's "allow personal connections" switch for ``provider`` (on by default)."""
    return bool(AppSetting.read(f"provider_enabled:{provider}", True))


def save_providers(enabled: dict[str, bool]) -> None:
    with db.atomic():
        for name in PROVIDERS:
            AppSetting.write(f"provider_enabled:{name}", bool(enabled.get(name, True)))


@dataclass(frozen=True)
class ConnectRule:
    """Who may connect calendars at all: everyone, listed members, or e-mail domains.

    Admins always may: the person who sets the rule must not lock themselves out.
    """

    policy: str = "everyone"
    members: frozenset[int] = frozenset()
    domains: tuple[str, ...] = ()

    def allows(self, user: User) -> bool:
        if self.policy == "everyone" or user.is_admin:
            return True
        if self.policy == "members":
            return user.id in self.members
        if self.policy == "domains":
            return email_domain(user.email) in self.domains
        return False


def connect_rule() -> ConnectRule:
    raw = AppSetting.read("connect_policy", None)
    if not isinstance(raw, dict) or raw.get("policy") not in CONNECT_POLICIES:
        return ConnectRule()
    return ConnectRule(
        policy=str(raw["policy"]),
        members=frozenset(int(m) for m in raw.get("members", []) if str(m).isdigit()),
        domains=tuple(str(d) for d in raw.get("domains", [])),
    )


def save_connect_rule(rule: ConnectRule) -> None:
    if rule.policy not in CONNECT_POLICIES:
        raise AdminError("choose who may connect calendars", "connect_policy")
    if rule.policy == "domains" and not rule.domains:
        raise AdminError("name at least one e-mail domain", "connect_domains")
    AppSetting.write(
        "connect_policy",
        {"policy": rule.policy, "members": sorted(rule.members), "domains": list(rule.domains)},
    )


def may_connect(user: User) -> bool:
    return bool(user and user.is_active) and connect_rule().allows(user)


def provider_allowed(user: User, provider: str) -> bool:
    """May ``user`` connect (or reconnect) a personal ``provider`` account?

    The one question every connect path asks: the settings page (to hide the
    buttons), the API, ``portal.calendars.sync.connect`` and the OAuth flows (to refuse).
    """
    return provider in PROVIDERS and provider_enabled(provider) and may_connect(user)


def not_allowed_message(provider: str) -> str:
    title = PROVIDER_TITLES.get(provider, provider)
    return f"your organisation does not allow connecting {title} accounts"


def not_allowed_sentence(provider: str) -> str:
    """The same refusal as a sentence of its own (flash messages)."""
    message = not_allowed_message(provider)
    return message[0].upper() + message[1:] + "."


def self_signup_enabled() -> bool:
    return bool(AppSetting.read("self_signup", False))


def signup_domains() -> list[str]:
    value = AppSetting.read("signup_domains", [])
    return [str(d) for d in value] if isinstance(value, list) else []


def signup_allowed(email: str) -> bool:
    """Self-signup is on and the address is in one of the allowed domains (none = nobody)."""
    return self_signup_enabled() and email_domain(email) in signup_domains()


def save_signup(enabled: bool, domains: list[str]) -> None:
    if enabled and not domains:
        raise AdminError("name the e-mail domains that may sign up", "signup_domains")
    with db.atomic():
        AppSetting.write("self_signup", bool(enabled))
        AppSetting.write("signup_domains", list(domains))


# ---------------------------------------------------------------- defaults for new members


@dataclass(frozen=True)
class MemberDefaults:
    """What a new member's account starts with (invite, sign-up, CLI)."""

    timezone: str = "UTC"
    weekly: dict[int, tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: {d: DEFAULT_WEEKLY.get(d, ()) for d in range(7)}
    )
    lead_time_minutes: int = 0
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weekly": {str(d): [list(w) for w in v] for d, v in self.weekly.items()},
            "lead_time_minutes": self.lead_time_minutes,
            "buffer_before_minutes": self.buffer_before_minutes,
            "buffer_after_minutes": self.buffer_after_minutes,
        }


def _valid_zone(name: str) -> bool:
    from portal.booking.service import is_valid_zone

    return bool(name) and is_valid_zone(name)


def _windows(spans: list) -> tuple[tuple[str, str], ...]:
    """Stored ``[["09:00", "17:00"], …]`` checked like the form checks it; ValueError if not."""
    from portal.booking.availability import parse_clock

    out = []
    for a, b in spans:
        start, end = parse_clock(str(a), loose=True), parse_clock(str(b), loose=True)
        if start is None or end is None or end <= start:
            raise ValueError(f"bad window {a!r}–{b!r}")
        out.append((str(a), str(b)))
    return tuple(out)


def member_defaults() -> MemberDefaults:
    """The stored defaults; anything missing or no longer valid falls back (zone → UTC)."""
    raw = AppSetting.read("member_defaults", None)
    base = MemberDefaults()
    if not isinstance(raw, dict):
        return base
    stored_tz = raw.get("timezone")
    tz = stored_tz if isinstance(stored_tz, str) else ""
    weekly = dict(base.weekly)
    stored = raw.get("weekly")
    if isinstance(stored, dict):
        try:
            weekly = {d: _windows(stored.get(str(d), [])) for d in range(7)}
        except (TypeError, ValueError):
            weekly = dict(base.weekly)

    def minutes(key: str) -> int:
        value = raw.get(key, 0)
        return value if isinstance(value, int) and 0 <= value <= 525_600 else 0

    return MemberDefaults(
        timezone=tz if _valid_zone(tz) else "UTC",
        weekly=weekly,
        lead_time_minutes=minutes("lead_time_minutes"),
        buffer_before_minutes=minutes("buffer_before_minutes"),
        buffer_after_minutes=minutes("buffer_after_minutes"),
    )


def save_member_defaults(defaults: MemberDefaults) -> None:
    AppSetting.write("member_defaults", defaults.as_json())


# ---------------------------------------------------------------- invitations


def invite_token(invite: Invite) -> str:
    """The link token (256 bits, URL-safe) of ``invite``, rebuilt from its salt."""
    return derived_token("invite", invite.salt)


def invite_path(invite: Invite) -> str:
    return f"/invite/{invite_token(invite)}"


def is_open(invite: Invite, now: datetime) -> bool:
    """Not accepted, not revoked, not expired."""
    expires = from_db(invite.expires_at)
    return (
        invite.accepted_at is None
        and invite.revoked_at is None
        and expires is not None
        and now < expires
    )


def create_invite(
    email: str, invited_by: User | None, is_admin: bool = False, now: datetime | None = None
) -> Invite:
    """Record an invitation and its e-mail (one outbox row, same transaction).

    A new invitation for the same address replaces any still open, so only
    the newest link works.
    """
    now = now or utcnow()
    email = clean_email(email)
    if User.by_email(email) is not None:
        raise AdminError("someone with this e-mail address already has an account", "email")
    with db.atomic():
        Invite.update(revoked_at=to_db(now)).where(
            Invite.email == email, Invite.accepted_at.is_null(), Invite.revoked_at.is_null()
        ).execute()
        invite = Invite(
            email=email,
            salt=secrets.token_hex(32),
            is_admin=is_admin,
            invited_by=invited_by,
            created_at=to_db(now),
            expires_at=to_db(now + INVITE_VALID_FOR),
        )
        invite.token_hash = hash_token(invite_token(invite))
        invite.save(force_insert=True)
        Outbox.add("invite_email", invite_id=invite.id)
    return invite


def find_invite(token: str, now: datetime | None = None) -> Invite | None:
    """The open invitation behind ``token``, or None (constant-time on the token)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    now = now or utcnow()
    invite = Invite.get_or_none(Invite.token_hash == hash_token(token))
    if invite is None or not is_open(invite, now):
        return None
    if not hmac.compare_digest(invite_token(invite), token):
        return None  # the secret key changed since the link was sent
    return invite


def revoke_invite(invite: Invite, now: datetime | None = None) -> bool:
    return bool(
        Invite.update(revoked_at=to_db(now or utcnow()))
        .where(Invite.id == invite.id, Invite.accepted_at.is_null(), Invite.revoked_at.is_null())
        .execute()
    )


def open_invites(now: datetime | None = None) -> list[Invite]:
    now = now or utcnow()
    return list(
        Invite.select()
        .where(
            Invite.accepted_at.is_null(),
            Invite.revoked_at.is_null(),
            Invite.expires_at > to_db(now),
        )
        .order_by(Invite.created_at.desc())
    )


def account_problem(name: str, slug: str, password: str, confirm: str) -> tuple[str, str] | None:
    """(field, message) for the first thing wrong with a new account's details."""
    name = (name or "").strip()
    if not name:
        return "name", "enter your name"
    if len(name) > 200 or any(ch in name for ch in "\r\n\x00"):
        return "name", "use one line of at most 200 characters"
    problem = validate_slug(slug or "")
    if problem:
        return "slug", problem
    if User.get_or_none(User.slug == slug) is not None:
        return "slug", "another member has this link name"
    if len(password or "") < MIN_PASSWORD:
        return "password", f"use at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return "password", f"use at most {MAX_PASSWORD} characters"
    if password != confirm:
        return "confirm", "the two passwords differ"
    return None


def _create_member(email: str, name: str, slug: str, password: str, admin: bool) -> User:
    from portal.org.users import create_user

    try:
        return create_user(
            email, password, slug, admin=admin, name=name.strip(), defaults=member_defaults()
        )
    except ValueError as exc:  # the slug rule, already checked; kept for safety
        raise AdminError(str(exc).removeprefix("slug: "), "slug") from exc


def accept_invite(
    token: str, name: str, slug: str, password: str, confirm: str, now: datetime | None = None
) -> User:
    """Turn an open invitation into an account; the link is spent in the same transaction.

    Raises :class:`AdminError` (field set) for bad details, and with
    ``field=None`` when the link is no longer good (used, revoked, expired, or
    accepted by a concurrent request a moment ago).
    """
    now = now or utcnow()
    slug = (slug or "").strip().lower()
    problem = account_problem(name, slug, password, confirm)
    if problem:
        raise AdminError(problem[1], problem[0])
    gone = AdminError("this invitation is no longer valid", None)
    try:
        with db.atomic():
            invite = find_invite(token, now)
            if invite is None:
                raise gone
            claimed = (
                Invite.update(accepted_at=to_db(now))
                .where(
                    Invite.id == invite.id,
                    Invite.accepted_at.is_null(),
                    Invite.revoked_at.is_null(),
                )
                .execute()
            )
            if not claimed:
                raise gone
            if User.by_email(invite.email) is not None:
                raise AdminError("an account with this e-mail address exists; sign in instead")
            user = _create_member(invite.email, name, slug, password, invite.is_admin)
            Invite.update(user=user).where(Invite.id == invite.id).execute()
    except IntegrityError:
        # A concurrent sign-up took the link name (or the address) after the checks above;
        # the whole transaction, including spending the link, was rolled back.
        raise AdminError("another member has this link name", "slug") from None
    return user


def sign_up(
    email: str, name: str, slug: str, password: str, confirm: str, now: datetime | None = None
) -> User:
    """Self-signup, when the admin allows it and the address is in an allowed domain."""
    email = clean_email(email)
    if not signup_allowed(email):
        raise AdminError("sign-up is not open to this e-mail address", "email")
    if User.by_email(email) is not None:
        raise AdminError("an account with this e-mail address exists; sign in instead", "email")
    slug = (slug or "").strip().lower()
    problem = account_problem(name, slug, password, confirm)
    if problem:
        raise AdminError(problem[1], problem[0])
    try:
        with db.atomic():
            return _create_member(email, name, slug, password, False)
    except IntegrityError:
        raise AdminError("this e-mail address or link name was just taken", "slug") from None


# ---------------------------------------------------------------- people


@dataclass
class Person:
    user: User
    connections: list[Connection]

    @property
    def health(self) -> str:
        """ok | attention (a calendar needs the member) | none (no calendar connected)."""
        if not self.connections:
            return "none"
        if any(c.status in ("needs_reconnect", "error") for c in self.connections):
            return "attention"
        return "ok"


def people() -> list[Person]:
    """Everyone, active first, with their calendar connections."""
    users = list(User.select().order_by(User.is_active.desc(), fn.LOWER(User.name), User.id))
    by_user: dict[int, list[Connection]] = {u.id: [] for u in users}
    for conn in Connection.select().order_by(Connection.id):
        by_user.setdefault(conn.user_id, []).append(conn)
    return [Person(u, by_user.get(u.id, [])) for u in users]


def active_admin_count() -> int:
    return (
        User.select()
        .where(User.is_admin == True, User.is_active == True)  # noqa: E712
        .count()
    )


def set_admin(user: User, value: bool) -> User:
    """Make ``user`` an admin or take it back; the last active admin stays one."""
    with db.atomic():
        fresh = User.get_by_id(user.id)
        if not value and fresh.is_admin and fresh.is_active and active_admin_count() <= 1:
            raise AdminError("the organisation needs at least one admin")
        if value and not fresh.is_active:
            raise AdminError("reactivate this member first")
        User.update(is_admin=value).where(User.id == user.id).execute()
        fresh.is_admin = value
    return fresh


def deactivate(actor: User, user: User) -> User:
    """Close a member's account now; their bookings and history stay.

    Sessions end at the next request (only active users load), API tokens are
    deleted, sealed calendar credentials are wiped and every connection is
    marked "needs reconnect" so no job touches the accounts again. Their
    public pages answer 404 because they filter on ``is_active``.
    """
    if user.id == actor.id:
        raise AdminError("you cannot deactivate your own account")
    with db.atomic():
        fresh = User.get_by_id(user.id)
        if fresh.is_admin and fresh.is_active and active_admin_count() <= 1:
            raise AdminError("the organisation needs at least one admin")
        User.update(is_active=False).where(User.id == user.id).execute()
        Connection.update(
            secret="", status="needs_reconnect", last_error="the member was deactivated"
        ).where(Connection.user == user.id).execute()
        OAuthFlow.delete().where(OAuthFlow.user == user.id).execute()  # sealed grants on offer
        ApiToken.delete().where(ApiToken.user == user.id).execute()
        fresh.is_active = False
    return fresh


def reactivate(user: User) -> User:
    """Let a member back in; they reconnect their calendars (the secrets are gone)."""
    User.update(is_active=True).where(User.id == user.id).execute()
    return User.get_by_id(user.id)


# ---------------------------------------------------------------- job health


@dataclass(frozen=True)
class FailedJob:
    id: str
    func: str
    args: str
    error: str
    ended_at: datetime | None


@dataclass(frozen=True)
class QueueStats:
    name: str
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    workers: int


def _queue():
    from portal.runtime.queue import get_queue

    return get_queue()


def queue_stats() -> QueueStats:
    """Counts of the Kairos queue and its registries; raises RedisError when Redis is down.

    Workers are those heard from lately (``portal.runtime.worker.live_worker_count``), not RQ's
    registry alone: that one forgets live workers when Redis restarts and remembers
    killed ones for minutes.
    """
    from portal.runtime.worker import live_worker_count

    queue = _queue()
    return QueueStats(
        name=queue.name,
        queued=queue.count,
        started=queue.started_job_registry.count,
        scheduled=queue.scheduled_job_registry.count,
        deferred=queue.deferred_job_registry.count,
        failed=queue.failed_job_registry.count,
        workers=live_worker_count(queue),
    )


def _summary(text: str, limit: int = 300) -> str:
    """The last line of a traceback (the exception itself), shortened."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return last if len(last) <= limit else last[: limit - 1] + "…"


def failed_jobs(limit: int = 100) -> list[FailedJob]:
    """RQ's failed registry, newest first."""
    from rq.job import Job

    queue = _queue()
    ids = queue.failed_job_registry.get_job_ids(0, limit - 1, desc=True)
    out = []
    for job in Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer):
        if job is None:
            continue
        result = job.latest_result()
        error = _summary(result.exc_string or "") if result is not None else ""
        try:
            args = json.dumps(list(job.args or []))[:200]
        except (TypeError, ValueError):
            args = ""
        out.append(
            FailedJob(
                id=job.id,
                func=job.func_name or "",
                args=args,
                error=error,
                ended_at=job.ended_at,
            )
        )
    return out


def _outbox_id(job_id: str) -> int | None:
    prefix = "outbox-"
    if job_id.startswith(prefix) and job_id[len(prefix) :].isdigit():
        return int(job_id[len(prefix) :])
    return None


def retry_failed(job_id: str) -> bool:
    """Put a failed job back on its queue; its outbox row (if any) is "enqueued" again."""
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    queue = _queue()
    try:
        queue.failed_job_registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError):
        return False
    row_id = _outbox_id(job_id)
    if row_id is not None:
        Outbox.update(status="enqueued", enqueued_at=to_db(utcnow())).where(
            Outbox.id == row_id, Outbox.status != "done"
        ).execute()
    return True


def discard_failed(job_id: str) -> bool:
    """Forget a failed job; its outbox row stays "failed", the record that the work was dropped."""
    from rq.exceptions import NoSuchJobError

    queue = _queue()
    registry = queue.failed_job_registry
    if job_id not in registry:
        return False
    try:
        registry.remove(job_id, delete_job=True)
    except NoSuchJobError:
        registry.remove(job_id)
    return True


OUTBOX_BACKLOG = ("pending", "enqueued", "failed")


def outbox_backlog(limit: int = 50) -> tuple[dict[str, int], list[Outbox]]:
    """Counts of unfinished outbox rows by status, and the oldest of them (failed first)."""
    counts = {status: 0 for status in OUTBOX_BACKLOG}
    for status, count in (
        Outbox.select(Outbox.status, fn.COUNT(Outbox.id))
        .where(Outbox.status.in_(OUTBOX_BACKLOG))
        .group_by(Outbox.status)
        .tuples()
    ):
        counts[status] = count
    order = {"failed": 0, "enqueued": 1, "pending": 2}
    rows = list(
        Outbox.select()
        .where(Outbox.status.in_(OUTBOX_BACKLOG))
        .order_by(Outbox.created_at, Outbox.id)
        .limit(limit * 3)
    )
    rows.sort(key=lambda r: (order[r.status], r.created_at, r.id))
    return counts, rows[:limit]


def connections_health() -> list[Connection]:
    """Every connection with its member, trouble first."""
    rows = list(Connection.select(Connection, User).join(User).order_by(Connection.id))
    rank = {"needs_reconnect": 0, "error": 1, "syncing": 2, "ok": 3}
    rows.sort(key=lambda c: (rank.get(c.status, 4), c.id))
    return rows
