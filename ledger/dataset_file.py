"""A dataset version read from a file: its records, content hash, Merkle root and record proofs.

The catalog, the command line and the auditor's verification all read data files through this
module, so a version published from a file and a file checked against a version agree by
construction.

Formats (chosen by suffix, or ``fmt=``):

* **JSON Lines** (``.jsonl``, ``.ndjson``): one JSON object per line; blank lines are skipped.
  Values must be canonical-JSON values: exact decimals as strings, never floats. A record is at
  most :data:`MAX_RECORD_CHARS` characters and nests at most ``ledger.json_limits.MAX_DEPTH``
  levels (checked before the line is parsed).
* **CSV** (``.csv``): UTF-8 (a BOM is tolerated), a header row of field names; every value is a
  string, exactly as written.

Every record must carry exactly the dataset's fields (when ``fields`` is given): a missing or
extra field is refused with the line number, never silently dropped or filled.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import CanonicalizationError, LedgerError
from ledger.hashing import content_hash, record_hash
from ledger.json_limits import MAX_DEPTH, JsonTooDeep, check_json
from ledger.merkle import MerkleTree

__all__ = ["DataFileError", "DatasetFile", "read_dataset_file", "parse_records"]

FORMATS = ("jsonl", "csv")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
#: Longest line of a JSON Lines file (one record).
MAX_RECORD_CHARS = 1024 * 1024


class DataFileError(LedgerError, ValueError):
    """A data file cannot be read as dataset records; the message names the line and the problem."""


@dataclass(frozen=True)
class DatasetFile:
    """The records of one data file and the commitments a catalog version stores for them."""

    records: tuple[dict[str, Any], ...]
    content_hash: bytes
    merkle_root: bytes
    tree: MerkleTree

    @property
    def record_count(self) -> int:
        return len(self.records)

    def proof(self, index: int) -> list[bytes]:
        """The Merkle inclusion proof of record ``index`` (0-based, file order)."""
        return self.tree.proof(index)

    def record_hash(self, index: int) -> bytes:
        return record_hash(self.records[index])


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise DataFileError(f"unknown data file format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise DataFileError(f"cannot tell the format of {path.name!r} from its suffix; use .jsonl or .csv") from None


def parse_records(text: str, fmt: str, fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``text`` (JSON Lines or CSV) into records, checking each against ``fields`` if given."""
    records = _parse_jsonl(text) if fmt == "jsonl" else _parse_csv(text) if fmt == "csv" else None
    if records is None:
        raise DataFileError(f"unknown data file format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fields is not None:
        expected = set(fields)
        for line, record in records:
            keys = set(record)
            if keys != expected:
                missing, extra = sorted(expected - keys), sorted(keys - expected)
                parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(extra)}"] if extra else [])
                raise DataFileError(f"line {line}: the record's fields do not match the dataset's schema ({'; '.join(parts)})")
    return [record for _, record in records]


def commit_records(records: Iterable[Mapping[str, Any]]) -> DatasetFile:
    """Hash ``records`` as a catalog version would: content hash, Merkle tree over record hashes."""
    rows = tuple(dict(r) for r in records)
    try:
        tree = MerkleTree([record_hash(r) for r in rows])
        digest = content_hash(rows)
    except CanonicalizationError as exc:
        raise DataFileError(f"a record cannot be hashed canonically: {exc}") from exc
    return DatasetFile(rows, digest, tree.root, tree)


def read_dataset_file(path: Path, fields: Sequence[str] | None = None, *, fmt: str | None = None) -> DatasetFile:
    """Read ``path`` and compute its version commitments. Raises :class:`DataFileError` on any problem."""
    path = Path(path)
    kind = detect_format(path, fmt)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFileError(f"data file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(f"data file {path} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except OSError as exc:
        raise DataFileError(f"cannot read data file {path}: {exc.strerror}") from None
    return commit_records(parse_records(text, kind, fields))


def _parse_jsonl(text: str) -> list[tuple[int, dict[str, Any]]]:
    lines = text.splitlines()
    try:
        check_json(text, what="a record")  # the whole file at once: each line is balanced if it is JSON
    except JsonTooDeep:
        _refuse_deep_line(lines)
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_RECORD_CHARS:
            raise DataFileError(f"line {number}: a record is at most {MAX_RECORD_CHARS} characters, "
                                f"this one has {len(line)}")
        try:
            record = json.loads(line, parse_float=_refuse_float)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except DataFileError as exc:
            raise DataFileError(f"line {number}: {exc}") from None
        if not isinstance(record, dict):
            raise DataFileError(f"line {number}: a record must be a JSON object, found {type(record).__name__}")
        out.append((number, record))
    return out


def _refuse_deep_line(lines: Sequence[str]) -> None:
    """Name the first line nested too deeply (or unbalanced so that the file as a whole is)."""
    for number, line in enumerate(lines, start=1):
        try:
            check_json(line, what="the record")
        except JsonTooDeep as exc:
            raise DataFileError(f"line {number}: {exc}") from None
    raise DataFileError(f"the lines' brackets do not balance: the file nests over {MAX_DEPTH} levels deep")


def _refuse_float(literal: str) -> Any:
    raise DataFileError(f"the number {literal} is not exact; write decimals as strings (\"{literal}\")")


def _parse_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise DataFileError("the CSV file is empty: it needs a header row of field names") from None
    except csv.Error as exc:
        raise DataFileError(f"line 1: {exc}") from None
    if len(set(header)) != len(header) or any(not name for name in header):
        raise DataFileError("line 1: the header must name each field once")
    out = []
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise DataFileError(f"line {reader.line_num}: {len(row)} values for {len(header)} fields")
            out.append((reader.line_num, dict(zip(header, row))))
    except csv.Error as exc:
        raise DataFileError(f"line {reader.line_num}: {exc}") from None
    return out
