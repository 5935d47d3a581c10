"""The sender over TLS: it connects to the address the SSRF guard checked, yet sends the URL's
host name as SNI and checks the certificate against it (a real TLS receiver on loopback, with a
certificate made for the test and trusted through SSL_CERT_FILE)."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.webhooks import new_secret
from sync_server.webhooks.recording import Job
from sync_server.webhooks.sender import Sender


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    cert, key = _certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted like a public CA's certificate
    seen: dict[str, Any] = {"sni": [], "hosts": []}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen["hosts"].append(self.headers.get("host"))
            self.send_response(202)
            self.send_header("content-length", "6")
            self.end_headers()
            self.wfile.write(b"thanks")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["port"] = server.server_address[1]
    yield seen
    server.shutdown()
    server.server_close()


def _job(url: str) -> Job:
    return Job(
        "dlv_1",
        0,
        "msg_1",
        '{"type":"webhook.test"}',
        "we_1",
        url,
        True,
        (new_secret(b"k" * 32),),
        None,
    )


def test_tls_sends_the_name_as_sni_and_verifies_the_certificate(
    tls_receiver: dict[str, Any],
) -> None:
    port = tls_receiver["port"]
    sender = Sender(timeout=5, allow_private=True, pool_size=2)
    try:
        first = sender.send(_job(f"https://localhost:{port}/in"))
        second = sender.send(_job(f"https://localhost:{port}/in"))  # the kept connection
        assert (first.status_code, first.excerpt, first.error) == (202, "thanks", None)
        assert second.status_code == 202
        assert tls_receiver["sni"] == ["localhost"], "one handshake, with the URL's name"
        assert tls_receiver["hosts"] == [f"localhost:{port}"] * 2
        by_address = sender.send(_job(f"https://127.0.0.1:{port}/in"))
    finally:
        sender.close()
    # the same server reached by its address: the certificate does not name it, so no delivery
    assert by_address.status_code is None and by_address.error
    assert "certificate" in by_address.error.lower() or "hostname" in by_address.error.lower()
    assert tls_receiver["hosts"] == [f"localhost:{port}"] * 2
