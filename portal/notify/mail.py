"""E-mail: messages composed from templates and delivered once (``portal.notify.smtp``
carries them; ``portal.notify.booking_mail`` writes the ones about bookings).

Exactly once
------------
Jobs may run twice (RQ retries, a relay that re-sends a stale row). Every
message has a key (booking + event + recipient + sequence, see ``jobs.mail``),
and :func:`send_once` claims a ``SentEmail`` row under that key in its own
committed transaction *before* talking to SMTP:

- claimed → deliver → mark "sent"; a second run finds "sent" and does nothing;
- delivery raises → the claim is released and the error re-raised, so RQ's
  backoff retries it and nothing was sent twice;
- the worker dies between SMTP accepting and "sent" being recorded → the
  claim stays "sending"; once it is older than ``claim_timeout()`` (one outbox
  lease: a live run renews its claim while it talks to SMTP) a rerun takes it
  over and sends again. That window makes e-mail *at-least-once*: a missing
  confirmation is worse than a rare duplicate, and the duplicate carries the
  same ``Message-ID`` (derived from the key), which mail clients collapse.

Inert invitee text
------------------
HTML templates are autoescaped. Every ``{{ value }}`` in any template (HTML or
text) first passes :func:`inert`, which drops control and bidi-override
characters; text parts are ``text/plain`` and never interpreted, so they are
not HTML-escaped (a name like "Tom & Jerry" stays readable). Header values go
through :func:`header_text` (one line, no encoded-word smuggling) and then
``email.headerregistry`` (quoting of names with quotes and commas), and
:func:`compose` refuses any header that still decodes to a line break.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import format_datetime, parseaddr
from typing import Any

from flask import Flask, current_app
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from peewee import IntegrityError

from portal import i18n
from portal.models import SentEmail, User, db, from_db, to_db, utcnow
from portal.notify.ical import one_line
from portal.notify.smtp import deliver, parse_smtp_url
from portal.runtime.lease import lease_seconds, renewing

log = logging.getLogger(__name__)


def claim_timeout() -> timedelta:
    """A claim older than this belongs to a run that died mid-send.

    A live run renews its claim while SMTP talks (``portal.runtime.lease``), however slow
    the server, so one lease without renewal means the holder is gone; RQ's first
    retries come that soon, and the message goes out within about a minute.
    """
    return timedelta(seconds=lease_seconds())


# Lines up to RFC 5322's hard limit: the library's folding at 78 columns can drop the
# quotes around a display name with commas (splitting one address into several).
SMTP_POLICY = policy.SMTP.clone(max_line_length=998)
SMTPUTF8_POLICY = policy.SMTPUTF8.clone(max_line_length=998)


class ClaimBusy(Exception):
    """Another run is sending this message right now; retry later (RQ backoff)."""


def init_app(app: Flask) -> None:
    """Check ``SMTP_URL`` at start-up: a malformed one stops the start, not every e-mail job."""
    if app.config.get("SMTP_URL"):
        parse_smtp_url(app.config["SMTP_URL"])


# ---------------------------------------------------------------- templates

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_envs: dict[str, Environment] = {}


def inert(value: Any) -> Any:
    """Every template value on its way out: CRLF → LF; control and bidi-override chars dropped."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _UNSAFE.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    return value


def _inert_deep(value: Any) -> Any:
    if type(value) in (tuple, list):
        return type(value)(_inert_deep(v) for v in value)
    if isinstance(value, dict):
        return {k: _inert_deep(v) for k, v in value.items()}
    return inert(value)


def template_env() -> Environment:
    """Jinja for ``templates/email``: ``.html`` autoescaped, all values through :func:`inert`."""
    folder = os.path.join(current_app.template_folder or "templates", "email")
    env = _envs.get(folder)
    if env is None:
        env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            finalize=inert,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        i18n.install(env)
        _envs[folder] = env
    return env


def render(name: str, **context: Any) -> tuple[str, str]:
    """The text and HTML bodies of ``email/<name>.txt`` and ``email/<name>.html``, in the
    current locale (``i18n.in_locale``).

    The context is made inert before rendering too: a value that fills a translated
    sentence (``_("Hello %(name)s,", name=…)``) reaches the page inside that sentence's
    (escaped) text, not through ``finalize``.
    """
    env = template_env()
    context = {key: _inert_deep(value) for key, value in context.items()}
    text = env.get_template(f"{name}.txt").render(**context)
    html = env.get_template(f"{name}.html").render(**context)
    return text, html


