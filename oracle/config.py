"""The oracle's one settings object, loaded from a TOML file.

``OracleConfig.load(path)`` reads and validates everything at start: a bad value raises
:class:`oracle.errors.ConfigError` naming the file and the dotted key (``datasets.1.timeout_seconds``).
Unknown keys are refused too (a misspelt key would otherwise silently fall back to its default).

Relative paths (``manifest``, ``key_file``, ``password_file``, ``outbox``, the TLS files) are relative to the
directory of the config file; ``~`` is expanded. The TLS files are loaded to check them; others are not opened at load: the keystore and the
password are read when the oracle starts (:meth:`OracleConfig.password`). A private-key file (the
keystore, a TLS key) that group or others may access is refused, as ssh refuses one (``chmod 600``).

The keystore password is never in this file: a ``password`` key is refused; the password comes from
``password_file`` or, without one, from ``$GOVSHARE_KEY_PASSWORD`` (``ledger.keys.read_password``).

Example: ``oracle/examples/samr-oracle.toml`` and ``oracle/examples/psb-oracle.toml``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping

from ledger.chain import DEFAULT_RECEIPT_TIMEOUT_SECONDS, DEFAULT_RPC_TIMEOUT_SECONDS
from ledger.contracts.catalog import Classification
from ledger.contracts.registry import decision_age_blocks_needed
from ledger.errors import InsecureKeyFile
from ledger.keys import read_password
from ledger.private_files import check_private_file
from ledger.tls import ClientTls, check_ca_file
from oracle.batcher import CHAIN_CHECK_SECONDS, MAX_IN_FLIGHT, STUCK_AFTER_SECONDS
from oracle.config_values import TableReader, kind_of
from oracle.errors import ConfigError, UnknownDataset
from oracle.masking import MaskRule
from serving import ServeLimits
from serving.tls import ServerTls, TlsSettingError, server_tls

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
    "rpc_url", "rpc_ca_file", "rpc_client_cert_file", "rpc_client_key_file", "manifest", "department", "key_file", "password_file", "listen_host", "listen_port", "mode",
    "outbox", "anchoring", "batch_max_records", "batch_max_age_seconds", "batch_max_in_flight", "head_poll_interval_seconds",
    "rpc_timeout_seconds", "rpc_receipt_timeout_seconds", "batch_stuck_after_seconds", "batch_chain_check_seconds",
    "max_request_bytes", "request_deadline_max_seconds", "strict_timeout_seconds", "request_poll_interval_seconds", "datasets",
    "masking", "requester_rate_limit", "serving", "chain_block_seconds", "tls_cert_file", "tls_key_file", "tls_client_ca_file",
    "tls_require_client_cert",
})
#: The keys of the ``[serving]`` table: :class:`serving.ServeLimits`' (the API's settings take the same).
_SERVING_KEYS = frozenset({"max_head_bytes", "max_headers", "max_connections", "keep_alive_seconds", "request_seconds"})
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
    the source asks for one (mutual TLS). See :func:`ledger.tls.client_tls_context`.
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
    certificate authorities trusted for an https ``rpc_url`` instead of the system's;
    ``rpc_client_cert_file`` and ``rpc_client_key_file``: the certificate the oracle presents to a
    node that asks for one (mutual TLS). ``tls``: serve https (``tls_cert_file``, ``tls_key_file``),
    and with ``tls_client_ca_file`` ask requesters for a client certificate of that CA
    (``tls_require_client_cert = true``: refuse those without one, in the handshake).
    ``requester_rate_limit`` (``"60/minute"``, ``serving.rate_limit``; default none): the signed
    queries one requester account may send in a moving window, counted once its signature is
    verified; one more is refused ``RATE_LIMITED`` (429 with ``Retry-After``) and recorded. ``serving``
    (the ``[serving]`` table): the HTTP edge's limits toward clients (head size, header count, open
    connections, idle and slow-request timeouts), the same keys and defaults as the API's.
    ``chain_block_seconds``: the chain's shortest block period (Besu QBFT's ``blockperiodseconds``),
    with which the oracle checks at start that its batching limits fit within the consortium's
    ``maxDecisionAgeBlocks`` (:meth:`decision_age_blocks_needed`).
    ``rpc_timeout_seconds``: the longest one JSON-RPC call may take (a slow node: raise it);
    ``rpc_receipt_timeout_seconds``: the longest a transaction may take to be mined before it is
    reported as not mined; ``batch_stuck_after_seconds``: how long a batch may stay unmined before
    the batcher replaces its transaction (same nonce, higher fee where the chain has fees);
    ``batch_chain_check_seconds``: how often the batcher looks at the oracle's state on chain for
    records the chain lost (a reorg, a node restarted from an older database: :mod:`oracle.chain_rollback`).
    """

    source: Path
    rpc_url: str
    department: str
    key_file: Path
    outbox: Path
    datasets: Mapping[int, DatasetConfig]
    manifest: Path | None = None
    rpc_ca_file: Path | None = None
    rpc_client_cert_file: Path | None = None
    rpc_client_key_file: Path | None = None
    tls: ServerTls | None = None
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
    chain_block_seconds: float = 2.0
    rpc_timeout_seconds: float = DEFAULT_RPC_TIMEOUT_SECONDS
    rpc_receipt_timeout_seconds: float = DEFAULT_RECEIPT_TIMEOUT_SECONDS
    batch_stuck_after_seconds: float = STUCK_AFTER_SECONDS
    batch_chain_check_seconds: float = CHAIN_CHECK_SECONDS
    masking: Mapping[Classification, Mapping[str, MaskRule]] = field(default_factory=lambda: MappingProxyType({}))
    requester_rate_limit: str | None = None  # per requester account, e.g. "60/minute"; None: no limit
    serving: ServeLimits = ServeLimits()  # the [serving] table: what a client of the HTTP edge may hold

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
        except RecursionError:  # tomllib parses nested arrays and inline tables recursively
            raise ConfigError(name, "", "not valid TOML: its arrays or tables nest too deeply") from None
        return _Loader(name, source.resolve().parent).load(data, source)

    @property
    def rpc_tls(self) -> ClientTls | None:
        """The TLS files toward an https chain node (None: the system's CAs, no client certificate)."""
        if self.rpc_ca_file is None and self.rpc_client_cert_file is None:
            return None
        return ClientTls(self.rpc_ca_file, self.rpc_client_cert_file, self.rpc_client_key_file)

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

    def decision_age_blocks_needed(self, receipt_timeout_seconds: float) -> int:
        """The most blocks this oracle's batching may put between a served record's decision and its
        anchoring, one lost transaction included (:func:`ledger.contracts.registry.decision_age_blocks_needed`)."""
        return decision_age_blocks_needed(
            block_seconds=self.chain_block_seconds, batch_max_age_seconds=self.batch_max_age_seconds,
            batch_max_in_flight=self.batch_max_in_flight, receipt_timeout_seconds=receipt_timeout_seconds,
            head_poll_interval_seconds=self.head_poll_interval_seconds)

    def check_decision_age_bound(self, max_decision_age_blocks: int, receipt_timeout_seconds: float) -> None:
        """Refuse (:class:`ConfigError`) batching limits an honest oracle could not keep within the
        consortium's ``maxDecisionAgeBlocks``: it would serve records the chain then refuses to anchor."""
        needed = self.decision_age_blocks_needed(receipt_timeout_seconds)
        if needed > max_decision_age_blocks:
            raise ConfigError(
                str(self.source), "batch_max_age_seconds",
                f"with batch_max_age_seconds {self.batch_max_age_seconds:g}, batch_max_in_flight {self.batch_max_in_flight}, "
                f"head_poll_interval_seconds {self.head_poll_interval_seconds:g}, a {receipt_timeout_seconds:g} s receipt "
                f"timeout and chain_block_seconds {self.chain_block_seconds:g}, a served record may be anchored up to "
                f"{needed} blocks after its decision; the consortium allows {max_decision_age_blocks} "
                "(maxDecisionAgeBlocks): lower these limits, or ask the committee to raise the bound")

    def password(self, environ: Mapping[str, str] | None = None) -> str:
        """The keystore password: ``password_file`` if set, else ``$GOVSHARE_KEY_PASSWORD``
        (raises ``ledger.errors.KeystoreError`` when neither yields one)."""
        return read_password(self.password_file, environ=environ)


