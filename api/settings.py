"""The API service's one settings object: environment variables (``GOVSHARE_API_*``) over a TOML file.

``ApiSettings.load(path)`` reads the TOML file; every field can be set or overridden by an
environment variable with the prefix ``GOVSHARE_API_`` (``GOVSHARE_API_RPC_URL``; lists and tables
as JSON: ``GOVSHARE_API_ORACLE_URLS='{"SAMR": "http://10.0.0.5:8700"}'``). ``ApiSettings(...)`` with
keyword arguments (tests) takes those over both. Unknown keys are refused, so a misspelt key never
silently falls back to its default, and so is a ``password`` or ``token`` key: secrets are never in
this file.

* The service acts with the keys in ``keystores`` (its department's operator; an audit office's
  auditor). Their password comes from the entry's ``password_file``, else the top-level
  ``password_file``, else ``$GOVSHARE_KEY_PASSWORD`` (``ledger.keys.read_password``).
* ``tokens`` binds bearer tokens to accounts. Only the SHA-256 of a token is stored
  (``printf %s "$TOKEN" | sha256sum``); the hash of a well-known placeholder (``changeme``,
  ``secret``...) is refused unless ``development = true``. A token may have an ``expires_at`` (a
  TOML date-time with its offset); past it, the token is refused (401 ``expired-token``).
* ``tokens_file``: more ``[[tokens]]`` in a file of their own, read again whenever it changes, so
  tokens are added, rotated and revoked without a restart (``api.tokens``).
* ``rate_limit`` (``"120/minute"``, ``serving.rate_limit``; default none): the requests one
  authenticated account may make in a moving window, whatever its credentials; one more is
  answered 429 (``rate-limited``) with ``Retry-After``.
* ``oracle_urls`` overrides, per department code, the oracle URL a department publishes in the
  consortium registry.
* ``index_path`` is the audit index's SQLite file (used by the audit routes).
* ``rpc_ca_file`` (PEM) holds the certificate authorities trusted for an https ``rpc_url`` instead of
  the system's (a consortium's own CA); ``rpc_client_cert_file`` and ``rpc_client_key_file`` (PEM,
  the key unencrypted) are the certificate presented to a node that asks for one (mutual TLS).
* ``tls_cert_file`` and ``tls_key_file`` make the service serve https; ``tls_client_ca_file`` asks
  clients for a certificate that CA issued, and ``tls_require_client_cert = true`` refuses, in the
  TLS handshake, a client without one (mutual TLS).
* ``oracle_ca_file``, ``oracle_client_cert_file`` and ``oracle_client_key_file``: the same, toward
  providers' https oracles (the CAs trusted for them, the certificate presented to them).
* A private-key file (keystore, TLS key) that group or others may access is refused, as ssh
  refuses one: ``chmod 600`` it.
* ``[serving]`` bounds what a client may hold (``max_head_bytes``, ``max_headers``, ``max_connections``,
  ``keep_alive_seconds``, ``request_seconds``): the same keys and defaults as the oracle's ``[serving]``.
* ``max_json_depth`` (default 64) bounds how deeply a JSON body may nest (deeper: 400, before parsing).
* ``metrics_enabled`` (default true) serves Prometheus metrics at ``/metrics`` without credentials
  (counts and latencies, nothing personal: see ``api.metrics``); ``metrics_token_sha256``, the
  SHA-256 of a bearer token (not an account's), makes ``/metrics`` ask for that token.

Relative paths are relative to the TOML file's directory (or to the working directory without a
file); ``~`` is expanded. Example: ``api/examples/samr-api.toml``.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

from eth_utils import is_address, to_checksum_address
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.errors import ConfigError
from ledger.chain import DEFAULT_RECEIPT_TIMEOUT_SECONDS, DEFAULT_RPC_TIMEOUT_SECONDS
from ledger.errors import InsecureKeyFile
from ledger.json_limits import MAX_DEPTH
from ledger.private_files import check_private_file
from ledger.tls import ClientTls, check_ca_file
from serving import ServeLimits
from serving.rate_limit import parse_rate
from serving.tls import ServerTls, TlsSettingError, server_tls

__all__ = ["ApiSettings", "KeystoreEntry", "ServingSettings", "TokenBinding", "check_token_bindings",
           "describe_validation_error", "token_sha256"]

ENV_PREFIX = "GOVSHARE_API_"

#: Tokens nobody may deploy with: their hashes are refused outside development.
PLACEHOLDER_TOKENS = ("", "changeme", "change-me", "change_me", "secret", "token", "password", "test", "example",
                      "placeholder", "xxx")

_TOML_FILE: ContextVar[Path | None] = ContextVar("govshare_api_toml_file", default=None)


def token_sha256(token: str) -> str:
    """The hex SHA-256 of a bearer token, as ``tokens[].sha256`` stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_PLACEHOLDER_HASHES = frozenset([*(token_sha256(t) for t in PLACEHOLDER_TOKENS), "0" * 64])


