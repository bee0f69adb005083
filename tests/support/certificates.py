"""TEST certificates for TLS tests: a certificate authority and the certificates it signs, made
with the ``cryptography`` package in a temporary directory (never in the repository)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class IssuedCertificate:
    cert_file: Path
    key_file: Path


class TestAuthority:
    """A self-signed CA (P-256) that issues server certificates for 127.0.0.1 and client certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
        self._subject = subject
        self._cert = (
            self._builder(subject, self._key.public_key())
            .issuer_name(subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = directory / f"{name}-ca.pem"
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (x509.CertificateBuilder().subject_name(subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2)))

    def issue(self, common_name: str, *, server: bool) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]), key.public_key())
                   .issuer_name(self._subject)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                                  critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                            critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = IssuedCertificate(self.directory / f"{common_name}.pem", self.directory / f"{common_name}-key.pem")
        issued.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
        issued.key_file.chmod(0o600)
        return issued


def https_server_context(authority: TestAuthority, name: str, *, client_ca: TestAuthority | None = None) -> ssl.SSLContext:
    """The server side of TLS for a test server on 127.0.0.1, with a certificate ``authority`` issued;
    with ``client_ca``, clients must present a certificate that CA issued (mutual TLS)."""
    issued = authority.issue(name, server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert_file, issued.key_file)
    if client_ca is not None:
        context.load_verify_locations(cafile=str(client_ca.ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(authority: TestAuthority, issued: IssuedCertificate | None = None) -> ssl.SSLContext:
    """A client trusting ``authority`` and presenting ``issued`` (if given)."""
    context = ssl.create_default_context(cafile=str(authority.ca_file))
    if issued is not None:
        context.load_cert_chain(issued.cert_file, issued.key_file)
    return context


def tls_exchange(port: int, context: ssl.SSLContext, request: bytes = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    """A raw TLS connection to 127.0.0.1:``port``: handshake, ``request``, the first bytes of the answer.
    A server that refuses the client's certificate makes this raise ``ssl.SSLError`` (TLS 1.3 reports
    the server's alert on the first read, TLS 1.2 in the handshake): nothing of HTTP is exchanged."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(request)
            return tls.recv(65_536)


def tls12_handshake(port: int, context: ssl.SSLContext) -> str:
    """Only a TLS 1.2 handshake with 127.0.0.1:``port`` (the version it agreed). In TLS 1.2 the server
    judges the client's certificate before the handshake ends, so a refusal raises ``ssl.SSLError``
    here (in TLS 1.3 the client's handshake ends first and the server then closes: see :func:`tls_exchange`)."""
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version() or ""


def plain_exchange(port: int, request: bytes = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    """Plain http to ``port``: what comes back before the server closes (b"" if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(request)
        chunks = []
        try:
            while chunk := raw.recv(65_536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)
