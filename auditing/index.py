"""The auditors' index: a local SQLite copy of one deployment's audit trail, fed from chain events.

``AuditIndex(path).sync(consortium)`` reads every event of the registry, the catalog, the grants and
the audit log from the deployment block on, ``step`` blocks per ``eth_getLogs`` call, and commits
each range in one SQLite transaction together with the cursor (the last block fully indexed): a
crash loses at most the range in flight, and the next ``sync`` resumes after the cursor. The index
refuses to resume on a chain that no longer has the indexed cursor block (a reorganised or reset
chain: rebuild it), and to mix deployments.

What it keeps (SQLite, WAL, so readers such as the API never block the syncing writer):

* ``records``: every ``AuditRecordAppended`` with its oracle, sequence, the oracle's department (from
  its ``AuditBatchAppended``), the requester and the requester's department at that moment, dataset,
  version, grant, the fields the grant allowed then, outcome, reason, decision block, hashes, and
  block, block time, transaction and log index; indexed by dataset, departments, requester, grant,
  outcome and time, so that searching 100,000+ records is instant.
* ``batches``: every ``AuditBatchAppended`` (the head the contract published after each batch).
* ``grant_events`` and ``grants``: every AccessGrants event (the history the verifier replays) and
  each grant's state as of the cursor.
* ``registry_events``, ``departments``, ``accounts``: membership and role history (admitted,
  removed, accounts bound/unbound, roles granted/revoked) and the current state.
* ``datasets``, ``dataset_versions``: the catalog, with every published version's commitments.
* ``blocks``: the timestamp (and hash) of every block an event is in, and of every decision block of
  a served record (the verifier needs it to replay expiry).
* ``daily``: accesses per UTC day per department, as requester and as provider, kept up to date by
  ``sync`` (the dashboard's counts).

Chain data comes in through raw JSON-RPC (``eth_getLogs``, batched ``eth_getBlockByNumber``), with a
hand decoder for the audit record event: web3's per-log formatting would cost more than the rest of
the sync together at 100,000 records.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from eth_utils import to_checksum_address
from hexbytes import HexBytes

from ledger.contracts.audit_log import Outcome, reason_name
from ledger.errors import LedgerError
from ledger.events import block_ranges
from ledger.rpc import RpcErrorAnswer
from ledger.contracts.grants import GrantStatus
from ledger.contracts.registry import Role

#: Blocks read per ``eth_getLogs`` call and committed per SQLite transaction by :meth:`AuditIndex.sync`.
DEFAULT_SYNC_STEP = 2_000
#: Most block headers asked for in one batched JSON-RPC request.
BLOCK_BATCH = 500
INDEX_FORMAT = 1
MAX_PAGE = 1_000

#: Role bits in ``accounts.roles`` and ``registry_events.role``.
ROLE_BITS: dict[bytes, int] = {Role.COMMITTEE: 1, Role.OPERATOR: 2, Role.AUDITOR: 4, Role.ORACLE: 8}
ROLE_NAMES: dict[int, str] = {1: "committee", 2: "operator", 4: "auditor", 8: "oracle"}
COMMITTEE, OPERATOR, AUDITOR, ORACLE = 1, 2, 4, 8

GRANT_STATUS_NAMES = {
    GrantStatus.REQUESTED: "requested",
    GrantStatus.AWAITING_CO_APPROVAL: "awaiting_co_approval",
    GrantStatus.ACTIVE: "active",
    GrantStatus.REJECTED: "rejected",
    GrantStatus.REVOKED: "revoked",
    GrantStatus.CANCELLED: "cancelled",
}
GRANT_STATES = (*GRANT_STATUS_NAMES.values(), "expired")

_U64 = 1 << 64
_LOG_BITS = 24  # pos = block << 24 | log index: chain order as one integer


class AuditIndexError(LedgerError):
    """The index file cannot be used: another deployment's, another format, or a chain that changed under it."""


class AuditQueryError(AuditIndexError, ValueError):
    """A search or lookup was asked with a bad filter (an unknown department code, a bad cursor...)."""


# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class SyncResult:
    """What one :meth:`AuditIndex.sync` call did."""

    from_block: int
    to_block: int  # the index's cursor after the call (every block up to it is indexed)
    ranges: int
    records: int
    grant_events: int
    registry_events: int
    catalog_events: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IndexedRecord:
    """One anchored audit record, with what the index knows around it."""

    record_id: int
    oracle: str
    sequence: int
    oracle_dept: int  # the department the writing oracle acted for (its AuditBatchAppended)
    requester: str
    requester_dept: int  # the requester account's department when the record was anchored (0: none)
    dataset_id: int
    dataset_version: int
    grant_id: int
    field_mask: int | None  # the fields the named grant allowed then (records do not carry requested fields)
    outcome: Outcome
    reason: int
    checked_at_block: int
    request_hash: bytes
    response_hash: bytes
    block_number: int
    tx_hash: str
    log_index: int
    block_time: int  # unix seconds of the anchoring block

    @property
    def provider_dept(self) -> int:
        """The department whose data the record is about (its oracle's)."""
        return self.oracle_dept

    @property
    def reason_name(self) -> str:
        return reason_name(self.reason)

    @property
    def cursor(self) -> str:
        """The keyset position of this record (pass as ``cursor`` to continue after it)."""
        return f"{self.block_number}:{self.log_index}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ids and hashes as 0x-hex strings, outcome and reason by name."""
        return {
            "record_id": hex(self.record_id),
            "oracle": self.oracle,
            "sequence": self.sequence,
            "oracle_dept": self.oracle_dept,
            "provider_dept": self.provider_dept,
            "requester": self.requester,
            "requester_dept": self.requester_dept,
            "dataset_id": self.dataset_id,
            "dataset_version": self.dataset_version,
            "grant_id": self.grant_id,
            "field_mask": None if self.field_mask is None else hex(self.field_mask),
            "outcome": self.outcome.name.lower(),
            "reason": self.reason,
            "reason_name": self.reason_name,
            "checked_at_block": self.checked_at_block,
            "request_hash": "0x" + self.request_hash.hex(),
            "response_hash": "0x" + self.response_hash.hex(),
            "block_number": self.block_number,
            "block_time": self.block_time,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
        }


@dataclass(frozen=True)
class RecordPage:
    """One page of :meth:`AuditIndex.search`: newest first; ``next_cursor`` fetches the next (older)
    page (None on the last page); ``total`` counts every match."""

    records: list[IndexedRecord]
    total: int
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"records": [r.to_dict() for r in self.records], "total": self.total, "next_cursor": self.next_cursor}


