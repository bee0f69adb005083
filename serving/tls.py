"""HTTPS for govshare's services, optionally mutual TLS (as X-Road's security servers require of
each other): :class:`ServerTls` names the files, checks them at start-up and builds the one server
context uvicorn serves with.

* ``cert_file`` (PEM: the service's certificate, then any intermediates) and ``key_file`` (PEM, the
  key unencrypted: an encrypted one is refused, never prompted for on a terminal);
* ``client_ca_file`` (PEM): the certificate authorities whose client certificates are accepted. With
  ``require_client_cert`` a client without such a certificate is refused in the TLS handshake,
  before a byte of HTTP; without it, a certificate is asked for and checked when one is presented.

TLS 1.2 at least (Python's default for a server context). The client's certificate authenticates a
*connection* (which networks and departments may reach the service); who asks is still proved by the
signature of each query, as before.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ServerTls", "TlsSettingError", "server_tls"]


class TlsSettingError(ValueError):
    """A ``tls_*`` setting that cannot work: ``key`` names it, ``problem`` says why."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class ServerTls:
    """The TLS files of a service (see the module docstring)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    require_client_cert: bool = False

    def context(self) -> ssl.SSLContext:
        """The server context; ``ssl.SSLError``/``OSError`` for files that do not load."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_file), str(self.key_file), password=lambda: b"")
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=str(self.client_ca_file))
            context.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        return context

    def check(self) -> None:
        """Load every file as the server will, so that a mistake shows at start-up:
        :class:`TlsSettingError` names the setting (OpenSSL's messages never quote a file's content)."""
        if self.require_client_cert and self.client_ca_file is None:
            raise TlsSettingError("tls_require_client_cert", "needs tls_client_ca_file, the CA that issues the client certificates")
        for key, path in (("tls_cert_file", self.cert_file), ("tls_key_file", self.key_file),
                          ("tls_client_ca_file", self.client_ca_file)):
            if path is not None and not path.is_file():
                raise TlsSettingError(key, f"does not exist: {path}")
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(self.cert_file), str(self.key_file),
                                                                     password=lambda: b"")
        except (ssl.SSLError, OSError) as exc:
            raise TlsSettingError("tls_cert_file", f"with tls_key_file cannot be loaded as a PEM certificate and its "
                                  f"matching unencrypted key ({type(exc).__name__}: {exc})") from None
        if self.client_ca_file is not None:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=str(self.client_ca_file))
            except (ssl.SSLError, OSError) as exc:
                raise TlsSettingError("tls_client_ca_file", "cannot be loaded as PEM certificates "
                                      f"({type(exc).__name__}: {exc})") from None

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's options serving https with :meth:`context` (``serving.server``'s ``tls``)."""
        return {"ssl_certfile": str(self.cert_file), "ssl_keyfile": str(self.key_file),
                "ssl_context_factory": lambda _config, _default: self.context()}


def server_tls(cert_file: Path | None, key_file: Path | None, client_ca_file: Path | None = None,
               require_client_cert: bool = False) -> ServerTls | None:
    """A service's ``tls_cert_file``, ``tls_key_file``, ``tls_client_ca_file`` and
    ``tls_require_client_cert`` settings as one checked :class:`ServerTls` (None: plain http), the
    oracle's and the API's alike; :class:`TlsSettingError` names the setting at fault."""
    if cert_file is None and key_file is None:
        if client_ca_file is not None or require_client_cert:
            raise TlsSettingError("tls_client_ca_file" if client_ca_file is not None else "tls_require_client_cert",
                                  "needs tls_cert_file and tls_key_file: without them the service serves plain http")
        return None
    if cert_file is None or key_file is None:
        raise TlsSettingError("tls_key_file" if key_file is None else "tls_cert_file",
                              "is required with the other: https needs both tls_cert_file and tls_key_file")
    tls = ServerTls(cert_file, key_file, client_ca_file, require_client_cert)
    tls.check()
    return tls
