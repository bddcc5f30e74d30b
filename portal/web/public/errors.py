"""The public pages' own error page (403, 404, 429), shown inside the host's iframe too."""

from __future__ import annotations

from flask import Response, g, request, url_for
from flask_babel import lazy_gettext as _l

from portal.models import Booking, User
from portal.web.public import bp, lang_args
from portal.web.public.gates import allow_framing, page_endpoint
from portal.web.render import render

TITLES = {
    403: _l("This request was refused"),
    404: _l("Page not found"),
    429: _l("Too many attempts"),
}
MESSAGES = {
    404: _l("There is no booking page here. Please check the link you were given."),
    429: _l("Please wait a minute before trying again."),
}
# A refusal that gave no reason of its own (werkzeug's English description).
REFUSED = _l("This page cannot be shown here.")


@bp.errorhandler(403)
@bp.errorhandler(404)
@bp.errorhandler(429)
def error_page(exc):
    code = exc.code or 500
    own = exc.description if exc.description != type(exc).description else ""
    message = str(MESSAGES.get(code) or own or (REFUSED if code == 403 else ""))
    args = request.view_args or {}
    embed = bool(args.get("embed"))
    if code != 404 and not g.get("frame_ancestors"):
        # Refused before the view ran (the rate limit): still show the page in the frame.
        host = None
        if "host" in args:
            host = User.get_or_none(User.slug == args["host"])
        elif "uid" in args:
            found = Booking.get_or_none(Booking.uid == args["uid"])
            host = User.get_or_none(User.id == found.host_id) if found else None
        if host is not None:
            allow_framing(host)
    back = None
    if code != 404 and "type_slug" in args:
        values = {"host": args["host"], "type_slug": args["type_slug"], **lang_args()}
        back = url_for(page_endpoint(embed), **values)
    body, status = render(
        "public/error.html",
        title=str(TITLES.get(code, _l("Error"))),
        message=message,
        back=back,
        embed=embed,
        status=code,
    )
    return Response(body, status)
