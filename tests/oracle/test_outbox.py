"""The oracle's outbox on a real SQLite file: what is written together stays together, quotas are
reserved atomically, and the batcher's view of the backlog follows every write."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ledger.contracts.audit_log import AuditEntry, Outcome
from oracle.errors import NonceReplayed, QuotaUsedUp
from oracle.outbox import Outbox
from oracle.outbox_file import OutboxMismatch, RecordWrite

REQUESTER = "0x" + "ab" * 20
SEAL_KEY = b"test seal key, not a secret".ljust(32, b".")
IDENTITY = {"oracle": "0x" + "01" * 20, "chain_id": "1337", "audit_log": "0x" + "02" * 20}


def entry(grant: int = 7, outcome: Outcome = Outcome.SERVED) -> AuditEntry:
    return AuditEntry(grant, REQUESTER, 3, 1, outcome, 0, 100, b"\x11" * 32, b"\x22" * 32)


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.sqlite")
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    yield box
    box.close()


def test_a_failure_while_keeping_an_on_chain_answer_writes_nothing(outbox: Outbox) -> None:
    def broken(sequence: int) -> tuple[int, str, bytes]:
        raise RuntimeError("the process died here")

    with pytest.raises(RuntimeError):
        outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, nonce=(REQUESTER, "request:5"), keep_result=broken)
    assert outbox.get(1) is None and outbox.chain_requests.result(5) is None and outbox.pending_count() == 0
    # neither the sequence nor the nonce was consumed: the request is answered afresh
    sequence = outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, nonce=(REQUESTER, "request:5"),
                             keep_result=lambda seq: (5, REQUESTER, b"answer %d" % seq))
    assert sequence == 1 and outbox.chain_requests.result(5) == (REQUESTER, 1, b"answer 1", None)
    with pytest.raises(NonceReplayed):
        outbox.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "request:5"))


def test_a_record_and_its_nonce_are_written_by_one_statement_or_not_at_all(outbox: Outbox) -> None:
    import sqlite3

    assert outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, nonce=(REQUESTER, "7")) == 1
    with pytest.raises(NonceReplayed):
        outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, nonce=(REQUESTER, "7"))
    assert outbox.pending_count() == 1 and outbox.get(2) is None
    # a record that cannot be written (its sequence is taken: another writer) leaves its nonce unused
    other = sqlite3.connect(outbox.path)
    other.execute("INSERT INTO records (sequence, grant_id, requester, dataset_id, dataset_version, outcome, reason,"
                  " checked_at_block, request_hash, response_hash, created_at) VALUES (2, 7, ?, 3, 1, 1, 0, 100, x'00', x'00', 0)",
                  (REQUESTER,))
    other.commit()
    with pytest.raises(OutboxMismatch):
        outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, nonce=(REQUESTER, "8"))
    nonces = other.execute("SELECT requester, nonce, sequence FROM nonces ORDER BY sequence").fetchall()
    other.close()
    assert nonces == [(REQUESTER, "7", 1)]


def test_quota_room_counts_waiting_records_and_those_anchored_after_the_check(outbox: Outbox) -> None:
    for _ in range(2):
        outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, quota_room=3, checked_at_block=100)
    outbox.record(entry(outcome=Outcome.DENIED), request_salt=b"s" * 32, response_salt=None, quota_room=3, checked_at_block=100)
    outbox.record(entry(grant=8), request_salt=b"s" * 32, response_salt=b"r" * 32, quota_room=1, checked_at_block=100)
    assert outbox.pending_served(7) == 2 and outbox.pending_served(8) == 1
    outbox.mark_anchored(1, 4, "0xabc", 101)  # on chain in block 101: a check at block 100 does not count them
    assert outbox.pending_served(7) == 0 and outbox.pending_served(7, 100) == 2 and outbox.pending_served(7, 101) == 0
    outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, quota_room=3, checked_at_block=100)
    with pytest.raises(QuotaUsedUp):
        outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, quota_room=3, checked_at_block=100)
    # a denial is always recorded, whatever the quota
    outbox.record(entry(outcome=Outcome.DENIED), request_salt=b"s" * 32, response_salt=None, quota_room=0, checked_at_block=100)
    # checked at block 101 the chain's count includes the anchored two, so the room given is smaller
    outbox.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, quota_room=2, checked_at_block=101)
    assert outbox.pending_served(7) == 2


def test_a_group_commit_refuses_only_its_replays_and_overruns(outbox: Outbox) -> None:
    """record_many writes a group in one transaction; a nonce used before or twice within the group,
    and a served access past its quota (counting the group's own), are refused alone: nothing is
    written for them and they take no sequence; the bookkeeping matches the file."""
    outbox.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "used"))
    results = outbox.record_many([
        RecordWrite(entry(), b"a" * 32, b"b" * 32, (REQUESTER, "n1"), quota_room=3, checked_at_block=100),
        RecordWrite(entry(), b"a" * 32, b"b" * 32, (REQUESTER, "used"), quota_room=3, checked_at_block=100),
        RecordWrite(entry(), b"a" * 32, b"b" * 32, (REQUESTER, "n2"), quota_room=3, checked_at_block=100),
        RecordWrite(entry(), b"a" * 32, b"b" * 32, (REQUESTER, "n2"), quota_room=9, checked_at_block=100),
        RecordWrite(entry(), b"a" * 32, b"b" * 32, (REQUESTER, "n3"), quota_room=3, checked_at_block=100),
        RecordWrite(entry(outcome=Outcome.DENIED), b"a" * 32, None, None),
    ])
    assert [type(r) for r in results] == [int, NonceReplayed, int, NonceReplayed, QuotaUsedUp, int]
    assert results[0] == 2 and results[2] == 3 and results[5] == 4  # contiguous after the lone record
    assert outbox.backlog()[0] == 4 and outbox.pending_served(7) == 3
    assert [r.sequence for r in outbox.all_records()] == [1, 2, 3, 4]
    assert outbox.nonce_used(REQUESTER, "n1") and outbox.nonce_used(REQUESTER, "n2") and not outbox.nonce_used(REQUESTER, "n3")
    assert outbox.record(entry(), request_salt=b"s" * 32, response_salt=None) == 5


def test_the_backlog_follows_writes_and_anchoring_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    assert box.backlog() == (0, None, False)
    for _ in range(3):
        box.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32)
    count, oldest, waiting = box.backlog()
    assert count == 3 and oldest == box.get(1).created_at and not waiting
    box.mark_anchored(1, 2, "0xabc", 9)
    assert box.backlog()[:2] == (1, box.get(3).created_at)
    box.close()
    reopened = Outbox(path)
    try:
        assert reopened.backlog()[:2] == (1, reopened.get(3).created_at) and reopened.pending_served(7) == 1
    finally:
        reopened.close()


def test_the_writers_own_checkpoints_keep_the_wal_small(tmp_path: Path, monkeypatch) -> None:
    """With nothing else checkpointing, the writer's commits copy the WAL back every
    WRITER_CHECKPOINT_PAGES pages and the WAL is rewound; without them it holds every write."""
    import oracle.outbox as outbox_module

    def wal_after(path: Path, writer_pages: int) -> int:
        monkeypatch.setattr(outbox_module, "WRITER_CHECKPOINT_PAGES", writer_pages)
        box = Outbox(path)
        box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
        try:
            for n in range(1, 2001):
                box.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32, nonce=(REQUESTER, str(n)))
            return Path(f"{path}-wal").stat().st_size
        finally:
            box.close()

    unbounded = wal_after(tmp_path / "never.sqlite", 0)
    bounded = wal_after(tmp_path / "checkpointed.sqlite", 100)
    assert bounded * 5 < unbounded, (bounded, unbounded)
    assert bounded < 2 * 100 * 4096, bounded


def test_anchoring_bookkeeping_matches_the_file_while_answers_are_written(tmp_path: Path) -> None:
    """mark_anchored reads what it needs outside the answering path's lock; the in-memory backlog
    and quota counts must still equal what the file says, with answers written all the while and
    two threads marking the same batches (each batch is counted once)."""
    import sqlite3
    import threading

    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    writing = threading.Event()
    writing.set()

    def answers(grant: int) -> None:
        for n in range(300):
            outcome = Outcome.DENIED if n % 4 == 0 else Outcome.SERVED
            box.record(entry(grant, outcome), request_salt=b"s" * 32, response_salt=None)

    def anchoring() -> None:
        while writing.is_set() or box.pending_count() > 40:
            batch = box.unanchored(25)
            if len(batch) > 1:
                box.mark_anchored(batch[0].sequence, batch[-2].sequence, "0xabc", batch[-2].sequence)  # leave one waiting

    def truth() -> tuple[int, float | None, int, int]:
        db = sqlite3.connect(path)
        try:
            count, oldest = db.execute("SELECT COUNT(*), MIN(created_at) FROM records WHERE anchored_block IS NULL").fetchone()
            served = dict(db.execute("SELECT grant_id, COUNT(*) FROM records WHERE anchored_block IS NULL AND outcome = ?"
                                     " GROUP BY grant_id", (int(Outcome.SERVED),)).fetchall())
            return count, oldest, served.get(7, 0), served.get(8, 0)
        finally:
            db.close()

    try:
        writers = [threading.Thread(target=answers, args=(g,)) for g in (7, 8)]
        markers = [threading.Thread(target=anchoring) for _ in range(2)]
        for t in writers + markers:
            t.start()
        for t in writers:
            t.join()
        writing.clear()
        for t in markers:
            t.join()
        count, oldest, served7, served8 = truth()
        assert 0 < count <= 40
        assert box.backlog()[:2] == (count, oldest)
        assert (box.pending_served(7), box.pending_served(8)) == (served7, served8)
        last = box.unanchored(1000)[-1].sequence
        box.mark_anchored(1, last, "0xdef", last)
        assert box.backlog() == (0, None, False) and truth() == (0, None, 0, 0)
        assert box.pending_served(7) == box.pending_served(8) == 0
    finally:
        box.close()


@pytest.mark.parametrize("side", ["thread", "process"])
def test_the_backlog_past_the_batches_in_flight(tmp_path: Path, side: str) -> None:
    """With batches in flight up to sequence ``after``, the batcher asks for the backlog and the
    records past them; both anchoring sides (the outbox itself and the anchoring process's
    ``OutboxFile``) answer alike, and a strict answer's wait counts only past ``after``."""
    import socket
    from multiprocessing.connection import Connection

    from oracle.anchoring import OutboxFile

    box = Outbox(tmp_path / "outbox.sqlite")
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    ours, theirs = socket.socketpair()
    side_of = box if side == "thread" else OutboxFile(box.path, Connection(ours.detach()))
    try:
        for _ in range(5):
            box.record(entry(), request_salt=b"s" * 32, response_salt=b"r" * 32)
        created = [box.get(n).created_at for n in range(1, 6)]
        assert side_of.backlog() == (5, created[0], False)
        assert side_of.backlog(3) == (2, created[3], False)
        assert side_of.backlog(5) == (0, None, False)
        assert [r.sequence for r in side_of.unanchored(10, 3)] == [4, 5]
        assert [r.sequence for r in side_of.unanchored(1, 3)] == [4]
        side_of.mark_anchored(1, 2, "0xabc", 9)
        if side == "process":  # the anchoring process tells the answering one, which marks them
            message = Connection(theirs.detach()).recv()
            assert message == ("anchored", 1, 2, "0xabc", 9)
            box.mark_anchored(1, 2, "0xabc", 9)
        assert side_of.backlog(1) == (3, created[2], False)  # in flight through 1, anchored through 2
        assert side_of.backlog(3) == (2, created[3], False)
        assert [r.sequence for r in side_of.unanchored(10)] == [3, 4, 5]
        assert [r.sequence for r in side_of.unanchored(10, 4)] == [5]
        # a strict answer waiting for record 4: due while only 3 is in flight, not once 4 is
        if side == "thread":
            assert box.when_anchored(4, lambda: None) is False
        else:
            side_of._awaited = 4
        assert side_of.backlog(3)[2] is True and side_of.backlog(4)[2] is False
    finally:
        box.close()


@pytest.mark.parametrize("side", ["thread", "process"])
def test_checkpoints_keep_the_wal_bounded_while_answers_are_written_all_the_time(tmp_path: Path, monkeypatch, side) -> None:
    """Answers are written without a pause while the anchoring side checkpoints (as the batcher does
    after each batch): its PASSIVE checkpoints alone never let SQLite rewind the WAL, so it grows with
    every write; the writer's own checkpoints (every WRITER_CHECKPOINT_PAGES pages) keep it small.
    Both anchoring sides are shown: the outbox's own (``anchoring = "thread"``) and the anchoring
    process's ``OutboxFile``."""
    import os
    import socket
    import threading
    import time
    from multiprocessing.connection import Connection

    import oracle.outbox as outbox_module
    from oracle.anchoring import OutboxFile

    def largest_wal(path: Path, writer_pages: int) -> int:
        monkeypatch.setattr(outbox_module, "WRITER_CHECKPOINT_PAGES", writer_pages)
        box = Outbox(path)
        box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
        ours, theirs = socket.socketpair()
        checkpointer = box if side == "thread" else OutboxFile(path, Connection(ours.detach()))
        stop = threading.Event()

        def answer() -> None:
            while not stop.is_set():
                box.record(entry(), request_salt=os.urandom(16), response_salt=os.urandom(16),
                           nonce=(REQUESTER, os.urandom(8).hex()))

        writer = threading.Thread(target=answer)
        writer.start()
        largest = 0
        try:
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                checkpointer.checkpoint()
                largest = max(largest, Path(f"{path}-wal").stat().st_size)
                time.sleep(0.05)
        finally:
            stop.set()
            writer.join()
            box.close()
            theirs.close()
        return largest

    writer_pages = outbox_module.WRITER_CHECKPOINT_PAGES
    passive_only = largest_wal(tmp_path / "passive.sqlite", writer_pages=0)
    with_writer = largest_wal(tmp_path / "writer.sqlite", writer_pages=writer_pages)
    print(f"{side}: largest WAL with the anchoring side's checkpoints only {passive_only:,} bytes, with the writer's too {with_writer:,}")
    assert with_writer * 3 < passive_only, (with_writer, passive_only)
    assert with_writer < 3 * writer_pages * 4096, with_writer


def test_used_nonces_are_pruned_past_their_deadline_and_stay_pruned(tmp_path: Path) -> None:
    now = time.time()
    box = Outbox(tmp_path / "outbox.sqlite", nonce_grace_seconds=60)
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    box.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "1"), nonce_expires_at=now + 100)
    box.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "2"), nonce_expires_at=now + 200)
    box.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "3"), nonce_expires_at=now + 1_000)
    box.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "request:9"))  # on-chain: no deadline
    assert box.prune_nonces(now) == 0  # none is past its deadline yet
    assert box.prune_nonces(now + 170) == 1  # only nonce 1 is past its deadline by more than the grace
    assert [box.nonce_used(REQUESTER, n) for n in ("1", "2", "3", "request:9")] == [False, True, True, True]
    assert box.prune_nonces(now + 2_000) == 2 and box.nonce_count() == 1  # the on-chain request's is kept for good
    box.close()
    reopened = Outbox(tmp_path / "outbox.sqlite", nonce_grace_seconds=60)  # the pruning was durable
    reopened.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    assert reopened.nonce_count() == 1 and reopened.nonce_used(REQUESTER, "request:9")
    assert [r.sequence for r in reopened.all_records()] == [1, 2, 3, 4]  # records are never pruned
    reopened.close()


