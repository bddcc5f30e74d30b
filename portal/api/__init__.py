"""JSON API v1: bearer tokens, pydantic schemas, one module per resource.

``base`` holds the blueprint most resources share, the error answers and the
``@operation`` decorator; the schemas (``portal.api.schemas``) both validate
and generate ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Every API route, in one list; bearer tokens only, so CSRF does not apply."""
    from portal.api import (
        availability,
        base,
        bookings,
        connections,
        exchange,
        feed,
        meeting_details,
        questions,
        schedule,
        types,
        webhooks,
    )
    from portal.extensions import csrf

    # meeting_details, questions, webhooks, feed and schedule share ``api_details``.
    details = (meeting_details, questions, webhooks, feed, schedule)
    seen = []
    for module in (base, availability, bookings, types, connections, *details, exchange):
        if module.bp not in seen:
            seen.append(module.bp)
            app.register_blueprint(module.bp)
            # Bearer tokens, no cookies: there is no ambient credential for CSRF to abuse.
            csrf.exempt(module.bp)
