"""Helpers for vendor-shaped local servers used by the adapter tests."""

from __future__ import annotations

import threading
import time

import pytest
from werkzeug import Response


class slow:  # noqa: N801 - used like a function in handler registration
    """A pytest-httpserver handler that answers after ``seconds`` (to provoke client timeouts).

    The server is single-threaded: call ``.wait()`` before the test ends so the late answer does not
    land in the next test's request log.
    """

    def __init__(self, seconds: float, body: str = "{}", status: int = 200) -> None:
        self.seconds, self.body, self.status = seconds, body, status
        self.done = threading.Event()

    def __call__(self, _request):
        time.sleep(self.seconds)
        self.done.set()
        return Response(self.body, status=self.status, content_type="application/json")

    def wait(self) -> None:
        assert self.done.wait(5), "slow handler never ran"
        time.sleep(0.05)


@pytest.fixture
def vendor_url(httpserver) -> str:
    """Base URL of the local vendor server (pytest-httpserver)."""
    return httpserver.url_for("").rstrip("/")


def self_signed_cert(tmp_path, hostname: str) -> tuple[str, str]:
    """(cert.pem, key.pem) for ``hostname``, to run local TLS servers that clients verify by name."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def resolve_to_loopback(monkeypatch):
    """``resolve_to_loopback("smtp.example", ...)``: those names resolve to 127.0.0.1 for this test (the
    system resolver stands in for a vendor's DNS; everything else resolves as usual)."""
    import socket

    real = socket.getaddrinfo

    def point(*names: str) -> None:
        monkeypatch.setattr(
            socket,
            "getaddrinfo",
            lambda host, port, *a, **kw: real("127.0.0.1" if host in names else host, port, *a, **kw),
        )

    return point


@pytest.fixture
def dns_down(monkeypatch):
    """No name resolves for this test (the resolver answers like a dead or typo'd name); returns the list
    of names that were asked. Request it after fixtures that open connections by name (Redis)."""
    import socket

    asked: list[str] = []

    def no_answer(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "resolver has no answer")

    monkeypatch.setattr(socket, "getaddrinfo", no_answer)
    return asked
