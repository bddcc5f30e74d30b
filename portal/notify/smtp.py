"""E-mail delivery: each message handed to SMTP, or written as an ``.eml`` file into the
outbox folder; ``portal.notify.mail.send_once`` makes sure it happens once.

``SMTP_URL``
------------
``smtp://host[:port]``
    Plain SMTP (port 25 by default), e.g. a local relay.
``smtp://user:password@host:587?starttls=1``
    SMTP upgraded with STARTTLS before authenticating (port 587, "submission").
``smtps://user:password@host[:465]``
    Implicit TLS from the first byte (port 465).

User and password are percent-encoded (``@`` → ``%40``). Query options:
``starttls=1``, ``timeout=SECONDS`` (default 30) and ``cafile=/path/ca.pem`` to
trust a private CA; certificates are always verified. With ``SMTP_URL`` unset,
every message is written as an ``.eml`` file into ``OUTBOX_MAIL_DIR`` (the
``outbox`` folder of the instance folder), readable by any mail client.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

from portal.models import utcnow


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str = "none"  # none | starttls | implicit
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    cafile: str | None = None


def parse_smtp_url(url: str) -> SmtpSettings:
    """Read ``SMTP_URL`` (see the module docstring); ValueError names what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - {"starttls", "timeout", "cafile"}
    if unknown:
        raise ValueError(f"SMTP_URL: unknown option(s) {', '.join(sorted(unknown))}")
    starttls = query.get("starttls", "").lower() in ("1", "true", "yes", "on")
    if parts.scheme == "smtps" and starttls:
        raise ValueError("SMTP_URL: smtps:// is already TLS; drop starttls=1 or use smtp://")
    try:
        port = parts.port
        timeout = float(query.get("timeout") or 30)
    except ValueError as exc:
        raise ValueError(f"SMTP_URL: {exc}") from exc
    if timeout <= 0:
        raise ValueError("SMTP_URL: timeout must be positive")
    tls = "implicit" if parts.scheme == "smtps" else ("starttls" if starttls else "none")
    default_port = {"implicit": 465, "starttls": 587, "none": 25}[tls]
    return SmtpSettings(
        host=parts.hostname,
        port=port or default_port,
        tls=tls,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        timeout=timeout,
        cafile=query.get("cafile") or None,
    )


def deliver(msg: EmailMessage) -> str:
    """Hand one message to SMTP, or write it to the outbox folder; returns where it went."""
    url = current_app.config.get("SMTP_URL") or ""
    if url:
        settings = parse_smtp_url(url)
        _smtp_send(msg, settings)
        return f"smtp://{settings.host}:{settings.port}"
    return _write_eml(msg, current_app.config["OUTBOX_MAIL_DIR"])


def _smtp_send(msg: EmailMessage, s: SmtpSettings) -> None:
    context = ssl.create_default_context(cafile=s.cafile) if s.tls != "none" else None
    client: smtplib.SMTP
    if s.tls == "implicit":
        client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
    else:
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
    with client:
        if s.tls == "starttls":
            client.starttls(context=context)
        if s.username:
            client.login(s.username, s.password)
        # Explicit envelope: recipients never come from parsing our own headers.
        client.send_message(
            msg,
            from_addr=msg["From"].addresses[0].addr_spec,
            to_addrs=[a.addr_spec for a in msg["To"].addresses],
        )


def _write_eml(msg: EmailMessage, folder: str) -> str:
    """Write atomically (temp file + rename), private to the owner: links carry secrets."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    digest = hashlib.sha256(str(msg["Message-ID"]).encode()).hexdigest()[:12]
    path = os.path.join(folder, f"{stamp}-{digest}.eml")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(msg.as_bytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
