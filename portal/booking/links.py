"""The invitee's manage link: a secret rebuilt from the booking whenever needed, never stored."""

from __future__ import annotations

import hmac

from portal.models import Booking, hash_token
from portal.tokens import derived_token


def manage_token(booking: Booking) -> str:
    """Rebuild the invitee's secret: HMAC over the uid and a random 128-bit salt."""
    return derived_token("manage", booking.uid, booking.manage_salt)


def manage_path(booking: Booking) -> str:
    return f"/booking/{booking.uid}?token={manage_token(booking)}"


def find_managed(uid: str, token: str) -> Booking | None:
    """The booking behind a manage link, or None (constant-time on the token)."""
    if not token or len(token) > 200:
        return None
    booking = Booking.get_or_none(Booking.uid == uid)
    if booking is None:
        return None
    if not hmac.compare_digest(booking.manage_token_hash, hash_token(token)):
        return None
    return booking
