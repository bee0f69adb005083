"""``govshare oracle export``: a running oracle's local log as JSON Lines, read without stopping it,
matched against the chain record for record by the auditor's verification; a log altered after the
fact (or an access served and never anchored) fails the match with the right violation."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from auditing.index import AuditIndex
from auditing.verification import verify_audit_trail
from cli.main import main
from devtools.sample_data import companies
from ledger.contracts.audit_log import Outcome
from ledger.hashing import salted_hash
from oracle.export import export_outbox, read_outbox
from protocol.oracle_export import OracleExport
from requester.client import QueryRefused
from tests.oracle.conftest import TAX_FIELDS


def _query(samr_oracle, members, published, index: int, fields: int | None = None):
    return samr_oracle.client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                                    published.company_fields if fields is None else fields,
                                    {"company_id": companies()[index]["company_id"]})


def _verify(tmp_path: Path, consortium, export: Path):
    index = AuditIndex(tmp_path / "index.sqlite")
    index.sync(consortium)
    return verify_audit_trail(index, consortium, oracle_exports=[export])


def test_the_export_of_a_running_oracle_matches_the_chain(tmp_path, consortium, members, published, samr_oracle):
    served = [_query(samr_oracle, members, published, i) for i in (3, 4, 5)]
    dataset = consortium.catalog.dataset(published.companies)
    try:
        _query(samr_oracle, members, published, 6, fields=dataset.field_mask(["legal_representative"]))
    except QueryRefused as refused:
        assert refused.reason == "FIELDS_NOT_GRANTED"
    assert samr_oracle.oracle.batcher.anchor_once(force=True)
    path = tmp_path / "export" / "samr.jsonl"
    summary = export_outbox(samr_oracle.oracle.config.outbox, path)  # the oracle keeps running and holding its lock
    assert (summary.records, summary.anchored, summary.first_sequence, summary.last_sequence) == (4, 4, 1, 4)
    assert summary.oracle == members.samr.oracle.address and summary.chain_id == consortium.chain.chain_id
    assert path.stat().st_mode & 0o777 == 0o600  # the salts open the hashes
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"type": "govshare.oracle-export", "format": 1, "oracle": members.samr.oracle.address,
                        "chain_id": consortium.chain.chain_id, "audit_log": consortium.audit_log.address,
                        "exported_at": lines[0]["exported_at"], "records": 4}
    on_chain = {r.sequence: r for r in consortium.audit_log.records()}
    for line in lines[1:]:
        record = on_chain[line["sequence"]]
        assert line["record_id"] == hex(record.record_id)
        assert (line["anchored_tx"], line["anchored_block"]) == (record.tx_hash, record.block_number)
        assert line["request_hash"] == "0x" + record.entry.request_hash.hex()
        assert line["outcome"] == record.entry.outcome.name.lower() and line["reason_name"]
    assert [line["outcome"] for line in lines[1:]] == ["served", "served", "served", "denied"]
    for line, result in zip(lines[1:], served):  # the exported salts are the receipts' and open the hashes
        assert (line["request_salt"], line["response_salt"]) == (result.receipt["request_salt"], result.receipt["response_salt"])
        assert line["response_hash"] == "0x" + salted_hash({"records": result.records}, bytes.fromhex(line["response_salt"][2:])).hex()
        assert result.records == [{k: companies()[int(line["sequence"]) + 2][k] for k in TAX_FIELDS}]
    assert OracleExport.read(path).records == read_outbox(samr_oracle.oracle.config.outbox).records

    report = _verify(tmp_path, consortium, path)
    assert report.ok, report.summary()
    export_check = report.check("oracle_export")
    assert (export_check.ran, export_check.checked, export_check.passed) == (True, 4, 4)

    # an access served and recorded locally but not (yet) anchored is missing on chain
    _query(samr_oracle, members, published, 7)
    export_outbox(samr_oracle.oracle.config.outbox, path)
    report = _verify(tmp_path, consortium, path)
    assert [(v.check, v.code, v.sequence) for v in report.violations] == [("oracle_export", "missing_on_chain", 5)]
    assert "has not anchored it" in report.violations[0].message


def test_an_altered_local_log_fails_the_match(tmp_path, consortium, members, published, samr_oracle, capsys):
    for i in (10, 11, 12):
        _query(samr_oracle, members, published, i)
    assert samr_oracle.oracle.batcher.anchor_once(force=True)
    outbox = samr_oracle.oracle.config.outbox
    # the oracle's log is altered after the fact: a hash rewritten, a record deleted, a record invented
    db = sqlite3.connect(outbox)
    with db:
        db.execute("UPDATE records SET response_hash = ? WHERE sequence = 1", (os.urandom(32),))
        db.execute("DELETE FROM records WHERE sequence = 2")
        db.execute("INSERT INTO records SELECT 9, grant_id, requester, dataset_id, dataset_version, outcome, reason,"
                   " checked_at_block, request_hash, response_hash, request_salt, response_salt, created_at, anchored_tx,"
                   " anchored_block FROM records WHERE sequence = 3")
    db.close()
    path = tmp_path / "samr.jsonl"
    assert main(["--json", "oracle", "export", "--outbox", str(outbox), "--out", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 3
    report = _verify(tmp_path, consortium, path)
    found = [(v.code, v.sequence) for v in report.violations]
    assert found == [("record_mismatch", 1), ("missing_on_chain", 9), ("unknown_to_oracle", 2)]
    mismatch = report.violations[0]
    assert "response_hash" in mismatch.message and mismatch.tx_hash and mismatch.block
    assert "the oracle says it was anchored in block" in report.violations[1].message
    assert report.check("oracle_export").checked == 4 and report.check("oracle_export").passed == 1
    assert all(v.check == "oracle_export" for v in report.violations)  # the chain itself is intact
    assert Outcome.SERVED.name.lower() in report.violations[1].message


def test_oracle_export_from_its_config_and_bad_input(tmp_path, consortium, members, published, samr_oracle, capsys):
    _query(samr_oracle, members, published, 20)
    config = tmp_path / "samr.toml"
    config.write_text(f'''rpc_url = "{consortium.chain.url}"
department = "SAMR"
key_file = "unused.json"
outbox = "{samr_oracle.oracle.config.outbox}"
[datasets.{published.companies}]
base_url = "http://127.0.0.1:9"
path = "/companies"
params = ["company_id"]
''')
    path = tmp_path / "from-config.jsonl"
    assert main(["oracle", "export", "--config", str(config), "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "exported 1 record(s)" in out and "1 pending" in out
    assert OracleExport.read(path).records[0].anchored_block is None
    assert main(["oracle", "export", "--outbox", str(tmp_path / "nope.sqlite"), "--out", str(tmp_path / "x.jsonl")]) == 1
    assert "no outbox at" in capsys.readouterr().err
    config.write_text("department = 'SAMR'\n")  # no rpc_url, no key_file...
    assert main(["oracle", "export", "--config", str(config), "--out", str(path)]) == 1
    assert "rpc_url" in capsys.readouterr().err
