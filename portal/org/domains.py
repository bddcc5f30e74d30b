"""E-mail addresses and domains as the organisation's rules read them (sign-up, connecting)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _

from portal.org.errors import AdminError

MAX_DOMAINS = 50


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
            raise ValueError(
                _("“%(text)s” is not an e-mail domain like example.com", text=part)
            ) from None
        if domain not in out:
            out.append(domain)
    if len(out) > MAX_DOMAINS:
        raise ValueError(_("at most %(num)d domains", num=MAX_DOMAINS))
    return out


def clean_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AdminError(_("this is not a valid e-mail address"), "email") from exc
