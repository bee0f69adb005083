"""Data files read as dataset versions: CSV and JSON Lines agree, and every malformed file is refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.sample_data import COMPANY_FIELDS, companies
from ledger.dataset_file import DataFileError, read_dataset_file
from ledger.hashing import content_hash, record_hash
from ledger.merkle import MerkleTree, verify_inclusion

FIELDS = ("id", "name")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_and_jsonl_of_the_same_records_commit_to_the_same_version(tmp_path: Path) -> None:
    csv_file = read_dataset_file(write(tmp_path, "d.csv", "\ufeffid,name\n1,市场\n2,\"a,b\"\n"), FIELDS)
    jsonl_file = read_dataset_file(write(tmp_path, "d.jsonl", '{"id":"1","name":"市场"}\n\n{"name":"a,b","id":"2"}\n'), FIELDS)
    records = [{"id": "1", "name": "市场"}, {"id": "2", "name": "a,b"}]
    assert csv_file.records == jsonl_file.records == tuple(records)
    assert csv_file.content_hash == jsonl_file.content_hash == content_hash(records)
    assert csv_file.merkle_root == MerkleTree([record_hash(r) for r in records]).root
    verify_inclusion(csv_file.record_hash(1), csv_file.proof(1), csv_file.merkle_root)


def test_the_sample_company_registry_round_trips_through_jsonl(tmp_path: Path) -> None:
    import json

    rows = companies()[:200]
    path = write(tmp_path, "companies.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    data = read_dataset_file(path, COMPANY_FIELDS)
    assert data.record_count == 200 and data.content_hash == content_hash(rows)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.jsonl", '{"id":"1","name":"x"}\n{"id":"2",\n', "line 2: not valid JSON"),
        ("float.jsonl", '{"id":"1","name":"x"}\n{"id":1.5,"name":"y"}\n', "line 2: the number 1.5 is not exact"),
        ("array.jsonl", '["1","x"]\n', "line 1: a record must be a JSON object"),
        ("missing.jsonl", '{"id":"1"}\n', "line 1: the record's fields do not match the dataset's schema (missing name)"),
        ("extra.csv", "id,name,secret\n1,x,y\n", "unknown secret"),
        ("short.csv", "id,name\n1,x\n2\n", "line 3: 1 values for 2 fields"),
        ("dup.csv", "id,id\n1,2\n", "line 1: the header must name each field once"),
        ("empty.csv", "", "the CSV file is empty"),
        ("data.xlsx", "whatever", "cannot tell the format"),
    ],
)
def test_malformed_files_are_refused_with_the_line_and_the_problem(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_dataset_file(write(tmp_path, name, text), FIELDS)


def test_a_missing_or_non_utf8_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        read_dataset_file(tmp_path / "absent.csv", FIELDS)
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,name\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFileError, match="not UTF-8"):
        read_dataset_file(path, FIELDS)