@dataclass(frozen=True)
class GrantEvent:
    """One AccessGrants event about a grant (``kind``: requested, approved, co_approved, activated,
    rejected, revoked, cancelled). ``GrantUsed`` events are not kept one by one: the served records
    are the uses, and each grant's ``used`` count follows them."""

    grant_id: int
    kind: str
    block_number: int
    log_index: int
    tx_hash: str
    block_time: int
    actor: str | None  # approver / auditor / revoker..., when the event names one
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GrantSummary:
    """A grant as of the index's cursor: ``status`` is requested, awaiting_co_approval, active,
    expired (active but past ``expires_at`` at the cursor's block time), rejected, revoked or cancelled;
    ``used`` counts the served records indexed under it."""

    id: int
    dataset_id: int
    requester_dept: int
    owner_dept: int
    pinned_version: int
    status: str
    fields: int
    unmasked_fields: int
    duration: int
    quota: int
    used: int
    expires_at: int
    purpose: str
    requested_block: int
    activated_block: int | None
    closed_block: int | None  # rejected, revoked or cancelled at

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fields"], data["unmasked_fields"] = hex(self.fields), hex(self.unmasked_fields)
        return data


@dataclass(frozen=True)
class DailyCount:
    """Accesses on one UTC day by one department (as requester or as provider, see ``daily_counts``)."""

    day: str  # YYYY-MM-DD
    dept_id: int
    dept_code: str
    served: int
    denied: int
    source_failure: int

    @property
    def total(self) -> int:
        return self.served + self.denied + self.source_failure

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True)
class DepartmentSummary:
    """A department as of the cursor, with its current accounts and their roles."""

    id: int
    code: str
    name: str
    audit_office: bool
    active: bool
    admitted_block: int
    removed_block: int | None
    accounts: dict[str, list[str]]  # address -> role names (operator, oracle, auditor, committee)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetVersionSummary:
    version: int
    content_hash: bytes
    merkle_root: bytes
    record_count: int
    block_number: int
    block_time: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "content_hash": "0x" + self.content_hash.hex(), "merkle_root": "0x" + self.merkle_root.hex()}


@dataclass(frozen=True)
class DatasetSummary:
    id: int
    owner_dept: int
    name: str
    fields: tuple[str, ...]
    classification: int
    retired: bool
    versions: list[DatasetVersionSummary]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fields": list(self.fields), "versions": [v.to_dict() for v in self.versions]}


