"""The API's bearer tokens: stored as SHA-256 only, with an expiry, revoked and added while the
service runs.

Tokens come from the settings' ``tokens`` (fixed for the life of the process) and from
``tokens_file``, a TOML file of the same ``[[tokens]]`` tables::

    [[tokens]]
    label = "tax data office"
    account = "0x…"
    sha256 = "<printf %s "$TOKEN" | sha256sum>"
    expires_at = 2027-06-30T00:00:00Z          # optional; a TOML date-time with its offset

The file is read again whenever it changes (its inode, size or modification time, looked at on
each bearer request: one ``stat``), so a token is revoked by deleting its table, rotated by adding
the new one and later deleting the old, without a restart. Replace the file atomically (write a
new file, then rename it over the old one) so that no request reads half a file. A file that cannot
be read or is not valid refuses *every* token of the file (deny by default: a revocation must not
be lost to a typo) with a 503 problem until it is fixed, and says why in the log; the settings'
own tokens go on working. A presented token is hashed and compared with every stored hash by
``hmac.compare_digest``, with no early exit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from api.errors import ConfigError, ServiceUnavailable
from api.settings import TokenBinding, check_token_bindings, describe_validation_error

__all__ = ["TokenTable", "TokensUnavailable", "load_tokens_file", "token_digest"]

log = logging.getLogger("govshare.api")


class TokensUnavailable(ServiceUnavailable):
    """The tokens file is unreadable or invalid: its tokens are refused until it is fixed."""

    slug, title = "tokens-unavailable", "Bearer tokens unavailable"


class _TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: tuple[TokenBinding, ...] = ()


def load_tokens_file(path: Path, *, development: bool = False) -> tuple[TokenBinding, ...]:
    """The bindings of a tokens file; :class:`api.errors.ConfigError` naming the file and the fault."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the tokens file: {exc.strerror or type(exc).__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        bindings = _TokensFile(**data).tokens
        check_token_bindings(bindings, development=development)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return bindings


def token_digest(token: str) -> bytes:
    """The SHA-256 of a bearer token (what the table compares; what a dashboard session remembers)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class TokenTable:
    """Bearer tokens by their SHA-256: the settings' own, and those of ``file`` as it stands now.
    Thread-safe. A missing or invalid ``file`` at construction raises :class:`ConfigError` (the
    service does not start); later, it refuses the file's tokens until it is valid again."""

    def __init__(self, bindings: Iterable[TokenBinding], file: Path | None = None, *, development: bool = False) -> None:
        self._static = [(bytes.fromhex(b.sha256), b) for b in bindings]
        self._file = file
        self._development = development
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._from_file: list[tuple[bytes, TokenBinding]] = []
        self._file_error: str | None = None
        if file is not None:
            self._stamp = _stamp(file)
            self._from_file = self._index(load_tokens_file(file, development=development))

    def _index(self, bindings: Iterable[TokenBinding]) -> list[tuple[bytes, TokenBinding]]:
        static = {digest for digest, _ in self._static}
        indexed = [(bytes.fromhex(b.sha256), b) for b in bindings]
        if any(digest in static for digest, _ in indexed):
            raise ConfigError(f"{self._file}: a token is also in the settings' tokens")
        return indexed

    def _refresh(self) -> None:
        """Read the file again if it changed since it was last read."""
        if self._file is None:
            return
        stamp = _stamp(self._file)  # None while the file is missing: refused once, not re-read per request
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                self._from_file = self._index(load_tokens_file(self._file, development=self._development))
                self._file_error = None
                log.info("tokens file %s read again: %d tokens", self._file, len(self._from_file))
            except ConfigError as exc:
                self._from_file, self._file_error = [], str(exc)
                log.error("tokens file refused, its tokens are refused until it is fixed: %s", exc)

    def lookup(self, token: str) -> TokenBinding | None:
        """The binding of ``token`` (expired or not), or None; :class:`TokensUnavailable` if the
        tokens file is invalid and the token is not one of the settings' own."""
        return self.lookup_digest(token_digest(token))

    def lookup_digest(self, digest: bytes) -> TokenBinding | None:
        """:meth:`lookup` by the token's SHA-256."""
        self._refresh()
        found = None
        for stored, binding in (*self._static, *self._from_file):  # no early exit: the time does not tell which matched
            if hmac.compare_digest(stored, digest):
                found = binding
        if found is None and self._file_error is not None:
            raise TokensUnavailable("the service's tokens file is invalid, so bearer tokens cannot be checked; "
                                    "its operator must fix it (see the service's log), or sign the request instead",
                                    headers={"Retry-After": "60"})
        return found

    def account_for(self, token: str, now: float | None = None) -> str | None:
        """The account a valid, unexpired ``token`` is bound to, or None (also while the tokens file is invalid)."""
        return self.account_for_digest(token_digest(token), now)

    def account_for_digest(self, digest: bytes, now: float | None = None) -> str | None:
        """:meth:`account_for` by the token's SHA-256 (a dashboard session checks its token at every page)."""
        try:
            binding = self.lookup_digest(digest)
        except TokensUnavailable:
            return None
        if binding is None or binding.expired(time.time() if now is None else now):
            return None
        return binding.account
