"""``govshare oracle export``: an oracle's local log (its outbox) as JSON Lines, for auditors.

The file is what ``govshare audit verify --oracle-export FILE`` matches against the chain record for
record (``auditing.verification``): a header line naming the oracle, chain and audit log, then one line
per record in sequence order with its record id, grant, requester, dataset, version, outcome, reason,
decision block, request and response hashes, the salts that open them, when the oracle wrote it, and
the transaction and block it was anchored in (null while it waits).

The outbox is read through a read-only SQLite connection without the oracle's lock
(``oracle.outbox_file.export_records``), so a running oracle can be exported. The salts open the
hashes of requests and answers: the export is as confidential as the outbox itself, and the output
file is written with mode 0600.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from eth_utils import to_checksum_address

from oracle.outbox_file import OutboxMismatch, OutboxRecord, export_records
from protocol.oracle_export import ExportedRecord, OracleExport


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_outbox` wrote."""

    path: Path
    oracle: str
    chain_id: int
    audit_log: str
    records: int
    anchored: int
    first_sequence: int | None
    last_sequence: int | None

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "oracle": self.oracle, "chain_id": self.chain_id, "audit_log": self.audit_log,
                "records": self.records, "anchored": self.anchored, "pending": self.records - self.anchored,
                "first_sequence": self.first_sequence, "last_sequence": self.last_sequence}


def read_outbox(outbox: Path) -> OracleExport:
    """The outbox at ``outbox`` as an :class:`~protocol.oracle_export.OracleExport` (read-only).

    Raises :class:`~oracle.outbox_file.OutboxMismatch` if it is not an outbox bound to an oracle."""
    identity, records = export_records(Path(outbox))
    missing = [key for key in ("oracle", "chain_id", "audit_log") if key not in identity]
    if missing:
        raise OutboxMismatch(f"outbox {outbox} is not bound to an oracle yet (no {', '.join(missing)})")
    return OracleExport(
        oracle=to_checksum_address(identity["oracle"]),
        chain_id=int(identity["chain_id"]),
        audit_log=to_checksum_address(identity["audit_log"]),
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        records=[_exported(r) for r in records],
        source=str(outbox),
    )


def export_outbox(outbox: Path, out: Path) -> ExportSummary:
    """Write the outbox at ``outbox`` to ``out`` (JSON Lines, mode 0600, replaced atomically)."""
    export = read_outbox(outbox)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for line in export.lines():
            handle.write(line + "\n")
    tmp.replace(target)
    sequences = [r.sequence for r in export.records]
    return ExportSummary(target, export.oracle, export.chain_id, export.audit_log, len(export.records),
                         sum(1 for r in export.records if r.anchored_block is not None),
                         min(sequences, default=None), max(sequences, default=None))


def _exported(record: OutboxRecord) -> ExportedRecord:
    entry = replace(record.entry, requester=to_checksum_address(record.entry.requester))
    return ExportedRecord(sequence=record.sequence, entry=entry, request_salt=record.request_salt,
                          response_salt=record.response_salt, created_at=record.created_at,
                          anchored_tx=record.anchored_tx, anchored_block=record.anchored_block)
