"""Outbox handler: tell the host when a booking has no video link after all.

Recorded when a booking is made while a Meet/Teams link cannot be created
(no calendar for new bookings, or one at another provider), or a personal
link is missing, and when the calendar write-back gives up or the provider
makes no conference (``portal.booking.locations``). The booking itself stands; the
host is asked to send the invitee a link. Sent once per booking and sequence.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from jobs.outbox import handler
from portal import clock, i18n
from portal.models import Booking, User
from portal.notify import booking_mail, mail
from portal.notify.ical import host_url, meeting_title


@handler("join_link_failed")
def join_link_failed(booking_id: int, now: str | datetime | None = None) -> int:
    """E-mail the host that this booking has no join link — if that is still true."""
    when = clock.given_or_now(now)
    booking = Booking.get_or_none(Booking.id == booking_id)
    if booking is None or booking.status != "confirmed" or booking.join_status != "failed":
        return 0
    if booking.start_utc <= when:
        return 0  # the meeting has begun; an e-mail now helps no one
    host: User = booking.host
    tz = booking_mail.zone_of(host.timezone)
    key = f"join_link_failed:{booking.id}:seq{booking.sequence}"
    with i18n.in_locale(mail.locale_for(host)):
        title = meeting_title(booking)
        msg = mail.host_message(
            host,
            key,
            "join_link_failed",
            _("No video link for %(title)s with %(name)s", title=title, name=booking.invitee_name),
            now=when,
            title=title,
            invitee_name=booking.invitee_name,
            invitee_email=booking.invitee_email,
            when=booking_mail.when_long(booking.start_utc, booking.end_utc, tz),
            reason=booking.join_error or _("the calendar did not create one"),
            booking_url=host_url(booking),
        )
    return int(mail.send_once(key, msg, booking_id=booking.id, now=when))
