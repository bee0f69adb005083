"""``serving.tls.ServerTls`` over real sockets with certificates made for the test: https, client
certificates asked for (checked when shown) or required, the files checked at start, and a TLS
handshake held to the same idle bound as a plain connection."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from devtools.devnet import free_port
from serving import ServerThread, ServerTls
from tests.support.certificates import TestAuthority, client_context, plain_exchange, tls12_handshake, tls_exchange


async def _app(scope, receive, send) -> None:  # a trivial ASGI app: 200 "ok"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_client_certificates_asked_for_but_not_required(tmp_path: Path) -> None:
    """``require_client_cert = false`` with a client CA: no certificate is served, a certificate of
    that CA is served, a certificate of another CA is refused in the handshake."""
    department, clients, stranger = (TestAuthority(tmp_path, n) for n in ("department", "clients", "stranger"))
    issued = department.issue("service", server=True)
    port = free_port()
    server = ServerThread(_app, port, tls=ServerTls(issued.cert_file, issued.key_file, clients.ca_file).uvicorn_options()).start()
    try:
        assert server.url.startswith("https://")
        assert tls_exchange(port, client_context(department)).startswith(b"HTTP/1.1 200")
        assert tls_exchange(port, client_context(department, clients.issue("good", server=False))).startswith(b"HTTP/1.1 200")
        with pytest.raises(ssl.SSLError):
            tls12_handshake(port, client_context(department, stranger.issue("impostor", server=False)))
        assert tls_exchange(port, client_context(department, stranger.issue("impostor", server=False))) == b""
        assert b"HTTP/" not in plain_exchange(port)
        with pytest.raises(ssl.SSLCertVerificationError):  # a client that trusts only the system's CAs
            tls_exchange(port, ssl.create_default_context())
    finally:
        server.stop()


def test_a_silent_tls_connection_is_closed_as_soon_as_a_silent_plain_one(tmp_path: Path) -> None:
    """A client that connects and never starts its handshake holds a connection for ``keep_alive_seconds``,
    as over plain http, not for asyncio's 60 s handshake timeout."""
    authority = TestAuthority(tmp_path, "department")
    issued = authority.issue("service", server=True)
    closed_after = {}
    for name, tls in (("plain", None), ("tls", ServerTls(issued.cert_file, issued.key_file).uvicorn_options())):
        server = ServerThread(_app, free_port(), tls=tls, keep_alive_seconds=0.5).start()
        try:
            with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=90) as silent:
                started = time.monotonic()
                assert silent.recv(10) == b""
                closed_after[name] = time.monotonic() - started
        finally:
            server.stop()
    assert closed_after["tls"] < 10 * closed_after["plain"], closed_after  # 60 s against 0.5 s before


def test_the_files_are_checked_before_serving(tmp_path: Path) -> None:
    authority = TestAuthority(tmp_path, "department")
    issued = authority.issue("service", server=True)
    other = authority.issue("other", server=True)
    key = serialization.load_pem_private_key(issued.key_file.read_bytes(), None)
    encrypted = tmp_path / "encrypted-key.pem"  # refused, never prompted for on a terminal
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"hunter2")))
    (tmp_path / "not-pem.pem").write_text("hunter2\n")
    ServerTls(issued.cert_file, issued.key_file, authority.ca_file, True).check()
    for tls, problem in [
        (ServerTls(issued.cert_file, issued.key_file, require_client_cert=True), "tls_require_client_cert: needs tls_client_ca_file"),
        (ServerTls(tmp_path / "missing.pem", issued.key_file), "does not exist"),
        (ServerTls(issued.cert_file, other.key_file), "matching unencrypted key"),
        (ServerTls(issued.cert_file, encrypted), "matching unencrypted key"),
        (ServerTls(issued.cert_file, issued.key_file, tmp_path / "not-pem.pem"), "tls_client_ca_file: cannot be loaded"),
    ]:
        with pytest.raises(ValueError, match=problem) as refused:
            tls.check()
        assert "hunter2" not in str(refused.value)
