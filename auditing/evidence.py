"""Evidence an auditor brings besides the chain: an oracle's exported log (matched record for record),
data files (content hash and Merkle root against a published version) and single records with their
Merkle proofs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditing.index import AuditIndex, last_position
from auditing.report import CheckCount, VerificationInputError, Violation
from ledger.contracts.audit_log import Outcome
from ledger.dataset_file import DataFileError, read_dataset_file
from ledger.errors import HashLengthError
from ledger.hashing import record_hash as canonical_record_hash
from ledger.json_limits import JsonTooDeep, JsonTooLarge, read_json_file
from ledger.merkle import leaf_hash, root_from_proof
from protocol.oracle_export import ExportedRecord, InvalidExport, OracleExport, hex32

_U64 = 1 << 64

#: Largest record proof file read (a proof of a million records is about 1.4 KB of hashes).
MAX_PROOF_BYTES = 1024 * 1024


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
                digest = hex32(data["record_hash"], "record_hash")
            proof = tuple(hex32(p, f"proof[{i}]") for i, p in enumerate(data["proof"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationInputError(
                f"{label or 'record proof'}: needs dataset_id, version, record or record_hash, and proof: {exc}") from None
        return cls(dataset_id, version, digest, proof, label)

    @classmethod
    def from_file(cls, path: Path | str) -> RecordProofCheck:
        try:
            data = read_json_file(path, max_bytes=MAX_PROOF_BYTES, what=f"record proof {path}")
        except OSError as exc:
            raise VerificationInputError(f"cannot read record proof {path}: {exc.strerror or exc}") from None
        except (JsonTooLarge, JsonTooDeep) as exc:
            raise VerificationInputError(str(exc)) from None
        except UnicodeDecodeError:
            raise VerificationInputError(f"record proof {path} is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise VerificationInputError(f"record proof {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(data, dict):
            raise VerificationInputError(f"record proof {path} must be a JSON object")
        return cls.from_dict(data, str(path))


def read_export(source: Path | str | OracleExport) -> OracleExport:
    """An oracle's export, read from its file unless already parsed; :class:`VerificationInputError`
    (naming the line) for a file that is not one."""
    if isinstance(source, OracleExport):
        return source
    try:
        return OracleExport.read(source)
    except InvalidExport as exc:
        raise VerificationInputError(str(exc)) from None


def verify_export(index: AuditIndex, export: OracleExport, cursor: int | None, check: CheckCount,
                   violations: list[Violation]) -> None:
    oracle = export.oracle
    on_chain = {}
    for row in index.raw(
            "SELECT sequence, grant_id, requester, dataset_id, dataset_version, outcome, reason, checked_at_block,"
            " request_hash, response_hash, block_number, tx_hash FROM records WHERE oracle = ? AND pos <= ? ORDER BY pos",
            (oracle, last_position(cursor))):
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
                      f"{record.entry.outcome.name.lower()} record {sequence} of {oracle}'s local log is not on chain; {claim}",
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
        mine = getattr(record.entry, name)
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

