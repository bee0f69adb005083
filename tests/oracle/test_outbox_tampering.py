"""Issue 15's attack on records waiting in the outbox, for real: the oracle runs as a process
(``govshare oracle serve``), answers, is stopped, and its outbox file is edited with sqlite3 (a SERVED
record rewritten as DENIED, the newest one deleted). The restarted oracle refuses to start. And when
an oracle skips that check (the records anchored through the lower-level ``AuditLogClient`` API, as a
modified oracle would), the requesters' saved receipts prove every mismatch to an auditor running
``govshare audit verify --receipts DIR``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cli.main import main
from ledger.contracts.audit_log import ZERO_HASH, AuditEntry, OracleReason, Outcome, chain_step, record_id
from oracle.outbox import Outbox
from protocol.receipt import Receipt
from requester.client import save_receipt
from tests.oracle.test_crash_safety import setup  # noqa: F401  (the real oracle process and its requester)


def tamper(outbox_path: Path) -> None:
    """With the oracle stopped: record 2 (served) rewritten as a denial, the newest record deleted."""
    db = sqlite3.connect(outbox_path)
    (last,) = db.execute("SELECT MAX(sequence) FROM records").fetchone()
    db.execute("UPDATE records SET outcome = ?, reason = ?, response_hash = zeroblob(32) WHERE sequence = 2",
               (int(Outcome.DENIED), int(OracleReason.SOURCE_UNAVAILABLE)))
    db.execute("DELETE FROM records WHERE sequence = ?", (last,))
    db.execute("DELETE FROM nonces WHERE sequence = ?", (last,))
    db.commit()
    db.close()


def test_the_oracle_refuses_to_start_on_an_outbox_edited_while_it_was_stopped(setup) -> None:  # noqa: F811
    setup.write_config(batch_max_age_seconds=3600)  # nothing is anchored before the stop
    setup.oracle.start()
    for i in range(3):
        setup.serve(60 + i)
    setup.oracle.kill()
    assert setup.last_sequence() == 0
    tamper(setup.outbox_path)

    with pytest.raises(AssertionError, match="oracle exited with 1") as refused:
        setup.oracle.start()
    log = setup.oracle.log_path.read_text()
    assert "error: outbox" in log and "records 3..3 were removed" in log, log[-2000:]
    assert setup.last_sequence() == 0  # nothing of the edited outbox reached the chain
    assert "Traceback" not in str(refused.value)


def test_receipts_prove_what_an_oracle_skipping_the_check_anchored(setup, tmp_path: Path, capsys) -> None:  # noqa: F811
    setup.write_config(batch_max_age_seconds=3600)
    setup.oracle.start()
    for i in range(4):
        setup.serve(70 + i)
    setup.oracle.kill()
    receipts_dir = tmp_path / "receipts"
    for receipt in setup.receipts:
        save_receipt(receipt, receipts_dir)
    tamper(setup.outbox_path)

    # An oracle without the start-up check anchors the edited outbox as it stands, and reuses the
    # deleted record's sequence for the next access.
    outbox = Outbox(setup.outbox_path)
    entries = [r.entry for r in outbox.unanchored(100)]
    outbox.close()
    assert len(entries) == 3 and entries[1].outcome == Outcome.DENIED
    newcomer = AuditEntry(0, setup.members.tax.operator.address, setup.published.companies, 0, Outcome.DENIED,
                          int(OracleReason.MALFORMED_REQUEST), entries[0].checked_at_block, b"\x77" * 32, ZERO_HASH)
    setup.consortium.audit_log.append(setup.members.samr.oracle, 1, [*entries, newcomer])
    assert setup.last_sequence() == 4

    manifest = str(setup.consortium.deployment.save(tmp_path / "deployments"))
    chain = ["--rpc", setup.consortium.chain.url, "--manifest", manifest]
    code = main(["audit", "verify", *chain, "--json", "--receipts", str(receipts_dir)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    found = {v["sequence"]: v["code"] for v in report["violations"] if v["check"] == "receipts"}
    assert found == {2: "receipt_record_altered", 3: "receipt_head_mismatch", 4: "receipt_sequence_reused"}, report
    receipts_check = report["checks"]["receipts"]
    assert (receipts_check["checked"], receipts_check["passed"]) == (4, 1)
    altered = next(v for v in report["violations"] if v["sequence"] == 2)
    assert "outcome SERVED in the receipt, DENIED on chain" in altered["message"]
    # the trail itself is consistent (the contract chained what it was given): only receipts show it
    assert {v["check"] for v in report["violations"]} == {"receipts"}

    # receipts of an untouched record pass, and a forged one is called out
    only_first = tmp_path / "first"
    save_receipt(setup.receipts[0], only_first)
    assert main(["audit", "verify", *chain, "--receipts", str(only_first)]) == 0
    capsys.readouterr()
    forged = {**setup.receipts[0], "outcome": int(Outcome.DENIED)}
    (only_first / "forged.json").write_text(json.dumps(forged))
    assert main(["audit", "verify", *chain, "--json", "--receipts", str(only_first)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [v["code"] for v in report["violations"]] == ["receipt_not_from_oracle"]

    # a receipt the oracle signed for a sequence the chain never got (here made with the oracle's test key)
    (only_first / "forged.json").unlink()
    last = Receipt.from_dict(setup.receipts[-1])
    entry = last.entry()
    rid = record_id(last.oracle, 5)
    body = {**last.body(), "record_id": hex(rid), "sequence": 5, "previous_head": last.chain_head,
            "chain_head": "0x" + chain_step(bytes.fromhex(last.chain_head[2:]), rid, entry).hex()}
    save_receipt(Receipt.signed(setup.members.samr.oracle, **body).as_dict(), only_first)
    assert main(["audit", "verify", *chain, "--json", "--receipts", str(only_first)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(v["code"], v["sequence"]) for v in report["violations"]] == [("receipt_not_anchored", 5)]
