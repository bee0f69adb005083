"""The oracle's one settings object, loaded from a TOML file.

``OracleConfig.load(path)`` reads and validates everything at start: a bad value raises
:class:`oracle.errors.ConfigError` naming the file and the dotted key (``datasets.1.timeout_seconds``).
Unknown keys are refused too (a misspelt key would otherwise silently fall back to its default).

Relative paths (``manifest``, ``key_file``, ``password_file``, ``outbox``, the TLS files) are relative to the
directory of the config file; ``~`` is expanded. The TLS files are loaded to check them; others are not opened at load: the keystore and the
password are read when the oracle starts (:meth:`OracleConfig.password`).

The keystore password is never in this file: a ``password`` key is refused; the password comes from
``password_file`` or, without one, from ``$GOVSHARE_KEY_PASSWORD`` (``ledger.keys.read_password``).

Example: ``oracle/examples/samr-oracle.toml`` and ``oracle/examples/psb-oracle.toml``.
"""

from __future__ import annotations

import math
import os
import re
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from ledger.chain import DEFAULT_RECEIPT_TIMEOUT_SECONDS, DEFAULT_RPC_TIMEOUT_SECONDS
from ledger.contracts.catalog import Classification
from ledger.http_client import check_ca_file, client_tls_context
from ledger.keys import read_password
from oracle.batcher import MAX_IN_FLIGHT, STUCK_AFTER_SECONDS
from oracle.errors import ConfigError, UnknownDataset
from oracle.masking import MaskRule

__all__ = ["OracleConfig", "DatasetConfig", "Mode", "MODES", "Anchoring", "ANCHORINGS"]

Mode = Literal["fast", "strict"]
MODES: tuple[str, ...] = ("fast", "strict")
#: Where the batcher runs: a process of its own (``oracle.anchoring``), or a thread of the answering process.
Anchoring = Literal["process", "thread"]
ANCHORINGS: tuple[str, ...] = ("process", "thread")

#: ``batch_max_records`` bounds (the audit log's batch size stays well under the block gas limit).
BATCH_MAX_RECORDS_RANGE = (1, 500)
#: ``batch_max_in_flight`` bounds: batches sent and not yet mined (a node keeps a bounded number of
#: one sender's transactions in its pool; see ``oracle.batcher.MAX_IN_FLIGHT``).
BATCH_MAX_IN_FLIGHT_RANGE = (1, 16)
_DEPT_CODE_MAX_BYTES = 32  # the registry stores a department's short code as bytes32
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]+")

_TOP_KEYS = frozenset({
    "rpc_url", "rpc_ca_file", "manifest", "department", "key_file", "password_file", "listen_host", "listen_port", "mode",
    "outbox", "anchoring", "batch_max_records", "batch_max_age_seconds", "batch_max_in_flight", "head_poll_interval_seconds",
    "rpc_timeout_seconds", "rpc_receipt_timeout_seconds", "batch_stuck_after_seconds",
    "max_request_bytes", "request_deadline_max_seconds", "strict_timeout_seconds", "request_poll_interval_seconds", "datasets",
    "masking",
})
_DATASET_KEYS = frozenset({
    "base_url", "path", "timeout_seconds", "max_response_bytes", "params", "fixed_params", "max_records",
    "max_connections", "masking", "ca_file", "client_cert_file", "client_key_file",
})


@dataclass(frozen=True)
class DatasetConfig:
    """How the oracle reaches the department's API for one on-chain dataset.

    ``params`` are the query parameter names a requester may send (anything else is refused as
    ``MalformedRequest``); ``fixed_params`` are sent on every request (e.g. a page size, ``limit``),
    and a requester cannot override them. ``masking`` overrides the classification's rules per field.

    For an ``https`` source: ``ca_file`` (PEM) holds the certificate authorities trusted for the
    source's certificate instead of the system's (a department's internal CA); ``client_cert_file``
    and ``client_key_file`` (PEM, the key unencrypted) are the certificate the oracle presents when
    the source asks for one (mutual TLS). See :func:`ledger.http_client.client_tls_context`.
    """

    id: int
    base_url: str
    path: str
    params: tuple[str, ...]
    timeout_seconds: float = 2.0
    max_response_bytes: int = 1_048_576
    max_records: int = 100
    max_connections: int = 64
    fixed_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    masking: Mapping[str, MaskRule] = field(default_factory=lambda: MappingProxyType({}))
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    @property
    def url(self) -> str:
        """``base_url`` + ``path``: the URL without a query (safe to log)."""
        return self.base_url + self.path