# ---------------------------------------------------------------- compose


def header_text(value: str) -> str:
    """Text safe for a header: one line, and no RFC 2047 encoded-word introducer.

    ``email.headerregistry`` parses the values it is given and *decodes*
    encoded-words in them, so a name like ``=?utf-8?q?=0D=0ABcc:_x?=`` would
    come out as a real line break and a new header. Breaking up ``=?`` keeps
    such text literal.
    """
    return one_line(value).replace("=?", "= ?")


def address(name: str, email: str) -> Address:
    """A header address: display name on one line, quoted by the library as needed."""
    local, _, domain = email.strip().rpartition("@")
    # Unicode domains go out as IDNA; failing that the SMTPUTF8 policy carries them as is.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return Address(display_name=header_text(name)[:200], username=local, domain=domain)


def sender(display_name: str | None = None) -> Address:
    """``MAIL_FROM``, optionally under another display name ("Alice via Kairos")."""
    name, email = parseaddr(current_app.config.get("MAIL_FROM") or "kairos@localhost")
    return address(display_name or name, email or "kairos@localhost")


def message_id(key: str) -> str:
    """A Message-ID fixed by the message key, so a resend is recognisably the same message."""
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, f"message-id:{key}".encode(), hashlib.sha256).hexdigest()[:32]
    domain = sender().domain or "localhost"
    return f"<{digest}@{domain}>"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "text"
    subtype: str = "calendar"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_itip(self) -> bool:
        """An iCalendar scheduling message (REQUEST, CANCEL …), not just a file."""
        return (self.maintype, self.subtype) == ("text", "calendar") and "method" in self.params


