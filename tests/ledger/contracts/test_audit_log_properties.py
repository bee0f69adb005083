"""Property-based tests (hypothesis) of the audit log's sequences and hash chains, on a real chain.

For random histories (two oracles interleaving random batches of served, denied and failed records,
with appends at a wrong first sequence, gaps and overlaps, mixed in), AuditLog.appendRecords:

* refuses every wrong first sequence with AuditLogSequenceMismatch(oracle, expected, given), and
  the refusal changes nothing;
* leaves each oracle's last sequence at the number of records it appended and its head where
  Python's ``recompute_head`` says (the contract and ``ledger.contracts.audit_log`` agree);
* emits the records so that ``verify_hash_chain`` accepts each oracle's trail as read back, and
  rejects it with its first record dropped (a gap), its last dropped, or two records' contents swapped.

And without a chain: Python's ``chain_step`` equals the contract's ``chainStep`` for random entries.
Every example starts from the same chain state (ganache snapshot). Profiles and example counts:
tests/support/properties.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.chain import Chain
from ledger.contracts.audit_log import (
    ZERO_HASH,
    AuditEntry,
    HashChainMismatch,
    Outcome,
    recompute_head,
    record_id,
    verify_hash_chain,
)
from ledger.deployment import Consortium
from ledger.errors import ContractRevert
from tests.support.audit_trail import Trail, build_trail
from tests.support.properties import examples

outcomes = st.sampled_from([Outcome.SERVED, Outcome.DENIED, Outcome.SOURCE_FAILURE])
# a step: ("append", oracle 0|1, outcomes of the batch) or ("wrong", oracle 0|1, offset from the next sequence)
steps = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 1), st.lists(outcomes, min_size=1, max_size=6)),
    st.tuples(st.just("wrong"), st.integers(0, 1), st.integers(-3, 3).filter(bool)),
)


@pytest.fixture
def trail(consortium, members) -> Trail:
    return build_trail(consortium, members)


def test_sequences_and_hash_chains_under_random_batches_and_gaps(trail: Trail, ganache) -> None:
    oracles = [trail.members.samr.oracle, trail.members.psb.oracle]
    start_block = trail.consortium.chain.block_number() + 1
    snapshot = [ganache.rpc("evm_snapshot")]

    @settings(max_examples=examples(10))
    @given(st.lists(steps, min_size=1, max_size=8))
    def history(plan: list[tuple]) -> None:
        assert ganache.rpc("evm_revert", [snapshot[0]]) is True
        snapshot[0] = ganache.rpc("evm_snapshot")
        # a new client after the revert: Chain keeps each sender's next nonce, which the revert took back
        fresh = replace(trail, consortium=Consortium(Chain(ganache.url), trail.consortium.deployment, trail.consortium.compilation))
        log = fresh.consortium.audit_log
        entry_for = [fresh.entry, fresh.resident_entry]
        appended: list[list[AuditEntry]] = [[], []]
        for kind, who, arg in plan:
            signer = oracles[who]
            state = log.oracle_state(signer.address)
            assert state.last_sequence == len(appended[who])
            if kind == "append":
                entries = [entry_for[who](o) for o in arg]
                log.append(signer, state.last_sequence + 1, entries)
                appended[who].extend(entries)
            else:
                given_seq = state.last_sequence + 1 + arg
                if given_seq < 0:
                    continue
                with pytest.raises(ContractRevert) as refused:
                    log.append(signer, given_seq, [entry_for[who](Outcome.DENIED)])
                assert (refused.value.name, refused.value.args) == (
                    "AuditLogSequenceMismatch", {"oracle": signer.address, "expected": state.last_sequence + 1, "given": given_seq})
                assert log.oracle_state(signer.address) == state
        records = list(log.records(start_block))
        for who, signer in enumerate(oracles):
            state = log.oracle_state(signer.address)
            assert state.last_sequence == len(appended[who])
            assert state.head == recompute_head(signer.address, appended[who])
            mine = [r for r in records if r.oracle == signer.address]
            assert [r.entry for r in mine] == appended[who]
            verify_hash_chain(mine, state.head)
            if len(mine) >= 2:
                with pytest.raises(ValueError, match="sequence gap"):
                    verify_hash_chain(mine[1:], state.head)  # the first record dropped
                with pytest.raises(HashChainMismatch):
                    verify_hash_chain(mine[:-1], state.head)  # the last record dropped
                if mine[0].entry != mine[1].entry:
                    swapped = [replace(mine[0], entry=mine[1].entry), replace(mine[1], entry=mine[0].entry), *mine[2:]]
                    with pytest.raises(HashChainMismatch):
                        verify_hash_chain(swapped, state.head)

    history()


entries = st.builds(
    AuditEntry,
    grant_id=st.integers(0, 2**64 - 1),
    requester=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    dataset_id=st.integers(0, 2**64 - 1),
    dataset_version=st.integers(0, 2**32 - 1),
    outcome=outcomes,
    reason=st.integers(0, 255),
    checked_at_block=st.integers(0, 2**64 - 1),
    request_hash=st.binary(min_size=32, max_size=32),
    response_hash=st.binary(min_size=32, max_size=32),
)


def test_chain_step_equals_the_contracts(consortium) -> None:
    log = consortium.audit_log

    @settings(max_examples=examples(25))
    @given(st.binary(min_size=32, max_size=32) | st.just(ZERO_HASH), st.binary(min_size=20, max_size=20),
           st.integers(1, 2**64 - 1), entries)
    def step(head: bytes, oracle: bytes, sequence: int, entry: AuditEntry) -> None:
        rid = record_id("0x" + oracle.hex(), sequence)
        assert recompute_head("0x" + oracle.hex(), [entry], start=head, first_sequence=sequence) == \
            log.chain_step_on_chain(head, rid, entry)

    step()