class TokenBinding(BaseModel):
    """One bearer token (by its SHA-256) and the account a caller presenting it acts as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="hex SHA-256 of the token")
    account: str = Field(description="the account the token is bound to")
    label: str = Field(default="", max_length=100, description="who holds the token (for logs)")
    expires_at: datetime | None = Field(default=None, description="when the token stops being accepted (with its offset)")

    @field_validator("expires_at")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("must have a UTC offset, e.g. 2027-06-30T00:00:00Z")
        return value

    def expired(self, now: float) -> bool:
        """Whether the token is past its expiry at unix time ``now``."""
        return self.expires_at is not None and self.expires_at.timestamp() <= now

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("account")
    @classmethod
    def _address(cls, value: str) -> str:
        if not is_address(value):
            raise ValueError("not an account address (0x and 40 hex digits)")
        if int(value, 16) == 0:
            raise ValueError("the zero address is a placeholder; bind the token to a real account")
        return to_checksum_address(value)


class KeystoreEntry(BaseModel):
    """An encrypted keystore the service acts with, and optionally its own password file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    password_file: Path | None = None


_LIMITS = ServeLimits()


class ServingSettings(BaseModel):
    """The ``[serving]`` table: what a client may hold of the service (the oracle's ``[serving]``
    takes the same keys, with the same defaults: :class:`serving.ServeLimits`')."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_head_bytes: int = Field(default=_LIMITS.max_head_bytes, ge=1024, le=1 << 20,
                                description="largest request line and headers (else 431)")
    max_headers: int = Field(default=_LIMITS.max_headers, ge=8, le=10_000, description="most header fields (else 431)")
    max_connections: int = Field(default=_LIMITS.max_connections, ge=1, le=100_000,
                                 description="most connections open at once (more are answered 503 and closed)")
    keep_alive_seconds: float = Field(default=_LIMITS.keep_alive_seconds, gt=0, le=3600,
                                      description="a connection silent this long (before a request or after an answer) is closed")
    request_seconds: float = Field(default=_LIMITS.request_seconds, gt=0, le=3600,
                                   description="a request not whole this long after it began is cut off (slowloris)")

    def limits(self) -> ServeLimits:
        return ServeLimits(max_head_bytes=self.max_head_bytes, max_headers=self.max_headers,
                           max_connections=self.max_connections, keep_alive_seconds=self.keep_alive_seconds,
                           request_seconds=self.request_seconds)


class ApiSettings(BaseSettings):
    """Everything the API service needs (see the module docstring for where each value comes from)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    rpc_url: str = Field(min_length=1, description="JSON-RPC URL of the consortium chain")
    manifest: Path | None = Field(default=None, description="deployment manifest (default deployments/<chain-id>.json)")
    rpc_ca_file: Path | None = Field(default=None, description="PEM certificate authorities trusted for an https rpc_url "
                                                               "(default: the system's)")
    rpc_client_cert_file: Path | None = Field(default=None, description="PEM client certificate for an https rpc_url")
    rpc_client_key_file: Path | None = Field(default=None, description="its PEM key, unencrypted, mode 0600")
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate served (https)")
    tls_key_file: Path | None = Field(default=None, description="its PEM key, unencrypted, mode 0600")
    tls_client_ca_file: Path | None = Field(default=None, description="PEM CAs whose client certificates are accepted")
    tls_require_client_cert: bool = Field(default=False, description="refuse clients without such a certificate")
    oracle_ca_file: Path | None = Field(default=None, description="PEM CAs trusted for https oracles (default: the system's)")
    oracle_client_cert_file: Path | None = Field(default=None, description="PEM client certificate presented to oracles")
    oracle_client_key_file: Path | None = Field(default=None, description="its PEM key, unencrypted, mode 0600")
    keystores: tuple[KeystoreEntry, ...] = Field(default=(), description="the accounts the service acts with")
    password_file: Path | None = Field(default=None, description="keystore password file (else $GOVSHARE_KEY_PASSWORD)")
    tokens: tuple[TokenBinding, ...] = Field(default=(), description="bearer tokens (SHA-256) and their accounts")
    tokens_file: Path | None = Field(default=None, description="more [[tokens]], read again whenever the file changes")
    rate_limit: str | None = Field(default=None, description="requests per authenticated account, e.g. '120/minute' "
                                                             "(default: no limit)")
    oracle_urls: dict[str, str] = Field(default_factory=dict, description="oracle URL per department code, over the registry's")
    index_path: Path | None = Field(default=None, description="the audit index's SQLite file")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3, description="largest request body accepted")
    max_json_depth: int = Field(default=MAX_DEPTH, ge=8, le=512, description="deepest nesting of a JSON body accepted")
    signature_window_seconds: int = Field(default=300, ge=5, le=3600, description="freshness window of signed requests")
    oracle_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="how long a query may wait for an oracle")
    rpc_timeout_seconds: float = Field(default=DEFAULT_RPC_TIMEOUT_SECONDS, gt=0, le=3600,
                                       description="how long one JSON-RPC call to the chain node may take")
    rpc_receipt_timeout_seconds: float = Field(default=DEFAULT_RECEIPT_TIMEOUT_SECONDS, gt=0, le=3600,
                                               description="how long a sent transaction may take to be mined "
                                                           "before it is reported as not mined")
    receipts_dir: Path | None = Field(default=None, description="where to keep every receipt an oracle signs for this "
                                                                "service's queries, one JSON file each (for an auditor's "
                                                                "`govshare audit verify --receipts DIR`); default: not kept")
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8800, ge=1, le=65535)
    serving: ServingSettings = Field(default_factory=ServingSettings, description="limits toward clients ([serving])")
    development: bool = Field(default=False, description="allow placeholder tokens (never in production)")
    metrics_enabled: bool = Field(default=True, description="serve Prometheus metrics at /metrics")
    metrics_token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$",
                                             description="hex SHA-256 of the bearer token /metrics asks for "
                                                         "(default: none asked)")

    @field_validator("keystores", mode="before")
    @classmethod
    def _keystore_paths(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [{"path": v} if isinstance(v, (str, os.PathLike)) else v for v in value]
        return value

    @field_validator("oracle_urls")
    @classmethod
    def _urls(cls, value: dict[str, str]) -> dict[str, str]:
        for code, url in value.items():
            if not code or len(code.encode()) > 32:
                raise ValueError(f"department code {code!r} must be 1 to 32 bytes")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"oracle URL of {code} must start with http:// or https://")
        return {code.upper(): url.rstrip("/") for code, url in value.items()}

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)  # ValueError says what is wrong
        return value

    @field_validator("metrics_token_sha256")
    @classmethod
    def _lower_hash(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        check_token_bindings(self.tokens, development=self.development)
        if not self.development and self.metrics_token_sha256 in _PLACEHOLDER_HASHES:
            raise ValueError("metrics_token_sha256 is the hash of a well-known placeholder; "
                             "generate a random token (e.g. `openssl rand -hex 32`)")
        base = _TOML_FILE.get()
        root = base.parent if base is not None else None
        resolve = lambda p: _resolve(p, root)
        object.__setattr__(self, "manifest", resolve(self.manifest))
        object.__setattr__(self, "rpc_ca_file", resolve(self.rpc_ca_file))
        if self.rpc_ca_file is not None:
            if not self.rpc_url.startswith("https://"):
                raise ValueError("rpc_ca_file is for an https rpc_url")
            try:
                check_ca_file(self.rpc_ca_file)
            except ValueError as exc:
                raise ValueError(f"rpc_ca_file: {exc}") from None
        for name in ("rpc_client_cert_file", "rpc_client_key_file", "tls_cert_file", "tls_key_file", "tls_client_ca_file",
                     "oracle_ca_file", "oracle_client_cert_file", "oracle_client_key_file"):
            object.__setattr__(self, name, resolve(getattr(self, name)))
        _check_tls(self)
        object.__setattr__(self, "password_file", resolve(self.password_file))
        object.__setattr__(self, "index_path", resolve(self.index_path))
        object.__setattr__(self, "tokens_file", resolve(self.tokens_file))
        object.__setattr__(self, "keystores", tuple(
            KeystoreEntry(path=resolve(k.path), password_file=resolve(k.password_file)) for k in self.keystores))
        for i, entry in enumerate(self.keystores):
            _check_private(entry.path, f"keystores.{i}.path", "keystore")
        return self

    @property
    def rpc_tls(self) -> ClientTls | None:
        """The TLS files toward an https chain node (None: the system's CAs, no client certificate)."""
        if self.rpc_ca_file is None and self.rpc_client_cert_file is None:
            return None
        return ClientTls(self.rpc_ca_file, self.rpc_client_cert_file, self.rpc_client_key_file)

    @property
    def oracle_tls(self) -> ClientTls:
        """The TLS files toward providers' https oracles."""
        return ClientTls(self.oracle_ca_file, self.oracle_client_cert_file, self.oracle_client_key_file)

    @property
    def tls(self) -> ServerTls | None:
        """https for the service itself (None: plain http)."""
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        return ServerTls(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file, self.tls_require_client_cert)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then ``GOVSHARE_API_*`` variables, then the TOML file given to :meth:`load`."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _TOML_FILE.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> ApiSettings:
        """Settings from the TOML file at ``path`` (if given) under the environment.

        Raises :class:`api.errors.ConfigError` naming the file and the key at fault."""
        source = Path(path).expanduser() if path is not None else None
        name = str(source) if source is not None else "the environment"
        if source is not None:
            try:
                with source.open("rb") as handle:
                    tomllib.load(handle)
            except OSError as exc:
                raise ConfigError(f"{name}: cannot read the config file: {exc.strerror or type(exc).__name__}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{name}: not valid TOML: {exc}") from None
            except RecursionError:  # tomllib parses nested arrays and inline tables recursively
                raise ConfigError(f"{name}: not valid TOML: its arrays or tables nest too deeply") from None
        token = _TOML_FILE.set(source.resolve() if source is not None else None)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"{name}: {describe_validation_error(exc)}") from None
        except RecursionError:  # a GOVSHARE_API_* value's JSON nested too deeply for the parser
            raise ConfigError(f"{name}: a setting's value nests too deeply") from None
        finally:
            _TOML_FILE.reset(token)


