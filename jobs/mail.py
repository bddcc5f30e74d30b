"""Outbox handlers that send e-mail. Each re-reads the database and decides afresh.

A handler may run late (Redis was down), twice (a retry, a re-relayed row)
or after the booking changed again, so it never trusts its payload beyond
ids: it sends only what is still true, and ``portal.notify.mail.send_once`` makes a
second run of the same message a no-op.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from jobs.outbox import handler
from portal import clock, i18n
from portal.booking import locations
from portal.models import (
    Booking,
    Connection,
    PasswordReset,
    SentEmail,
    User,
    from_db,
    hash_token,
    to_db,
)
from portal.notify import booking_mail, mail
from portal.org.passwords import live_token
from portal.runtime.appconfig import external_url

log = logging.getLogger(__name__)

# The status a booking must still have for the message about each event to make sense.
EVENT_STATUS = {"created": "confirmed", "rescheduled": "confirmed", "cancelled": "cancelled"}
# At most one "reconnect" e-mail per connection in this period, however often it is recorded.
ACTION_MAIL_EVERY = timedelta(hours=24)
PROVIDER_NAMES = {
    "google": "Google Calendar",
    "microsoft": "Microsoft 365 / Outlook",
    "exchange": "Exchange",
    "caldav": "CalDAV",
    "ics": _l("ICS feed"),
}


@handler("notify")
def notify(booking_id: int, event: str, now: str | datetime | None = None) -> int:
    """Tell the invitee and the host that a booking was created, moved or cancelled.

    A confirmation for a booking that was cancelled or moved again before this
    job ran is skipped: the later event's own message says what is true now
    (and its higher SEQUENCE wins in calendars anyway).
    """
    if event not in EVENT_STATUS:
        raise ValueError(f"unknown booking event {event!r}")
    booking = Booking.get_or_none(Booking.id == booking_id)
    if booking is None:
        log.info("notify: booking %s is gone; nothing to send", booking_id)
        return 0
    if booking.status != EVENT_STATUS[event]:
        log.info("notify: booking %s is %s; no %s message", booking_id, booking.status, event)
        return 0
    when = clock.given_or_now(now, wall=True)
    if locations.wait_for_link(booking, "notify", event, now=when):
        log.info("notify: booking %s waits for its video link", booking_id)
        return 0  # recorded again; the write-back wakes it as soon as the link is made
    return sum(
        booking_mail.send_booking_message(booking, event, role, when) for role in booking_mail.ROLES
    )


@handler("reminder")
def reminder(booking_id: int, start: str, offset: int, now: str | datetime | None = None) -> int:
    """Remind both sides ``offset`` minutes before ``start`` — if that meeting still stands.

    Recorded at booking (and reschedule) time with ``run_at = start - offset``;
    skipped when the booking was cancelled or moved (its start differs from the
    one this reminder was scheduled for) or when the meeting has already begun.
    """
    booking = Booking.get_or_none(Booking.id == booking_id)
    if booking is None or booking.status != "confirmed":
        return 0
    scheduled_for = datetime.fromisoformat(start).astimezone(UTC)
    if booking.start_utc != scheduled_for:
        log.info("reminder: booking %s moved; skipping the old reminder", booking_id)
        return 0
    # "Already begun" is a booking rule: judged on the app's clock (portal.clock).
    when = clock.given_or_now(now)
    if when >= booking.start_utc:
        log.info("reminder: booking %s already started; too late to remind", booking_id)
        return 0
    return sum(
        booking_mail.send_booking_message(booking, "reminder", role, when, offset=int(offset))
        for role in booking_mail.ROLES
    )


@handler("host_action_required")
def host_action_required(
    connection_id: int, now: str | datetime | None = None, **_details: object
) -> int:
    """Ask a host to reconnect a calendar account that needs it (still, when this runs).

    One message per episode: the key carries the connection's last successful
    sync, which only moves once the host has reconnected; on top of that at
    most one such message per connection per day.
    """
    when = clock.given_or_now(now, wall=True)
    conn = Connection.get_or_none(Connection.id == connection_id)
    if conn is None or conn.status not in ("needs_reconnect", "error"):
        return 0
    user = User.get_or_none(User.id == conn.user_id)
    if user is None or not user.is_active:
        return 0
    prefix = f"connection:{conn.id}:reconnect:"
    recent = SentEmail.select().where(
        SentEmail.key.startswith(prefix),
        SentEmail.status == "sent",
        SentEmail.sent_at > to_db(when - ACTION_MAIL_EVERY),
    )
    if recent.exists():
        return 0
    synced = from_db(conn.last_synced_at)
    key = prefix + (synced.isoformat() if synced else "never")
    writes = any(c.write for c in conn.calendars)
    # A member's calendar reached through the organisation's Exchange mailbox is
    # repaired by the admin, not by the member.
    corporate = bool(conn.settings_dict().get("corporate"))
    with i18n.in_locale(mail.locale_for(user)):
        msg = mail.host_message(
            user,
            key,
            "host_action_required",
            _("Action required: reconnect your calendar"),
            now=when,
            provider=str(PROVIDER_NAMES.get(conn.provider, conn.provider)),
            label=conn.label or conn.provider,
            error=(conn.last_error or "")[:500],
            writes=writes,
            corporate=corporate,
            settings_url=external_url("/settings/connections"),
        )
    return int(mail.send_once(key, msg, now=when))


@handler("password_reset")
def password_reset(reset_id: int, now: str | datetime | None = None, locale: str = "") -> int:
    """Send the reset link, unless it was used, expired, or the password changed meanwhile.

    Written in the user's language, else ``locale`` (the request that asked for it).
    """
    when = clock.given_or_now(now, wall=True)
    reset = PasswordReset.get_or_none(PasswordReset.id == reset_id)
    if reset is None:
        return 0
    token = live_token(reset, when)
    if not token or hash_token(token) != reset.token_hash:
        return 0  # used, expired, or the password changed: this link would not work
    user = User.get_by_id(reset.user_id)
    tz = booking_mail.zone_of(user.timezone)
    expires = from_db(reset.expires_at).astimezone(tz)  # type: ignore[union-attr]
    key = f"password_reset:{reset.id}"
    with i18n.in_locale(mail.locale_for(user, locale)):
        msg = mail.host_message(
            user,
            key,
            "password_reset",
            _("Reset your password"),
            now=when,
            reset_url=external_url(f"/password/reset/{token}"),
            expires=f"{i18n.moment(expires, 'full')} ({tz.key})",
        )
    return int(mail.send_once(key, msg, now=when))
