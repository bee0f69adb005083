"""The auditor's verification of a deployment's audit trail, from the chain alone.

``verify_audit_trail(index, consortium)`` reads the auditor's own index (``auditing.index``, fed
from chain events) and checks, in one pass over the records in chain order:

* **sequence**: per oracle, sequence numbers contiguous from 1, ending at the contract's last
  sequence (``oracleState`` at the index's cursor when a consortium is given, else the last
  ``AuditBatchAppended``);
* **hash_chain**: per oracle, the hash chain recomputed from the records equals the head the
  contract published after every batch and, with a consortium, ``oracleState(oracle).head``. A
  mismatch is reported at the first batch it shows in; checking then resumes from the published head,
  so each altered batch is reported once;
* **authorisation**: every *served* record is replayed as ``AccessGrants.checkAccess`` would have
  answered at its decision block ``checkedAtBlock`` B, from the event history (never today's state):
  the grant exists and is for that dataset; the requester account held OPERATOR in the grant's
  requesting department and both departments were members; the grant was active (approved, and
  co-approved where needed), not revoked, rejected or cancelled, and not expired at B's timestamp;
  the dataset was not retired; the version served is the one the grant allowed; and counting the
  grant's served records in chain order, this one is within the quota. A decision block after the
  anchoring block is a violation too, and so (optionally, ``max_decision_age``) is a decision older
  than that many blocks when anchored: a back-dated replay of an old decision;
* **writer**: every record was written (its record id names the sender) by an account that, at that
  point of the chain, was bound to a member department with the ORACLE role, the department its batch
  names and (for a record about a dataset) the dataset's owner;
* **oracle_export** (optional): an oracle's exported local log (``govshare oracle export``) matches
  the chain record for record: nothing in the log is missing on chain, nothing on chain is unknown to
  the oracle, and every field of each pair agrees;
* **data_file** / **record_proof** (optional): a data file's content hash and Merkle root match a
  published version (``ledger.dataset_file``); a single record with its proof belongs to one.

The record fields the chain does not carry cannot be checked from it: the requested *field set* is
committed only inside the salted request hash (the oracle's ``checkAccess`` compared it with the
grant's fields; the grant's fields are in the index as ``field_mask``).

Violation codes: ``sequence_gap``, ``hash_chain_mismatch``, ``unauthorised_access``,
``decision_after_anchoring``, ``stale_decision``, ``rogue_writer``, ``missing_on_chain``,
``unknown_to_oracle``, ``record_mismatch``, ``content_hash_mismatch``, ``merkle_root_mismatch``,
``record_not_in_version``.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from auditing.index import (
    AUDITOR,
    COMMITTEE,
    OPERATOR,
    ORACLE,
    AuditIndex,
    position,
)
from ledger.contracts.audit_log import Outcome, reason_name, record_id
from ledger.dataset_file import DataFileError, read_dataset_file
from ledger.errors import HashLengthError, LedgerError
from ledger.contracts.grants import AccessReason, GrantStatus
from ledger.hashing import keccak
from ledger.hashing import record_hash as canonical_record_hash
from ledger.merkle import leaf_hash, root_from_proof

#: The checks, in report order, and what each one establishes.
CHECKS: dict[str, str] = {
    "sequence": "per oracle, sequence numbers contiguous from 1 and matching the contract's last sequence",
    "hash_chain": "per oracle, the hash chain recomputed from the records equals every head the contract published",
    "authorisation": "every served record's grant was active at its decision block for that requester and dataset, within quota",
    "writer": "every record was written by an account holding the oracle role of its department at that block",
    "oracle_export": "an oracle's exported local log matches the chain record for record",
    "data_file": "a data file's content hash and Merkle root match a published version",
    "record_proof": "a single record with its Merkle proof belongs to a published version",
}

#: The format of ``govshare oracle export`` files (JSON Lines: a header line, then one line per record).
EXPORT_TYPE = "govshare.oracle-export"
EXPORT_FORMAT = 1

_U64 = 1 << 64
_ZERO12 = b"\x00" * 12
_ZERO4 = b"\x00" * 4
_ZERO_HASH = b"\x00" * 32


class VerificationInputError(LedgerError, ValueError):
    """An input to the verification (an export, a data file, a proof file) cannot be used."""


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Violation:
    """One thing that is wrong, with where to find it on chain."""

    check: str  # a key of CHECKS
    code: str  # sequence_gap, hash_chain_mismatch, unauthorised_access, rogue_writer, missing_on_chain, ...
    message: str
    record_id: int | None = None
    oracle: str | None = None
    sequence: int | None = None
    block: int | None = None
    tx_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["record_id"] = None if self.record_id is None else hex(self.record_id)
        return data


@dataclass
class CheckCount:
    """How many items one check looked at and how many passed (``ran`` False: not asked for)."""

    name: str
    description: str
    checked: int = 0
    passed: int = 0
    ran: bool = True

    @property
    def failed(self) -> int:
        return self.checked - self.passed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed}


@dataclass(frozen=True)
class VerificationScope:
    """What was verified: which chain and deployment, which blocks."""

    chain_id: int | None
    addresses: dict[str, str]
    deployment_block: int | None
    from_block: int | None
    to_block: int | None
    records: int
    oracles: int
    grants: int
    live_state: bool  # the final heads were compared with the contract's state (not only its events)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerificationReport:
    """The outcome: per-check counts and every violation. ``ok`` only if there is none."""

    scope: VerificationScope
    checks: list[CheckCount]
    violations: list[Violation] = field(default_factory=list)
    generated_at: str = ""  # ISO 8601, UTC
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations

    def check(self, name: str) -> CheckCount:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def violations_by_code(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for violation in self.violations:
            counts[violation.code] = counts.get(violation.code, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self, *, max_violations: int = 50) -> str:
        """A human summary: scope, one line per check, then (up to ``max_violations``) the violations."""
        s = self.scope
        blocks = f"blocks {s.from_block}..{s.to_block}" if s.to_block is not None else "no block indexed yet"
        lines = [
            f"audit trail of chain {s.chain_id}, AuditLog {s.addresses.get('AuditLog', '?')}, {blocks}:",
            (f"  {s.records:,} records of {s.oracles} oracle(s), {s.grants} grant(s); "
            f"heads compared with the contract's state: {'yes' if s.live_state else 'no (its events only)'}"),
        ]
        for check in self.checks:
            if not check.ran:
                lines.append(f"  {check.name:<14} not run")
                continue
            verdict = "ok" if check.failed == 0 and not any(v.check == check.name for v in self.violations) else "FAILED"
            lines.append(f"  {check.name:<14} {check.checked:>9,} checked {check.passed:>9,} passed  {verdict}")
        if self.ok:
            lines.append(f"VERIFIED: no violation ({self.seconds:.2f}s)")
        else:
            codes = ", ".join(f"{code} {count}" for code, count in self.violations_by_code().items())
            lines.append(f"FAILED: {len(self.violations)} violation(s): {codes}")
            for v in self.violations[:max_violations]:
                where = ", ".join(part for part in (
                    f"record {hex(v.record_id)}" if v.record_id is not None else "",
                    f"block {v.block}" if v.block is not None else "",
                    f"tx {v.tx_hash}" if v.tx_hash else "") if part)
                lines.append(f"  [{v.code}] {v.message}" + (f" ({where})" if where else ""))
            if len(self.violations) > max_violations:
                lines.append(f"  ... and {len(self.violations) - max_violations} more (see --json)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "generated_at": self.generated_at,
            "seconds": round(self.seconds, 3),
            "scope": self.scope.to_dict(),
            "checks": {c.name: c.to_dict() for c in self.checks},
            "violation_counts": self.violations_by_code(),
            "violations": [v.to_dict() for v in self.violations],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# --------------------------------------------------------------------------- optional inputs


@dataclass(frozen=True)
class DataFileCheck:
    """Check the data file at ``path`` against ``version`` of ``dataset_id``."""

    dataset_id: int
    version: int
    path: Path
    fmt: str | None = None

    @classmethod
    def parse(cls, spec: str) -> DataFileCheck:
        """From ``DATASET:VERSION:FILE`` (the command line's form)."""
        parts = spec.split(":", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit() or not parts[1].strip().isdigit() or not parts[2]:
            raise VerificationInputError(f"a data file check is DATASET:VERSION:FILE (e.g. 1:2:companies.jsonl), got {spec!r}")
        return cls(int(parts[0]), int(parts[1]), Path(parts[2]))


@dataclass(frozen=True)
class RecordProofCheck:
    """Check that the record hashing to ``record_hash`` is in ``version`` of ``dataset_id`` by ``proof``."""

    dataset_id: int
    version: int
    record_hash: bytes
    proof: tuple[bytes, ...]
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id, "version": self.version, "record_hash": "0x" + self.record_hash.hex(),
                "proof": ["0x" + p.hex() for p in self.proof]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], label: str = "") -> RecordProofCheck:
        """From ``{"dataset_id", "version", "record": {...} | "record_hash": "0x..", "proof": ["0x..", ...]}``."""
        try:
            dataset_id, version = int(data["dataset_id"]), int(data["version"])
            if "record" in data:
                digest = canonical_record_hash(data["record"])
            else:
                digest = _hex32(data["record_hash"], "record_hash")
            proof = tuple(_hex32(p, f"proof[{i}]") for i, p in enumerate(data["proof"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationInputError(
                f"{label or 'record proof'}: needs dataset_id, version, record or record_hash, and proof: {exc}") from None
        return cls(dataset_id, version, digest, proof, label)

    @classmethod
    def from_file(cls, path: Path | str) -> RecordProofCheck:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise VerificationInputError(f"cannot read record proof {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise VerificationInputError(f"record proof {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(data, dict):
            raise VerificationInputError(f"record proof {path} must be a JSON object")
        return cls.from_dict(data, str(path))


@dataclass(frozen=True)
class ExportedRecord:
    """One record of an oracle's local log, as ``govshare oracle export`` writes it."""

    sequence: int
    grant_id: int
    requester: str
    dataset_id: int
    dataset_version: int
    outcome: Outcome
    reason: int
    checked_at_block: int
    request_hash: bytes
    response_hash: bytes
    request_salt: bytes | None
    response_salt: bytes | None
    created_at: float
    anchored_tx: str | None
    anchored_block: int | None

    def to_dict(self, oracle: str) -> dict[str, Any]:
        """The export line (``oracle`` names the record id)."""
        return {
            "sequence": self.sequence,
            "record_id": hex(record_id(oracle, self.sequence)),
            "grant_id": self.grant_id,
            "requester": self.requester,
            "dataset_id": self.dataset_id,
            "dataset_version": self.dataset_version,
            "outcome": self.outcome.name.lower(),
            "reason": self.reason,
            "reason_name": reason_name(self.reason),
            "checked_at_block": self.checked_at_block,
            "request_hash": "0x" + self.request_hash.hex(),
            "response_hash": "0x" + self.response_hash.hex(),
            "request_salt": None if self.request_salt is None else "0x" + self.request_salt.hex(),
            "response_salt": None if self.response_salt is None else "0x" + self.response_salt.hex(),
            "created_at": self.created_at,  # unix seconds (the oracle's clock)
            "anchored_tx": self.anchored_tx,
            "anchored_block": self.anchored_block,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportedRecord:
        outcome = data["outcome"]
        return cls(
            sequence=int(data["sequence"]),
            grant_id=int(data["grant_id"]),
            requester=to_checksum_address(data["requester"]),
            dataset_id=int(data["dataset_id"]),
            dataset_version=int(data["dataset_version"]),
            outcome=Outcome(outcome) if isinstance(outcome, int) else Outcome[str(outcome).upper()],
            reason=int(data["reason"]),
            checked_at_block=int(data["checked_at_block"]),
            request_hash=_hex32(data["request_hash"], "request_hash"),
            response_hash=_hex32(data["response_hash"], "response_hash"),
            request_salt=bytes.fromhex(data["request_salt"][2:]) if data.get("request_salt") else None,
            response_salt=bytes.fromhex(data["response_salt"][2:]) if data.get("response_salt") else None,
            created_at=float(data.get("created_at") or 0),
            anchored_tx=data.get("anchored_tx"),
            anchored_block=None if data.get("anchored_block") is None else int(data["anchored_block"]),
        )


@dataclass(frozen=True)
class OracleExport:
    """An oracle's exported local log: who wrote it (oracle, chain, audit log) and its records."""

    oracle: str
    chain_id: int
    audit_log: str
    exported_at: str
    records: list[ExportedRecord]
    source: str = ""

    def header(self) -> dict[str, Any]:
        return {"type": EXPORT_TYPE, "format": EXPORT_FORMAT, "oracle": self.oracle, "chain_id": self.chain_id,
                "audit_log": self.audit_log, "exported_at": self.exported_at, "records": len(self.records)}

    def lines(self) -> Iterable[str]:
        """The JSON Lines form: the header, then one line per record."""
        yield json.dumps(self.header(), sort_keys=True)
        for record in self.records:
            yield json.dumps(record.to_dict(self.oracle), sort_keys=True)

    @classmethod
    def read(cls, path: Path | str) -> OracleExport:
        """Read an export file; :class:`VerificationInputError` names the line of any problem."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise VerificationInputError(f"cannot read oracle export {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise VerificationInputError(f"oracle export {path} is not UTF-8 text") from None
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if not lines:
            raise VerificationInputError(f"oracle export {path} is empty")
        try:
            header = json.loads(lines[0][1])
            if not isinstance(header, dict) or header.get("type") != EXPORT_TYPE:
                raise VerificationInputError(f"{path} is not a govshare oracle export (line 1 is no export header)")
            if header.get("format") != EXPORT_FORMAT:
                raise VerificationInputError(f"oracle export {path} has format {header.get('format')!r}, expected {EXPORT_FORMAT}")
            oracle = to_checksum_address(header["oracle"])
            chain_id, audit_log = int(header["chain_id"]), to_checksum_address(header["audit_log"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, VerificationInputError):
                raise
            raise VerificationInputError(f"oracle export {path}, line 1: not a valid export header ({exc})") from None
        records = []
        for number, line in lines[1:]:
            try:
                records.append(ExportedRecord.from_dict(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise VerificationInputError(f"oracle export {path}, line {number}: not a valid record ({exc})") from None
        if "records" in header and header["records"] != len(records):
            raise VerificationInputError(
                f"oracle export {path} announces {header['records']} records but holds {len(records)} (truncated?)")
        return cls(oracle, chain_id, audit_log, str(header.get("exported_at", "")), records, str(path))


# --------------------------------------------------------------------------- history replay


class _Timeline:
    """Values over chain positions: ``at(p)`` is the value after every change at a position <= p."""

    __slots__ = ("initial", "positions", "values")

    def __init__(self, initial: Any) -> None:
        self.positions: list[int] = []
        self.values: list[Any] = []
        self.initial = initial

    def add(self, pos: int, value: Any) -> None:
        self.positions.append(pos)
        self.values.append(value)

    def index(self, pos: int) -> int:
        return bisect_right(self.positions, pos) - 1

    def at(self, pos: int) -> Any:
        i = bisect_right(self.positions, pos) - 1
        return self.values[i] if i >= 0 else self.initial


def _last_position(cursor: int | None) -> int:
    """The last chain position a verification covers: the end of the index's cursor block."""
    return -1 if cursor is None else position(cursor + 1, 0) - 1


def _end_of_block(block: int) -> int:
    """The last position of ``block``: state "at block B" includes every transaction of B."""
    return position(block + 1, 0) - 1


@dataclass(frozen=True)
class _GrantState:
    dataset_id: int
    requester_dept: int
    owner_dept: int
    pinned_version: int
    status: int
    quota: int
    expires_at: int


class AccessHistory:
    """The registry, catalog and grant histories of an index, replayable at any chain position:
    what ``checkAccess`` answered at a past block (:meth:`check_access`), who held which role and
    department (:meth:`account`), which departments were members (:meth:`active`), who owned a
    dataset and which version was the latest. Built once per verification from the index."""

    def __init__(self, index: AuditIndex) -> None:
        self.accounts: dict[str, _Timeline] = {}
        self.dept_active: dict[int, _Timeline] = {}
        current: dict[str, tuple[int, int]] = {}
        for pos, kind, dept_id, account, role in index.raw(
                "SELECT pos, kind, dept_id, account, role FROM registry_events ORDER BY pos"):
            if kind == "DepartmentAdmitted":
                self.dept_active.setdefault(dept_id, _Timeline(False)).add(pos, True)
            elif kind == "DepartmentRemoved":
                self.dept_active.setdefault(dept_id, _Timeline(False)).add(pos, False)
            elif kind in ("AccountBound", "AccountUnbound", "RoleGranted", "RoleRevoked"):
                dept, roles = current.get(account, (0, 0))
                if kind == "AccountBound":
                    dept = dept_id
                elif kind == "AccountUnbound":
                    dept = 0
                elif kind == "RoleGranted":
                    roles |= role
                else:
                    roles &= ~role
                current[account] = (dept, roles)
                self.accounts.setdefault(account, _Timeline((0, 0))).add(pos, (dept, roles))
        self.oracle_accounts = {a for a, t in self.accounts.items() if any(r & ORACLE for _, r in t.values)}
        self.dataset_owner: dict[int, tuple[int, int]] = {}  # id -> (owner, registered pos)
        self.dataset_retired: dict[int, int] = {}  # id -> retired pos
        for d, owner, registered, retired in index.raw("SELECT id, owner_dept, registered_pos, retired_pos FROM datasets"):
            d = d + _U64 if d < 0 else d
            self.dataset_owner[d] = (owner, registered)
            if retired is not None:
                self.dataset_retired[d] = retired
        self.versions: dict[int, list[int]] = {}  # id -> positions of versions 1, 2, ...
        for d, _version, pos in index.raw("SELECT dataset_id, version, pos FROM dataset_versions ORDER BY dataset_id, version"):
            self.versions.setdefault(d + _U64 if d < 0 else d, []).append(pos)
        for positions in self.versions.values():
            positions.sort()
        self.grants: dict[int, _Timeline] = {}
        for grant_id, kind, pos, data in index.raw("SELECT grant_id, kind, pos, data FROM grant_events ORDER BY pos"):
            grant_id = grant_id + _U64 if grant_id < 0 else grant_id
            timeline = self.grants.setdefault(grant_id, _Timeline(None))
            state: _GrantState | None = timeline.values[-1] if timeline.values else None
            details = json.loads(data)
            if kind == "requested":
                owner = self.dataset_owner.get(details["dataset_id"], (0, 0))[0]
                state = _GrantState(details["dataset_id"], details["requester_dept"], owner, details["pinned_version"],
                                    GrantStatus.REQUESTED, details["quota"], 0)
            elif state is None or kind == "used":
                continue
            elif kind == "approved":
                state = _GrantState(state.dataset_id, state.requester_dept, state.owner_dept, state.pinned_version,
                                    GrantStatus.AWAITING_CO_APPROVAL, details["quota"], 0)
            elif kind == "activated":
                state = _GrantState(state.dataset_id, state.requester_dept, state.owner_dept, state.pinned_version,
                                    GrantStatus.ACTIVE, state.quota, details["expires_at"])
            elif kind in ("rejected", "revoked", "cancelled"):
                status = {"rejected": GrantStatus.REJECTED, "revoked": GrantStatus.REVOKED,
                          "cancelled": GrantStatus.CANCELLED}[kind]
                state = _GrantState(state.dataset_id, state.requester_dept, state.owner_dept, state.pinned_version,
                                    status, state.quota, state.expires_at)
            else:
                continue
            timeline.add(pos, state)
        self.block_times: dict[int, int] = dict(index.raw("SELECT number, timestamp FROM blocks"))

    def account(self, account: str, pos: int) -> tuple[int, int]:
        timeline = self.accounts.get(account)
        return timeline.at(pos) if timeline is not None else (0, 0)

    def active(self, dept: int, pos: int) -> bool:
        timeline = self.dept_active.get(dept)
        return bool(timeline.at(pos)) if timeline is not None else False

    def owner(self, dataset_id: int, pos: int) -> int:
        owner, registered = self.dataset_owner.get(dataset_id, (0, 0))
        return owner if owner and registered <= pos else 0

    def retired(self, dataset_id: int, pos: int) -> bool:
        retired = self.dataset_retired.get(dataset_id)
        return retired is not None and retired <= pos

    def latest_version(self, dataset_id: int, pos: int) -> int:
        return bisect_right(self.versions.get(dataset_id, []), pos)

    def check_access(self, requester: str, dataset_id: int, grant_id: int, block: int,
                     block_time: int | None) -> tuple[int, int, _GrantState | None]:
        """What ``AccessGrants.checkAccess(requester, grant's requesting department, dataset_id, fields,
        grant_id)`` answered at ``block`` (whose timestamp is ``block_time``), for fields within the
        grant's and the quota aside (the verifier counts the quota itself): ``(AccessReason, version,
        grant state)``. The requesting department is the grant's (the best case for the oracle: a
        record does not carry the department the requester claimed)."""
        at = _end_of_block(block)
        timeline = self.grants.get(grant_id)
        grant: _GrantState | None = timeline.at(at) if timeline is not None else None
        if grant is None:
            return AccessReason.UNKNOWN_GRANT, 0, None
        if not self.owner(dataset_id, at):
            return AccessReason.UNKNOWN_DATASET, 0, grant
        if grant.dataset_id != dataset_id:
            return AccessReason.DATASET_MISMATCH, 0, grant
        if not self.active(grant.requester_dept, at):
            return AccessReason.REQUESTER_NOT_MEMBER, 0, grant
        if not self.active(grant.owner_dept, at):
            return AccessReason.OWNER_NOT_MEMBER, 0, grant
        dept, roles = self.account(requester, at)
        if dept != grant.requester_dept or not roles & OPERATOR:
            return AccessReason.ACCOUNT_NOT_OPERATOR, 0, grant
        status = grant.status
        if status == GrantStatus.REQUESTED:
            return AccessReason.NOT_APPROVED, 0, grant
        if status == GrantStatus.AWAITING_CO_APPROVAL:
            return AccessReason.AWAITING_CO_APPROVAL, 0, grant
        if status in (GrantStatus.REJECTED, GrantStatus.CANCELLED):
            return AccessReason.REJECTED, 0, grant
        if status == GrantStatus.REVOKED:
            return AccessReason.REVOKED, 0, grant
        if block_time is None or block_time >= grant.expires_at:
            return AccessReason.EXPIRED, 0, grant
        if self.retired(dataset_id, at):
            return AccessReason.DATASET_RETIRED, 0, grant
        version = grant.pinned_version or self.latest_version(dataset_id, at)
        if version == 0:
            return AccessReason.VERSION_UNAVAILABLE, 0, grant
        return AccessReason.GRANTED, version, grant


# --------------------------------------------------------------------------- the verification


def verify_audit_trail(
    source: Any,
    consortium: Any = None,
    *,
    oracle_exports: Sequence[Path | str | OracleExport] = (),
    data_files: Sequence[DataFileCheck] = (),
    record_proofs: Sequence[RecordProofCheck] = (),
    max_decision_age: int | None = None,
) -> VerificationReport:
    """Verify the trail in ``source``: an :class:`~auditing.index.AuditIndex` (as synced; pass
    ``consortium`` too to compare the final heads with the contract's state at the index's cursor),
    or a :class:`~ledger.deployment.Consortium`, which is first indexed into memory.

    ``oracle_exports`` are export files (or parsed :class:`OracleExport`) to match record for record;
    ``data_files`` and ``record_proofs`` are checked against the published versions;
    ``max_decision_age`` (blocks) flags served records anchored longer than that after their decision.
    Inputs that cannot be used raise :class:`VerificationInputError`; findings are violations."""
    started = time.perf_counter()
    if isinstance(source, AuditIndex):
        index = source
    elif hasattr(source, "audit_log") and hasattr(source, "deployment"):
        consortium = source
        index = AuditIndex(":memory:")
        index.sync(consortium)
    else:
        raise VerificationInputError(f"verify_audit_trail needs an AuditIndex or a Consortium, not {type(source).__name__}")
    if max_decision_age is not None and max_decision_age < 0:
        raise VerificationInputError("max_decision_age must not be negative")
    exports = [e if isinstance(e, OracleExport) else OracleExport.read(e) for e in oracle_exports]
    status = index.status()
    for export in exports:
        if status.chain_id is not None and (export.chain_id != status.chain_id
                                            or export.audit_log != status.addresses.get("AuditLog")):
            raise VerificationInputError(
                f"oracle export {export.source or export.oracle} is of chain {export.chain_id} audit log {export.audit_log}, "
                f"the index of chain {status.chain_id} audit log {status.addresses.get('AuditLog')}")
    checks = {name: CheckCount(name, description) for name, description in CHECKS.items()}
    violations: list[Violation] = []
    run = _TrailRun(index, consortium, status.cursor, max_decision_age, checks, violations)
    run.verify_records()
    checks["oracle_export"].ran = bool(exports)
    for export in exports:
        _verify_export(index, export, status.cursor, checks["oracle_export"], violations)
    checks["data_file"].ran = bool(data_files)
    for check in data_files:
        found = verify_data_file(index, check)
        checks["data_file"].checked += 1
        checks["data_file"].passed += not found
        violations.extend(found)
    checks["record_proof"].ran = bool(record_proofs)
    for proof in record_proofs:
        found = verify_record_proof(index, proof)
        checks["record_proof"].checked += 1
        checks["record_proof"].passed += not found
        violations.extend(found)
    scope = VerificationScope(
        chain_id=status.chain_id, addresses=status.addresses, deployment_block=status.deployment_block,
        from_block=status.deployment_block, to_block=status.cursor, records=run.records, oracles=len(run.last_sequence),
        grants=status.grants, live_state=run.live_state,
    )
    return VerificationReport(scope, list(checks.values()), violations,
                              datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter() - started)


class _TrailRun:
    """One pass over the records in chain order: sequence, hash chain, authorisation, writer."""

    def __init__(self, index: AuditIndex, consortium: Any, cursor: int | None, max_decision_age: int | None,
                 checks: dict[str, CheckCount], violations: list[Violation]) -> None:
        self.index, self.consortium, self.cursor = index, consortium, cursor
        self.max_decision_age = max_decision_age
        self.checks, self.violations = checks, violations
        self.history = AccessHistory(index)
        self.last_sequence: dict[str, int] = {}
        self.heads: dict[str, bytes] = {}
        self.records = 0
        self.live_state = False
        # (oracle, last sequence of the batch) -> (published head, first sequence, count, block, tx)
        self.batch_ends: dict[tuple[str, int], tuple[bytes, int, int, int, str]] = {}
        self.last_batch: dict[str, tuple[int, bytes]] = {}  # oracle -> (last sequence, head) of its last batch
        for oracle, first, count, head, block, tx in index.raw(
                "SELECT oracle, first_sequence, count, head, block_number, tx_hash FROM batches WHERE pos <= ?"
                " ORDER BY pos", (_last_position(cursor),)):
            first = first + _U64 if first < 0 else first
            self.batch_ends[(oracle, first + count - 1)] = (bytes(head), first, count, block, tx)
            self.last_batch[oracle] = (first + count - 1, bytes(head))

    def violation(self, check: str, code: str, message: str, oracle: str | None = None, sequence: int | None = None,
                  block: int | None = None, tx_hash: str | None = None) -> None:
        rid = int(oracle, 16) << 64 | sequence if oracle is not None and sequence is not None else None
        self.violations.append(Violation(check, code, message, rid, oracle, sequence, block, tx_hash))

    def verify_records(self) -> None:
        history = self.history
        sequence_check, chain_check = self.checks["sequence"], self.checks["hash_chain"]
        auth_check, writer_check = self.checks["authorisation"], self.checks["writer"]
        last_sequence, heads, batch_ends = self.last_sequence, self.heads, self.batch_ends
        address_bytes: dict[str, bytes] = {}
        writer_memo: dict[tuple, bool] = {}
        access_memo: dict[tuple, tuple[int, int, Any]] = {}
        served: dict[int, int] = {}
        chain_failed = 0  # records in batches whose published head did not match
        unchecked_run: dict[str, int] = {}  # records of an oracle since its last batch head
        served_outcome = int(Outcome.SERVED)
        for row in self.index.verification_rows(self.cursor if self.cursor is not None else -1):
            (oracle, sequence, oracle_dept, requester, dataset_id, version, grant_id, outcome, reason, checked_at,
             request_hash, response_hash, block, log_index, tx_hash, _block_time) = row
            if sequence < 0:
                sequence += _U64
            if dataset_id < 0:
                dataset_id += _U64
            if grant_id < 0:
                grant_id += _U64
            if checked_at < 0:
                checked_at += _U64
            self.records += 1
            # -- sequence
            expected = last_sequence.get(oracle, 0) + 1
            if sequence == expected:
                sequence_check.passed += 1
            else:
                self.violation("sequence", "sequence_gap",
                               f"oracle {oracle}: expected sequence {expected}, found {sequence}", oracle, sequence, block, tx_hash)
            sequence_check.checked += 1
            last_sequence[oracle] = sequence
            # -- hash chain
            oracle20 = address_bytes.get(oracle)
            if oracle20 is None:
                oracle20 = address_bytes[oracle] = bytes.fromhex(oracle[2:])
            requester20 = address_bytes.get(requester)
            if requester20 is None:
                requester20 = address_bytes[requester] = bytes.fromhex(requester[2:])
            meta = checked_at | version << 64 | outcome << 96 | reason << 104
            head = keccak(b"".join((
                heads.get(oracle, _ZERO_HASH), _ZERO4, oracle20, sequence.to_bytes(8, "big"), grant_id.to_bytes(32, "big"),
                _ZERO12, requester20, dataset_id.to_bytes(32, "big"), meta.to_bytes(32, "big"), request_hash, response_hash,
            )))
            heads[oracle] = head
            chain_check.checked += 1
            unchecked_run[oracle] = unchecked_run.get(oracle, 0) + 1
            published = batch_ends.get((oracle, sequence))
            if published is not None:
                if published[0] != head:
                    chain_failed += unchecked_run[oracle]
                    self.violation("hash_chain", "hash_chain_mismatch",
                                   f"oracle {oracle}: the records up to sequence {sequence} chain to 0x{head.hex()}, "
                                   f"the contract published head 0x{published[0].hex()} after the batch of sequences "
                                   f"{published[1]}..{sequence}", oracle, sequence, published[3], published[4])
                    heads[oracle] = published[0]  # resume from the published head: report each altered batch once
                unchecked_run[oracle] = 0
            # -- writer
            pos = position(block, log_index)
            timeline = history.accounts.get(oracle)
            account_at = timeline.index(pos) if timeline is not None else -1
            dept_timeline = history.dept_active.get(oracle_dept)
            key = (oracle, account_at, dept_timeline.index(pos) if dept_timeline is not None else -1, oracle_dept, dataset_id)
            allowed = writer_memo.get(key)
            if allowed is None:
                allowed = writer_memo[key] = self._writer_allowed(oracle, oracle_dept, dataset_id, pos)
            writer_check.checked += 1
            if allowed:
                writer_check.passed += 1
            else:
                dept, roles = history.account(oracle, pos)
                self.violation("writer", "rogue_writer",
                               f"record written by {oracle}, which at block {block} was "
                               + (f"bound to department {dept} with roles {_roles(roles)}" if dept else "bound to no department")
                               + f"; its batch names department {oracle_dept}"
                               + (f", dataset {dataset_id} belongs to department {history.owner(dataset_id, pos)}" if dataset_id else ""),
                               oracle, sequence, block, tx_hash)
            # -- authorisation (served records only)
            if outcome != served_outcome:
                continue
            auth_check.checked += 1
            count = served[grant_id] = served.get(grant_id, 0) + 1
            if checked_at > block:
                self.violation("authorisation", "decision_after_anchoring",
                               f"served record says its grant was checked at block {checked_at}, after it was anchored "
                               f"at block {block}", oracle, sequence, block, tx_hash)
                continue
            access_key = (grant_id, requester, dataset_id, checked_at)
            answer = access_memo.get(access_key)
            if answer is None:
                answer = access_memo[access_key] = history.check_access(
                    requester, dataset_id, grant_id, checked_at, self._block_time(checked_at))
            access_reason, allowed_version, grant = answer
            if access_reason == AccessReason.GRANTED and version != allowed_version:
                self.violation("authorisation", "unauthorised_access",
                               f"served version {version} of dataset {dataset_id} under grant {grant_id}, which allowed "
                               f"version {allowed_version} at block {checked_at}", oracle, sequence, block, tx_hash)
            elif access_reason == AccessReason.GRANTED and count > grant.quota:
                self.violation("authorisation", "unauthorised_access",
                               f"served record {count} under grant {grant_id}, whose quota is {grant.quota} "
                               f"(QUOTA_EXHAUSTED)", oracle, sequence, block, tx_hash)
            elif access_reason != AccessReason.GRANTED:
                self.violation("authorisation", "unauthorised_access",
                               f"served {requester} dataset {dataset_id} under grant {grant_id}, which checkAccess at "
                               f"block {checked_at} refuses: {AccessReason(access_reason).name}", oracle, sequence, block, tx_hash)
            elif self.max_decision_age is not None and block - checked_at > self.max_decision_age:
                self.violation("authorisation", "stale_decision",
                               f"served record anchored at block {block} for a decision at block {checked_at}, "
                               f"older than the {self.max_decision_age} blocks allowed", oracle, sequence, block, tx_hash)
            else:
                auth_check.passed += 1
        self._final_heads(chain_failed, unchecked_run)

    def _writer_allowed(self, oracle: str, batch_dept: int, dataset_id: int, pos: int) -> bool:
        history = self.history
        dept, roles = history.account(oracle, pos)
        return bool(dept and roles & ORACLE and history.active(dept, pos) and dept == batch_dept
                    and (dataset_id == 0 or history.owner(dataset_id, pos) == dept))

    def _block_time(self, block: int) -> int | None:
        known = self.history.block_times.get(block)
        if known is None and self.consortium is not None:
            known = self.history.block_times[block] = self.consortium.chain.block_timestamp(block)
        return known

    def _final_heads(self, chain_failed: int, unchecked_run: dict[str, int]) -> None:
        """Compare each oracle's end with the contract: its state at the cursor (with a consortium) or
        its last batch event; oracles the registry ever named are asked too (records the index lacks)."""
        chain_check = self.checks["hash_chain"]
        oracles = set(self.last_sequence)
        live = self.consortium is not None and self.cursor is not None
        if live:
            oracles |= self.history.oracle_accounts
        for oracle in sorted(oracles):
            mine = self.last_sequence.get(oracle, 0)
            head = self.heads.get(oracle, _ZERO_HASH)
            if live:
                state = self.consortium.audit_log.oracle_state(oracle, block=self.cursor)
                last, published = state.last_sequence, state.head
                source = f"oracleState at block {self.cursor}"
            else:
                last, published = self.last_batch.get(oracle, (0, _ZERO_HASH))
                source = "its last AuditBatchAppended"
            if last != mine:
                self.violation("sequence", "sequence_gap",
                               f"oracle {oracle}: the contract's last sequence is {last} ({source}), the records "
                               f"indexed end at {mine}", oracle, None, self.cursor)
            pending = unchecked_run.get(oracle, 0)  # records after the last published batch head
            if published != head and (live or pending):
                self.violation("hash_chain", "hash_chain_mismatch",
                               f"oracle {oracle}: the records chain to 0x{head.hex()}, the contract holds "
                               f"0x{published.hex()} ({source})", oracle, None, self.cursor)
                chain_failed += pending
        self.live_state = live
        chain_check.passed = chain_check.checked - chain_failed


def _roles(roles: int) -> str:
    names = [name for bit, name in ((COMMITTEE, "committee"), (OPERATOR, "operator"), (AUDITOR, "auditor"),
                                    (ORACLE, "oracle")) if roles & bit]
    return "+".join(names) or "none"


# --------------------------------------------------------------------------- oracle exports


def _verify_export(index: AuditIndex, export: OracleExport, cursor: int | None, check: CheckCount,
                   violations: list[Violation]) -> None:
    oracle = export.oracle
    on_chain = {}
    for row in index.raw(
            "SELECT sequence, grant_id, requester, dataset_id, dataset_version, outcome, reason, checked_at_block,"
            " request_hash, response_hash, block_number, tx_hash FROM records WHERE oracle = ? AND pos <= ? ORDER BY pos",
            (oracle, _last_position(cursor))):
        sequence = row[0] + _U64 if row[0] < 0 else row[0]
        on_chain[sequence] = row

    def violation(code: str, message: str, sequence: int, block: int | None, tx: str | None) -> None:
        violations.append(Violation("oracle_export", code, message, int(oracle, 16) << 64 | sequence, oracle, sequence,
                                    block, tx))

    seen: set[int] = set()
    for record in export.records:
        sequence = record.sequence
        if sequence in seen:
            check.checked += 1
            violation("record_mismatch", f"the export of {oracle} lists sequence {sequence} twice", sequence,
                      record.anchored_block, record.anchored_tx)
            continue
        seen.add(sequence)
        row = on_chain.get(sequence)
        if row is None:
            if record.anchored_block is not None and cursor is not None and record.anchored_block > cursor:
                continue  # anchored after the index's cursor: outside this verification
            check.checked += 1
            claim = (f"the oracle says it was anchored in block {record.anchored_block} (tx {record.anchored_tx})"
                     if record.anchored_block is not None else "the oracle has not anchored it")
            violation("missing_on_chain",
                      f"{record.outcome.name.lower()} record {sequence} of {oracle}'s local log is not on chain; {claim}",
                      sequence, record.anchored_block, record.anchored_tx)
            continue
        check.checked += 1
        differences = _differences(record, row)
        if differences:
            violation("record_mismatch", f"record {sequence} of {oracle} differs between the oracle's log and the chain: "
                      + "; ".join(differences), sequence, row[10], row[11])
        else:
            check.passed += 1
    for sequence, row in on_chain.items():
        if sequence not in seen:
            check.checked += 1
            violation("unknown_to_oracle", f"record {sequence} of {oracle} is on chain but not in the oracle's exported log",
                      sequence, row[10], row[11])


def _differences(record: ExportedRecord, row: tuple) -> list[str]:
    (_, grant_id, requester, dataset_id, version, outcome, reason, checked, request_hash, response_hash, _, _) = row
    chain = {
        "grant_id": grant_id + _U64 if grant_id < 0 else grant_id,
        "requester": requester,
        "dataset_id": dataset_id + _U64 if dataset_id < 0 else dataset_id,
        "dataset_version": version,
        "outcome": Outcome(outcome),
        "reason": reason,
        "checked_at_block": checked + _U64 if checked < 0 else checked,
        "request_hash": bytes(request_hash),
        "response_hash": bytes(response_hash),
    }
    out = []
    for name, value in chain.items():
        mine = getattr(record, name)
        if mine != value:
            show = (lambda v: "0x" + v.hex()) if isinstance(value, bytes) else (lambda v: getattr(v, "name", v))
            out.append(f"{name} {show(mine)} in the log, {show(value)} on chain")
    return out


# --------------------------------------------------------------------------- dataset integrity


def _version(index: AuditIndex, dataset_id: int, version: int, what: str) -> Any:
    published = index.dataset_version(dataset_id, version)
    if published is None:
        raise VerificationInputError(f"{what}: dataset {dataset_id} has no published version {version} in the index")
    return published


def verify_data_file(index: AuditIndex, check: DataFileCheck) -> list[Violation]:
    """The violations (none if it matches) of one data file against its published version: its
    content hash (``content_hash_mismatch``) and Merkle root (``merkle_root_mismatch``). Raises
    :class:`VerificationInputError` if the file cannot be read or the version is not published."""
    published = _version(index, check.dataset_id, check.version, f"data file {check.path}")
    try:
        data = read_dataset_file(Path(check.path), fmt=check.fmt)
    except DataFileError as exc:
        raise VerificationInputError(f"data file {check.path}: {exc}") from None
    where = f"data file {check.path} ({data.record_count} records) against dataset {check.dataset_id} version {check.version} ({published.record_count} records)"
    out = []
    if data.content_hash != published.content_hash:
        out.append(Violation("data_file", "content_hash_mismatch",
                             f"{where}: content hash 0x{data.content_hash.hex()}, published 0x{published.content_hash.hex()}",
                             block=published.block_number))
    if data.merkle_root != published.merkle_root:
        out.append(Violation("data_file", "merkle_root_mismatch",
                             f"{where}: Merkle root 0x{data.merkle_root.hex()}, published 0x{published.merkle_root.hex()}",
                             block=published.block_number))
    return out


def verify_record_proof(index: AuditIndex, check: RecordProofCheck) -> list[Violation]:
    """The violations (none if it is included) of one record proof against its published version
    (``record_not_in_version``). Raises :class:`VerificationInputError` if the version is not published."""
    label = check.label or f"record 0x{check.record_hash.hex()}"
    published = _version(index, check.dataset_id, check.version, label)
    try:
        computed = root_from_proof(leaf_hash(check.record_hash), list(check.proof))
    except HashLengthError as exc:
        raise VerificationInputError(f"{label}: {exc}") from None
    if computed == published.merkle_root:
        return []
    return [Violation("record_proof", "record_not_in_version",
                      f"{label}: its proof leads to root 0x{computed.hex()}, dataset {check.dataset_id} version "
                      f"{check.version} has root 0x{published.merkle_root.hex()}", block=published.block_number)]


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise ValueError(f"{what} must be 0x and 64 hex digits")
    return bytes.fromhex(value[2:])
