"""The catalog through the real HTTP API: register, publish versions from real CSV and JSON Lines
files (the service computes hash and root), search, read; and every refusal as a problem."""

from __future__ import annotations

import json
from pathlib import Path

from devtools.sample_data import COMPANY_FIELDS, RESIDENT_FIELDS
from ledger.contracts.catalog import Classification, UpdateFrequency
from ledger.dataset_file import read_dataset_file
from tests.api.conftest import (
    assert_problem,
    company_rows,
    register_companies,
    write_csv,
)


def test_register_publish_csv_and_jsonl_then_search_and_read(consortium, members, serve_api, tmp_path: Path):
    samr = serve_api([members.samr.operator])
    op = members.samr.operator
    dataset = register_companies(samr, op)
    dataset_id = dataset["id"]
    assert dataset["owner"]["code"] == "SAMR" and dataset["fields"] == list(COMPANY_FIELDS)
    assert dataset["level"] == "internal" and dataset["frequency"] == "daily" and dataset["version_count"] == 0
    on_chain = consortium.catalog.dataset(dataset_id)
    assert on_chain.owner_dept == members.samr.id and on_chain.classification is Classification.INTERNAL
    assert on_chain.update_frequency is UpdateFrequency.DAILY and on_chain.fields == COMPANY_FIELDS

    # version 1 from a real CSV file, uploaded as multipart
    csv_path = write_csv(tmp_path / "companies.csv", company_rows(40))
    with csv_path.open("rb") as handle:
        reply = samr.post(op, f"/v1/datasets/{dataset_id}/versions", files={"file": ("companies.csv", handle, "text/csv")})
    assert reply.status_code == 201, reply.text
    expected = read_dataset_file(csv_path, COMPANY_FIELDS)
    v1 = reply.json()
    assert v1["version"] == 1 and v1["record_count"] == 40
    assert v1["content_hash"] == "0x" + expected.content_hash.hex()
    assert v1["merkle_root"] == "0x" + expected.merkle_root.hex()
    stored = consortium.catalog.version(dataset_id, 1)
    assert stored.content_hash == expected.content_hash and stored.merkle_root == expected.merkle_root

    # version 2 from a JSON Lines file, sent as JSON {format, text}
    jsonl_path = tmp_path / "companies.jsonl"
    jsonl_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in company_rows(25)), encoding="utf-8")
    reply = samr.post(op, f"/v1/datasets/{dataset_id}/versions", json={"format": "jsonl", "text": jsonl_path.read_text("utf-8")})
    assert reply.status_code == 201, reply.text
    expected = read_dataset_file(jsonl_path, COMPANY_FIELDS)
    assert reply.json()["version"] == 2 and reply.json()["content_hash"] == "0x" + expected.content_hash.hex()
    assert consortium.catalog.version(dataset_id, 2).merkle_root == expected.merkle_root

    # another department's dataset to search among
    residents = consortium.catalog.register(members.psb.operator, "常住人口信息 residents", RESIDENT_FIELDS,
                                            Classification.SENSITIVE)

    reply = samr.get(op, f"/v1/datasets/{dataset_id}")
    assert reply.status_code == 200
    read = reply.json()
    assert [v["version"] for v in read["versions"]] == [1, 2] and read["version_count"] == 2
    assert read["versions"][0]["merkle_root"] == v1["merkle_root"]

    def ids(**params: str) -> list[int]:
        answer = samr.get(op, "/v1/datasets", params=params)
        assert answer.status_code == 200, answer.text
        return [d["id"] for d in answer.json()["datasets"]]

    assert ids() == [dataset_id, residents]
    assert ids(q="COMPANY") == [dataset_id]  # name, case-insensitive
    assert ids(q="household") == [residents]  # a field name
    assert ids(owner="psb") == [residents]
    assert ids(level="sensitive") == [residents]
    assert ids(level="secret") == []
    assert ids(q="company", owner="PSB") == []


