"""Outbox handlers of the team features: invitation e-mails, and co-workers on a meeting.

Like every handler they re-read the database and send only what is still
true; ``portal.notify.mail.send_once`` makes a second run of the same message a no-op.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from jobs.outbox import handler
from portal import clock, i18n
from portal.models import Booking, BookingAttendee, Invite, User, from_db, hash_token
from portal.notify import booking_mail, mail
from portal.notify.ical import meeting_link, meeting_title
from portal.org import invites
from portal.runtime.appconfig import external_url

log = logging.getLogger(__name__)

# The status a booking must still have for the message about each event to make sense.
EVENT_STATUS = {"created": "confirmed", "cancelled": "cancelled"}
SUBJECTS = {
    "created": _l("Invitation: %(title)s with %(host)s on %(when)s"),
    "cancelled": _l("Cancelled: %(title)s with %(other)s on %(when)s"),
}


@handler("invite_email")
def invite_email(invite_id: int, now: str | datetime | None = None, locale: str = "") -> int:
    """E-mail the invitation link, unless it was accepted, revoked or expired meanwhile.

    The invited person has no account, hence no language setting yet: the message is in
    ``locale``, the language of the request that invited them (English without one).
    """
    when = clock.given_or_now(now, wall=True)
    invite = Invite.get_or_none(Invite.id == invite_id)
    if invite is None:
        return 0
    token = invites.open_token(invite, when)
    if not token or hash_token(token) != invite.token_hash:
        return 0  # accepted, revoked, expired, or the secret key changed
    inviter = User.get_or_none(User.id == invite.invited_by_id) if invite.invited_by_id else None
    brand = mail.sender().display_name or "Kairos"
    expires = from_db(invite.expires_at)
    assert expires is not None
    key = f"invite:{invite.id}"
    with i18n.in_locale(mail.locale_for(None, locale)):
        if inviter is not None:
            subject = _("%(name)s invites you to %(brand)s", name=inviter.display_name, brand=brand)
        else:
            subject = _("Your team invites you to %(brand)s", brand=brand)
        text, html = mail.render(
            "invite",
            subject=subject,
            brand=brand,
            inviter_name=inviter.display_name if inviter else _("Your administrator"),
            accept_url=external_url(invites.invite_path(invite)),
            expires=f"{i18n.moment(expires, 'full')} (UTC)",
        )
        msg = mail.compose(
            key,
            mail.address("", invite.email),
            subject,
            text,
            html,
            reply_to=mail.address(inviter.display_name, inviter.email) if inviter else None,
            now=when,
        )
    return int(mail.send_once(key, msg, now=when))


@handler("meeting_attendees")
def meeting_attendees(booking_id: int, event: str, now: str | datetime | None = None) -> int:
    """Tell each co-worker on a host's meeting that it was set up or cancelled.

    The booking's invitee (the first co-worker) already gets the booking
    e-mails (``jobs.mail.notify``); everyone else gets this message, in their
    own time zone, with the meeting as an ``.ics``.
    """
    if event not in EVENT_STATUS:
        return 0
    booking = Booking.get_or_none(Booking.id == booking_id)
    if booking is None or booking.status != EVENT_STATUS[event]:
        return 0
    when = clock.given_or_now(now, wall=True)
    rows = list(
        BookingAttendee.select()
        .where(BookingAttendee.booking == booking.id)
        .order_by(BookingAttendee.id)
    )
    everyone = [(a.name, a.email) for a in rows]
    method = "CANCEL" if event == "cancelled" else "REQUEST"
    brand = mail.sender().display_name or "Kairos"
    sent = 0
    for row in rows:
        if row.email == booking.invitee_email:
            continue
        user = User.get_or_none(User.id == row.user_id)
        if user is None or not user.is_active:
            continue
        key = f"booking:{booking.id}:{event}:attendee{user.id}:seq{booking.sequence}"
        with i18n.in_locale(mail.locale_for(user)):
            msg = _attendee_message(booking, event, user, everyone, brand, method, key, when)
        sent += int(mail.send_once(key, msg, booking_id=booking.id, now=when))
    return sent


def _attendee_message(
    booking: Booking,
    event: str,
    user: User,
    everyone: list[tuple[str, str]],
    brand: str,
    method: str,
    key: str,
    when: datetime,
) -> EmailMessage:
    """The message to co-worker ``user``, in their zone (and the current locale)."""
    host: User = booking.host
    tz = booking_mail.zone_of(user.timezone)
    title = meeting_title(booking)
    subject = str(SUBJECTS[event]) % {
        "title": title,
        "host": host.display_name,
        "other": host.display_name,
        "when": booking_mail.when_short(booking.start_utc, tz),
    }
    text, html = mail.render(
        "meeting_attendee",
        subject=subject,
        brand=brand,
        event=event,
        recipient_name=user.display_name,
        host_name=host.display_name,
        host_email=host.email,
        attendees=everyone,
        title=title,
        when=booking_mail.when_long(booking.start_utc, booking.end_utc, tz),
        meeting_link=meeting_link(booking),
    )
    ics = booking_mail.ics_attachment(booking, method, when, external_url("/settings/"))
    return mail.compose(
        key,
        mail.address(user.display_name, user.email),
        subject,
        text,
        html,
        (ics,),
        reply_to=mail.address(host.display_name, host.email),
        from_name=_("%(name)s via %(brand)s", name=host.display_name, brand=brand),
        now=when,
    )
