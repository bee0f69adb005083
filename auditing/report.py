"""The verification report: what was verified (scope), what each check looked at and passed, and
every violation with where to find it on chain. ``ok`` only if there is no violation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.errors import LedgerError

#: The checks, in report order, and what each one establishes.
CHECKS: dict[str, str] = {
    "sequence": "per oracle, sequence numbers contiguous from 1 and matching the contract's last sequence",
    "hash_chain": "per oracle, the hash chain recomputed from the records equals every head the contract published",
    "authorisation": "every served record's grant was active at its decision block for that requester and dataset, within quota, "
                     "and the decision no older at anchoring than the consortium's maxDecisionAgeBlocks",
    "writer": "every record was written by an account holding the oracle role of its department at that block",
    "oracle_export": "an oracle's exported local log matches the chain record for record",
    "receipts": "each requester's signed receipt is the oracle's and matches the record and hash-chain head on chain",
    "data_file": "a data file's content hash and Merkle root match a published version",
    "record_proof": "a single record with its Merkle proof belongs to a published version",
}


class VerificationInputError(LedgerError, ValueError):
    """An input to the verification (an export, a data file, a proof file) cannot be used."""


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