def test_bad_files_are_refused_with_the_line_and_nothing_is_published(consortium, members, serve_api, tmp_path: Path):
    samr = serve_api([members.samr.operator])
    op = members.samr.operator
    dataset_id = register_companies(samr, op)["id"]
    header = ",".join(COMPANY_FIELDS)
    good = ",".join(company_rows(1)[0].values())
    before = consortium.chain.block_number()
    cases = [
        # (file name, content, what the detail must say)
        ("short-row.csv", f"{header}\n{good}\n{good.rsplit(',', 1)[0]}\n", "line 3"),
        ("missing-field.csv", f"{header.rsplit(',', 1)[0]}\n{good.rsplit(',', 1)[0]}\n", "missing status"),
        ("float.jsonl", json.dumps(company_rows(1)[0]) + '\n{"registered_capital": 1.5}\n', "line 2"),
        ("broken.jsonl", '{"company_id": \n', "line 1"),
        ("latin1.csv", f"{header}\n".encode() + b"\xe9t\xe9," * 6 + b"x\n", "not UTF-8"),
        ("notes.txt", f"{header}\n{good}\n", "cannot tell the format"),
        ("empty.csv", "", "empty"),
        ("header-only.csv", f"{header}\n", "no records"),
    ]
    for name, content, expected in cases:
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        reply = samr.post(op, f"/v1/datasets/{dataset_id}/versions", files={"file": (name, data, "application/octet-stream")})
        problem = assert_problem(reply, 422)
        assert expected in problem["detail"], (name, problem)
    # the JSON form: a record with an extra field
    extra = dict(company_rows(1)[0], surprise="x")
    reply = samr.post(op, f"/v1/datasets/{dataset_id}/versions", json={"format": "jsonl", "text": json.dumps(extra)})
    assert "line 1" in assert_problem(reply, 422, "invalid-data-file")["detail"]
    # a form without a 'file' field; a form with a bad format; a body neither a form nor JSON
    reply = samr.post(op, f"/v1/datasets/{dataset_id}/versions", files={"document": ("c.csv", b"a\n", "text/csv")})
    assert "'file'" in assert_problem(reply, 422, "invalid-data-file")["detail"]
    reply = samr.post(op, f"/v1/datasets/{dataset_id}/versions", data={"format": "xlsx"}, files={"file": ("c", b"a\n")})
    assert_problem(reply, 422, "invalid-data-file")
    assert_problem(samr.post(op, f"/v1/datasets/{dataset_id}/versions", content=b"a,b\n",
                             headers={"Content-Type": "text/csv"}), 415, "unsupported-media-type")
    assert_problem(samr.post(op, f"/v1/datasets/{dataset_id}/versions", json={"format": "xlsx", "text": ""}), 422)
    assert consortium.chain.block_number() == before
    assert consortium.catalog.dataset(dataset_id).version_count == 0


def test_catalog_refusals(consortium, members, serve_api, tmp_path: Path):
    # one service holding several departments' keys, to ask it as each of them
    api = serve_api([members.samr.operator, members.samr.oracle, members.tax.operator])
    samr_op, samr_oracle, tax_op = members.samr.operator, members.samr.oracle, members.tax.operator
    dataset_id = register_companies(api, samr_op)["id"]
    before = consortium.chain.block_number()
    csv_path = write_csv(tmp_path / "companies.csv", company_rows(5))

    # an account of SAMR without the OPERATOR role (its oracle) cannot register
    problem = assert_problem(api.post(samr_oracle, "/v1/datasets", json={"name": "x", "fields": ["a"], "level": "public"}),
                             403, "wrong-role")
    assert problem["role"] == "OPERATOR" and samr_oracle.address in problem["detail"]
    # TAX's operator cannot publish a version of SAMR's dataset
    with csv_path.open("rb") as handle:
        reply = api.post(tax_op, f"/v1/datasets/{dataset_id}/versions", files={"file": ("c.csv", handle, "text/csv")})
    assert "SAMR" in assert_problem(reply, 403, "wrong-role")["detail"]
    # unknown datasets
    assert_problem(api.get(tax_op, "/v1/datasets/999"), 404, "unknown-dataset")
    assert_problem(api.get(tax_op, "/v1/datasets/0"), 404, "unknown-dataset")
    with csv_path.open("rb") as handle:
        reply = api.post(samr_op, "/v1/datasets/999/versions", files={"file": ("c.csv", handle, "text/csv")})
    assert assert_problem(reply, 404, "unknown-dataset")["dataset_id"] == 999
    # a schema naming a field twice
    assert_problem(api.post(samr_op, "/v1/datasets", json={"name": "dup", "fields": ["a", "b", "a"], "level": "public"}),
                   422, "duplicate-field")
    # an unknown classification
    assert_problem(api.post(samr_op, "/v1/datasets", json={"name": "x", "fields": ["a"], "level": "top-secret"}),
                   422, "invalid-request")
    assert consortium.chain.block_number() == before

    # a refusal only the chain makes still comes back as a problem naming the contract's error:
    # 100 characters pass the API's check, but 300 bytes exceed the catalog's 200-byte limit
    problem = assert_problem(api.post(samr_op, "/v1/datasets", json={"name": "企" * 100, "fields": ["a"], "level": "public"}),
                             422, "contract-refused")
    assert problem["error"] == "DataCatalogInvalidName" and problem["error_args"] == {}
    assert consortium.chain.block_number() == before
