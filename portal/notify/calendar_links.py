"""Links "Add to Google Calendar" and "Add to Outlook" for a booking, beside its ``.ics``.

Both services open their own "new event" form pre-filled from the query string, so the
invitee keeps the event in their calendar without a file. The details carry where the
meeting happens and the manage link, as the ``.ics`` does; the invitee's notes and
answers stay out of the URL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from flask_babel import gettext as _

from portal.models import Booking
from portal.notify.ical import manage_url, meeting_link, meeting_title

GOOGLE = "https://calendar.google.com/calendar/render"
OUTLOOK = "https://outlook.live.com/calendar/0/action/compose"


def google(title: str, start: datetime, end: datetime, details: str, location: str) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    dates = f"{start.astimezone(UTC):{stamp}}/{end.astimezone(UTC):{stamp}}"
    query = {"action": "TEMPLATE", "text": title, "dates": dates, "details": details}
    if location:
        query["location"] = location
    return f"{GOOGLE}?{urlencode(query)}"


def outlook(title: str, start: datetime, end: datetime, details: str, location: str) -> str:
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    query = {
        "rru": "addevent",
        "subject": title,
        "startdt": f"{start.astimezone(UTC):{stamp}}",
        "enddt": f"{end.astimezone(UTC):{stamp}}",
        "body": details,
    }
    if location:
        query["location"] = location
    return f"{OUTLOOK}?{urlencode(query)}"


def for_booking(booking: Booking, manage: str | None = None) -> dict[str, str]:
    """``{"google": url, "outlook": url}`` for the invitee's copy of ``booking``, its
    texts in the current locale."""
    host = booking.host.display_name
    title = _("%(title)s with %(name)s", title=meeting_title(booking), name=host)
    where = meeting_link(booking)
    lines = [_("Where: %(link)s", link=where)] if where else []
    lines.append(_("Change or cancel: %(url)s", url=manage or manage_url(booking)))
    details = "\n\n".join(lines)
    args = (title, booking.start_utc, booking.end_utc, details, where)
    return {"google": google(*args), "outlook": outlook(*args)}