def compose(
    key: str,
    to: Address,
    subject: str,
    text: str,
    html: str,
    attachments: tuple[Attachment, ...] = (),
    reply_to: Address | None = None,
    from_name: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """A multipart message: text and HTML alternatives, then attachments.

    An iCalendar attachment carrying an iTIP ``method`` (an invitation or a
    cancellation) travels the way RFC 6047 and Outlook want it: as a third
    alternative, ``text/calendar; method=…`` beside the text and the HTML,
    which is what makes clients show the invitation with its buttons; and
    once more as an ``invite.ics`` file for clients that only offer
    attachments. The file's Content-Type carries no ``method``, so no client
    processes the invitation twice::

        multipart/mixed
          multipart/alternative: text/plain, text/html, text/calendar; method=REQUEST
          text/calendar (attachment; filename=invite.ics)
    """
    sent_from = sender(from_name)
    international = any(not a.addr_spec.isascii() for a in (to, sent_from, reply_to) if a)
    msg = EmailMessage(policy=SMTPUTF8_POLICY if international else SMTP_POLICY)
    msg["From"] = sent_from
    msg["To"] = to
    if reply_to is not None:
        msg["Reply-To"] = reply_to
    msg["Subject"] = header_text(subject)
    msg["Date"] = format_datetime(now or utcnow(), usegmt=True)
    msg["Message-ID"] = message_id(key)
    # RFC 3834: no vacation auto-replies to notifications.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    invitations = [a for a in attachments if a.is_itip]
    for item in invitations:
        msg.add_alternative(
            item.content,
            maintype="text",
            subtype="calendar",
            params={"charset": "utf-8", **item.params},
        )
    for item in invitations:
        msg.add_attachment(
            item.content,
            maintype="text",
            subtype="calendar",
            filename=item.filename,
            params={"charset": "utf-8", "name": item.filename},
        )
    for item in attachments:
        if item.is_itip:
            continue
        msg.add_attachment(
            item.content,
            maintype=item.maintype,
            subtype=item.subtype,
            filename=item.filename,
            params=item.params,
        )
    check_headers(msg)
    return msg


def check_headers(msg: EmailMessage) -> None:
    """Parse the message as a receiver will and refuse it unless the headers are as built.

    The last line of defence against library quirks: exactly the headers we
    set, each address header exactly the one address we put in it, and no
    value that decodes to a line break.
    """
    # SMTPUTF8 headers travel as UTF-8: read them back as text.
    if getattr(msg.policy, "utf8", False):
        received = HeaderParser(policy=policy.default).parsestr(msg.as_string())
    else:
        received = BytesHeaderParser(policy=policy.default).parsebytes(msg.as_bytes())
    if sorted(received.keys()) != sorted(msg.keys()):
        raise ValueError("refusing a message whose headers do not survive a round trip")
    for name in ("From", "To", "Reply-To"):
        if name not in msg:
            continue
        sent = [a.addr_spec for a in msg[name].addresses]
        got = [a.addr_spec for a in received[name].addresses]
        if sent != got:
            raise ValueError(f"refusing a message whose {name} header reads back as {got}")
    for name, value in received.items():
        if "\r" in str(value) or "\n" in str(value):
            raise ValueError(f"refusing a {name} header with a line break")


def _claim(key: str, to: str, subject: str, booking_id: int | None, now: datetime) -> bool:
    """True when this run owns ``key`` now; False when it was already sent."""
    try:
        with db.atomic():
            SentEmail.create(
                key=key,
                to=to[:255],
                subject=subject[:255],
                booking=booking_id,
                status="sending",
                sent_at=to_db(now),
            )
        return True
    except IntegrityError:
        pass
    row = SentEmail.get_or_none(SentEmail.key == key)
    if row is None:
        raise ClaimBusy(f"claim on {key!r} was just released; retry")
    if row.status == "sent":
        return False
    if from_db(row.sent_at) > now - claim_timeout():  # type: ignore[operator]
        raise ClaimBusy(f"{key!r} is being sent by another run")
    # The holder died mid-send: take the claim over (compare-and-swap on its time).
    taken = (
        SentEmail.update(sent_at=to_db(now))
        .where(
            SentEmail.key == key, SentEmail.status == "sending", SentEmail.sent_at == row.sent_at
        )
        .execute()
    )
    if not taken:
        raise ClaimBusy(f"{key!r} was taken over by another run")
    log.warning("mail: taking over stale claim %s (the message may go out twice)", key)
    return True


def send_once(
    key: str, msg: EmailMessage, booking_id: int | None = None, now: datetime | None = None
) -> bool:
    """Deliver ``msg`` unless a message with ``key`` was sent; True when sent by this call.

    Must not run inside an open transaction: the claim has to be committed
    before SMTP is contacted, or a concurrent run could not see it.
    """
    clock = now or utcnow()
    to = str(msg["To"])
    subject = str(msg["Subject"])
    if not _claim(key, to, subject, booking_id, clock):
        log.info("mail: %s already sent; skipping", key)
        return False
    started = time.monotonic()

    def renew_claim() -> None:
        # Claim times are on the caller's clock (``now``): advance by real time elapsed.
        stamp = clock + timedelta(seconds=time.monotonic() - started)
        with db.connection_context():
            SentEmail.update(sent_at=to_db(stamp)).where(
                SentEmail.key == key, SentEmail.status == "sending"
            ).execute()

    try:
        with renewing(renew_claim, every=claim_timeout().total_seconds() / 4, what=key):
            where = deliver(msg)
    except BaseException:
        SentEmail.delete().where(SentEmail.key == key, SentEmail.status == "sending").execute()
        raise
    sent_at = utcnow() if now is None else now
    SentEmail.update(status="sent", sent_at=to_db(sent_at)).where(SentEmail.key == key).execute()
    log.info("mail: sent %s to %s via %s", key, to, where)
    return True


# ---------------------------------------------------------------- languages


def locale_for(user: User | None, asked: str = "") -> str:
    """The language a message to ``user`` is written in: their setting, else ``asked``
    (the language of the request that caused it), else English. For ``i18n.in_locale``."""
    own = user.locale if user is not None else ""
    return i18n.known(own) or i18n.known(asked) or i18n.DEFAULT


# ---------------------------------------------------------------- host messages


def host_message(
    user: User, key: str, template: str, subject: str, now: datetime | None = None, **ctx: Any
) -> EmailMessage:
    """A message to a host that is not about one booking (reconnect, password reset).

    Call it inside ``i18n.in_locale(locale_for(user, …))``: the subject and the values
    given are already in that language, and the templates render in it.
    """
    context = {"recipient_name": user.display_name, "brand": sender().display_name or "Kairos"}
    text, html = render(template, subject=subject, **(context | ctx))
    return compose(key, address(user.display_name, user.email), subject, text, html, now=now)
