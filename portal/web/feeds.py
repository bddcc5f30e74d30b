"""The private ICS feed: ``/feeds/<token>.ics`` (see ``portal.notify.feeds``).

No session and no CSRF: the secret token is the credential, which is what
calendar apps that subscribe to a URL can send. An unknown, revoked or
malformed token is a plain 404, the same as for a page that never existed.
Registered before the public catch-all routes, and ``feeds`` is a reserved
slug, so no host can shadow it.
"""

from __future__ import annotations

import hashlib
import re

from flask import Blueprint, Response, abort, request

from portal.notify import feeds

bp = Blueprint("feeds", __name__)

_DTSTAMP = re.compile(rb"DTSTAMP:[^\r\n]*\r\n")


@bp.get("/feeds/<token>.ics")
def feed(token: str):
    """The host's bookings as iCalendar; conditional GETs get 304 while nothing changed."""
    user = feeds.find_host(token)
    if user is None:
        abort(404)
    body = feeds.feed_ics(user)
    response = Response(body, mimetype="text/calendar")  # text/*: "; charset=utf-8" added
    # DTSTAMP is "now" in every answer; the version tag ignores it so unchanged feeds match.
    response.set_etag(hashlib.sha256(_DTSTAMP.sub(b"", body)).hexdigest()[:32])
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Content-Disposition"] = 'inline; filename="kairos.ics"'
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response.make_conditional(request)
