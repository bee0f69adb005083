"""What the auditors' index answers: its errors, its constants and the records its reads return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.contracts.audit_log import Outcome, reason_name
from ledger.contracts.grants import GrantStatus
from ledger.contracts.registry import Role
from ledger.errors import LedgerError

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

