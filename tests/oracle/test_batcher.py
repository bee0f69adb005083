"""The batcher's pipeline on the real chain: batches go out while earlier ones still wait to be mined,
are confirmed in order, and a failure in flight is reconciled without anchoring anything twice.

The session's ganache mines every transaction at once; these tests stop its miner (``miner_stop``)
so that transactions wait in its pool as they wait for the next block on a consortium chain, and
start it again when the test says so."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from devtools.devnet import GanacheNode
from ledger.chain import Chain
from ledger.contracts.audit_log import ZERO_ADDRESS, AuditEntry, OracleReason, Outcome
from ledger.contracts.grants import AccessReason
from ledger.deployment import Consortium
from ledger.errors import ContractRevert
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


# --------------------------------------------------------------------------- the decision-age bound


def served(published, members: Members, decided: int, n: int) -> AuditEntry:
    """A record of an answer served to TAX under its grant, decided at block ``decided``."""
    return AuditEntry(published.tax_grant, members.tax.operator.address, published.companies, 1, Outcome.SERVED,
                      int(AccessReason.GRANTED), decided, bytes([n]) * 32, bytes([n + 1]) * 32)


def test_a_served_record_too_old_to_anchor_holds_anchoring_and_is_never_lost(
    tmp_path: Path, consortium: Consortium, members: Members, published, committee, ganache: GanacheNode
) -> None:
    """A served record decided more than maxDecisionAgeBlocks before the next block cannot be anchored
    as it stands (AuditLog refuses it; its receipt binds it, so it may not be changed; sequences are
    contiguous, so it may not be skipped): the batcher anchors the records before it, holds at it, says
    which record and why (``last_error``, for /v1/health), keeps it and the records after it in the
    outbox, and resumes by itself once a committee vote raises the bound."""
    oracle = members.samr.oracle
    limit = consortium.registry.max_decision_age_blocks()
    old = consortium.chain.block_number()
    ganache.rpc("evm_mine", [{"blocks": limit + 10}])
    head = consortium.chain.block_number()
    outbox = outbox_with(tmp_path, consortium, oracle.address, 0)
    for n, entry in enumerate([served(published, members, head, 1), DENIAL, served(published, members, old, 3),
                               served(published, members, head, 5)]):
        outbox.record(entry, request_salt=b"s" * 32, response_salt=None, nonce=("0x" + "cd" * 20, str(n)))
    batcher = batcher_for(consortium, outbox, oracle, max_in_flight=1,
                          decision_age_limit=consortium.registry.max_decision_age_blocks)
    batcher.max_records = 10
    assert batcher.step()  # records 1 and 2 only
    assert consortium.audit_log.oracle_state(oracle.address).last_sequence == 2
    assert not batcher.step() and not batcher.step()  # held: nothing is sent (no failed transaction either)
    assert batcher.held is not None and (batcher.held.sequence, batcher.held.decision_block, batcher.held.max_age) == (
        3, old, limit)
    assert "anchoring held at record 3" in batcher.last_error and f"maxDecisionAgeBlocks ({limit})" in batcher.last_error
    assert batcher.failures == 0 and consortium.audit_log.oracle_state(oracle.address).last_sequence == 2
    assert outbox.pending_count() == 2 and [r.entry.checked_at_block for r in outbox.all_records()][2] == old
    batcher.flush(timeout=5.0)  # a shutdown's flush gives up at once rather than spin
    assert outbox.pending_count() == 2

    consortium.registry.pass_proposal(committee[:2], consortium.registry.set_max_decision_age_blocks_call(limit * 2),
                                      "anchor SAMR's records held since the outage")
    batcher._age_checked = float("-inf")  # rather than wait DECISION_AGE_RECHECK_SECONDS
    assert batcher.step()
    assert batcher.held is None and batcher.last_error is None and outbox.pending_count() == 0
    on_chain = [r for r in consortium.audit_log.records() if r.oracle == oracle.address]
    assert [r.entry for r in on_chain] == [r.entry for r in outbox.all_records()]


def test_without_a_bound_reader_the_contract_refuses_the_record_and_nothing_is_lost(
    tmp_path: Path, consortium: Consortium, members: Members, published, ganache: GanacheNode
) -> None:
    """The contract is the arbiter: a batcher that does not look (as one whose view of the head is
    stale) sends the record, the chain refuses it by name, and the record stays in the outbox."""
    oracle = members.samr.oracle
    old = consortium.chain.block_number()
    ganache.rpc("evm_mine", [{"blocks": consortium.registry.max_decision_age_blocks() + 1}])
    outbox = outbox_with(tmp_path, consortium, oracle.address, 0)
    outbox.record(served(published, members, old, 1), request_salt=b"s" * 32, response_salt=None,
                  nonce=("0x" + "cd" * 20, "1"))
    batcher = batcher_for(consortium, outbox, oracle, max_in_flight=1)
    with pytest.raises(ContractRevert) as refused:
        batcher.step()
    assert refused.value.name == "AuditLogDecisionTooOld" and refused.value.args["sequence"] == 1
    assert outbox.pending_count() == 1 and consortium.audit_log.oracle_state(oracle.address).last_sequence == 0


def test_a_batch_never_mined_is_replaced_within_a_bounded_number_of_polls_and_anchored_once(
    tmp_path: Path, consortium: Consortium, members: Members, miner: GanacheNode
) -> None:
    """Two batches sent while the node mines nothing: once the first has waited ``stuck_after`` the
    batcher sends both again in their own places (same nonces, higher fees), long before the
    receipt timeout; the replacements are what the node mines, and each record is on chain once."""
    oracle = members.samr.oracle
    outbox = outbox_with(tmp_path, consortium, oracle.address, 4)
    batcher = batcher_for(consortium, outbox, oracle, max_in_flight=3, stuck_after=0.5)
    batcher.audit_log.chain.receipt_timeout = 600.0  # the old behaviour: held for all of this
    # past nonce 0 first: ganache 7 reads a signed nonce-0 transaction as one without a nonce when
    # the sender has another in its pool, and renumbers it (a replacement becomes a new transaction)
    batcher.audit_log.chain.send_tx(oracle, oracle.address, b"", gas=21_000)
    miner.rpc("evm_mine")
    assert batcher.step() and batcher.step()
    first = [b.tx_hash for b in batcher.in_flight]
    polls = 0
    while getattr(batcher, "replaced", 0) < 2:
        polls += 1
        assert polls <= 200, "not replaced within 200 polls (10 s of polling against a 600 s receipt timeout)"
        batcher._receipts_read = 0.0
        batcher.step()
        time.sleep(0.05)
    replaced = [b.tx_hash for b in batcher.in_flight]
    assert batcher.replaced == 2 and not set(first) & set(replaced)
    assert [b.versions[-1].nonce for b in batcher.in_flight] == [b.versions[0].nonce for b in batcher.in_flight]
    fees = [(b.versions[0].fees, b.versions[-1].fees) for b in batcher.in_flight]
    assert all(new[k] > old[k] for old, new in fees for k in old)  # the chain has fees: outbid
    miner.rpc("evm_mine")
    for _ in range(200):  # ganache saves the block a moment after it answers
        batcher._receipts_read = 0.0
        if batcher.step() and not batcher.in_flight:
            break
        time.sleep(0.05)
    assert outbox.pending_count() == 0 and batcher.in_flight == () and batcher.anchored_batches == 2
    assert {r.anchored_tx for r in outbox.all_records()} == set(replaced)  # the replacements were mined
    assert all(consortium.chain.raw_rpc("eth_getTransactionReceipt", [h]) is None for h in first)
    assert consortium.audit_log.oracle_state(oracle.address).last_sequence == 4
    assert [r.sequence for r in consortium.audit_log.records() if r.oracle == oracle.address] == [1, 2, 3, 4]


def test_what_ganache_strands_while_batches_are_mined_is_sent_again_and_anchored_once(
    tmp_path: Path, consortium: Consortium, members: Members, accounts
) -> None:
    """The devnet's hang for real: one-record batches, three consecutive nonces in flight, while
    another account transacts. ganache 7 (strict instamine) files a transaction that arrives while
    its sender's previous one is being mined among future-nonce ones and never mines it; the old
    batcher then waited out the receipt timeout. The batcher sends it again after ``stuck_after``
    and every record reaches the chain once, long before the receipt timeout."""
    oracle = members.samr.oracle
    outbox = outbox_with(tmp_path, consortium, oracle.address, 150)
    chain = Chain(consortium.chain.url, receipt_timeout=600.0)
    batcher = Batcher(outbox, Consortium(chain, consortium.deployment, consortium.compilation).audit_log, oracle,
                      max_records=1, max_age=0.0, max_in_flight=3, stuck_after=1.0)
    chain.send_call_data(oracle, oracle.address, b"", gas=21_000)  # past nonce 0 (see the test above)
    stop = threading.Event()
    other, payer = Chain(consortium.chain.url), accounts[25]

    def transact() -> None:
        while not stop.is_set():
            other.send_call_data(payer, accounts[24].address, b"", gas=21_000)

    thread = threading.Thread(target=transact)
    thread.start()
    started = time.monotonic()
    try:
        while outbox.pending_count() or batcher.in_flight:
            assert time.monotonic() - started < 120, f"{outbox.pending_count()} records left after 120 s (receipt timeout 600 s)"
            if not batcher.step():
                time.sleep(0.01)
    finally:
        stop.set()
        thread.join(30)
    assert [r.sequence for r in consortium.audit_log.records() if r.oracle == oracle.address] == list(range(1, 151))
    assert None not in anchored_blocks(outbox)
    print(f"replaced {getattr(batcher, 'replaced', 0)} transactions; {batcher.anchored_batches} batches in {time.monotonic() - started:.1f} s")


def test_a_batch_sent_on_its_own_is_replaced_too(
    tmp_path: Path, consortium: Consortium, members: Members, miner: GanacheNode
) -> None:
    """With one batch at a time (``max_in_flight=1``, and after any failure in flight) the batch is
    sent and waited for in one call: that wait replaces it as well after ``stuck_after``."""
    oracle = members.samr.oracle
    outbox = outbox_with(tmp_path, consortium, oracle.address, 2)
    batcher = batcher_for(consortium, outbox, oracle, max_in_flight=1, stuck_after=0.3)
    batcher.audit_log.chain.receipt_timeout = 600.0
    batcher.audit_log.chain.submit_call_data(oracle, oracle.address, b"", gas=21_000)  # past nonce 0 (see above)
    miner.rpc("evm_mine")
    fees: list[int] = []

    def mine_once_replaced() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(set(fees)) < 2:
            fees.extend(int(tx["maxFeePerGas"], 16) for tx in miner.rpc("txpool_content")["pending"].get(oracle.address.lower(), {}).values())
            time.sleep(0.05)
        miner.rpc("evm_mine")

    thread = threading.Thread(target=mine_once_replaced)
    thread.start()
    try:
        assert batcher.step() and batcher.in_flight == ()
    finally:
        thread.join(60)
    assert len(set(fees)) >= 2  # the batch was sent again with a higher fee before a block came
    (tx_hash,) = {r.anchored_tx for r in outbox.all_records()}
    assert int(consortium.chain.raw_rpc("eth_getTransactionByHash", [tx_hash])["maxFeePerGas"], 16) == max(fees)
    assert [r.sequence for r in consortium.audit_log.records() if r.oracle == oracle.address] == [1, 2]
