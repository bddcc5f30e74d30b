"""Organisation settings: which calendar providers members may connect, who may connect
calendars at all, and who may sign up by themselves.

They are ``AppSetting`` rows. ``provider_allowed`` is the one answer to "may this
member connect this provider?" — the admin's per-provider switch
(``provider_enabled:<name>``, on by default) and the rule for who may connect
calendars at all. ``portal.calendars.sync``, the OAuth flows and the connect
buttons all ask it. :func:`save_organisation` stores the whole Organisation page
at once, so a refusal leaves every setting as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.models import AppSetting, User, db
from portal.org.domains import email_domain
from portal.org.errors import AdminError
from portal.org.member_defaults import MemberDefaults, member_defaults, save_member_defaults

PROVIDERS = ("google", "microsoft", "exchange", "caldav", "ics")
PROVIDER_TITLES = {
    "google": "Google Calendar",
    "microsoft": "Microsoft 365 / Outlook",
    "exchange": _l("Exchange (personal)"),
    "caldav": "CalDAV / iCloud",
    "ics": _l("ICS feed"),
}
CONNECT_POLICIES = ("everyone", "members", "domains")

# ---------------------------------------------------------------- calendar providers


def provider_enabled(provider: str) -> bool:
    """The admin's "allow personal connections" switch for ``provider`` (on by default)."""
    return bool(AppSetting.read(f"provider_enabled:{provider}", True))


def save_providers(enabled: dict[str, bool]) -> None:
    with db.atomic():
        for name in PROVIDERS:
            AppSetting.write(f"provider_enabled:{name}", bool(enabled.get(name, True)))


# ---------------------------------------------------------------- who may connect calendars


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


def _existing(members: frozenset[int]) -> frozenset[int]:
    """The ids among ``members`` that name an account (a form may send any number)."""
    if not members:
        return frozenset()
    return frozenset(u.id for u in User.select(User.id).where(User.id.in_(list(members))))


def connect_rule_problem(rule: ConnectRule) -> tuple[str, str] | None:
    """(field, message) when ``rule`` cannot be saved."""
    if rule.policy not in CONNECT_POLICIES:
        return "connect_policy", _("choose who may connect calendars")
    if rule.policy == "domains" and not rule.domains:
        return "connect_domains", _("name at least one domain")
    if rule.policy == "members" and not _existing(rule.members):
        return "connect_policy", _("tick at least one member, or choose another option")
    return None


def save_connect_rule(rule: ConnectRule) -> None:
    problem = connect_rule_problem(rule)
    if problem:
        raise AdminError(problem[1], problem[0])
    AppSetting.write(
        "connect_policy",
        {
            "policy": rule.policy,
            "members": sorted(_existing(rule.members)),
            "domains": list(rule.domains),
        },
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
    return _("your organisation does not allow connecting %(provider)s accounts", provider=title)


def not_allowed_sentence(provider: str) -> str:
    """The same refusal as a sentence of its own (flash messages)."""
    message = not_allowed_message(provider)
    return message[0].upper() + message[1:] + "."


# ---------------------------------------------------------------- self-signup


def self_signup_enabled() -> bool:
    return bool(AppSetting.read("self_signup", False))


def signup_domains() -> list[str]:
    value = AppSetting.read("signup_domains", [])
    return [str(d) for d in value] if isinstance(value, list) else []


def signup_allowed(email: str) -> bool:
    """Self-signup is on and the address is in one of the allowed domains (none = nobody)."""
    return self_signup_enabled() and email_domain(email) in signup_domains()


def signup_problem(enabled: bool, domains: list[str]) -> tuple[str, str] | None:
    """(field, message) when self-signup cannot be saved like this."""
    if enabled and not domains:
        return "signup_domains", _("name the e-mail domains that may sign up")
    return None


def save_signup(enabled: bool, domains: list[str]) -> None:
    problem = signup_problem(enabled, domains)
    if problem:
        raise AdminError(problem[1], problem[0])
    with db.atomic():
        AppSetting.write("self_signup", bool(enabled))
        AppSetting.write("signup_domains", list(domains))


# ---------------------------------------------------------------- the Organisation page


@dataclass(frozen=True)
class Organisation:
    """Every setting of the admin's Organisation page, read and saved together."""

    self_signup: bool
    signup_domains: list[str]
    providers: dict[str, bool]
    connect: ConnectRule
    defaults: MemberDefaults


def organisation() -> Organisation:
    """The settings as stored now."""
    return Organisation(
        self_signup=self_signup_enabled(),
        signup_domains=signup_domains(),
        providers={name: provider_enabled(name) for name in PROVIDERS},
        connect=connect_rule(),
        defaults=member_defaults(),
    )


def organisation_problems(org: Organisation) -> list[tuple[str, str]]:
    """(field, message) for every setting that cannot be saved as given."""
    found = (signup_problem(org.self_signup, org.signup_domains), connect_rule_problem(org.connect))
    return [problem for problem in found if problem]


def save_organisation(org: Organisation) -> None:
    """Store every setting of the page, or (AdminError) none of them."""
    with db.atomic():
        save_signup(org.self_signup, org.signup_domains)
        save_providers(org.providers)
        save_connect_rule(org.connect)
        save_member_defaults(org.defaults)
