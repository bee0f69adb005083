"""The outbox's sealed head on a real SQLite file: each record's hash-chain head (the one its receipt
commits to) is computed as it is written, and re-opening the file refuses records not on chain that
were altered, removed or added behind the oracle's back (edited here with sqlite3, as an attacker
with the file would). The real-process version of the attack is in test_outbox_tampering.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ledger.contracts.audit_log import (
    ZERO_HASH,
    AuditEntry,
    OracleReason,
    Outcome,
    chain_step,
    recompute_head,
    record_id,
)
from oracle.outbox import Outbox
from oracle.outbox_seal import OutboxTampered

REQUESTER = "0x" + "ab" * 20
ORACLE = "0x" + "01" * 20
IDENTITY = {"oracle": ORACLE, "chain_id": "1337", "audit_log": "0x" + "02" * 20}
SEAL_KEY = b"test seal key, not a secret".ljust(32, b".")


def served(n: int) -> AuditEntry:
    return AuditEntry(7, REQUESTER, 3, 1, Outcome.SERVED, 0, 100, bytes([n]) * 32, b"\x22" * 32)


def written(path: Path, count: int) -> list[AuditEntry]:
    """An outbox with ``count`` served records, closed as a stopped oracle leaves it."""
    box = Outbox(path)
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    entries = [served(n) for n in range(1, count + 1)]
    for n, e in enumerate(entries, start=1):
        assert box.record(e, request_salt=b"s" * 32, response_salt=b"r" * 32, nonce=(REQUESTER, str(n))) == n
    box.close()
    return entries


def reopen(path: Path, chain_last: int = 0, chain_head: bytes = ZERO_HASH, key: bytes = SEAL_KEY) -> Outbox:
    box = Outbox(path)
    try:
        box.bind(IDENTITY, chain_last, chain_head, seal_key=key)
    except BaseException:
        box.close()
        raise
    return box


def edit(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


def test_each_record_gets_the_head_its_receipt_commits_to(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    heads = []
    for n in range(1, 4):
        sequence = box.record(served(n), request_salt=b"s" * 32, response_salt=b"r" * 32)
        heads.append(box.take_heads(sequence))
    box.close()
    expected = ZERO_HASH
    for n, (before, after) in enumerate(heads, start=1):
        assert before == expected
        expected = chain_step(expected, record_id(ORACLE, n), served(n))
        assert after == expected
    assert expected == recompute_head(ORACLE, [served(n) for n in range(1, 4)])


def test_an_untouched_outbox_opens_and_numbers_on(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    entries = written(path, 3)
    box = reopen(path)
    assert box.record(served(4), request_salt=b"s" * 32, response_salt=None) == 4
    box.close()
    # part of it on chain already: the chain's head is the start of the recomputation
    box = reopen(path, 2, recompute_head(ORACLE, entries[:2]))
    box.close()
    # all of it on chain, and the file is behind (an older copy): numbering continues after the chain
    box = reopen(path, 6, b"\x99" * 32)
    assert box.record(served(7), request_salt=b"s" * 32, response_salt=None) == 7
    box.close()


@pytest.mark.parametrize("attack, message", [
    (["UPDATE records SET outcome = 1, reason = %d, response_hash = zeroblob(32) WHERE sequence = 2" % OracleReason.WITHHELD],
     "no longer hash to the head"),
    (["DELETE FROM records WHERE sequence = 3", "DELETE FROM nonces WHERE sequence = 3"], "records 3..3 were removed"),
    (["DELETE FROM records WHERE sequence = 2"], "record 2 is missing"),
    (["INSERT INTO records SELECT 4, grant_id, requester, dataset_id, dataset_version, outcome, reason, checked_at_block,"
      " request_hash, response_hash, request_salt, response_salt, created_at, NULL, NULL FROM records WHERE sequence = 3"],
     "records 4..4 were added"),
    (["UPDATE sealed_head SET sequence = 2"], "not sealed by this oracle's key"),
    (["DELETE FROM sealed_head"], "no sealed head"),
], ids=["served-rewritten-as-denied", "last-deleted", "middle-deleted", "one-added", "seal-edited", "seal-deleted"])
def test_records_changed_while_the_oracle_was_stopped_are_refused(tmp_path: Path, attack: list[str], message: str) -> None:
    path = tmp_path / "o.sqlite"
    written(path, 3)
    edit(path, *attack)
    with pytest.raises(OutboxTampered, match=message):
        reopen(path)


def test_the_seal_needs_the_oracles_key(tmp_path: Path) -> None:
    """Recomputing the head after an edit and writing it back does not help without the key."""
    path = tmp_path / "o.sqlite"
    entries = written(path, 2)
    forged = [entries[0], AuditEntry(7, REQUESTER, 3, 1, Outcome.DENIED, 5, 100, entries[1].request_hash, ZERO_HASH)]
    edit(path, "UPDATE records SET outcome = 1, reason = 5, response_hash = zeroblob(32) WHERE sequence = 2",
         f"UPDATE sealed_head SET head = x'{recompute_head(ORACLE, forged).hex()}'")
    with pytest.raises(OutboxTampered, match="not sealed by this oracle's key"):
        reopen(path)
    with pytest.raises(OutboxTampered):
        reopen(tmp_path / "o.sqlite", key=b"another key".ljust(32, b"."))


def test_an_edit_of_a_record_already_on_chain_does_not_stop_the_oracle(tmp_path: Path) -> None:
    """What the chain holds is the evidence (the auditor matches exports against it); the check is
    about the records the oracle has yet to anchor."""
    path = tmp_path / "o.sqlite"
    entries = written(path, 3)
    edit(path, "UPDATE records SET outcome = 1 WHERE sequence = 1")
    reopen(path, 1, recompute_head(ORACLE, entries[:1])).close()