def _check_private(path: Path | None, key: str, what: str) -> None:
    if path is None:
        return
    try:
        check_private_file(path, what)
    except InsecureKeyFile as exc:
        raise ValueError(f"{key}: {exc}") from None


def _check_tls(settings: ApiSettings) -> None:
    """The TLS settings make sense together and every file loads now (a mistake shows at start-up)."""
    if (settings.rpc_client_cert_file is None) != (settings.rpc_client_key_file is None):
        raise ValueError("rpc_client_cert_file and rpc_client_key_file go together: a client certificate needs its key")
    if settings.rpc_client_cert_file is not None and not settings.rpc_url.startswith("https://"):
        raise ValueError("rpc_client_cert_file is for an https rpc_url")
    if (settings.oracle_client_cert_file is None) != (settings.oracle_client_key_file is None):
        raise ValueError("oracle_client_cert_file and oracle_client_key_file go together: a client certificate needs its key")
    _check_private(settings.rpc_client_key_file, "rpc_client_key_file", "TLS client key file")
    _check_private(settings.oracle_client_key_file, "oracle_client_key_file", "TLS client key file")
    _check_private(settings.tls_key_file, "tls_key_file", "TLS key file")
    try:
        server_tls(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file, settings.tls_require_client_cert)
    except TlsSettingError as exc:
        raise ValueError(str(exc)) from None
    for key, check in [("rpc_client_cert_file", ClientTls(None, settings.rpc_client_cert_file, settings.rpc_client_key_file).check),
                       ("oracle", settings.oracle_tls.check)]:
        try:
            check()
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None


def check_token_bindings(bindings: Iterable[TokenBinding], *, development: bool) -> None:
    """``ValueError`` for a placeholder token (outside development) or two tokens with one hash."""
    bindings = list(bindings)
    if not development:
        for binding in bindings:
            if binding.sha256 in _PLACEHOLDER_HASHES:
                raise ValueError(f"token {binding.label or binding.account} is a well-known placeholder; "
                                 "generate a random token (e.g. `openssl rand -hex 32`)")
    if len({b.sha256 for b in bindings}) != len(bindings):
        raise ValueError("two tokens have the same hash")


def _resolve(path: Path | None, root: Path | None) -> Path | None:
    if path is None:
        return None
    path = Path(path).expanduser()
    if not path.is_absolute() and root is not None:
        path = root / path
    return path


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a validation error, with its dotted key; never the value (it may be secret)."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error.get("loc", ())) or "(settings)"
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown key" + ("; secrets are never in this file" if key.split(".")[-1] in ("password", "token") else "")
        elif error.get("type") == "missing":
            message = f"required (in the file, or ${ENV_PREFIX}{key.split('.')[0].upper()})"
        problems.append(f"{key}: {message}")
    return "; ".join(problems)
