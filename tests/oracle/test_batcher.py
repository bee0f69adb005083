"""The batcher's pipeline on the real chain: batches go out while earlier ones still wait to be mined,
are confirmed in order, and a failure in flight is reconciled without anchoring anything twice.

The session's ganache mines every transaction at once; these tests stop its miner (``miner_stop``)
so that transactions wait in its pool as they wait for the next block on a consortium chain, and
start it again when the test says so."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from devtools.devnet import GanacheNode
from ledger.chain import Chain
from ledger.contracts.audit_log import ZERO_ADDRESS, AuditEntry, OracleReason, Outcome
from ledger.deployment import Consortium
from oracle.batcher import Batcher
from oracle.outbox import Outbox
from tests.conftest import Members

DENIAL = AuditEntry(0, ZERO_ADDRESS, 0, 0, Outcome.DENIED, int(OracleReason.BAD_SIGNATURE), 1, b"\x11" * 32, b"\x00" * 32)


@pytest.fixture
def miner(ganache: GanacheNode) -> Iterator[GanacheNode]:
    """The session chain with its miner stopped for the test (started again after it)."""
    ganache.rpc("miner_stop")
    try:
        yield ganache
    finally:
        ganache.rpc("miner_start")


def outbox_with(tmp_path: Path, consortium: Consortium, oracle: str, count: int) -> Outbox:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.bind({"oracle": oracle, "chain_id": str(consortium.chain.chain_id),
                 "audit_log": consortium.deployment.addresses["AuditLog"]}, 0, seal_key=b"test seal key, not a secret")
    for n in range(count):
        outbox.record(DENIAL, request_salt=b"s" * 32, response_salt=None, nonce=("0x" + "ab" * 20, str(n)))
    return outbox


def batcher_for(consortium: Consortium, outbox: Outbox, signer, **kw: object) -> Batcher:
    """A batcher on a connection of its own (its own nonce cache), driven by hand (no thread)."""
    chain = Chain(consortium.chain.url)
    return Batcher(outbox, Consortium(chain, consortium.deployment, consortium.compilation).audit_log, signer,
                   max_records=2, max_age=0.0, **kw)


def anchored_blocks(outbox: Outbox) -> list[int | None]:
    return [record.anchored_block for record in outbox.all_records()]


def test_due_batches_go_out_while_earlier_ones_wait_to_be_mined(
    tmp_path: Path, consortium: Consortium, members: Members, miner: GanacheNode
) -> None:
    oracle = members.samr.oracle
    outbox = outbox_with(tmp_path, consortium, oracle.address, 7)
    batcher = batcher_for(consortium, outbox, oracle, max_in_flight=3)
    sent = [batcher.step() for _ in range(4)]
    # three batches in flight, none mined; the fourth waits for room
    assert sent == [True, True, True, False]
    assert [(b.first, b.last) for b in batcher.in_flight] == [(1, 2), (3, 4), (5, 6)]
    assert consortium.audit_log.oracle_state(oracle.address).last_sequence == 0
    assert outbox.pending_count() == 7 and anchored_blocks(outbox) == [None] * 7

    miner.rpc("evm_mine")  # one block: the three transactions, in nonce order
    head = consortium.chain.block_number()
    batcher._receipts_read = 0.0  # read the receipts now rather than after RECEIPT_POLL_SECONDS
    assert batcher.step()  # confirms the three and sends records 7
    assert anchored_blocks(outbox) == [head] * 6 + [None]
    assert [(b.first, b.last) for b in batcher.in_flight] == [(7, 7)]
    miner.rpc("evm_mine")
    batcher._receipts_read = 0.0
    assert batcher.step()
    assert outbox.pending_count() == 0 and batcher.in_flight == () and batcher.anchored_batches == 4
    assert anchored_blocks(outbox) == [head] * 6 + [head + 1]
    assert consortium.audit_log.oracle_state(oracle.address).last_sequence == 7


def test_one_batch_in_flight_is_the_sequential_batcher(
    tmp_path: Path, consortium: Consortium, members: Members, miner: GanacheNode
) -> None:
    oracle = members.samr.oracle
    outbox = outbox_with(tmp_path, consortium, oracle.address, 4)
    batcher = batcher_for(consortium, outbox, oracle, max_in_flight=1)
    # with max_in_flight=1 a step sends a batch and waits until it is mined: mine from another thread
    stop = threading.Event()

    def mine_while_waiting() -> None:
        while not stop.wait(0.3):
            miner.rpc("evm_mine")

    thread = threading.Thread(target=mine_while_waiting)
    thread.start()
    try:
        assert batcher.step() and batcher.in_flight == ()
        assert batcher.step() and batcher.in_flight == ()
    finally:
        stop.set()
        thread.join()
    blocks = anchored_blocks(outbox)
    assert None not in blocks and blocks[0] == blocks[1] < blocks[2] == blocks[3]  # one batch per block


def test_a_batch_refused_in_flight_is_reconciled_and_nothing_is_anchored_twice(
    tmp_path: Path, consortium: Consortium, members: Members, miner: GanacheNode
) -> None:
    """Another sender with the oracle's key (a second instance, say) anchors records 1..2 first:
    the batcher's batch 1..2, sent after it, is refused (it does not start one past the chain's last
    sequence) and its batch 3..4 is accepted. The batcher forgets what it had in flight, reads the
    chain's state and marks 1..4 as anchored: each record on chain once, the outbox agreeing."""
    oracle = members.samr.oracle
    outbox = outbox_with(tmp_path, consortium, oracle.address, 4)
    batcher = batcher_for(consortium, outbox, oracle, max_in_flight=4)
    # sent through the batcher's own connection: ganache's "pending" nonce leaves out its pool, so
    # a second connection would reuse the nonce (a real node counts the pool; the point here is the
    # refused batch, not two senders' nonces)
    batcher.audit_log.submit_anchor(oracle, 1, [r.entry for r in outbox.unanchored(2)])
    assert batcher.step() and batcher.step()
    assert [(b.first, b.last) for b in batcher.in_flight] == [(1, 2), (3, 4)]
    miner.rpc("evm_mine")
    batcher._receipts_read = 0.0
    assert batcher.step()  # the refusal, reconciled
    assert batcher.in_flight == () and outbox.pending_count() == 0 and batcher.anchored_batches == 0
    assert consortium.audit_log.oracle_state(oracle.address).last_sequence == 4
    on_chain = [r.sequence for r in consortium.audit_log.records() if r.oracle == oracle.address]
    assert on_chain == [1, 2, 3, 4]
    # and the pipeline goes on from there: the next batch is sent on its own, then pipelined again
    outbox.record(DENIAL, request_salt=b"s" * 32, response_salt=None, nonce=("0x" + "ab" * 20, "late"))
    miner.rpc("miner_start")
    assert batcher.step() and batcher.in_flight == ()
    assert consortium.audit_log.oracle_state(oracle.address).last_sequence == 5
