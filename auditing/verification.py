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
  anchoring block is a violation too, and so is a decision more blocks before its anchoring block
  than the consortium's ``maxDecisionAgeBlocks`` in force at that block (replayed from the registry's
  ``MaxDecisionAgeChanged`` events; ``AuditLog`` refuses such a record, so one on chain means a
  compromised node or state, or contracts without the bound): a back-dated decision. ``max_decision_age``
  may tighten that bound for the whole trail, never loosen it;
* **writer**: every record was written (its record id names the sender) by an account that, at that
  point of the chain, was bound to a member department with the ORACLE role, the department its batch
  names and (for a record about a dataset) the dataset's owner;
* **oracle_export** (optional): an oracle's exported local log (``govshare oracle export``) matches
  the chain record for record: nothing in the log is missing on chain, nothing on chain is unknown to
  the oracle, and every field of each pair agrees;
* **receipts** (optional): requesters' signed receipts (``auditing.receipts``): each is the named
  oracle's, and the chain holds exactly the record hash and hash-chain head it commits to at its
  oracle and sequence (an unanchored outbox record altered or dropped, or its sequence reused, shows here);
* **data_file** / **record_proof** (optional): a data file's content hash and Merkle root match a
  published version (``ledger.dataset_file``); a single record with its proof belongs to one.

The record fields the chain does not carry cannot be checked from it: the requested *field set* is
committed only inside the salted request hash (the oracle's ``checkAccess`` compared it with the
grant's fields; the grant's fields are in the index as ``field_mask``).

Violation codes: ``sequence_gap``, ``hash_chain_mismatch``, ``unauthorised_access``,
``decision_after_anchoring``, ``stale_decision``, ``rogue_writer``, ``missing_on_chain``,
``unknown_to_oracle``, ``record_mismatch``, ``receipt_not_from_oracle``, ``receipt_inconsistent``,
``receipt_not_anchored``, ``receipt_sequence_reused``, ``receipt_record_altered``, ``receipt_head_mismatch``,
``content_hash_mismatch``, ``merkle_root_mismatch``,
``record_not_in_version``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditing.evidence import (
    DataFileCheck,
    RecordProofCheck,
    read_export,
    verify_data_file,
    verify_export,
    verify_record_proof,
)
from auditing.history import AccessHistory
from auditing.index import AUDITOR, COMMITTEE, OPERATOR, ORACLE, AuditIndex, last_position, position
from auditing.receipts import read_receipts, verify_receipts
from auditing.report import CHECKS, CheckCount, VerificationInputError, VerificationReport, VerificationScope, Violation
from ledger.contracts.audit_log import Outcome
from ledger.contracts.grants import AccessReason
from ledger.hashing import keccak
from protocol.oracle_export import OracleExport

__all__ = ["verify_audit_trail"]

_U64 = 1 << 64
_ZERO12 = b"\x00" * 12
_ZERO4 = b"\x00" * 4
_ZERO_HASH = b"\x00" * 32

# --------------------------------------------------------------------------- the verification


def verify_audit_trail(
    source: Any,
    consortium: Any = None,
    *,
    oracle_exports: Sequence[Path | str | OracleExport] = (),
    data_files: Sequence[DataFileCheck] = (),
    record_proofs: Sequence[RecordProofCheck] = (),
    max_decision_age: int | None = None,
    receipts: Sequence[Path | str] = (),
) -> VerificationReport:
    """Verify the trail in ``source``: an :class:`~auditing.index.AuditIndex` (as synced; pass
    ``consortium`` too to compare the final heads with the contract's state at the index's cursor),
    or a :class:`~ledger.deployment.Consortium`, which is first indexed into memory.

    ``oracle_exports`` are export files (or parsed :class:`OracleExport`) to match record for record;
    ``data_files`` and ``record_proofs`` are checked against the published versions;
    Served records anchored more blocks after their decision than the consortium's
    ``maxDecisionAgeBlocks`` in force at their anchoring block are flagged (``stale_decision``);
    ``max_decision_age`` (blocks) tightens that bound: a value above the bound in force at the index's
    cursor is refused (:class:`VerificationInputError`), since it would switch the check off in part.
    ``receipts`` are receipt files or directories of them (``auditing.receipts``) to match with the chain.
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
    exports = [read_export(e) for e in oracle_exports]
    receipt_files = read_receipts(receipts)
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
    if max_decision_age is not None:
        in_force = run.history.max_decision_age.at(last_position(status.cursor))
        if in_force is not None and max_decision_age > in_force:
            raise VerificationInputError(
                f"max_decision_age {max_decision_age} is larger than the consortium's maxDecisionAgeBlocks "
                f"{in_force} (at block {status.cursor}): it may only tighten the bound the contract enforces")
    run.verify_records()
    checks["oracle_export"].ran = bool(exports)
    for export in exports:
        verify_export(index, export, status.cursor, checks["oracle_export"], violations)
    checks["receipts"].ran = bool(receipts)
    verify_receipts(index, receipt_files, status.cursor, run.history, checks["receipts"], violations)
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
                " ORDER BY pos", (last_position(cursor),)):
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
            elif block - checked_at > (limit := self._decision_age_limit(pos))[0]:
                self.violation("authorisation", "stale_decision",
                               f"served record anchored at block {block} for a decision at block {checked_at}: "
                               f"{block - checked_at} blocks, more than the {limit[0]} allowed ({limit[1]}): a "
                               "back-dated decision, or a record anchored too late", oracle, sequence, block, tx_hash)
            else:
                auth_check.passed += 1
        self._final_heads(chain_failed, unchecked_run)

    def _decision_age_limit(self, pos: int) -> tuple[int, str]:
        """The bound on a served record's decision age at chain position ``pos`` and where it comes from:
        the consortium's ``maxDecisionAgeBlocks`` then in force, tightened by ``max_decision_age``."""
        in_force = self.history.max_decision_age.at(pos)
        if in_force is None:
            raise VerificationInputError(
                "the index holds no MaxDecisionAgeChanged event of the registry before a served record: it was "
                "synced by an older govshare or from contracts without the decision-age bound; index the chain anew")
        if self.max_decision_age is not None and self.max_decision_age < in_force:
            return self.max_decision_age, f"--max-decision-age; the consortium's bound there is {in_force}"
        return in_force, "the consortium's maxDecisionAgeBlocks at that block"

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