@dataclass(frozen=True)
class IndexStatus:
    chain_id: int | None
    addresses: dict[str, str]
    deployment_block: int | None
    cursor: int | None  # last block fully indexed (None: never synced)
    cursor_time: int | None
    records: int
    oracles: int
    grants: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- schema

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, hash TEXT);
CREATE TABLE IF NOT EXISTS records (
    pos INTEGER PRIMARY KEY,
    oracle TEXT NOT NULL, sequence INTEGER NOT NULL, oracle_dept INTEGER NOT NULL,
    requester TEXT NOT NULL, requester_dept INTEGER NOT NULL,
    dataset_id INTEGER NOT NULL, dataset_version INTEGER NOT NULL, grant_id INTEGER NOT NULL,
    field_mask TEXT, outcome INTEGER NOT NULL, reason INTEGER NOT NULL, checked_at_block INTEGER NOT NULL,
    request_hash BLOB NOT NULL, response_hash BLOB NOT NULL,
    block_number INTEGER NOT NULL, block_time INTEGER NOT NULL, tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_oracle ON records (oracle, sequence);
CREATE INDEX IF NOT EXISTS records_by_dataset ON records (dataset_id, pos);
CREATE INDEX IF NOT EXISTS records_by_requester_dept ON records (requester_dept, pos);
CREATE INDEX IF NOT EXISTS records_by_provider_dept ON records (oracle_dept, pos);
CREATE INDEX IF NOT EXISTS records_by_requester ON records (requester, pos);
CREATE INDEX IF NOT EXISTS records_by_grant ON records (grant_id, pos);
CREATE INDEX IF NOT EXISTS records_by_outcome ON records (outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_dataset_outcome ON records (dataset_id, outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_requester_dept_outcome ON records (requester_dept, outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_provider_dept_outcome ON records (oracle_dept, outcome, pos);
CREATE INDEX IF NOT EXISTS records_by_time ON records (block_time);
CREATE TABLE IF NOT EXISTS batches (
    pos INTEGER PRIMARY KEY, oracle TEXT NOT NULL, dept_id INTEGER NOT NULL, first_sequence INTEGER NOT NULL,
    count INTEGER NOT NULL, head BLOB NOT NULL, block_number INTEGER NOT NULL, tx_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grant_events (
    pos INTEGER PRIMARY KEY, grant_id INTEGER NOT NULL, kind TEXT NOT NULL, block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, actor TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS grant_events_by_grant ON grant_events (grant_id, pos);
CREATE TABLE IF NOT EXISTS grants (
    id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL, requester_dept INTEGER NOT NULL, owner_dept INTEGER NOT NULL,
    pinned_version INTEGER NOT NULL, status INTEGER NOT NULL, fields TEXT NOT NULL, unmasked_fields TEXT NOT NULL,
    duration INTEGER NOT NULL, quota INTEGER NOT NULL, used_on_chain INTEGER NOT NULL, served INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, purpose TEXT NOT NULL, requested_block INTEGER NOT NULL,
    activated_block INTEGER, closed_block INTEGER
);
CREATE TABLE IF NOT EXISTS registry_events (
    pos INTEGER PRIMARY KEY, kind TEXT NOT NULL, dept_id INTEGER NOT NULL, account TEXT, role INTEGER NOT NULL,
    block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS departments (
    id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, audit_office INTEGER NOT NULL,
    active INTEGER NOT NULL, admitted_block INTEGER NOT NULL, removed_block INTEGER, oracle_url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (account TEXT PRIMARY KEY, dept_id INTEGER NOT NULL, roles INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY, owner_dept INTEGER NOT NULL, name TEXT NOT NULL, fields TEXT NOT NULL,
    schema_hash BLOB NOT NULL, classification INTEGER NOT NULL, update_frequency INTEGER NOT NULL,
    retired INTEGER NOT NULL, registered_pos INTEGER NOT NULL, retired_pos INTEGER
);
CREATE TABLE IF NOT EXISTS dataset_versions (
    dataset_id INTEGER NOT NULL, version INTEGER NOT NULL, content_hash BLOB NOT NULL, merkle_root BLOB NOT NULL,
    record_count INTEGER NOT NULL, pos INTEGER NOT NULL, block_number INTEGER NOT NULL, tx_hash TEXT NOT NULL,
    PRIMARY KEY (dataset_id, version)
);
CREATE TABLE IF NOT EXISTS daily (
    day TEXT NOT NULL, side TEXT NOT NULL, dept_id INTEGER NOT NULL, outcome INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (day, side, dept_id, outcome)
) WITHOUT ROWID;
"""

#: The contract each indexed event must come from.
_EVENT_SOURCES = {
    "ConsortiumRegistry": ("DepartmentAdmitted", "DepartmentRemoved", "AccountBound", "AccountUnbound",
                           "RoleGranted", "RoleRevoked", "OracleUrlChanged"),
    "DataCatalog": ("DatasetRegistered", "DatasetVersionPublished", "DatasetRetired"),
    "AccessGrants": ("GrantRequested", "GrantApproved", "GrantCoApproved", "GrantActivated", "GrantRejected",
                     "GrantRevoked", "GrantCancelled", "GrantUsed"),
    "AuditLog": ("AuditRecordAppended", "AuditBatchAppended"),
}
_GRANT_KINDS = {
    "GrantRequested": "requested", "GrantApproved": "approved", "GrantCoApproved": "co_approved",
    "GrantActivated": "activated", "GrantRejected": "rejected", "GrantRevoked": "revoked",
    "GrantCancelled": "cancelled",
}


def position(block: int, log_index: int) -> int:
    """Chain order as one integer: ``block << 24 | log_index``."""
    return block << _LOG_BITS | log_index


def _s64(value: int) -> int:
    """A uint64 as SQLite's signed 64-bit integer (values >= 2**63 wrap; read back with ``_u64``)."""
    return value - _U64 if value >= 1 << 63 else value


def _u64(value: int) -> int:
    return value + _U64 if value < 0 else value


_LAST_DAY = 253_402_214_400  # 9999-12-31, the last day datetime can name


def _day(timestamp: int) -> str:
    """The UTC day of a timestamp (clamped to 1970-01-01..9999-12-31: a chain's clock is not checked)."""
    return datetime.fromtimestamp(min(max(int(timestamp), 0), _LAST_DAY), UTC).strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- sync state


@dataclass
class _Grant:
    id: int
    dataset_id: int
    requester_dept: int
    owner_dept: int
    pinned_version: int
    status: int
    fields: int
    unmasked_fields: int
    duration: int
    quota: int
    used_on_chain: int
    served: int
    expires_at: int
    purpose: str
    requested_block: int
    activated_block: int | None = None
    closed_block: int | None = None

    def row(self) -> tuple:
        return (self.id, self.dataset_id, self.requester_dept, self.owner_dept, self.pinned_version, self.status,
                hex(self.fields), hex(self.unmasked_fields), self.duration, self.quota, self.used_on_chain, self.served,
                self.expires_at, self.purpose, self.requested_block, self.activated_block, self.closed_block)


@dataclass
class _SyncState:
    """The current state the events of a range are applied to (loaded per ``sync`` call)."""

    accounts: dict[str, list[int]]  # account -> [dept, roles]
    departments: dict[int, list[Any]]  # id -> [code, name, audit_office, active, admitted, removed, url]
    grants: dict[int, _Grant]
    datasets: dict[int, list[Any]]  # id -> [owner, name, fields json, schema hash, class, freq, retired, pos, retired pos]
    dirty_accounts: set[str] = field(default_factory=set)
    dirty_departments: set[int] = field(default_factory=set)
    dirty_grants: set[int] = field(default_factory=set)
    dirty_datasets: set[int] = field(default_factory=set)


@dataclass
class _RangeWrites:
    records: list[list[Any]] = field(default_factory=list)
    batches: list[tuple] = field(default_factory=list)
    grant_events: list[tuple] = field(default_factory=list)
    registry_events: list[tuple] = field(default_factory=list)
    versions: list[tuple] = field(default_factory=list)
    catalog_events: int = 0


# --------------------------------------------------------------------------- the index


class AuditIndex:
    """An incremental SQLite (WAL) index of one deployment's audit trail. Thread-safe: one
    connection guarded by a lock; other processes may read (or sync) the same file concurrently."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            stored = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise AuditIndexError(f"{self.path} is not a usable audit index: {exc}") from None
        if stored is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(INDEX_FORMAT),))
        elif stored[0] != str(INDEX_FORMAT):
            raise AuditIndexError(f"{self.path} is an audit index of format {stored[0]}, this govshare reads {INDEX_FORMAT}")
        self._lock = threading.RLock()
        self._checksums: dict[str, str] = {}

    def close(self) -> None:
        """Close the file (the index is usable again by opening a new ``AuditIndex``)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ meta

    def _meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def status(self) -> IndexStatus:
        """Which deployment the index holds, how far it is synced, and how much it holds."""
        with self._lock:
            meta = self._meta()
            (records,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
            (oracles,) = self._db.execute("SELECT COUNT(DISTINCT oracle) FROM records").fetchone()
            (grants,) = self._db.execute("SELECT COUNT(*) FROM grants").fetchone()
            cursor = int(meta["cursor"]) if "cursor" in meta else None
            cursor_time = self.block_time(cursor) if cursor is not None else None
        return IndexStatus(
            chain_id=int(meta["chain_id"]) if "chain_id" in meta else None,
            addresses=json.loads(meta.get("addresses", "{}")),
            deployment_block=int(meta["deployment_block"]) if "deployment_block" in meta else None,
            cursor=cursor,
            cursor_time=cursor_time,
            records=int(records),
            oracles=int(oracles),
            grants=int(grants),
        )

    @property
    def cursor(self) -> int | None:
        """The last block fully indexed (None: never synced)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
        return None if row is None else int(row[0])

    def block_time(self, block: int) -> int | None:
        """The timestamp of ``block`` if the index holds it."""
        with self._lock:
            row = self._db.execute("SELECT timestamp FROM blocks WHERE number = ?", (block,)).fetchone()
        return None if row is None else int(row[0])

    # ------------------------------------------------------------------ sync

    def sync(
        self,
        consortium: Any,
        *,
        to_block: int | None = None,
        step: int = DEFAULT_SYNC_STEP,
        on_range: Callable[[int, int], None] | None = None,
    ) -> SyncResult:
        """Index every event of the deployment from the cursor (or the deployment block) to
        ``to_block`` (default: latest), ``step`` blocks per ``eth_getLogs`` and per committed SQLite
        transaction, so that a crash loses at most the range in flight and the next call resumes.
        ``on_range(first, last)`` is called after each committed range.

        Raises :class:`AuditIndexError` if the index belongs to another deployment or the chain no
        longer has the block the cursor names; ``ChainUnavailable`` if the node cannot be reached
        (what was committed stays)."""
        if step < 1:
            raise AuditQueryError("step must be at least 1")
        started = time.perf_counter()
        chain = consortium.chain
        deployment = consortium.deployment
        addresses = {name: deployment.addresses[name] for name in _EVENT_SOURCES}
        with self._lock:
            self._bind(chain.chain_id, addresses, deployment.deployment_block)
            cursor = self.cursor
            if cursor is not None:
                self._check_cursor_block(chain, cursor)
        head = chain.block_number()
        last = head if to_block is None else min(int(to_block), head)
        first = deployment.deployment_block if cursor is None else cursor + 1
        totals = {"ranges": 0, "records": 0, "grant_events": 0, "registry_events": 0, "catalog_events": 0}
        if first <= last:
            decoder = consortium.events
            topics = ["0x" + decoder.topic(name).hex() for names in _EVENT_SOURCES.values() for name in names]
            sources = {name: to_checksum_address(addresses[contract])
                       for contract, names in _EVENT_SOURCES.items() for name in names}
            record_topic = "0x" + decoder.topic("AuditRecordAppended").hex()
            with self._lock:
                state = self._load_state()
            previous = cursor
            for a, b in block_ranges(first, last, step):
                logs = _rpc(chain, "eth_getLogs", [{"address": list(addresses.values()), "fromBlock": hex(a),
                                                    "toBlock": hex(b), "topics": [topics]}])
                writes = _RangeWrites()
                with self._lock:
                    self._apply(chain, state, logs, decoder, sources, record_topic, writes, previous, b)
                previous = b
                for key in ("records", "grant_events", "registry_events"):
                    totals[key] += len(getattr(writes, key))
                totals["catalog_events"] += writes.catalog_events
                totals["ranges"] += 1
                if on_range is not None:
                    on_range(a, b)
        final = self.cursor
        return SyncResult(first, final if final is not None else last, seconds=time.perf_counter() - started, **totals)

    def _bind(self, chain_id: int, addresses: dict[str, str], deployment_block: int) -> None:
        meta = self._meta()
        wanted = {"chain_id": str(chain_id), "addresses": json.dumps(addresses, sort_keys=True),
                  "deployment_block": str(deployment_block)}
        if "chain_id" not in meta:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(wanted.items()))
            self._db.execute("COMMIT")
            return
        if any(meta.get(k) != v for k, v in wanted.items()):
            raise AuditIndexError(
                f"{self.path} indexes chain {meta.get('chain_id')} deployment {meta.get('addresses')}, "
                f"not chain {chain_id} deployment {wanted['addresses']}; use another index file"
            )

    def _check_cursor_block(self, chain: Any, cursor: int) -> None:
        row = self._db.execute("SELECT hash FROM blocks WHERE number = ?", (cursor,)).fetchone()
        if row is None or row[0] is None:
            return
        block = _rpc(chain, "eth_getBlockByNumber", [hex(cursor), False])
        if block is None or block["hash"] != row[0]:
            raise AuditIndexError(
                f"the chain no longer has block {cursor} as indexed (a reorganised or reset chain); "
                f"rebuild the index {self.path}"
            )

    def _load_state(self) -> _SyncState:
        db = self._db
        accounts = {a: [d, r] for a, d, r in db.execute("SELECT account, dept_id, roles FROM accounts")}
        departments = {row[0]: list(row[1:]) for row in db.execute(
            "SELECT id, code, name, audit_office, active, admitted_block, removed_block, oracle_url FROM departments")}
        grants = {}
        for row in db.execute("SELECT * FROM grants"):
            values = list(row)
            values[0], values[1] = _u64(values[0]), _u64(values[1])
            values[6], values[7] = int(values[6], 16), int(values[7], 16)
            grants[row[0]] = _Grant(*values)
        datasets = {_u64(row[0]): list(row[1:]) for row in db.execute(
            "SELECT id, owner_dept, name, fields, schema_hash, classification, update_frequency, retired,"
            " registered_pos, retired_pos FROM datasets")}
        return _SyncState(accounts, departments, grants, datasets)

    def _apply(self, chain: Any, state: _SyncState, logs: list[dict], decoder: Any, sources: dict[str, str],
               record_topic: str, writes: _RangeWrites, previous: int | None, last_block: int) -> None:
        """Apply one range's logs to ``state`` and commit them with the cursor ``last_block``.

        The two events that come by the thousand (``AuditRecordAppended``, and ``GrantUsed`` once per
        run of served records of one grant) are decoded by hand from the raw log; the rest through
        the ABI decoder."""
        logs = sorted(logs, key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
        pending: list[list[Any]] = []  # records of the current transaction, waiting for their batch event
        pending_tx = None
        audit_log = sources["AuditRecordAppended"].lower()
        grants_contract = sources["GrantUsed"].lower()
        used_topic = "0x" + decoder.topic("GrantUsed").hex()
        for log in logs:
            block, log_index = int(log["blockNumber"], 16), int(log["logIndex"], 16)
            tx_hash = log["transactionHash"]
            if tx_hash != pending_tx:
                writes.records.extend(pending)
                pending, pending_tx = [], tx_hash
            topics = log["topics"]
            if topics[0] == record_topic:
                if log["address"].lower() == audit_log:
                    pending.append(self._record_row(state, log, block, log_index, tx_hash))
                continue
            if topics[0] == used_topic:  # GrantUsed(grantId indexed, count, used, quota): the contract's quota count
                grant = state.grants.get(int(topics[1], 16)) if log["address"].lower() == grants_contract else None
                if grant is not None:
                    grant.used_on_chain = int(log["data"][66:130], 16)
                    state.dirty_grants.add(grant.id)
                continue
            event = decoder.decode({"topics": [HexBytes(t) for t in topics], "data": HexBytes(log["data"]),
                                    "address": log["address"], "blockNumber": block, "logIndex": log_index,
                                    "transactionHash": HexBytes(tx_hash)})
            if event is None or sources.get(event.name) != event.address:
                continue
            pos = position(block, log_index)
            if event.name == "AuditBatchAppended":
                a = event.args
                oracle, dept = a["oracle"], int(a["deptId"])
                first_seq, count = int(a["firstSequence"]), int(a["count"])
                for row in pending:
                    if row[1] == oracle and first_seq <= _u64(row[2]) < first_seq + count:
                        row[3] = dept
                writes.batches.append((pos, oracle, dept, _s64(first_seq), count, bytes(a["head"]), block, tx_hash))
            elif event.name in _GRANT_KINDS:
                self._grant_event(state, event, pos, writes)
            elif event.name in _EVENT_SOURCES["DataCatalog"]:
                self._catalog_event(state, event, pos, writes)
            else:
                self._registry_event(state, event, pos, writes)
        writes.records.extend(pending)
        self._commit(chain, state, writes, previous, last_block)

    def _record_row(self, state: _SyncState, log: dict, block: int, log_index: int, tx_hash: str) -> list[Any]:
        topics, data = log["topics"], log["data"]
        rid = int(data[2:66], 16)
        meta = int(data[66:130], 16)
        oracle = self._checksum(f"{rid >> 64:040x}")
        requester = self._checksum(topics[2][26:])
        grant_id = int(topics[3], 16)
        grant = state.grants.get(grant_id)
        account = state.accounts.get(requester)
        outcome = (meta >> 96) & 0xFF
        if grant is not None and outcome == Outcome.SERVED:
            grant.served += 1
            state.dirty_grants.add(grant_id)
        oracle_account = state.accounts.get(oracle)
        return [
            position(block, log_index), oracle, _s64(rid & (_U64 - 1)),
            oracle_account[0] if oracle_account else 0,  # replaced by the batch's department
            requester, account[0] if account else 0,
            _s64(int(topics[1], 16)), (meta >> 64) & 0xFFFFFFFF, _s64(grant_id),
            hex(grant.fields) if grant is not None else None,
            outcome, (meta >> 104) & 0xFF, _s64(meta & (_U64 - 1)),
            bytes.fromhex(data[130:194]), bytes.fromhex(data[194:258]),
            block, 0, tx_hash, log_index,
        ]

    def _checksum(self, hex40: str) -> str:
        address = self._checksums.get(hex40)
        if address is None:
            address = self._checksums[hex40] = to_checksum_address("0x" + hex40)
        return address

    def _grant_event(self, state: _SyncState, event: Any, pos: int, writes: _RangeWrites) -> None:
        a = event.args
        grant_id = int(a["grantId"])
        kind = _GRANT_KINDS[event.name]
        actor = a.get("approver") or a.get("auditor") or a.get("by")
        data: dict[str, Any] = {}
        grant = state.grants.get(grant_id)
        if event.name == "GrantRequested":
            dataset = state.datasets.get(int(a["datasetId"]))
            grant = state.grants[grant_id] = _Grant(
                grant_id, int(a["datasetId"]), int(a["requesterDept"]), dataset[0] if dataset else 0,
                int(a["pinnedVersion"]), GrantStatus.REQUESTED, int(a["fields"]), int(a["unmaskedFields"]),
                int(a["duration"]), int(a["quota"]), 0, 0, 0, a["purpose"], event.block_number)
            data = {"dataset_id": grant.dataset_id, "requester_dept": grant.requester_dept, "fields": hex(grant.fields),
                    "unmasked_fields": hex(grant.unmasked_fields), "purpose": grant.purpose, "duration": grant.duration,
                    "quota": grant.quota, "pinned_version": grant.pinned_version}
        elif grant is None:
            data = {"unknown_grant": True}
        elif event.name == "GrantApproved":
            grant.fields, grant.unmasked_fields = int(a["fields"]), int(a["unmaskedFields"])
            grant.duration, grant.quota = int(a["duration"]), int(a["quota"])
            grant.status = GrantStatus.AWAITING_CO_APPROVAL  # GrantActivated follows in the same transaction unless secret
            data = {"fields": hex(grant.fields), "unmasked_fields": hex(grant.unmasked_fields),
                    "duration": grant.duration, "quota": grant.quota}
        elif event.name == "GrantActivated":
            grant.status, grant.expires_at, grant.activated_block = GrantStatus.ACTIVE, int(a["expiresAt"]), event.block_number
            data = {"expires_at": grant.expires_at}
        elif event.name in ("GrantRejected", "GrantRevoked", "GrantCancelled"):
            grant.status = {"GrantRejected": GrantStatus.REJECTED, "GrantRevoked": GrantStatus.REVOKED,
                            "GrantCancelled": GrantStatus.CANCELLED}[event.name]
            grant.closed_block = event.block_number
            if "reason" in a:
                data = {"reason": a["reason"]}
        if grant is not None:
            state.dirty_grants.add(grant_id)
        writes.grant_events.append((pos, _s64(grant_id), kind, event.block_number, event.log_index, event.tx_hash, actor,
                                    json.dumps(data, sort_keys=True)))

    def _catalog_event(self, state: _SyncState, event: Any, pos: int, writes: _RangeWrites) -> None:
        a = event.args
        dataset_id = int(a["datasetId"])
        writes.catalog_events += 1
        if event.name == "DatasetRegistered":
            state.datasets[dataset_id] = [int(a["ownerDept"]), a["name"], json.dumps(list(a["fields"])),
                                          bytes(a["schemaHash"]), int(a["classification"]), int(a["updateFrequency"]),
                                          0, pos, None]
        elif event.name == "DatasetRetired" and dataset_id in state.datasets:
            state.datasets[dataset_id][6] = 1
            state.datasets[dataset_id][8] = pos
        elif event.name == "DatasetVersionPublished":
            writes.versions.append((_s64(dataset_id), int(a["version"]), bytes(a["contentHash"]), bytes(a["merkleRoot"]),
                                    int(a["recordCount"]), pos, event.block_number, event.tx_hash))
        state.dirty_datasets.add(dataset_id)

    def _registry_event(self, state: _SyncState, event: Any, pos: int, writes: _RangeWrites) -> None:
        a = event.args
        dept_id = int(a.get("deptId", 0))
        account = a.get("account")
        role = 0
        data: dict[str, Any] = {}
        if event.name == "DepartmentAdmitted":
            code = bytes(a["code"]).rstrip(b"\x00").decode("utf-8", "replace")
            state.departments[dept_id] = [code, a["name"], int(bool(a["auditOffice"])), 1, event.block_number, None, ""]
            state.dirty_departments.add(dept_id)
            data = {"code": code, "name": a["name"], "audit_office": bool(a["auditOffice"])}
        elif event.name == "DepartmentRemoved" and dept_id in state.departments:
            state.departments[dept_id][3] = 0
            state.departments[dept_id][5] = event.block_number
            state.dirty_departments.add(dept_id)
        elif event.name == "OracleUrlChanged" and dept_id in state.departments:
            state.departments[dept_id][6] = a["url"]
            state.dirty_departments.add(dept_id)
            data = {"url": a["url"]}
        elif event.name == "AccountBound":
            state.accounts.setdefault(account, [0, 0])[0] = dept_id
            state.dirty_accounts.add(account)
        elif event.name == "AccountUnbound":
            entry = state.accounts.setdefault(account, [0, 0])
            entry[0] = 0
            state.dirty_accounts.add(account)
        elif event.name in ("RoleGranted", "RoleRevoked"):
            role = ROLE_BITS.get(bytes(a["role"]), 0)
            entry = state.accounts.setdefault(account, [0, 0])
            entry[1] = entry[1] | role if event.name == "RoleGranted" else entry[1] & ~role
            dept_id = entry[0]
            state.dirty_accounts.add(account)
            data = {"sender": a.get("sender")}
        writes.registry_events.append((pos, event.name, dept_id, account, role, event.block_number, event.log_index,
                                       event.tx_hash, json.dumps(data, sort_keys=True)))

    def _commit(self, chain: Any, state: _SyncState, writes: _RangeWrites, previous: int | None, last_block: int) -> None:
        db = self._db
        # Block times: every block holding an event, the decision block of every served record, the cursor.
        wanted = {row[15] for row in writes.records} | {row[6] for row in writes.batches}
        wanted |= {e[3] for e in writes.grant_events} | {e[5] for e in writes.registry_events}
        wanted |= {v[6] for v in writes.versions}
        # (a decision block after this range cannot be real: the verifier flags it, the index skips it)
        wanted |= {_u64(row[12]) for row in writes.records if row[10] == Outcome.SERVED and _u64(row[12]) <= last_block}
        wanted.add(last_block)
        known = self._known_blocks(wanted)
        missing = sorted(wanted - known)
        fetched = _block_headers(chain, missing) if missing else {}
        times = {n: t for n, (t, _) in fetched.items()}
        times.update(self._known_times({row[15] for row in writes.records} & known))
        daily: dict[tuple[str, str, int, int], int] = {}
        for row in writes.records:
            row[16] = times[row[15]]
            day = _day(row[16])
            for side, dept in (("requester", row[5]), ("provider", row[3])):
                key = (day, side, dept, row[10])
                daily[key] = daily.get(key, 0) + 1
        db.execute("BEGIN IMMEDIATE")
        try:
            (stored,) = db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone() or (None,)
            if (None if stored is None else int(stored)) != previous:
                raise AuditIndexError(f"another process indexed {self.path} up to block {stored} meanwhile; sync again")
            db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?, ?)",
                           [(n, t, h) for n, (t, h) in fetched.items()])
            db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", writes.records)
            db.executemany("INSERT INTO batches VALUES (?,?,?,?,?,?,?,?)", writes.batches)
            db.executemany("INSERT INTO grant_events VALUES (?,?,?,?,?,?,?,?)", writes.grant_events)
            db.executemany("INSERT INTO registry_events VALUES (?,?,?,?,?,?,?,?,?)", writes.registry_events)
            db.executemany("INSERT OR REPLACE INTO dataset_versions VALUES (?,?,?,?,?,?,?,?)", writes.versions)
            db.executemany("INSERT OR REPLACE INTO grants VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           [_signed_grant(state.grants[g].row()) for g in state.dirty_grants])
            db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?)",
                           [(a, *state.accounts[a]) for a in state.dirty_accounts])
            db.executemany("INSERT OR REPLACE INTO departments VALUES (?,?,?,?,?,?,?,?)",
                           [(d, *state.departments[d]) for d in state.dirty_departments])
            db.executemany("INSERT OR REPLACE INTO datasets VALUES (?,?,?,?,?,?,?,?,?,?)",
                           [(_s64(d), *state.datasets[d]) for d in state.dirty_datasets if d in state.datasets])
            db.executemany("INSERT INTO daily VALUES (?,?,?,?,?) ON CONFLICT(day, side, dept_id, outcome)"
                           " DO UPDATE SET count = count + excluded.count", [(*k, v) for k, v in daily.items()])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (str(last_block),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        state.dirty_accounts.clear()
        state.dirty_departments.clear()
        state.dirty_grants.clear()
        state.dirty_datasets.clear()

    def _known_blocks(self, numbers: set[int]) -> set[int]:
        return set(self._known_times(numbers))

    def _known_times(self, numbers: set[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        ordered = sorted(numbers)
        for i in range(0, len(ordered), 500):
            chunk = ordered[i:i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self._db.execute(f"SELECT number, timestamp FROM blocks WHERE number IN ({marks})", chunk).fetchall())
        return out

    # ------------------------------------------------------------------ search

    def department_id(self, value: int | str | None, what: str = "department") -> int | None:
        """A department given by id or by code (any case) as the index knows it; None for no value.
        An unknown code raises :class:`AuditQueryError` naming ``what``."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        row = self._db.execute("SELECT id FROM departments WHERE code = ?", (text,)).fetchone()
        if row is None:
            row = self._db.execute("SELECT id FROM departments WHERE lower(code) = lower(?)", (text,)).fetchone()
        if row is None:
            raise AuditQueryError(f"{what}: no department with code {text!r} in the index")
        return int(row[0])

    def search(
        self,
        *,
        dataset_id: int | None = None,
        requester_dept: int | str | None = None,
        provider_dept: int | str | None = None,
        requester: str | None = None,
        oracle: str | None = None,
        grant_id: int | None = None,
        outcome: Outcome | str | int | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        offset: int | None = None,
    ) -> RecordPage:
        """Records matching every filter given, newest first. Departments by id or code; ``outcome``
        by name (served, denied, source_failure) or value; ``since``/``until`` are unix seconds of the
        anchoring block (inclusive, exclusive). Keyset pagination with ``cursor`` (from the previous
        page) or offset pagination with ``offset``; ``limit`` 1..1000."""
        if not 1 <= int(limit) <= MAX_PAGE:
            raise AuditQueryError(f"limit must be 1..{MAX_PAGE}, got {limit}")
        if cursor is not None and offset is not None:
            raise AuditQueryError("use either cursor or offset, not both")
        if offset is not None and int(offset) < 0:
            raise AuditQueryError("offset must not be negative")
        with self._lock:
            where, params = self._filters(dataset_id, requester_dept, provider_dept, requester, oracle, grant_id,
                                          outcome, since, until)
            clause = " WHERE " + " AND ".join(where) if where else ""
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM records{clause}", params).fetchone()
            page_where, page_params = list(where), list(params)
            if cursor is not None:
                page_where.append("pos < ?")
                page_params.append(_parse_cursor(cursor))
            page_clause = " WHERE " + " AND ".join(page_where) if page_where else ""
            sql = f"SELECT * FROM records{page_clause} ORDER BY pos DESC LIMIT ?"
            page_params.append(int(limit) + 1)
            if offset is not None:
                sql += " OFFSET ?"
                page_params.append(int(offset))
            rows = self._db.execute(sql, page_params).fetchall()
        records = [_indexed(row) for row in rows[: int(limit)]]
        next_cursor = records[-1].cursor if len(rows) > int(limit) and records else None
        return RecordPage(records, int(total), next_cursor)

    def _filters(self, dataset_id: Any, requester_dept: Any, provider_dept: Any, requester: Any, oracle: Any,
                 grant_id: Any, outcome: Any, since: Any, until: Any) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []

        def add(sql: str, value: Any) -> None:
            where.append(sql)
            params.append(value)

        if dataset_id is not None:
            add("dataset_id = ?", _s64(_as_uint(dataset_id, "dataset_id", 64)))
        dept = self.department_id(requester_dept, "requester_dept")
        if dept is not None:
            add("requester_dept = ?", dept)
        dept = self.department_id(provider_dept, "provider_dept")
        if dept is not None:
            add("oracle_dept = ?", dept)
        if requester is not None:
            add("requester = ?", _address(requester, "requester"))
        if oracle is not None:
            add("oracle = ?", _address(oracle, "oracle"))
        if grant_id is not None:
            add("grant_id = ?", _s64(_as_uint(grant_id, "grant_id", 64)))
        if outcome is not None:
            add("outcome = ?", int(parse_outcome(outcome)))
        if since is not None:
            add("block_time >= ?", int(since))
        if until is not None:
            add("block_time < ?", int(until))
        return where, params

    def record(self, record_id: int | str) -> IndexedRecord | None:
        """One record by id (an int or its 0x-hex form)."""
        rid = _as_uint(record_id, "record_id", 224)
        oracle = self._checksum(f"{rid >> 64:040x}")
        with self._lock:
            row = self._db.execute("SELECT * FROM records WHERE oracle = ? AND sequence = ? ORDER BY pos LIMIT 1",
                                   (oracle, _s64(rid & (_U64 - 1)))).fetchone()
        return None if row is None else _indexed(row)

    def daily_counts(self, *, by: str = "requester", since: int | None = None, until: int | None = None) -> list[DailyCount]:
        """Accesses per UTC day per department, served vs denied vs source failure; ``by`` is
        ``requester`` (who asked) or ``provider`` (whose data). ``since``/``until``: unix seconds,
        applied by whole UTC day. Oldest day first."""
        if by not in ("requester", "provider"):
            raise AuditQueryError(f"by must be 'requester' or 'provider', got {by!r}")
        sql = "SELECT day, dept_id, outcome, count FROM daily WHERE side = ?"
        params: list[Any] = [by]
        if since is not None:
            sql += " AND day >= ?"
            params.append(_day(int(since)))
        if until is not None:
            sql += " AND day < ?"
            params.append(_day(int(until) - 1) + "~")  # the day holding until-1, included
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
            codes = dict(self._db.execute("SELECT id, code FROM departments").fetchall())
        counts: dict[tuple[str, int], list[int]] = {}
        for day, dept, outcome, count in rows:
            counts.setdefault((day, dept), [0, 0, 0])[min(int(outcome), 2)] += int(count)
        return [DailyCount(day, dept, codes.get(dept, "" if dept else "(none)"), *values)
                for (day, dept), values in sorted(counts.items())]

    # ------------------------------------------------------------------ grants, departments, datasets

    def grants(
        self,
        *,
        dataset_id: int | None = None,
        requester_dept: int | str | None = None,
        owner_dept: int | str | None = None,
        status: str | None = None,
    ) -> list[GrantSummary]:
        """Grants as of the cursor (see :class:`GrantSummary`), by id; filters combine."""
        if status is not None and status not in GRANT_STATES:
            raise AuditQueryError(f"status must be one of {', '.join(GRANT_STATES)}, got {status!r}")
        with self._lock:
            where, params = [], []
            if dataset_id is not None:
                where.append("dataset_id = ?")
                params.append(_s64(_as_uint(dataset_id, "dataset_id", 64)))
            for column, value in (("requester_dept", requester_dept), ("owner_dept", owner_dept)):
                dept = self.department_id(value, column)
                if dept is not None:
                    where.append(f"{column} = ?")
                    params.append(dept)
            clause = " WHERE " + " AND ".join(where) if where else ""
            rows = self._db.execute(f"SELECT * FROM grants{clause} ORDER BY id", params).fetchall()
            now = self._cursor_time()
        out = [_grant_summary(row, now) for row in rows]
        return [g for g in out if status is None or g.status == status]

    def grant(self, grant_id: int) -> GrantSummary | None:
        """One grant as of the cursor, if the index knows it."""
        with self._lock:
            row = self._db.execute("SELECT * FROM grants WHERE id = ?", (_s64(_as_uint(grant_id, "grant_id", 64)),)).fetchone()
            now = self._cursor_time()
        return None if row is None else _grant_summary(row, now)

    def _cursor_time(self) -> int | None:
        row = self._db.execute("SELECT b.timestamp FROM meta m JOIN blocks b ON b.number = CAST(m.value AS INTEGER)"
                               " WHERE m.key = 'cursor'").fetchone()
        return None if row is None else int(row[0])

    def grant_history(self, grant_id: int | None = None) -> list[GrantEvent]:
        """Every AccessGrants event (of one grant, if given), in chain order."""
        sql = ("SELECT g.grant_id, g.kind, g.block_number, g.log_index, g.tx_hash, COALESCE(b.timestamp, 0), g.actor, g.data"
               " FROM grant_events g LEFT JOIN blocks b ON b.number = g.block_number")
        params: list[Any] = []
        if grant_id is not None:
            sql += " WHERE g.grant_id = ?"
            params.append(_s64(_as_uint(grant_id, "grant_id", 64)))
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY g.pos", params).fetchall()
        return [GrantEvent(_u64(g), kind, block, li, tx, ts, actor, json.loads(data))
                for g, kind, block, li, tx, ts, actor, data in rows]

    def departments(self) -> list[DepartmentSummary]:
        """Every department ever admitted, with its current accounts and roles."""
        with self._lock:
            rows = self._db.execute("SELECT id, code, name, audit_office, active, admitted_block, removed_block"
                                    " FROM departments ORDER BY id").fetchall()
            accounts = self._db.execute("SELECT account, dept_id, roles FROM accounts WHERE dept_id != 0"
                                        " ORDER BY account").fetchall()
        by_dept: dict[int, dict[str, list[str]]] = {}
        for account, dept, roles in accounts:
            by_dept.setdefault(dept, {})[account] = [name for bit, name in ROLE_NAMES.items() if roles & bit]
        return [DepartmentSummary(d, code, name, bool(audit), bool(active), admitted, removed, by_dept.get(d, {}))
                for d, code, name, audit, active, admitted, removed in rows]

    def datasets(self) -> list[DatasetSummary]:
        """Every dataset in the catalog with its published versions."""
        with self._lock:
            rows = self._db.execute("SELECT id, owner_dept, name, fields, classification, retired FROM datasets"
                                    " ORDER BY id").fetchall()
            versions = self._db.execute(
                "SELECT v.dataset_id, v.version, v.content_hash, v.merkle_root, v.record_count, v.block_number,"
                " COALESCE(b.timestamp, 0) FROM dataset_versions v LEFT JOIN blocks b ON b.number = v.block_number"
                " ORDER BY v.dataset_id, v.version").fetchall()
        by_dataset: dict[int, list[DatasetVersionSummary]] = {}
        for d, version, content, root, count, block, ts in versions:
            by_dataset.setdefault(_u64(d), []).append(DatasetVersionSummary(version, bytes(content), bytes(root), count, block, ts))
        return [DatasetSummary(_u64(d), owner, name, tuple(json.loads(fields)), classification, bool(retired),
                               by_dataset.get(_u64(d), []))
                for d, owner, name, fields, classification, retired in rows]

    def dataset_version(self, dataset_id: int, version: int) -> DatasetVersionSummary | None:
        """A published version's commitments, if the index holds it."""
        with self._lock:
            row = self._db.execute(
                "SELECT v.version, v.content_hash, v.merkle_root, v.record_count, v.block_number, COALESCE(b.timestamp, 0)"
                " FROM dataset_versions v LEFT JOIN blocks b ON b.number = v.block_number"
                " WHERE v.dataset_id = ? AND v.version = ?", (_s64(int(dataset_id)), int(version))).fetchone()
        return None if row is None else DatasetVersionSummary(row[0], bytes(row[1]), bytes(row[2]), *row[3:])

    # ------------------------------------------------------------------ raw reads for the verifier

    def verification_rows(self, up_to_block: int | None = None) -> Iterator[tuple]:
        """Every record (anchored up to ``up_to_block``, if given) in chain order as ``(oracle, sequence,
        oracle_dept, requester, dataset_id, dataset_version, grant_id, outcome, reason, checked_at_block,
        request_hash, response_hash, block_number, log_index, tx_hash, block_time)``; u64 columns as
        stored (see ``_u64``). A file index is streamed through a connection of its own."""
        last = _U64 << 24 if up_to_block is None else position(up_to_block + 1, 0) - 1
        sql = ("SELECT oracle, sequence, oracle_dept, requester, dataset_id, dataset_version, grant_id, outcome, reason,"
               " checked_at_block, request_hash, response_hash, block_number, log_index, tx_hash, block_time"
               f" FROM records WHERE pos <= {int(last)} ORDER BY pos")
        if self.path == ":memory:":
            with self._lock:
                return iter(self._db.execute(sql).fetchall())
        return _stream(self.path, sql)

    def raw(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """A read-only query over the index's tables (for the verifier and reports)."""
        with self._lock:
            return self._db.execute(sql, list(params)).fetchall()


# --------------------------------------------------------------------------- helpers


def parse_outcome(value: Outcome | str | int) -> Outcome:
    """An outcome from its name (served, denied, source_failure, any case) or value."""
    if isinstance(value, Outcome):
        return value
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return Outcome(value)
        text = str(value).strip()
        return Outcome(int(text)) if text.isdigit() else Outcome[text.upper().replace("-", "_")]
    except (KeyError, ValueError):
        raise AuditQueryError(f"outcome must be served, denied or source_failure, got {value!r}") from None


def _as_uint(value: int | str, what: str, bits: int) -> int:
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip(), 0)
    except ValueError:
        raise AuditQueryError(f"{what} must be an integer (decimal or 0x-hex), got {value!r}") from None
    if not 0 <= number < 1 << bits:
        raise AuditQueryError(f"{what} out of range: {value!r}")
    return number


def _address(value: str, what: str) -> str:
    try:
        return to_checksum_address(str(value).strip())
    except ValueError:
        raise AuditQueryError(f"{what} is not an address: {value!r}") from None


def _parse_cursor(cursor: str) -> int:
    try:
        block, log_index = (int(part) for part in str(cursor).split(":"))
    except ValueError:
        raise AuditQueryError(f"not a cursor from a previous page: {cursor!r}") from None
    if block < 0 or not 0 <= log_index < 1 << _LOG_BITS:
        raise AuditQueryError(f"not a cursor from a previous page: {cursor!r}")
    return position(block, log_index)


def _indexed(row: tuple) -> IndexedRecord:
    (_, oracle, sequence, oracle_dept, requester, requester_dept, dataset_id, version, grant_id, field_mask, outcome,
     reason, checked, request_hash, response_hash, block, block_time, tx_hash, log_index) = row
    sequence = _u64(sequence)
    return IndexedRecord(
        record_id=int(oracle, 16) << 64 | sequence, oracle=oracle, sequence=sequence, oracle_dept=oracle_dept,
        requester=requester, requester_dept=requester_dept, dataset_id=_u64(dataset_id), dataset_version=version,
        grant_id=_u64(grant_id), field_mask=None if field_mask is None else int(field_mask, 16),
        outcome=Outcome(outcome), reason=reason, checked_at_block=_u64(checked), request_hash=bytes(request_hash),
        response_hash=bytes(response_hash), block_number=block, tx_hash=tx_hash, log_index=log_index,
        block_time=block_time,
    )


def _signed_grant(row: tuple) -> tuple:
    return (_s64(row[0]), _s64(row[1]), *row[2:])


def _grant_summary(row: tuple, now: int | None) -> GrantSummary:
    (gid, dataset_id, requester_dept, owner_dept, pinned, status, fields, unmasked, duration, quota, _used_on_chain,
     served, expires_at, purpose, requested_block, activated_block, closed_block) = row
    name = GRANT_STATUS_NAMES.get(GrantStatus(status), "unknown")
    if status == GrantStatus.ACTIVE and now is not None and now >= expires_at:
        name = "expired"
    return GrantSummary(_u64(gid), _u64(dataset_id), requester_dept, owner_dept, pinned, name, int(fields, 16),
                        int(unmasked, 16), duration, quota, served, expires_at, purpose, requested_block,
                        activated_block, closed_block)


def _stream(path: str, sql: str) -> Iterator[tuple]:
    """Rows of ``sql`` read through a connection of their own (the index stays usable meanwhile)."""
    db = sqlite3.connect(path, timeout=30.0)
    try:
        db.execute("BEGIN")  # one snapshot for the whole read
        cursor = db.execute(sql)
        while True:
            rows = cursor.fetchmany(5_000)
            if not rows:
                break
            yield from rows
        db.execute("COMMIT")
    finally:
        db.close()


def _rpc(chain: Any, method: str, params: list[Any]) -> Any:
    try:
        return chain.rpc.call(method, params)
    except RpcErrorAnswer as exc:
        message = exc.error.get("message", exc.error) if isinstance(exc.error, dict) else exc.error
        raise AuditIndexError(f"{method} failed on {chain.url}: {message}") from None


def _block_headers(chain: Any, numbers: list[int]) -> dict[int, tuple[int, str]]:
    """``{number: (timestamp, hash)}`` for ``numbers``, asked in batched JSON-RPC requests."""
    out: dict[int, tuple[int, str]] = {}
    for i in range(0, len(numbers), BLOCK_BATCH):
        chunk = numbers[i:i + BLOCK_BATCH]
        try:
            blocks = chain.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
        except RpcErrorAnswer as exc:  # a node that refuses batches answers one error object
            raise AuditIndexError(f"eth_getBlockByNumber (batched) failed on {chain.url}: {exc.error}") from None
        for block in blocks:
            if not block:
                raise AuditIndexError(f"block header missing from {chain.url}: no such block")
            out[int(block["number"], 16)] = (int(block["timestamp"], 16), block["hash"])
    missing = set(numbers) - set(out)
    if missing:
        raise AuditIndexError(f"{chain.url} did not return blocks {sorted(missing)[:5]}")
    return out
