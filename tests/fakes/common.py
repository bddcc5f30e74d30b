"""Shared pieces of the fake provider servers: fault injection, a request log,
the command line that runs one, and the test-side handle that starts it.

Every fake is a real process on 127.0.0.1 (``python -m tests.fakes.<name>``),
so adapters are exercised over real sockets, timeouts included. Tests steer a
fake through its ``/_admin/…`` endpoints:

``POST /_admin/faults`` ``{"status": 429, "retry_after": 7, "path": "/events",
"method": "POST", "times": 1, "delay": 0, "after": false}``
    the next matching request(s) get that answer in the provider's own error
    shape; ``delay`` makes the answer slow; ``after: true`` lets the request
    do its work first and then loses the answer (a write that happened
    although the client saw an error).
``DELETE /_admin/faults``
    forget every rule.
``GET /_admin/log`` / ``DELETE /_admin/log``
    the requests seen so far, ``[{"method", "path", "status"}]``.
``POST /_admin/reset``
    empty the server's store and its OAuth state, forget every rule and the log.
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, jsonify, request

from tests.support.processes import start_announced, stop_process

GOOGLE_ERRORS = {
    400: ("global", "badRequest", "Bad Request", "INVALID_ARGUMENT"),
    401: ("global", "authError", "Invalid Credentials", "UNAUTHENTICATED"),
    403: ("global", "forbidden", "Forbidden", "PERMISSION_DENIED"),
    404: ("global", "notFound", "Not Found", "NOT_FOUND"),
    409: ("global", "duplicate", "The requested identifier already exists.", "ALREADY_EXISTS"),
    410: ("global", "deleted", "Resource has been deleted", "NOT_FOUND"),
    412: ("global", "conditionNotMet", "Precondition Failed", "FAILED_PRECONDITION"),
    429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded", "RESOURCE_EXHAUSTED"),
    500: ("global", "backendError", "Backend Error", "INTERNAL"),
    503: ("global", "backendError", "Backend Error", "UNAVAILABLE"),
}

GRAPH_ERRORS = {
    400: ("BadRequest", "The request is malformed or incorrect."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorIrresolvableConflict", "The send or update operation could not be performed."),
    410: ("SyncStateNotFound", "The sync state generation is not found."),
    412: ("ErrorIrresolvableConflict", "The change key passed does not match the item."),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("ErrorInternalServerError", "An internal server error occurred."),
    503: ("ServiceNotAvailable", "The service is temporarily unavailable."),
    504: ("UnknownError", "The gateway did not receive a response in time."),
}


def google_error(status: int, reason: str = "", message: str = "") -> Response:
    """An error body as the Google Calendar API writes it."""
    domain, default_reason, default_message, code = GOOGLE_ERRORS.get(
        status, ("global", "unknown", "Error", "UNKNOWN")
    )
    message = message or default_message
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": domain, "reason": reason or default_reason, "message": message}],
            "status": code,
        }
    }
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
    return response


def graph_error(status: int, code: str = "", message: str = "") -> Response:
    """An error body as Microsoft Graph writes it."""
    default_code, default_message = GRAPH_ERRORS.get(status, ("UnknownError", "Error"))
    body = {
        "error": {
            "code": code or default_code,
            "message": message or default_message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }
    response = jsonify(body)
    response.status_code = status
    return response


class Faults:
    """Injected failures and a log of every non-admin request."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.rules: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def error(self, status: int, path: str) -> Response:
        if self.flavour == "google":
            if status == 410 and path.endswith("/events"):
                return google_error(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            return google_error(status)
        return graph_error(status)

    def _take(self) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule.get("method") and rule["method"].upper() != request.method:
                    continue
                if rule.get("path") and rule["path"] not in request.path:
                    continue
                rule["times"] -= 1
                if rule["times"] <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def install(self, app: Flask, *resets: Callable[[], None]) -> None:
        """Inject and log on ``app``; with ``resets``, ``POST /_admin/reset`` runs them too."""
        faults = self

        @app.before_request
        def _inject() -> Response | None:
            if request.path.startswith("/_admin/"):
                return None
            rule = faults._take()
            if rule is None:
                return None
            if rule.get("delay"):
                time.sleep(float(rule["delay"]))
            if not rule.get("status"):
                return None
            if rule.get("after"):
                g.fake_lose_answer = rule
                return None
            return faults._answer(rule)

        @app.after_request
        def _record(response: Response) -> Response:
            if request.path.startswith("/_admin/"):
                return response
            rule = g.pop("fake_lose_answer", None)
            if rule is not None:
                response = faults._answer(rule)
            with faults.lock:
                faults.log.append(
                    {"method": request.method, "path": request.path, "status": response.status_code}
                )
            return response

        @app.route("/_admin/faults", methods=["POST", "DELETE"])
        def _faults() -> Any:
            with faults.lock:
                if request.method == "DELETE":
                    faults.rules.clear()
                else:
                    rule = dict(request.get_json(force=True))
                    rule["times"] = int(rule.get("times", 1))
                    faults.rules.append(rule)
            return jsonify({"ok": True})

        @app.route("/_admin/log", methods=["GET", "DELETE"])
        def _log() -> Any:
            with faults.lock:
                if request.method == "DELETE":
                    faults.log.clear()
                    return jsonify([])
                return jsonify(list(faults.log))

        if resets:

            @app.post("/_admin/reset")
            def _reset() -> Any:
                for reset in resets:
                    reset()
                with faults.lock:
                    faults.rules.clear()
                    faults.log.clear()
                return jsonify({"ok": True})

    def _answer(self, rule: dict[str, Any]) -> Response:
        response = self.error(int(rule["status"]), request.path)
        if rule.get("retry_after") is not None:
            response.headers["Retry-After"] = str(rule["retry_after"])
        return response


def serve_cli(make_app: Callable[[argparse.Namespace], Flask]) -> None:
    """``--port 0`` binds any free port; the first stdout line is ``PORT <n>``."""
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--flavour", default="google")
    parser.add_argument("--client-id", default="kairos-test-client")
    parser.add_argument("--client-secret", default="kairos-test-secret")
    args = parser.parse_args()
    app = make_app(args)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


class FakeProcess:
    """Test-side handle: starts ``python -m <module>`` and talks to its admin API."""

    def __init__(self, module: str, client_id: str, client_secret: str, **args: str) -> None:
        self.module = module
        self.client_id = client_id
        self.client_secret = client_secret
        self.args = args
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> FakeProcess:
        args = ["--client-id", self.client_id, "--client-secret", self.client_secret]
        for key, value in self.args.items():
            args += [f"--{key.replace('_', '-')}", value]
        self.process, port = start_announced(self.module, *args)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        stop_process(self.process, 10)

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        import requests

        response = requests.request(method, self.url + path, json=json, timeout=10)
        response.raise_for_status()
        return response.json()

    # -- conveniences shared by both fakes ----------------------------------

    def reset(self) -> None:
        self.admin("POST", "/_admin/reset")

    def fail(self, status: int = 0, **rule: Any) -> None:
        """Inject a fault; see the module docstring for the keys."""
        self.admin("POST", "/_admin/faults", {"status": status, **rule})

    def log(self) -> list[dict[str, Any]]:
        return self.admin("GET", "/_admin/log")

    def clear_log(self) -> None:
        self.admin("DELETE", "/_admin/log")

    def calls(self, method: str, path_part: str) -> int:
        """How many requests with ``method`` hit a path containing ``path_part``."""
        return sum(1 for r in self.log() if r["method"] == method and path_part in r["path"])

    def revoke(self, email: str = "test.user@example.com") -> None:
        self.admin("POST", "/_admin/oauth/revoke", {"email": email})

    def expire_access_tokens(self) -> None:
        self.admin("POST", "/_admin/oauth/expire")

    def sign_in_as(self, email: str, name: str = "", **extra: Any) -> dict[str, Any]:
        return self.admin("POST", "/_admin/oauth/user", {"email": email, "name": name, **extra})

    def oauth_settings(self, **settings: Any) -> None:
        self.admin("POST", "/_admin/oauth/settings", settings)

    def oauth_stats(self) -> dict[str, int]:
        return self.admin("GET", "/_admin/oauth/stats")


def obtain_token(provider: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run the authorization-code flow against a fake without a browser; returns credentials.

    Uses the production helpers (``portal.calendars.providers.oauth_grant``), so PKCE and the
    token exchange are the real ones; only the browser hop is a plain GET.
    """
    from urllib.parse import parse_qs, urlsplit

    import requests

    from portal.calendars.providers import oauth_grant

    app = oauth_grant.oauth_app(provider, config)
    assert app is not None, f"{provider} is not configured"
    verifier = oauth_grant.new_code_verifier()
    redirect = "http://127.0.0.1:9/oauth/callback"
    url = oauth_grant.authorization_url(app, redirect, "test-state", verifier)
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    params = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert params.get("state") == ["test-state"], params
    return oauth_grant.exchange_code(app, redirect, params["code"][0], verifier)
