"""SMTP over TLS for real: STARTTLS on submission and implicit TLS, both with AUTH.

A throw-away CA-less certificate for 127.0.0.1 is trusted through
``SMTP_URL``'s ``cafile`` option, so certificate checking stays on.
"""

from __future__ import annotations

import email
import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portal.notify import mail, smtp
from tests.support.processes import free_port

USER, PASSWORD = "mailer@example.com", "p@ss:w/rd"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


class Inbox:
    def __init__(self):
        self.messages = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USER, PASSWORD)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["starttls", "implicit"])
def tls_server(request, certificate):
    inbox = Inbox()
    port = free_port()
    context = _server_context(certificate)
    common = {"authenticator": inbox.authenticate, "auth_required": True}
    if request.param == "starttls":
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            **common,
        )
        url = f"smtp://mailer%40example.com:p%40ss%3Aw%2Frd@127.0.0.1:{port}?starttls=1"
    else:
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context,
            server_hostname="127.0.0.1",
            # aiosmtpd only counts STARTTLS as TLS, so on this all-TLS connection AUTH is
            # offered but not enforced; the test checks that the client did log in.
            authenticator=inbox.authenticate,
            auth_require_tls=False,
        )
        url = f"smtps://mailer%40example.com:p%40ss%3Aw%2Frd@127.0.0.1:{port}"
    controller.start()
    yield inbox, f"{url}{'&' if '?' in url else '?'}cafile={certificate[0]}&timeout=5"
    controller.stop()


def _message(app):
    with app.app_context():
        return mail.compose(
            "tls-test",
            mail.address("Eve", "eve@example.com"),
            "Over TLS",
            "text body",
            "<p>html body</p>",
        )


def test_delivery_over_tls_with_auth(app, tls_server):
    inbox, url = tls_server
    app.config["SMTP_URL"] = url
    with app.app_context():
        assert smtp.deliver(_message(app)).startswith("smtp://127.0.0.1:")
    (msg,) = inbox.messages
    assert str(msg["Subject"]) == "Over TLS"
    assert inbox.logins == [USER]


def test_certificate_is_checked(app, tls_server):
    """Without the cafile the self-signed certificate is refused: no silent downgrade."""
    inbox, url = tls_server
    app.config["SMTP_URL"] = url.split("&cafile=")[0].split("?cafile=")[0]
    with app.app_context(), pytest.raises(ssl.SSLError):
        smtp.deliver(_message(app))
    assert inbox.messages == []