@dataclass(frozen=True)
class OracleConfig:
    """Everything the oracle of one providing department needs. Build it with :meth:`load`.

    ``mode``: ``fast`` answers as soon as the audit record is in the outbox; ``strict`` answers only
    once it is anchored on chain, waiting at most ``strict_timeout_seconds``. ``request_deadline_max_seconds``
    is the longest a signed query may be valid for; ``head_poll_interval_seconds`` 0 asks the chain
    for its head on every request. ``anchoring``: ``process`` runs the batcher in a process of its own
    (``oracle.anchoring``: its CPU stays off the answering process's GIL), ``thread`` on a thread
    beside the answering loop (tests that drive the batcher by hand use it). ``rpc_ca_file``: the
    certificate authorities trusted for an https ``rpc_url`` instead of the system's.
    ``rpc_timeout_seconds``: the longest one JSON-RPC call may take (a slow node: raise it);
    ``rpc_receipt_timeout_seconds``: the longest a transaction may take to be mined before it is
    reported as not mined; ``batch_stuck_after_seconds``: how long a batch may stay unmined before
    the batcher replaces its transaction (same nonce, higher fee where the chain has fees).
    """

    source: Path
    rpc_url: str
    department: str
    key_file: Path
    outbox: Path
    datasets: Mapping[int, DatasetConfig]
    manifest: Path | None = None
    rpc_ca_file: Path | None = None
    password_file: Path | None = None
    listen_host: str = "127.0.0.1"
    listen_port: int = 8700
    mode: Mode = "fast"
    anchoring: Anchoring = "process"
    batch_max_records: int = 100
    batch_max_age_seconds: float = 2.0
    batch_max_in_flight: int = MAX_IN_FLIGHT  # batches sent before the first of them is mined (1: one at a time)
    head_poll_interval_seconds: float = 0.0
    max_request_bytes: int = 65_536
    request_deadline_max_seconds: int = 300
    strict_timeout_seconds: float = 30.0
    request_poll_interval_seconds: float = 1.0  # how often the on-chain request follower looks for new requests
    rpc_timeout_seconds: float = DEFAULT_RPC_TIMEOUT_SECONDS
    rpc_receipt_timeout_seconds: float = DEFAULT_RECEIPT_TIMEOUT_SECONDS
    batch_stuck_after_seconds: float = STUCK_AFTER_SECONDS
    masking: Mapping[Classification, Mapping[str, MaskRule]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OracleConfig:
        """Read and validate the TOML file at ``path``; :class:`ConfigError` names the bad key."""
        source = Path(path)
        name = str(source)
        try:
            with source.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(name, "", f"cannot read the config file: {exc.strerror or type(exc).__name__}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(name, "", f"not valid TOML: {exc}") from None
        return _Loader(name, source.resolve().parent).load(data, source)

    def dataset(self, dataset_id: int) -> DatasetConfig:
        """The configuration of ``dataset_id``; :class:`UnknownDataset` if this oracle does not serve it."""
        try:
            return self.datasets[dataset_id]
        except KeyError:
            raise UnknownDataset(f"this oracle serves no dataset {dataset_id}") from None

    def masking_rules(self, dataset_id: int, classification: Classification) -> dict[str, MaskRule]:
        """The rules for ``dataset_id`` of on-chain ``classification``: the classification's rules,
        overridden field by field by the dataset's own (``none`` included)."""
        rules = dict(self.masking.get(Classification(classification), {}))
        dataset = self.datasets.get(dataset_id)
        if dataset is not None:
            rules.update(dataset.masking)
        return rules

    def password(self, environ: Mapping[str, str] | None = None) -> str:
        """The keystore password: ``password_file`` if set, else ``$GOVSHARE_KEY_PASSWORD``
        (raises ``ledger.errors.KeystoreError`` when neither yields one)."""
        return read_password(self.password_file, environ=environ)


class _Loader:
    """Validation of the parsed TOML, one typed getter per kind of value."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    # ---- tables and keys -------------------------------------------------------------------
    def check_keys(self, table: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in table:
            dotted = f"{prefix}{key}"
            if "password" in key.lower() and key != "password_file":
                raise self.fail(
                    dotted, "a password must not be in the config file: set password_file, or $GOVSHARE_KEY_PASSWORD"
                )
            if key not in allowed:
                raise self.fail(dotted, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, found {_kind(value)}")
        return value

    # ---- scalars -------------------------------------------------------------------------
    def string(self, table: Mapping[str, Any], key: str, dotted: str, default: str | None = None) -> str:
        if key not in table:
            if default is None:
                raise self.fail(dotted, "is required")
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(dotted, f"must be a string, found {_kind(value)}")
        if not value.strip():
            raise self.fail(dotted, "must not be empty")
        return value

    def integer(self, table: Mapping[str, Any], key: str, dotted: str, default: int, low: int, high: int | None = None) -> int:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(dotted, f"must be an integer, found {_kind(value)}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(dotted, f"must be {bound}, found {value}")
        return value

    def seconds(self, table: Mapping[str, Any], key: str, dotted: str, default: float, *, allow_zero: bool = False) -> float:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(dotted, f"must be a number of seconds, found {_kind(value)}")
        value = float(value)
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise self.fail(dotted, f"must be {'at least 0' if allow_zero else 'more than 0'} seconds, found {value}")
        return value

    def path(self, table: Mapping[str, Any], key: str, dotted: str) -> Path | None:
        if key not in table:
            return None
        path = Path(self.string(table, key, dotted)).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def http_url(self, value: str, dotted: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise self.fail(dotted, f"not a valid URL: {exc}") from None
        if parts.scheme not in schemes or not parts.hostname:
            raise self.fail(dotted, f"must be an {' or '.join(schemes)} URL with a host, found {value!r}")
        if parts.query or parts.fragment:
            raise self.fail(dotted, "must not have a query or a fragment")
        if parts.username is not None or parts.password is not None:
            raise self.fail(dotted, "must not hold credentials")
        return value

    # ---- sections ------------------------------------------------------------------------
    def load(self, data: Mapping[str, Any], source: Path) -> OracleConfig:
        self.check_keys(data, _TOP_KEYS, "")
        rpc_url = self.http_url(self.string(data, "rpc_url", "rpc_url"), "rpc_url")
        department = self.string(data, "department", "department")
        if department != department.strip() or len(department.encode("utf-8")) > _DEPT_CODE_MAX_BYTES:
            raise self.fail("department", f"must be a short code of at most {_DEPT_CODE_MAX_BYTES} bytes without spaces at its ends")
        key_file = self.path(data, "key_file", "key_file")
        if key_file is None:
            raise self.fail("key_file", "is required (the oracle account's keystore)")
        mode = self.string(data, "mode", "mode", "fast")
        if mode not in MODES:
            raise self.fail("mode", f"must be one of {', '.join(MODES)}, found {mode!r}")
        anchoring = self.string(data, "anchoring", "anchoring", "process")
        if anchoring not in ANCHORINGS:
            raise self.fail("anchoring", f"must be one of {', '.join(ANCHORINGS)}, found {anchoring!r}")
        if "datasets" not in data:
            raise self.fail("datasets", "is required: at least one [datasets.<id>] table")
        datasets_table = self.table(data["datasets"], "datasets")
        if not datasets_table:
            raise self.fail("datasets", "must hold at least one [datasets.<id>] table")
        datasets = {}
        for key, table in datasets_table.items():
            dataset = self.dataset(key, table)
            datasets[dataset.id] = dataset
        low, high = BATCH_MAX_RECORDS_RANGE
        return OracleConfig(
            source=source,
            rpc_url=rpc_url,
            department=department,
            key_file=key_file,
            outbox=self.path(data, "outbox", "outbox") or self.base_dir / "oracle-outbox.sqlite",
            datasets=MappingProxyType(datasets),
            manifest=self.path(data, "manifest", "manifest"),
            rpc_ca_file=self.ca_file(data, "rpc_ca_file", "rpc_ca_file", rpc_url, "chain node"),
            password_file=self.path(data, "password_file", "password_file"),
            listen_host=self.string(data, "listen_host", "listen_host", "127.0.0.1"),
            listen_port=self.integer(data, "listen_port", "listen_port", 8700, 1, 65_535),
            mode=mode,  # type: ignore[arg-type]  # checked against MODES above
            anchoring=anchoring,  # type: ignore[arg-type]  # checked against ANCHORINGS above
            batch_max_records=self.integer(data, "batch_max_records", "batch_max_records", 100, low, high),
            batch_max_age_seconds=self.seconds(data, "batch_max_age_seconds", "batch_max_age_seconds", 2.0),
            batch_max_in_flight=self.integer(data, "batch_max_in_flight", "batch_max_in_flight", MAX_IN_FLIGHT,
                                             *BATCH_MAX_IN_FLIGHT_RANGE),
            head_poll_interval_seconds=self.seconds(
                data, "head_poll_interval_seconds", "head_poll_interval_seconds", 0.0, allow_zero=True
            ),
            max_request_bytes=self.integer(data, "max_request_bytes", "max_request_bytes", 65_536, 256),
            request_deadline_max_seconds=self.integer(
                data, "request_deadline_max_seconds", "request_deadline_max_seconds", 300, 1, 86_400
            ),
            strict_timeout_seconds=self.seconds(data, "strict_timeout_seconds", "strict_timeout_seconds", 30.0),
            request_poll_interval_seconds=self.seconds(data, "request_poll_interval_seconds", "request_poll_interval_seconds", 1.0),
            rpc_timeout_seconds=self.seconds(data, "rpc_timeout_seconds", "rpc_timeout_seconds", DEFAULT_RPC_TIMEOUT_SECONDS),
            rpc_receipt_timeout_seconds=self.seconds(data, "rpc_receipt_timeout_seconds", "rpc_receipt_timeout_seconds",
                                                     DEFAULT_RECEIPT_TIMEOUT_SECONDS),
            batch_stuck_after_seconds=self.seconds(data, "batch_stuck_after_seconds", "batch_stuck_after_seconds",
                                                   STUCK_AFTER_SECONDS),
            masking=self.masking(data.get("masking", {})),
        )

    def dataset(self, key: str, value: Any) -> DatasetConfig:
        prefix = f"datasets.{key}"
        if not (key.isascii() and key.isdigit()) or key != str(int(key)) or int(key) == 0 or int(key) >= 2**64:
            raise self.fail(prefix, "a dataset is keyed by its on-chain id, a positive integer (e.g. [datasets.1])")
        table = self.table(value, prefix)
        self.check_keys(table, _DATASET_KEYS, prefix + ".")
        base_url = self.http_url(self.string(table, "base_url", f"{prefix}.base_url"), f"{prefix}.base_url").rstrip("/")
        path = self.string(table, "path", f"{prefix}.path")
        if not path.startswith("/") or "?" in path or "#" in path:
            raise self.fail(f"{prefix}.path", f"must start with / and have no query or fragment, found {path!r}")
        params = self.param_names(table, prefix)
        fixed = self.fixed_params(table, prefix, params)
        masking_key = f"{prefix}.masking"
        masking = self.rules(self.table(table["masking"], masking_key), masking_key) if "masking" in table else {}
        tls = self.source_tls(table, prefix, base_url)
        return DatasetConfig(
            id=int(key),
            base_url=base_url,
            path=path,
            params=params,
            timeout_seconds=self.seconds(table, "timeout_seconds", f"{prefix}.timeout_seconds", 2.0),
            max_response_bytes=self.integer(table, "max_response_bytes", f"{prefix}.max_response_bytes", 1_048_576, 1),
            max_records=self.integer(table, "max_records", f"{prefix}.max_records", 100, 1),
            max_connections=self.integer(table, "max_connections", f"{prefix}.max_connections", 64, 1, 1024),
            fixed_params=MappingProxyType(fixed),
            masking=MappingProxyType(masking),
            **tls,
        )

    def ca_file(self, table: Mapping[str, Any], key: str, dotted: str, url: str, what: str) -> Path | None:
        """A PEM file of certificate authorities to trust for ``url`` (https only), loaded now so that
        a mistake shows when the oracle starts, not at the first call."""
        path = self.path(table, key, dotted)
        if path is None:
            return None
        if not url.startswith("https://"):
            raise self.fail(dotted, f"is for an https {what}; the URL is http")
        try:
            check_ca_file(path)
        except ValueError as exc:
            raise self.fail(dotted, str(exc)) from None
        return path

    def source_tls(self, table: Mapping[str, Any], prefix: str, base_url: str) -> dict[str, Path | None]:
        """``ca_file``, ``client_cert_file`` and ``client_key_file`` of a dataset: only for an https
        source, the certificate and its key together, each loaded as the relay will load it."""
        files = {"ca_file": self.ca_file(table, "ca_file", f"{prefix}.ca_file", base_url, "source")}
        for key in ("client_cert_file", "client_key_file"):
            files[key] = self.path(table, key, f"{prefix}.{key}")
            if files[key] is not None and not base_url.startswith("https://"):
                raise self.fail(f"{prefix}.{key}", "is for an https source; the URL is http")
        if (files["client_cert_file"] is None) != (files["client_key_file"] is None):
            missing = "client_key_file" if files["client_key_file"] is None else "client_cert_file"
            raise self.fail(f"{prefix}.{missing}", "is required with the other: a client certificate needs its key")
        if files["client_cert_file"] is not None:
            for key in ("client_cert_file", "client_key_file"):
                if not files[key].is_file():  # type: ignore[union-attr]
                    raise self.fail(f"{prefix}.{key}", f"no such file: {files[key]}")
            try:
                client_tls_context(None, files["client_cert_file"], files["client_key_file"])
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise self.fail(f"{prefix}.client_cert_file", "with client_key_file cannot be loaded as a PEM certificate and "
                                f"its matching unencrypted key ({type(exc).__name__}: {exc})") from None
        return files

    def param_names(self, table: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
        dotted = f"{prefix}.params"
        if "params" not in table:
            raise self.fail(dotted, "is required: the query parameter names the oracle forwards")
        value = table["params"]
        if not isinstance(value, list) or not value:
            raise self.fail(dotted, f"must be a non-empty list of parameter names, found {_kind(value)}")
        for item in value:
            if not isinstance(item, str) or not _PARAM_NAME.fullmatch(item):
                raise self.fail(dotted, f"{item!r} is not a parameter name (letters, digits, _ . - [ ])")
        if len(set(value)) != len(value):
            raise self.fail(dotted, "names a parameter twice")
        return tuple(value)

    def fixed_params(self, table: Mapping[str, Any], prefix: str, params: tuple[str, ...]) -> dict[str, str]:
        dotted = f"{prefix}.fixed_params"
        if "fixed_params" not in table:
            return {}
        fixed: dict[str, str] = {}
        for name, value in self.table(table["fixed_params"], dotted).items():
            if name in params:
                raise self.fail(f"{dotted}.{name}", "is also in params: a fixed parameter cannot be sent by a requester")
            if not _PARAM_NAME.fullmatch(name):
                raise self.fail(f"{dotted}.{name}", "is not a parameter name (letters, digits, _ . - [ ])")
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise self.fail(f"{dotted}.{name}", f"must be a string or an integer, found {_kind(value)}")
            fixed[name] = str(value)
        return fixed

    def masking(self, value: Any) -> Mapping[Classification, Mapping[str, MaskRule]]:
        names = {c.name.lower(): c for c in Classification}
        result: dict[Classification, Mapping[str, MaskRule]] = {}
        for name, table in self.table(value, "masking").items():
            dotted = f"masking.{name}"
            if name not in names:
                raise self.fail(dotted, f"unknown classification (expected one of: {', '.join(names)})")
            result[names[name]] = MappingProxyType(self.rules(self.table(table, dotted), dotted))
        return MappingProxyType(result)

    def rules(self, table: Mapping[str, Any], prefix: str) -> dict[str, MaskRule]:
        return {name: MaskRule.parse(rule, source=self.source, key=f"{prefix}.{name}") for name, rule in table.items()}


def _kind(value: Any) -> str:
    """A TOML-ish name of ``value``'s type for error messages (never the value: it may be a secret)."""
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a float"}.get(
        type(value), type(value).__name__
    )
