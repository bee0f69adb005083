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
  ``secret``...) is refused unless ``development = true``.
* ``oracle_urls`` overrides, per department code, the oracle URL a department publishes in the
  consortium registry.
* ``index_path`` is the audit index's SQLite file (used by the audit routes).
* ``rpc_ca_file`` (PEM) holds the certificate authorities trusted for an https ``rpc_url`` instead of
  the system's (a consortium's own CA).
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
from contextvars import ContextVar
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
from ledger.http_client import check_ca_file

__all__ = ["ApiSettings", "KeystoreEntry", "TokenBinding", "token_sha256"]

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


class ApiSettings(BaseSettings):
    """Everything the API service needs (see the module docstring for where each value comes from)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    rpc_url: str = Field(min_length=1, description="JSON-RPC URL of the consortium chain")
    manifest: Path | None = Field(default=None, description="deployment manifest (default deployments/<chain-id>.json)")
    rpc_ca_file: Path | None = Field(default=None, description="PEM certificate authorities trusted for an https rpc_url "
                                                               "(default: the system's)")
    keystores: tuple[KeystoreEntry, ...] = Field(default=(), description="the accounts the service acts with")
    password_file: Path | None = Field(default=None, description="keystore password file (else $GOVSHARE_KEY_PASSWORD)")
    tokens: tuple[TokenBinding, ...] = Field(default=(), description="bearer tokens (SHA-256) and their accounts")
    oracle_urls: dict[str, str] = Field(default_factory=dict, description="oracle URL per department code, over the registry's")
    index_path: Path | None = Field(default=None, description="the audit index's SQLite file")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3, description="largest request body accepted")
    signature_window_seconds: int = Field(default=300, ge=5, le=3600, description="freshness window of signed requests")
    oracle_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="how long a query may wait for an oracle")
    receipts_dir: Path | None = Field(default=None, description="where to keep every receipt an oracle signs for this "
                                                                "service's queries, one JSON file each (for an auditor's "
                                                                "`govshare audit verify --receipts DIR`); default: not kept")
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8800, ge=1, le=65535)
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

    @field_validator("metrics_token_sha256")
    @classmethod
    def _lower_hash(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        if not self.development:
            for binding in self.tokens:
                if binding.sha256 in _PLACEHOLDER_HASHES:
                    raise ValueError(f"token {binding.label or binding.account} is a well-known placeholder; "
                                     "generate a random token (e.g. `openssl rand -hex 32`)")
            if self.metrics_token_sha256 in _PLACEHOLDER_HASHES:
                raise ValueError("metrics_token_sha256 is the hash of a well-known placeholder; "
                                 "generate a random token (e.g. `openssl rand -hex 32`)")
        if len({b.sha256 for b in self.tokens}) != len(self.tokens):
            raise ValueError("two tokens have the same hash")
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
        object.__setattr__(self, "password_file", resolve(self.password_file))
        object.__setattr__(self, "index_path", resolve(self.index_path))
        object.__setattr__(self, "keystores", tuple(
            KeystoreEntry(path=resolve(k.path), password_file=resolve(k.password_file)) for k in self.keystores))
        return self

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
        token = _TOML_FILE.set(source.resolve() if source is not None else None)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"{name}: {_describe(exc)}") from None
        finally:
            _TOML_FILE.reset(token)


def _resolve(path: Path | None, root: Path | None) -> Path | None:
    if path is None:
        return None
    path = Path(path).expanduser()
    if not path.is_absolute() and root is not None:
        path = root / path
    return path


def _describe(exc: ValidationError) -> str:
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
