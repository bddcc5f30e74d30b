"""The public pages' own error page (403, 404, 429), shown inside the host's iframe too."""

from __future__ import annotations

from flask import Response, g, request, url_for

from portal.models import Booking, User
from portal.web.public import bp
from portal.web.public.gates import allow_framing, page_endpoint
from portal.web.render import render

TITLES = {
    403: "This request was refused",
    404: "Page not found",
    429: "Too many attempts",
}
MESSAGES = {
    404: "There is no booking page here. Please check the link you were given.",
    429: "Please wait a minute before trying again.",
}


@bp.errorhandler(403)
@bp.errorhandler(404)
@bp.errorhandler(429)
def error_page(exc):
    code = exc.code or 500
    message = MESSAGES.get(code) or exc.description or ""
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
        back = url_for(page_endpoint(embed), host=args["host"], type_slug=args["type_slug"])
    body, status = render(
        "public/error.html",
        title=TITLES.get(code, "Error"),
        message=message,
        back=back,
        embed=embed,
        status=code,
    )
    return Response(body, status)
