"""The oracle's export file: its local log (its outbox) as JSON Lines, for auditors
(``govshare oracle export`` writes it, ``govshare audit verify --oracle-export`` reads it).

Line 1 is a header ``{"type": "govshare.oracle-export", "format": 1, "oracle", "chain_id",
"audit_log", "exported_at", "records"}``; every other line is one record (:meth:`ExportedRecord.to_dict`):
its sequence and record id, the nine fields of the audit entry as the oracle submitted them
(:class:`ledger.contracts.audit_log.AuditEntry`), the salts that open its request and response
hashes, when the oracle wrote it and where it was anchored. The salts open the hashes: the file is
as confidential as the requests themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from ledger.contracts.audit_log import AuditEntry, Outcome, reason_name, record_id
from ledger.errors import LedgerError
from ledger.json_limits import JsonTooDeep, check_json

__all__ = ["EXPORT_FORMAT", "EXPORT_TYPE", "ExportedRecord", "InvalidExport", "OracleExport", "hex32"]

#: How deeply a line of an export may nest (a record is a flat object: 1).
MAX_LINE_DEPTH = 8

EXPORT_TYPE = "govshare.oracle-export"
EXPORT_FORMAT = 1


class InvalidExport(LedgerError, ValueError):
    """A file is not a readable oracle export; the message names the line."""


@dataclass(frozen=True)
class ExportedRecord:
    """One record of an oracle's local log: the entry it submitted, and what only the oracle knows."""

    sequence: int
    entry: AuditEntry
    request_salt: bytes | None
    response_salt: bytes | None
    created_at: float  # unix seconds, the oracle's clock
    anchored_tx: str | None
    anchored_block: int | None

    def to_dict(self, oracle: str) -> dict[str, Any]:
        """The export line (``oracle`` names the record id)."""
        e = self.entry
        return {
            "sequence": self.sequence,
            "record_id": hex(record_id(oracle, self.sequence)),
            "grant_id": e.grant_id,
            "requester": e.requester,
            "dataset_id": e.dataset_id,
            "dataset_version": e.dataset_version,
            "outcome": e.outcome.name.lower(),
            "reason": e.reason,
            "reason_name": reason_name(e.reason),
            "checked_at_block": e.checked_at_block,
            "request_hash": "0x" + e.request_hash.hex(),
            "response_hash": "0x" + e.response_hash.hex(),
            "request_salt": None if self.request_salt is None else "0x" + self.request_salt.hex(),
            "response_salt": None if self.response_salt is None else "0x" + self.response_salt.hex(),
            "created_at": self.created_at,
            "anchored_tx": self.anchored_tx,
            "anchored_block": self.anchored_block,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportedRecord:
        """A record from its export line (``KeyError``, ``TypeError`` or ``ValueError`` if it is not one)."""
        outcome = data["outcome"]
        entry = AuditEntry(
            grant_id=int(data["grant_id"]),
            requester=to_checksum_address(data["requester"]),
            dataset_id=int(data["dataset_id"]),
            dataset_version=int(data["dataset_version"]),
            outcome=Outcome(outcome) if isinstance(outcome, int) else Outcome[str(outcome).upper()],
            reason=int(data["reason"]),
            checked_at_block=int(data["checked_at_block"]),
            request_hash=hex32(data["request_hash"], "request_hash"),
            response_hash=hex32(data["response_hash"], "response_hash"),
        )
        return cls(
            sequence=int(data["sequence"]),
            entry=entry,
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
        """Read an export file; :class:`InvalidExport` names the line of any problem."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidExport(f"cannot read oracle export {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InvalidExport(f"oracle export {path} is not UTF-8 text") from None
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if not lines:
            raise InvalidExport(f"oracle export {path} is empty")
        try:
            check_json(text, max_depth=MAX_LINE_DEPTH)  # the whole file at once: each line balances if it is JSON
        except JsonTooDeep:
            for number, line in lines:
                try:
                    check_json(line, what="the line", max_depth=MAX_LINE_DEPTH)
                except JsonTooDeep as exc:
                    raise InvalidExport(f"oracle export {path}, line {number}: {exc}") from None
            raise InvalidExport(f"oracle export {path}: its lines' brackets do not balance") from None
        try:
            header = json.loads(lines[0][1])
            if not isinstance(header, dict) or header.get("type") != EXPORT_TYPE:
                raise InvalidExport(f"{path} is not a govshare oracle export (line 1 is no export header)")
            if header.get("format") != EXPORT_FORMAT:
                raise InvalidExport(f"oracle export {path} has format {header.get('format')!r}, expected {EXPORT_FORMAT}")
            oracle = to_checksum_address(header["oracle"])
            chain_id, audit_log = int(header["chain_id"]), to_checksum_address(header["audit_log"])
        except InvalidExport:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidExport(f"oracle export {path}, line 1: not a valid export header ({exc})") from None
        records = []
        for number, line in lines[1:]:
            try:
                records.append(ExportedRecord.from_dict(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InvalidExport(f"oracle export {path}, line {number}: not a valid record ({exc})") from None
        if "records" in header and header["records"] != len(records):
            raise InvalidExport(
                f"oracle export {path} announces {header['records']} records but holds {len(records)} (truncated?)")
        return cls(oracle, chain_id, audit_log, str(header.get("exported_at", "")), records, str(path))


def hex32(value: Any, what: str) -> bytes:
    """32 bytes from ``0x`` and 64 hex digits (``ValueError`` naming ``what`` otherwise)."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise ValueError(f"{what} must be 0x and 64 hex digits")
    return bytes.fromhex(value[2:])