class _Loader(TableReader):
    """Validation of the parsed TOML into the oracle's settings, one method per section."""

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
        self.private(key_file, "key_file", "keystore")
        rpc_client = self.client_files(data, "", "rpc_client_cert_file", "rpc_client_key_file", rpc_url, "chain node")
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
            rpc_client_cert_file=rpc_client[0],
            rpc_client_key_file=rpc_client[1],
            tls=self.server_tls(data),
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
            chain_block_seconds=self.seconds(data, "chain_block_seconds", "chain_block_seconds", 2.0),
            rpc_timeout_seconds=self.seconds(data, "rpc_timeout_seconds", "rpc_timeout_seconds", DEFAULT_RPC_TIMEOUT_SECONDS),
            rpc_receipt_timeout_seconds=self.seconds(data, "rpc_receipt_timeout_seconds", "rpc_receipt_timeout_seconds",
                                                     DEFAULT_RECEIPT_TIMEOUT_SECONDS),
            batch_stuck_after_seconds=self.seconds(data, "batch_stuck_after_seconds", "batch_stuck_after_seconds",
                                                   STUCK_AFTER_SECONDS),
            batch_chain_check_seconds=self.seconds(data, "batch_chain_check_seconds", "batch_chain_check_seconds",
                                                   CHAIN_CHECK_SECONDS),
            masking=self.masking(data.get("masking", {})),
            requester_rate_limit=self.rate(data, "requester_rate_limit", "requester_rate_limit"),
            serving=self.serving(data.get("serving", {})),
        )

    def serving(self, value: Any) -> ServeLimits:
        """The ``[serving]`` table: limits toward clients (defaults: :class:`serving.ServeLimits`')."""
        table = self.table(value, "serving")
        self.check_keys(table, _SERVING_KEYS, "serving.")
        default = ServeLimits()
        return ServeLimits(
            max_head_bytes=self.integer(table, "max_head_bytes", "serving.max_head_bytes", default.max_head_bytes, 1024, 1 << 20),
            max_headers=self.integer(table, "max_headers", "serving.max_headers", default.max_headers, 8, 10_000),
            max_connections=self.integer(table, "max_connections", "serving.max_connections", default.max_connections, 1, 100_000),
            keep_alive_seconds=self.seconds(table, "keep_alive_seconds", "serving.keep_alive_seconds", default.keep_alive_seconds),
            request_seconds=self.seconds(table, "request_seconds", "serving.request_seconds", default.request_seconds),
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

    def private(self, path: Path, dotted: str, what: str) -> None:
        """Refuse a private-key file that group or others may access (as ssh does)."""
        try:
            check_private_file(path, what)
        except InsecureKeyFile as exc:
            raise self.fail(dotted, str(exc)) from None

    def client_files(self, table: Mapping[str, Any], prefix: str, cert_key: str, key_key: str, url: str,
                     what: str) -> tuple[Path | None, Path | None]:
        """A client certificate and its key toward an https ``url``: both or neither, the key private
        to its owner, loaded now as a connection will load them."""
        dotted = {cert_key: prefix + cert_key, key_key: prefix + key_key}
        cert, key = self.path(table, cert_key, dotted[cert_key]), self.path(table, key_key, dotted[key_key])
        for name, path in ((cert_key, cert), (key_key, key)):
            if path is not None and not url.startswith("https://"):
                raise self.fail(dotted[name], f"is for an https {what}; the URL is http")
            if path is not None and not path.is_file():
                raise self.fail(dotted[name], f"no such file: {path}")
        if (cert is None) != (key is None):
            raise self.fail(dotted[key_key if key is None else cert_key], "is required with the other: a client certificate needs its key")
        if cert is not None and key is not None:
            self.private(key, dotted[key_key], "TLS client key file")
            try:
                ClientTls(None, cert, key).check()
            except ValueError as exc:
                raise self.fail(dotted[cert_key], str(exc)) from None
        return cert, key

    def server_tls(self, data: Mapping[str, Any]) -> ServerTls | None:
        """https for the oracle's own interface (``tls_*``, :func:`serving.tls.server_tls`), loaded now."""
        files = [self.path(data, key, key) for key in ("tls_cert_file", "tls_key_file", "tls_client_ca_file")]
        require = data.get("tls_require_client_cert", False)
        if not isinstance(require, bool):
            raise self.fail("tls_require_client_cert", f"must be true or false, found {kind_of(require)}")
        if files[1] is not None:
            self.private(files[1], "tls_key_file", "TLS key file")
        try:
            return server_tls(*files, require)
        except TlsSettingError as exc:
            raise self.fail(exc.key, exc.problem) from None

    def source_tls(self, table: Mapping[str, Any], prefix: str, base_url: str) -> dict[str, Path | None]:
        """``ca_file``, ``client_cert_file`` and ``client_key_file`` of a dataset: only for an https
        source, the certificate and its key together, each loaded as the relay will load it."""
        files = {"ca_file": self.ca_file(table, "ca_file", f"{prefix}.ca_file", base_url, "source")}
        files["client_cert_file"], files["client_key_file"] = self.client_files(
            table, f"{prefix}.", "client_cert_file", "client_key_file", base_url, "source")
        return files

    def param_names(self, table: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
        dotted = f"{prefix}.params"
        if "params" not in table:
            raise self.fail(dotted, "is required: the query parameter names the oracle forwards")
        value = table["params"]
        if not isinstance(value, list) or not value:
            raise self.fail(dotted, f"must be a non-empty list of parameter names, found {kind_of(value)}")
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
                raise self.fail(f"{dotted}.{name}", f"must be a string or an integer, found {kind_of(value)}")
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

