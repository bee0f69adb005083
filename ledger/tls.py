"""TLS on the client side of govshare's one HTTP client (``ledger.http_client``): the context that
verifies a server against a given CA file (a consortium's or a department's own) and presents a
client certificate when the server asks for one (mutual TLS), the :class:`ClientTls` files a setting
names, and their checks at start-up. A client key is read only when private to its owner
(``ledger.private_files``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import InsecureKeyFile
from ledger.private_files import check_private_file

__all__ = ["ClientTls", "check_ca_file", "client_tls_context"]


def client_tls_context(ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    """A TLS client context that verifies the server's certificate and name: against ``ca_file``
    (PEM; a department's internal CA) instead of the system's trust when given, presenting
    ``cert_file``/``key_file`` (PEM, the key unencrypted) to a server that asks for a client
    certificate. Raises ``ssl.SSLError`` (or ``OSError``) for a file that does not load, and
    :class:`ledger.errors.InsecureKeyFile` (before reading it) for a key file group or others may read."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    if cert_file is not None:
        check_private_file(key_file if key_file is not None else cert_file, "TLS client key file")
        # An encrypted key is refused (SSLError), never prompted for on a terminal by OpenSSL.
        context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None, password=lambda: b"")
    return context


def check_ca_file(path: Path) -> None:
    """Refuse, with a ``ValueError`` saying why, a CA file that is missing or does not load as PEM
    certificates (settings check theirs at start; OpenSSL's messages never quote a file's content)."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        client_tls_context(path)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"cannot be loaded as PEM certificates ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class ClientTls:
    """The TLS files of a client toward one kind of server (the chain node, providers' oracles):
    ``ca_file`` (PEM) trusted instead of the system's CAs, and ``cert_file``/``key_file`` (PEM, the
    key unencrypted and private to its owner) presented when the server asks for a client
    certificate (mutual TLS). Plain data (it crosses to the oracle's anchoring process)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """The client context (:func:`client_tls_context`)."""
        return client_tls_context(self.ca_file, self.cert_file, self.key_file)

    def check(self) -> None:
        """Load every file now, as a connection will, so that a mistake shows at start-up: a
        ``ValueError`` naming the file and the problem."""
        if self.ca_file is not None:
            check_ca_file(self.ca_file)
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate and its key go together: give both files or neither")
        if self.cert_file is None or self.key_file is None:
            return
        for path in (self.cert_file, self.key_file):
            if not path.is_file():
                raise ValueError(f"no such file: {path}")
        try:
            client_tls_context(None, self.cert_file, self.key_file)
        except InsecureKeyFile as exc:
            raise ValueError(str(exc)) from None
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"{self.cert_file} with {self.key_file} cannot be loaded as a PEM certificate and its "
                             f"matching unencrypted key ({type(exc).__name__}: {exc})") from None
