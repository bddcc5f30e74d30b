"""Blueprints: parse the request, call the domain, render. Registered in one list."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from portal.models import MAX_ID, parse_id


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: a row id, at most what a 64-bit integer column holds.

    A larger number names no row, so it is 404 at routing like any other unknown
    id, rather than an overflow in the database driver (SQLite refuses to bind
    it). Raised here, not as the converter's ValidationError: that makes Werkzeug
    try the route's other methods and answer 405.
    """

    MAX = MAX_ID

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None and value.strip("0") == "":
            return 0  # no row has id 0: the view answers its own 404
        if number is None:
            raise NotFound()
        return number


def register_blueprints(app: Flask) -> None:
    """Every page, in one list: fixed paths first, the public catch-all ``/<host>`` last."""
    from portal.web import (
        admin_exchange,
        auth,
        feeds,
        findtime,
        home,
        invite,
        oauth,
        password,
    )
    from portal.web.admin import jobs, organisation, people
    from portal.web.public import booking, errors, manage
    from portal.web.settings import (
        appointments,
        connections,
        details,
        embed,
        hours,
        preview,
        profile,
        questions,
        schedule,
        tokens,
        types,
        webhooks,
    )

    settings_pages = (
        profile,
        appointments,
        details,
        embed,
        hours,
        preview,
        questions,
        schedule,
        tokens,
        types,
        webhooks,
    )
    for module in (
        home,  # / only: the front door
        auth,
        password,
        *settings_pages,  # one blueprint, ``settings``, over these modules
        connections,
        *(people, organisation, jobs),  # one blueprint, ``admin``, over these modules
        admin_exchange,
        findtime,
        invite,
        oauth,
        feeds,  # /feeds/<token>.ics before the public /<host>/<type_slug>
        *(booking, manage, errors),  # one blueprint, ``public``, over these modules
    ):
        if module.bp.name not in app.blueprints:
            app.register_blueprint(module.bp)


def install_id_converter(app: Flask) -> None:
    """Before any rule is added: rules bind their converters when they are registered."""
    app.url_map.converters["int"] = IdConverter
