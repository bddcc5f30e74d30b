"""What the running app hands to framework-free code: absolute URLs and the live-check timeout.

The booking domain (``portal.booking``) reads no Flask config and no request; views, the
API, jobs and the CLI read them here and pass plain values in.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request


def external_url(path: str) -> str:
    """Absolute URL: ``BASE_URL``, else the request's host, else http://localhost:5000.

    Jobs (e-mails, .ics) have no request, so outside one only ``BASE_URL`` is
    right; the last fallback is the development server's address.
    """
    base = current_app.config.get("BASE_URL") or ""
    if not base:
        base = request.host_url.rstrip("/") if has_request_context() else "http://localhost:5000"
    return f"{base}{path}"


def live_check_timeout() -> float:
    """Seconds a confirmation may wait to re-read the host's calendars (``LIVE_CHECK_TIMEOUT``)."""
    return float(current_app.config["LIVE_CHECK_TIMEOUT"])
