"""Browser fixtures: the app served on a real socket, and Chromium driven by Playwright.

``live_server`` runs Kairos on a fresh database (empty: ``/setup`` is the first page) at
``live_server.url``; ``serve(wsgi_app)`` puts any other WSGI app on a second local
origin (an embedding site, a fake provider). ``page`` is a fresh Chromium tab at a desktop
viewport; ``new_page(width=375, timezone_id=...)`` opens more, e.g. a phone or an invitee in
another zone. When a test fails, a screenshot of every open page lands in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.support.app import Hosts, make_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items):
    """Everything in this folder drives Chromium, so it carries the ``browser`` mark."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the call's outcome on the item so ``page`` teardown knows to take a screenshot."""
    report = yield
    if report.when == "call":
        item.browser_failed = report.failed
    return report


class _Server:
    """A WSGI app on 127.0.0.1 with an OS-chosen port, served by threads until ``stop``."""

    def __init__(self, wsgi_app):
        self.httpd = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@dataclass
class LiveServer:
    app: object
    url: str

    @property
    def hosts(self) -> Hosts:
        """The same factory as ``tests/conftest.py``: ``live_server.hosts.create("alice")``."""
        return Hosts(self.app)

    def at(self, path: str) -> str:
        return self.url + path


@pytest.fixture
def serve() -> Iterator[Callable[[object], str]]:
    """``serve(wsgi_app) -> base URL``: another local origin, stopped after the test."""
    servers: list[_Server] = []

    def start(wsgi_app) -> str:
        server = _Server(wsgi_app)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(tmp_path, redis_url, serve) -> LiveServer:
    """Kairos on a fresh SQLite database, with embedded Redis and rate limits off.

    Its base URL is also its ``BASE_URL``, so links and embed snippets point at it.
    """
    holder: dict[str, object] = {}

    def late_bound(environ, start_response):
        return holder["app"](environ, start_response)

    url = serve(late_bound)
    # The browser keeps real time (its own clock picks days and zones), so the server
    # does too: no test clock here; browser tests compute their days from the real date.
    app = make_app(tmp_path, redis_url, BASE_URL=url, CLOCK=None)
    holder["app"] = app
    return LiveServer(app=app, url=url)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (CI installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, request):
    """``new_page(width=1280, height=900, timezone_id="Europe/Berlin", **context_options)``.

    Each call gets its own browser context (own cookies), so two people never share a
    session by accident.
    """
    contexts = []
    pages = []

    def open_page(width=1280, height=900, timezone_id="Europe/Berlin", **options):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            timezone_id=timezone_id,
            locale=options.pop("locale", "en-GB"),
            **options,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield open_page
    if getattr(request.node, "browser_failed", False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        for i, page in enumerate(pages):
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}-{i}.png"), full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"screenshot of page {i} failed: {exc}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """One desktop-sized tab."""
    return new_page()


def no_horizontal_overflow(page) -> bool:
    """Whether the document fits the viewport's width (nothing scrolls sideways)."""
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def sign_in(page, base_url: str, email: str, password: str = "correct horse") -> None:
    """Sign in through the real form (the ``Hosts`` factory's default password)."""
    page.goto(base_url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_url("**/settings/**")
