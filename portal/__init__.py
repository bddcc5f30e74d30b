"""Kairos: a self-hosted personal booking portal."""

from __future__ import annotations

import os

from flask import Flask

from portal.config import Config, default_instance_path


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config from the environment (overridable), database, extensions, views."""
    instance_path = (config or {}).get("INSTANCE_PATH") or default_instance_path()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        instance_path=instance_path,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    app.config.from_mapping(Config(instance_path=instance_path).as_dict())
    if config:
        app.config.from_mapping(config)

    if app.config.get("PROXY_HOPS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from portal import extensions

    extensions.init_app(app)

    from portal import i18n

    i18n.init_app(app)  # languages: Flask-Babel, locale choice, date and time formats

    from portal.web import outage

    outage.init_app(app)  # database outages answer 503; /healthz asks the database

    from portal.notify import mail

    mail.init_app(app)  # checks SMTP_URL at start-up

    from portal.booking import slot_memo

    slot_memo.set_limit(app.config["SLOT_MEMO_BYTES"])  # per process, in bytes

    from portal.calendars import refresh_queue

    refresh_queue.init_app(app)  # periodic free/busy refresh on the worker ticker

    from portal import api, web

    web.install_id_converter(app)
    api.register_blueprints(app)
    web.register_blueprints(app)

    from portal.cli import register_cli

    register_cli(app)
    return app