def test_the_writer_prunes_expired_nonces_by_itself(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite", nonce_grace_seconds=0)
    box.bind(IDENTITY, 0, seal_key=SEAL_KEY)
    box.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "1"), nonce_expires_at=time.time() - 1)
    box.close()
    box = Outbox(tmp_path / "outbox.sqlite", nonce_grace_seconds=0)  # an oracle restarted: its first write prunes
    box.bind(IDENTITY, 1, seal_key=SEAL_KEY)
    box.record_many([RecordWrite(entry(), b"s" * 32, None, (REQUESTER, "2"), nonce_expires_at=time.time() + 60)])
    assert not box.nonce_used(REQUESTER, "1") and box.nonce_used(REQUESTER, "2")
    box.close()


def test_an_outbox_from_before_nonces_expired_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "outbox.sqlite")
    old.executescript("""
        CREATE TABLE nonces (requester TEXT NOT NULL, nonce TEXT NOT NULL, sequence INTEGER NOT NULL,
                             PRIMARY KEY (requester, nonce)) WITHOUT ROWID;
        CREATE VIEW records_with_nonce AS SELECT 1 AS nonce_requester, 2 AS nonce;
        CREATE TRIGGER record_with_nonce INSTEAD OF INSERT ON records_with_nonce BEGIN
            INSERT INTO nonces VALUES (NEW.nonce_requester, NEW.nonce, 0);
        END;""")
    old.execute("INSERT INTO nonces VALUES (?, '5', 1)", (REQUESTER,))
    old.commit()
    old.close()
    box = Outbox(tmp_path / "outbox.sqlite")
    box.bind(IDENTITY, 1, seal_key=SEAL_KEY)
    with pytest.raises(NonceReplayed):  # a nonce used before the upgrade is still refused (and never pruned)
        box.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "5"))
    assert box.record(entry(), request_salt=b"s" * 32, response_salt=None, nonce=(REQUESTER, "6"),
                      nonce_expires_at=time.time() - 3_600) == 2
    assert box.prune_nonces() == 1 and box.nonce_used(REQUESTER, "5")
    box.close()
