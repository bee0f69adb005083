"""AuditLog on a real chain: packed batches, per-oracle sequences and hash chains, who may write,
malformed input (assembly fast path and Solidity slow path), dataset/grant rules, quota counting,
and reading the log back in bounded block ranges.

Every append is checked against a Python model of the contract: the exact list of events of the
transaction (AuditRecordAppended per record, GrantUsed per run of served records of one grant,
AuditBatchAppended last), the oracle's state, and each grant's `used`. Every refusal is checked
for the exact custom error and arguments and for leaving all that state unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from ledger.chain import TxResult
from ledger.contracts.audit_log import (
    _APPEND_SELECTOR,
    ZERO_ADDRESS,
    ZERO_HASH,
    AuditEntry,
    AuditRecord,
    HashChainMismatch,
    OracleReason,
    OracleState,
    Outcome,
    anchoring_gas_limit,
    chain_step,
    pack_entries,
    pack_meta,
    recompute_head,
    record_id,
    split_record_id,
    unpack_meta,
    verify_hash_chain,
)
from ledger.contracts.catalog import Classification
from ledger.contracts.grants import AccessReason
from ledger.contracts.registry import Role
from ledger.deployment import Consortium
from ledger.errors import ContractRevert
from ledger.keys import Signer
from tests.conftest import Members

FIELDS = ["credit_code", "name", "legal_rep", "capital", "status"]
ALL_FIELDS = (1 << len(FIELDS)) - 1
DAY = 86_400
QUOTA = 5
MAX_BATCH = 500
RECORD_SIZE = 128
U64 = (1 << 64) - 1


# --------------------------------------------------------------------------- model of the contract


@dataclass
class Ledger:
    """The consortium under test plus a Python model of what AuditLog must have done so far."""

    consortium: Consortium
    members: Members
    dataset: int  # SAMR's dataset, one version published
    version: int
    grant: int  # TAX's grant on `dataset`, approved by SAMR with quota QUOTA
    rng: random.Random
    heads: dict[str, bytes] = field(default_factory=dict)  # oracle -> head
    last: dict[str, int] = field(default_factory=dict)  # oracle -> last sequence
    used: dict[int, int] = field(default_factory=dict)  # grant -> used

    @property
    def log(self):
        return self.consortium.audit_log

    def h(self) -> bytes:
        return self.rng.randbytes(32)

    def served(self, grant: int | None = None, dataset: int | None = None, **kw: Any) -> AuditEntry:
        return self.entry(Outcome.SERVED, grant=grant, dataset=dataset, **kw)

    def entry(
        self,
        outcome: Outcome,
        *,
        grant: int | None = None,
        dataset: int | None = None,
        requester: str | None = None,
        version: int | None = None,
        reason: int | None = None,
        block: int | None = None,
        response: bytes | None = None,
    ) -> AuditEntry:
        if reason is None:
            reason = {
                Outcome.SERVED: int(AccessReason.GRANTED),
                Outcome.DENIED: int(AccessReason.QUOTA_EXHAUSTED),
                Outcome.SOURCE_FAILURE: int(OracleReason.SOURCE_TIMEOUT),
            }[outcome]
        return AuditEntry(
            grant_id=self.grant if grant is None else grant,
            requester=to_checksum_address(requester or self.members.tax.operator.address),
            dataset_id=self.dataset if dataset is None else dataset,
            dataset_version=self.version if version is None else version,
            outcome=outcome,
            reason=reason,
            checked_at_block=self.rng.randrange(1, 10**7) if block is None else block,
            request_hash=self.h(),
            response_hash=(self.h() if outcome is Outcome.SERVED else ZERO_HASH) if response is None else response,
        )

    # ----------------------------------------------------------------- sending

    def send_raw(self, signer: Signer, first: int, raw: bytes, *, gas: int | None = None) -> TxResult:
        result = self.consortium.chain.transact(signer, self.log.contract.functions.appendRecords(first, raw), gas=gas)
        return TxResult(result.tx_hash, result.block_number, result.gas_used, self.consortium.events.decode_all(result.logs))

    def snapshot(self, extra_oracles: Sequence[str] = ()) -> tuple:
        oracles = {m.oracle.address for m in (self.members.samr, self.members.tax, self.members.psb, self.members.audit)}
        oracles |= set(extra_oracles) | set(self.last)
        states = tuple(sorted((o, self.log.oracle_state(o)) for o in oracles))
        grants = tuple(self.consortium.grants.grant(g).used for g in range(1, self.consortium.grants.grant_count() + 1))
        return states, grants, len(list(self.log.records()))

    def refused(self, signer: Signer, first: int, raw: bytes, name: str, args: dict[str, Any], *, mined: bool = False) -> None:
        """Sending must fail with exactly `name(args)` and change nothing."""
        before = self.snapshot([signer.address])
        with pytest.raises(ContractRevert) as info:
            self.send_raw(signer, first, raw, gas=2_000_000 if mined else None)
        assert (info.value.name, info.value.args) == (name, args)
        assert self.snapshot([signer.address]) == before

    def append(self, signer: Signer, entries: Sequence[AuditEntry], *, dept: int | None = None) -> TxResult:
        """Append `entries` as the next records of `signer` and check every event and all state."""
        oracle = signer.address
        first = self.last.get(oracle, 0) + 1
        if dept is None:
            dept = self.consortium.registry.department_with_role(Role.ORACLE, oracle)
        expected, head, used = self.expected_events(oracle, dept, first, entries)
        result = self.send_raw(signer, first, pack_entries(entries))
        actual = [(e.address, e.name, e.args) for e in result.logs]
        assert actual == expected
        self.heads[oracle], self.last[oracle], self.used = head, first + len(entries) - 1, used
        assert self.log.oracle_state(oracle) == OracleState(first + len(entries) - 1, dept, head)
        for grant, count in used.items():
            assert self.consortium.grants.grant(grant).used == count
        return result

    def expected_events(self, oracle: str, dept: int, first: int, entries: Sequence[AuditEntry]) -> tuple[list, bytes, dict]:
        log, grants = self.log.address, self.consortium.grants.address
        used = dict(self.used)
        events: list[tuple[str, str, dict]] = []
        run: list[Any] = []  # [grant, dataset, count]

        def flush() -> None:
            grant, _, count = run
            used[grant] = used.get(grant, 0) + count
            quota = self.consortium.grants.grant(grant).quota
            events.append((grants, "GrantUsed", {"grantId": grant, "count": count, "used": used[grant], "quota": quota}))

        head = self.heads.get(oracle, ZERO_HASH)
        for offset, e in enumerate(entries):
            if e.outcome is Outcome.SERVED:
                if run and run[:2] != [e.grant_id, e.dataset_id]:
                    flush()
                    run = []
                if not run:
                    run = [e.grant_id, e.dataset_id, 0]
                run[2] += 1
            rid = record_id(oracle, first + offset)
            head = chain_step(head, rid, e)
            events.append((log, "AuditRecordAppended", {
                "datasetId": e.dataset_id, "requester": e.requester, "grantId": e.grant_id, "recordId": rid,
                "meta": e.meta, "requestHash": e.request_hash, "responseHash": e.response_hash,
            }))
        if run:
            flush()
        events.append((log, "AuditBatchAppended", {
            "oracle": oracle, "deptId": dept, "firstSequence": first, "count": len(entries), "head": head,
        }))
        return events, head, used


def new_grant(consortium: Consortium, requester: Signer, owner: Signer, dataset: int, quota: int = QUOTA) -> int:
    grant = consortium.grants.request(requester, dataset, ALL_FIELDS, "tax audit of registered companies", 30 * DAY, quota)
    consortium.grants.approve(owner, grant, ALL_FIELDS, 30 * DAY, quota)
    return grant


def new_dataset(consortium: Consortium, operator: Signer, name: str) -> int:
    dataset = consortium.catalog.register(operator, name, FIELDS, Classification.INTERNAL)
    consortium.catalog.publish_version(operator, dataset, b"\x11" * 32, b"\x22" * 32, 1000)
    return dataset


@pytest.fixture
def world(consortium: Consortium, members: Members) -> Ledger:
    """SAMR registers a dataset and publishes a version; TAX requests a grant, SAMR approves."""
    dataset = new_dataset(consortium, members.samr.operator, "企业登记 company registrations")
    grant = new_grant(consortium, members.tax.operator, members.samr.operator, dataset)
    return Ledger(consortium, members, dataset, consortium.catalog.latest_version(dataset), grant, random.Random(20240601))


def raw_record(e: AuditEntry, *, w0_or: int = 0, w1_or: int = 0, outcome: int | None = None) -> bytes:
    """`e` packed, with bits forced in word 0 / word 1 or the outcome byte replaced."""
    packed = e.packed()
    w0 = int.from_bytes(packed[0:32], "big") | w0_or
    w1 = int.from_bytes(packed[32:64], "big") | w1_or
    if outcome is not None:
        w1 = (w1 & ~(0xFF << 96)) | outcome << 96
    return w0.to_bytes(32, "big") + w1.to_bytes(32, "big") + packed[64:]


# --------------------------------------------------------------------------- pure layout


def random_entry(rng: random.Random) -> AuditEntry:
    return AuditEntry(
        grant_id=rng.choice([0, 1, U64, rng.randrange(1 << 64)]),
        requester=to_checksum_address(rng.choice([b"\x00" * 20, b"\xff" * 20, rng.randbytes(20)])),
        dataset_id=rng.choice([0, 1, U64, rng.randrange(1 << 64)]),
        dataset_version=rng.choice([0, 0xFFFFFFFF, rng.randrange(1 << 32)]),
        outcome=rng.choice(list(Outcome)),
        reason=rng.choice([0, 63, 64, 255, rng.randrange(256)]),
        checked_at_block=rng.choice([0, U64, rng.randrange(1 << 64)]),
        request_hash=rng.choice([ZERO_HASH, b"\xff" * 32, rng.randbytes(32)]),
        response_hash=rng.choice([ZERO_HASH, b"\xff" * 32, rng.randbytes(32)]),
    )


def test_record_event_topic_matches_the_constant_in_the_contract(consortium: Consortium) -> None:
    topic = keccak(text="AuditRecordAppended(uint64,address,uint64,uint256,uint256,bytes32,bytes32)")
    assert consortium.audit_log.events.topic("AuditRecordAppended") == topic
    assert topic.hex() == "afe7a2371761341e508f4c6b2496256657bab9891722fb849b6283ad24ba3c9e"


def test_python_and_solidity_agree_on_chain_step_for_random_entries(consortium: Consortium) -> None:
    rng = random.Random(7)
    for _ in range(40):
        e = random_entry(rng)
        head = rng.choice([ZERO_HASH, rng.randbytes(32)])
        rid = record_id(to_checksum_address(rng.randbytes(20)), rng.randrange(1, 1 << 64))
        assert chain_step(head, rid, e) == consortium.audit_log.chain_step_on_chain(head, rid, e)


def test_python_and_solidity_agree_on_packing(consortium: Consortium) -> None:
    rng = random.Random(8)
    entries = [random_entry(rng) for _ in range(25)]
    packed = pack_entries(entries)
    assert len(packed) == RECORD_SIZE * len(entries)
    assert consortium.audit_log.pack_on_chain(entries) == packed
    assert consortium.audit_log.pack_on_chain([]) == b"" == pack_entries([])
    for e in entries:  # each record round-trips through the layout of IAuditLog
        w0, w1 = int.from_bytes(e.packed()[:32], "big"), int.from_bytes(e.packed()[32:64], "big")
        assert (w0 >> 96, (w0 >> 32) & U64, w0 & 0xFFFFFFFF) == (int(e.requester, 16), e.grant_id, 0)
        assert (w1 >> 192, (w1 >> 112) & ((1 << 80) - 1)) == (e.dataset_id, 0)
        assert unpack_meta(w1 & ((1 << 112) - 1)) == (e.checked_at_block, e.dataset_version, e.outcome, e.reason)


def test_record_ids_agree_with_the_contract(consortium: Consortium, accounts: list[Signer]) -> None:
    oracle = accounts[4].address
    for sequence in (1, 2, 12345, U64):
        rid = record_id(oracle, sequence)
        assert rid == int(oracle, 16) << 64 | sequence
        assert consortium.audit_log.contract.functions.recordId(oracle, sequence).call() == rid
        assert split_record_id(rid) == (oracle, sequence)
    for bad in (0, U64 + 1):
        with pytest.raises(ValueError):
            record_id(oracle, bad)


def test_meta_packing_round_trips_at_the_field_limits() -> None:
    meta = pack_meta(U64, 0xFFFFFFFF, Outcome.SOURCE_FAILURE, 255)
    assert meta == U64 | 0xFFFFFFFF << 64 | 2 << 96 | 255 << 104
    assert meta < 1 << 112
    assert unpack_meta(meta) == (U64, 0xFFFFFFFF, Outcome.SOURCE_FAILURE, 255)
    assert unpack_meta(pack_meta(0, 0, Outcome.SERVED, 0)) == (0, 0, Outcome.SERVED, 0)


def test_packing_refuses_values_that_would_spill_into_neighbouring_fields() -> None:
    """Without range checks a version of 2**32 packs as outcome DENIED, a grant of 2**64 changes the
    requester, and a short hash misaligns every later record of the batch."""
    ok = AuditEntry(1, "0x" + "11" * 20, 1, 1, Outcome.SERVED, 0, 1, b"\x01" * 32, b"\x02" * 32)
    assert len(ok.packed()) == RECORD_SIZE
    spills = [
        {"dataset_version": 1 << 32}, {"checked_at_block": 1 << 64}, {"reason": 256}, {"reason": -1},
        {"grant_id": 1 << 64}, {"dataset_id": 1 << 64}, {"request_hash": b"\x01" * 31}, {"response_hash": b""},
    ]
    for change in spills:
        bad = AuditEntry(**{**ok.__dict__, **change})
        with pytest.raises(ValueError):
            bad.packed()
    with pytest.raises(ValueError):
        pack_meta(0, 1 << 32, Outcome.SERVED, 0)


# --------------------------------------------------------------------------- appending


def test_append_emits_one_record_per_entry_with_every_field(world: Ledger) -> None:
    samr = world.members.samr
    entries = [
        world.served(),
        world.entry(Outcome.DENIED, reason=int(AccessReason.FIELDS_NOT_GRANTED)),
        world.entry(Outcome.SOURCE_FAILURE, reason=int(OracleReason.SOURCE_UNAVAILABLE)),
        world.served(block=U64, version=0xFFFFFFFF),
    ]
    result = world.append(samr.oracle, entries)  # checks the exact events and the state

    records = [AuditRecord.from_event(e) for e in result.logs if e.name == "AuditRecordAppended"]
    assert [r.entry for r in records] == entries
    assert [r.record_id for r in records] == [int(samr.oracle.address, 16) << 64 | s for s in (1, 2, 3, 4)]
    assert [(r.oracle, r.sequence) for r in records] == [(samr.oracle.address, s) for s in (1, 2, 3, 4)]
    assert {r.block_number for r in records} == {result.block_number}
    assert {r.tx_hash for r in records} == {result.tx_hash}
    # served records of one grant in one batch: a single GrantUsed of 2
    used = [e.args for e in result.logs if e.name == "GrantUsed"]
    assert used == [{"grantId": world.grant, "count": 2, "used": 2, "quota": QUOTA}]
    batch = result.logs[-1]
    assert (batch.name, batch.args) == ("AuditBatchAppended", {
        "oracle": samr.oracle.address, "deptId": samr.id, "firstSequence": 1, "count": 4,
        "head": recompute_head(samr.oracle.address, entries),
    })

    # the client's own append reads the same records back
    more = [world.entry(Outcome.DENIED), world.served()]
    appended = world.log.append(samr.oracle, 5, more)
    assert [r.entry for r in appended.records] == more
    assert [r.sequence for r in appended.records] == [5, 6]
    assert appended.head == recompute_head(samr.oracle.address, more, start=batch.args["head"], first_sequence=5)
    assert world.log.oracle_state(samr.oracle.address) == OracleState(6, samr.id, appended.head)


def test_oracle_state_and_head_after_several_batches_match_python(world: Ledger) -> None:
    samr = world.members.samr
    oracle = samr.oracle.address
    assert world.log.oracle_state(oracle) == OracleState(0, 0, ZERO_HASH)
    batches = [
        [world.served()],
        [world.served() for _ in range(3)] + [world.entry(Outcome.DENIED, dataset=0, grant=0, requester=ZERO_ADDRESS,
                                                          version=0, reason=int(OracleReason.BAD_SIGNATURE))],
        [world.entry(Outcome.SOURCE_FAILURE), world.served(), world.entry(Outcome.DENIED)],
        [world.entry(Outcome.DENIED, dataset=0, grant=0, reason=int(OracleReason.UNKNOWN_DATASET)) for _ in range(2)],
    ]
    heads = []
    for batch in batches:
        world.append(samr.oracle, batch)
        heads.append(world.log.oracle_state(oracle).head)
    everything = [e for batch in batches for e in batch]
    state = world.log.oracle_state(oracle)
    assert state == OracleState(len(everything), samr.id, recompute_head(oracle, everything))
    assert len(set(heads)) == len(heads) and ZERO_HASH not in heads
    # resuming the chain from an intermediate head gives the same final head
    assert recompute_head(oracle, batches[3], start=heads[2], first_sequence=len(everything) - 1) == state.head

    records = [r for r in world.log.records() if r.oracle == oracle]
    assert [r.entry for r in records] == everything
    assert [r.sequence for r in records] == list(range(1, len(everything) + 1))
    verify_hash_chain(records, state.head)
    assert world.consortium.grants.grant(world.grant).used == 5


def test_verify_hash_chain_detects_tampering_reordering_and_gaps(world: Ledger) -> None:
    oracle = world.members.samr.oracle
    world.append(oracle, [world.served(), world.entry(Outcome.DENIED), world.served()])
    records = list(world.log.records())
    head = world.log.oracle_state(oracle.address).head
    verify_hash_chain(records, head)
    verify_hash_chain(list(reversed(records)), head)  # order of reading does not matter, sequence does

    tampered = records[1].entry.__class__(**{**records[1].entry.__dict__, "reason": 0})
    forged = [records[0], AuditRecord(records[1].record_id, records[1].oracle, 2, tampered, 0, "", 0), records[2]]
    with pytest.raises(HashChainMismatch) as info:
        verify_hash_chain(forged, head)
    assert (info.value.oracle, info.value.expected, info.value.sequence) == (oracle.address, head, 3)
    with pytest.raises(ValueError, match="sequence gap"):
        verify_hash_chain([records[0], records[2]], head)
    with pytest.raises(HashChainMismatch):
        verify_hash_chain(records[:2], head)  # a withheld tail does not reach the head
    with pytest.raises(HashChainMismatch):
        verify_hash_chain([], head)
    verify_hash_chain([], ZERO_HASH)


def test_fast_and_slow_paths_agree_on_a_long_mixed_batch(world: Ledger) -> None:
    """A random 200-record batch mixing two datasets, three grants, all outcomes and dataset-0
    denials: every event, the head and every grant's `used` equal the Python model."""
    c, m = world.consortium, world.members
    second = new_dataset(c, m.samr.operator, "individual businesses")
    grants = [world.grant, new_grant(c, m.psb.operator, m.samr.operator, world.dataset, 1000),
              new_grant(c, m.tax.operator, m.samr.operator, second, 1000)]
    dataset_of = {grants[0]: world.dataset, grants[1]: world.dataset, grants[2]: second}
    rng = random.Random(99)
    entries = []
    for _ in range(200):
        kind = rng.random()
        grant = rng.choice(grants) if rng.random() < 0.3 or not entries else entries[-1].grant_id or grants[0]
        if kind < 0.7:
            entries.append(world.served(grant=grant, dataset=dataset_of[grant]))
        elif kind < 0.85:
            entries.append(world.entry(Outcome.DENIED, grant=grant, dataset=dataset_of[grant]))
        elif kind < 0.95:
            entries.append(world.entry(Outcome.SOURCE_FAILURE, grant=grant, dataset=dataset_of[grant]))
        else:
            entries.append(world.entry(Outcome.DENIED, grant=0, dataset=0, requester=ZERO_ADDRESS, version=0,
                                       reason=int(OracleReason.BAD_SIGNATURE)))
    world.append(m.samr.oracle, entries[:120])
    world.append(m.samr.oracle, entries[120:])
    assert world.log.oracle_state(m.samr.oracle.address).head == recompute_head(m.samr.oracle.address, entries)
    for grant in grants:
        served = sum(1 for e in entries if e.outcome is Outcome.SERVED and e.grant_id == grant)
        assert c.grants.grant(grant).used == served > 0


def test_a_full_batch_of_max_batch_records_is_accepted(world: Ledger) -> None:
    entries = [world.served() if i % 7 else world.entry(Outcome.DENIED) for i in range(MAX_BATCH)]
    result = world.append(world.members.samr.oracle, entries)
    assert sum(1 for e in result.logs if e.name == "AuditRecordAppended") == MAX_BATCH
    assert world.log.oracle_state(world.members.samr.oracle.address).last_sequence == MAX_BATCH


def test_gas_per_record_at_batch_100_stays_within_budget(world: Ledger) -> None:
    """The design target of the packed layout: <= 6,000 gas per record at batch 100 (one grant)."""
    world.append(world.members.samr.oracle, [world.served()])  # first-use SSTOREs out of the way
    result = world.append(world.members.samr.oracle, [world.served() for _ in range(100)])
    assert result.gas_used / 100 <= 6_000


# --------------------------------------------------------------------------- sequence


def test_gaps_duplicates_and_replays_are_refused(world: Ledger) -> None:
    oracle = world.members.samr.oracle
    who = oracle.address
    first = [world.served(), world.entry(Outcome.DENIED), world.served()]
    raw = pack_entries(first)
    mismatch = "AuditLogSequenceMismatch"
    world.refused(oracle, 0, raw, mismatch, {"oracle": who, "expected": 1, "given": 0})
    world.refused(oracle, 2, raw, mismatch, {"oracle": who, "expected": 1, "given": 2})
    world.refused(oracle, U64, raw, mismatch, {"oracle": who, "expected": 1, "given": U64})
    world.append(oracle, first)

    world.refused(oracle, 1, raw, mismatch, {"oracle": who, "expected": 4, "given": 1})  # the same batch again
    world.refused(oracle, 1, raw, mismatch, {"oracle": who, "expected": 4, "given": 1}, mined=True)  # and on chain
    world.refused(oracle, 3, raw, mismatch, {"oracle": who, "expected": 4, "given": 3})  # overlapping
    world.refused(oracle, 5, raw, mismatch, {"oracle": who, "expected": 4, "given": 5})  # gap of one
    world.refused(oracle, 5, raw, mismatch, {"oracle": who, "expected": 4, "given": 5}, mined=True)
    world.refused(oracle, 1000, raw, mismatch, {"oracle": who, "expected": 4, "given": 1000})

    world.append(oracle, [world.served()])  # the right next sequence still works
    assert world.log.oracle_state(who).last_sequence == 4
    world.refused(oracle, 4, pack_entries([world.served()]), mismatch, {"oracle": who, "expected": 5, "given": 4})


def test_sequences_are_per_oracle(world: Ledger) -> None:
    m = world.members
    tax_dataset = new_dataset(world.consortium, m.tax.operator, "taxpayers")
    world.append(m.samr.oracle, [world.served(), world.served()])
    tax_entry = world.entry(Outcome.DENIED, dataset=tax_dataset, grant=0, requester=m.psb.operator.address)
    world.append(m.tax.oracle, [tax_entry])  # TAX's oracle starts at 1 too
    assert world.log.oracle_state(m.tax.oracle.address) == OracleState(1, m.tax.id, recompute_head(m.tax.oracle.address, [tax_entry]))
    assert world.log.oracle_state(m.samr.oracle.address).last_sequence == 2


# --------------------------------------------------------------------------- wrong writers


def test_accounts_without_the_oracle_role_cannot_append(world: Ledger, committee: list[Signer]) -> None:
    m = world.members
    raw = pack_entries([world.served()])
    # an outsider, SAMR's own operator, another department's operator, an auditor, a committee member
    for signer in (m.outsider, m.samr.operator, m.tax.operator, m.audit.auditor, committee[0], m.spare[0]):
        world.refused(signer, 1, raw, "AuditLogNotOracle", {"caller": signer.address})


def test_another_departments_oracle_cannot_write_records_for_samrs_dataset(world: Ledger) -> None:
    m = world.members
    tax_dataset = new_dataset(world.consortium, m.tax.operator, "taxpayers")
    not_owned = "AuditLogDatasetNotOwned"
    for outcome in Outcome:
        raw = pack_entries([world.entry(outcome)])
        world.refused(m.tax.oracle, 1, raw, not_owned, {"sequence": 1, "datasetId": world.dataset, "oracleDept": m.tax.id})
    # in the middle of TAX's own batch, after records the fast path accepts
    own = [world.entry(Outcome.DENIED, dataset=tax_dataset, grant=0) for _ in range(4)]
    world.append(m.tax.oracle, own[:2])
    raw = pack_entries(own[2:] + [world.served()] + own[:1])
    world.refused(m.tax.oracle, 3, raw, not_owned, {"sequence": 5, "datasetId": world.dataset, "oracleDept": m.tax.id})
    # and SAMR's oracle cannot write for TAX's dataset, nor for a dataset nobody registered
    raw = pack_entries([world.served(), world.served(), world.entry(Outcome.DENIED, dataset=tax_dataset)])
    world.refused(m.samr.oracle, 1, raw, not_owned, {"sequence": 3, "datasetId": tax_dataset, "oracleDept": m.samr.id})
    raw = pack_entries([world.entry(Outcome.DENIED, dataset=999, grant=0)])
    world.refused(m.samr.oracle, 1, raw, not_owned, {"sequence": 1, "datasetId": 999, "oracleDept": m.samr.id})


def test_oracle_of_a_removed_department_cannot_append(world: Ledger, committee: list[Signer]) -> None:
    m, c = world.members, world.consortium
    world.append(m.samr.oracle, [world.served()])
    c.registry.pass_proposal(committee[:2], c.registry.remove_department_call(m.samr.id), "remove SAMR")
    raw = pack_entries([world.served()])
    world.refused(m.samr.oracle, 2, raw, "AuditLogNotOracle", {"caller": m.samr.oracle.address})
    # even a denial about no dataset (no ownership check involved)
    raw = pack_entries([world.entry(Outcome.DENIED, dataset=0, grant=0)])
    world.refused(m.samr.oracle, 2, raw, "AuditLogNotOracle", {"caller": m.samr.oracle.address})
    assert c.audit_log.oracle_state(m.samr.oracle.address).last_sequence == 1  # its evidence stays


def test_oracle_rotation(world: Ledger) -> None:
    m, c = world.members, world.consortium
    old, new = m.samr.oracle, m.spare[0]
    world.append(old, [world.served(), world.served()])
    old_state = c.audit_log.oracle_state(old.address)

    c.registry.remove_account(m.samr.operator, old.address, Role.ORACLE)
    raw = pack_entries([world.served()])
    world.refused(old, 3, raw, "AuditLogNotOracle", {"caller": old.address})
    world.refused(new, 1, raw, "AuditLogNotOracle", {"caller": new.address})  # not yet added

    c.registry.add_account(m.samr.operator, new.address, Role.ORACLE)
    world.refused(new, 3, raw, "AuditLogSequenceMismatch", {"oracle": new.address, "expected": 1, "given": 3})
    entries = [world.served(), world.entry(Outcome.DENIED)]
    result = world.append(new, entries, dept=m.samr.id)  # a new chain, from sequence 1
    ids = [e.args["recordId"] for e in result.logs if e.name == "AuditRecordAppended"]
    assert ids == [record_id(new.address, 1), record_id(new.address, 2)]
    assert c.audit_log.oracle_state(new.address) == OracleState(2, m.samr.id, recompute_head(new.address, entries))
    assert c.audit_log.oracle_state(old.address) == old_state
    assert c.grants.grant(world.grant).used == 3

    # the retired account, if bound again, continues its own chain: it cannot start over at 1
    c.registry.add_account(m.samr.operator, old.address, Role.ORACLE)
    world.refused(old, 1, raw, "AuditLogSequenceMismatch", {"oracle": old.address, "expected": 3, "given": 1})
    world.append(old, [world.served()])
    assert c.audit_log.oracle_state(old.address).last_sequence == 3


# --------------------------------------------------------------------------- malformed batches


def test_empty_batch_is_refused(world: Ledger) -> None:
    world.refused(world.members.samr.oracle, 1, b"", "AuditLogEmptyBatch", {})


def test_length_not_a_multiple_of_the_record_size_is_refused(world: Ledger) -> None:
    whole = pack_entries([world.served() for _ in range(4)]) + b"\x01" * 128
    for length in (1, 64, 127, 129, 255, 128 * 3 + 32, 128 * 5 - 1):
        world.refused(world.members.samr.oracle, 1, whole[:length], "AuditLogMalformedBatch", {"length": length})
    # checked before the sequence: a misaligned batch at the wrong sequence is still "malformed"
    world.refused(world.members.samr.oracle, 9, whole[:130], "AuditLogMalformedBatch", {"length": 130})


def test_more_than_max_batch_records_is_refused(world: Ledger) -> None:
    raw = pack_entries([world.served() for _ in range(MAX_BATCH + 1)])
    world.refused(world.members.samr.oracle, 1, raw, "AuditLogBatchTooLarge", {"size": MAX_BATCH + 1, "max": MAX_BATCH})
    assert world.log.contract.functions.MAX_BATCH().call() == MAX_BATCH
    assert world.log.contract.functions.RECORD_SIZE().call() == RECORD_SIZE


CORRUPTIONS = {
    "word 0 bit 0": {"w0_or": 1},
    "word 0 bit 31": {"w0_or": 1 << 31},
    "word 0 bits 0-31": {"w0_or": 0xFFFFFFFF},
    "word 1 bit 112": {"w1_or": 1 << 112},
    "word 1 bit 191": {"w1_or": 1 << 191},
    "outcome 3": {"outcome": 3},
    "outcome 255": {"outcome": 255},
}


def test_malformed_record_is_refused_first_middle_and_last(world: Ledger) -> None:
    oracle = world.members.samr.oracle
    malformed = "AuditLogMalformedRecord"
    for outcome in Outcome:  # at sequence 1, first of the oracle's chain
        world.refused(oracle, 1, raw_record(world.entry(outcome), w1_or=1 << 150), malformed, {"sequence": 1})
    world.append(oracle, [world.served() for _ in range(3)])
    for name, corruption in CORRUPTIONS.items():
        bad = lambda e: raw_record(e, **corruption)  # noqa: E731
        for outcome in Outcome:
            # first of a batch: the Solidity slow path (`_validate`)
            world.refused(oracle, 4, bad(world.entry(outcome)), malformed, {"sequence": 4})
            # in the middle of a run the assembly fast path accepts: records 4..13, the bad one is 4 + 5
            good = [world.served() for _ in range(10)]
            raw = pack_entries(good[:5]) + bad(world.entry(outcome)) + pack_entries(good[6:])
            world.refused(oracle, 4, raw, malformed, {"sequence": 9})
            raw = pack_entries(good[:9]) + bad(world.entry(outcome))  # last
            world.refused(oracle, 4, raw, malformed, {"sequence": 13})
        # after denials (the fast path's other branch)
        denials = [world.entry(Outcome.DENIED) for _ in range(3)]
        world.refused(oracle, 4, pack_entries(denials) + bad(world.entry(Outcome.DENIED)), malformed, {"sequence": 7})
        # only the first malformed record is reported
        raw = pack_entries(denials[:1]) + bad(world.served()) + bad(world.served())
        world.refused(oracle, 4, raw, malformed, {"sequence": 5})
    # the same records, well formed, are accepted
    world.append(oracle, [world.served() for _ in range(10)])


def test_checks_are_made_in_the_documented_order(world: Ledger) -> None:
    """Role, then length, then emptiness, then size, then sequence, then the records."""
    m = world.members
    bad = raw_record(world.served(), outcome=9)
    world.refused(m.outsider, 7, b"\x00" * 129, "AuditLogNotOracle", {"caller": m.outsider.address})
    world.refused(m.samr.oracle, 7, b"\x00" * 129, "AuditLogMalformedBatch", {"length": 129})
    world.refused(m.samr.oracle, 7, b"", "AuditLogEmptyBatch", {})
    world.refused(m.samr.oracle, 7, bad * (MAX_BATCH + 1), "AuditLogBatchTooLarge", {"size": MAX_BATCH + 1, "max": MAX_BATCH})
    world.refused(m.samr.oracle, 7, bad, "AuditLogSequenceMismatch", {"oracle": m.samr.oracle.address, "expected": 1, "given": 7})
    world.refused(m.samr.oracle, 1, bad, "AuditLogMalformedRecord", {"sequence": 1})


def test_outcome_and_reason_bits_at_their_limits_are_well_formed(world: Ledger) -> None:
    """Bits next to the reserved ones belong to the record: reason 255, version and block at max."""
    entries = [
        world.served(reason=255, block=U64, version=0xFFFFFFFF),
        world.entry(Outcome.SOURCE_FAILURE, reason=255, block=U64, version=0xFFFFFFFF),
        world.entry(Outcome.DENIED, grant=U64, requester="0x" + "ff" * 20, reason=255),
    ]
    world.append(world.members.samr.oracle, entries)


# --------------------------------------------------------------------------- dataset and grant rules


def test_dataset_zero_only_for_denials(world: Ledger) -> None:
    oracle = world.members.samr.oracle
    required = "AuditLogDatasetRequired"
    for outcome in (Outcome.SERVED, Outcome.SOURCE_FAILURE):
        world.refused(oracle, 1, pack_entries([world.entry(outcome, dataset=0)]), required, {"sequence": 1})
        world.refused(oracle, 1, pack_entries([world.entry(outcome, dataset=0, grant=0)]), required, {"sequence": 1})
        raw = pack_entries([world.served(), world.served(), world.entry(outcome, dataset=0), world.served()])
        world.refused(oracle, 1, raw, required, {"sequence": 3})
    # a denial about no dataset, by no known requester and under no grant, is evidence
    anonymous = world.entry(Outcome.DENIED, dataset=0, grant=0, requester=ZERO_ADDRESS, version=0,
                            reason=int(OracleReason.BAD_SIGNATURE), response=ZERO_HASH)
    unknown = world.entry(Outcome.DENIED, dataset=0, grant=0, reason=int(OracleReason.UNKNOWN_DATASET))
    world.append(oracle, [anonymous, world.served(), unknown, world.served()])
    records = list(world.log.records())
    assert records[0].entry == anonymous and records[0].entry.requester == ZERO_ADDRESS
    assert world.consortium.grants.grant(world.grant).used == 2


def test_denials_with_zero_requester_and_a_real_dataset_are_accepted(world: Ledger) -> None:
    entries = [world.entry(Outcome.DENIED, requester=ZERO_ADDRESS, reason=int(OracleReason.BAD_SIGNATURE)),
               world.entry(Outcome.DENIED, requester=ZERO_ADDRESS, grant=0, reason=int(OracleReason.NONCE_REPLAYED))]
    world.append(world.members.samr.oracle, entries)
    assert world.consortium.grants.grant(world.grant).used == 0


def test_served_records_need_a_grant(world: Ledger) -> None:
    oracle = world.members.samr.oracle
    world.refused(oracle, 1, pack_entries([world.served(grant=0)]), "AuditLogGrantRequired", {"sequence": 1})
    raw = pack_entries([world.served(), world.entry(Outcome.DENIED, grant=0), world.served(grant=0)])
    world.refused(oracle, 1, raw, "AuditLogGrantRequired", {"sequence": 3})
    # denials and source failures under no grant are fine
    world.append(oracle, [world.entry(Outcome.DENIED, grant=0), world.entry(Outcome.SOURCE_FAILURE, grant=0)])


def test_served_records_under_a_grant_of_another_dataset_are_refused(world: Ledger) -> None:
    c, m = world.consortium, world.members
    oracle = m.samr.oracle
    second = new_dataset(c, m.samr.operator, "individual businesses")
    other = new_grant(c, m.tax.operator, m.samr.operator, second)
    mismatch = "AccessGrantsDatasetMismatch"
    world.refused(oracle, 1, pack_entries([world.served(grant=other)]), mismatch, {"grantId": other, "datasetId": world.dataset})
    raw = pack_entries([world.served(), world.served(), world.served(grant=other), world.served()])
    world.refused(oracle, 1, raw, mismatch, {"grantId": other, "datasetId": world.dataset})
    # the mismatching run is the last one, flushed after the loop
    raw = pack_entries([world.served(), world.served(grant=world.grant, dataset=second)])
    world.refused(oracle, 1, raw, mismatch, {"grantId": world.grant, "datasetId": second})
    unknown = 777
    world.refused(oracle, 1, pack_entries([world.served(grant=unknown)]), mismatch, {"grantId": unknown, "datasetId": world.dataset})
    # a denial naming the wrong grant is evidence of the denial, not a use
    world.append(oracle, [world.entry(Outcome.DENIED, grant=other, reason=int(AccessReason.DATASET_MISMATCH))])
    assert c.grants.grant(other).used == 0 and c.grants.grant(world.grant).used == 0


# --------------------------------------------------------------------------- quota


def test_served_records_count_toward_quota_and_others_do_not(world: Ledger) -> None:
    c, m = world.consortium, world.members
    grants = c.grants
    result = world.append(m.samr.oracle, [world.served(), world.entry(Outcome.DENIED), world.served(),
                                          world.entry(Outcome.SOURCE_FAILURE), world.served()])
    assert [e.args for e in result.logs if e.name == "GrantUsed"] == [{"grantId": world.grant, "count": 3, "used": 3, "quota": QUOTA}]
    assert grants.grant(world.grant).used == 3
    result = world.append(m.samr.oracle, [world.entry(Outcome.DENIED), world.entry(Outcome.SOURCE_FAILURE)])
    assert [e.name for e in result.logs].count("GrantUsed") == 0
    assert grants.grant(world.grant).used == 3
    check = grants.check_access(m.tax.operator.address, m.tax.id, world.dataset, ALL_FIELDS, world.grant)
    assert check.reason is AccessReason.GRANTED and check.grant.used == 3


def test_interleaved_grants_are_counted_per_run(world: Ledger) -> None:
    c, m = world.consortium, world.members
    a = world.grant
    b = new_grant(c, m.psb.operator, m.samr.operator, world.dataset, 10)
    pattern = [a, a, b, a, b, b]
    result = world.append(m.samr.oracle, [world.served(grant=g) for g in pattern])
    used = [(e.args["grantId"], e.args["count"], e.args["used"]) for e in result.logs if e.name == "GrantUsed"]
    assert used == [(a, 2, 2), (b, 1, 1), (a, 1, 3), (b, 2, 3)]
    assert (c.grants.grant(a).used, c.grants.grant(b).used) == (3, 3)
    # a denial inside a run does not split it
    result = world.append(m.samr.oracle, [world.served(grant=b), world.entry(Outcome.DENIED, grant=a), world.served(grant=b)])
    assert [(e.args["grantId"], e.args["count"]) for e in result.logs if e.name == "GrantUsed"] == [(b, 2)]
    assert (c.grants.grant(a).used, c.grants.grant(b).used) == (3, 5)


def test_over_quota_records_are_kept_as_evidence(world: Ledger) -> None:
    c, m = world.consortium, world.members
    world.append(m.samr.oracle, [world.served() for _ in range(QUOTA)])
    check = c.grants.check_access(m.tax.operator.address, m.tax.id, world.dataset, ALL_FIELDS, world.grant)
    assert check.reason is AccessReason.QUOTA_EXHAUSTED
    result = world.append(m.samr.oracle, [world.served(), world.served()])
    assert [e.args for e in result.logs if e.name == "GrantUsed"] == [
        {"grantId": world.grant, "count": 2, "used": QUOTA + 2, "quota": QUOTA}]
    grant = c.grants.grant(world.grant)
    assert (grant.used, grant.quota) == (QUOTA + 2, QUOTA)
    check = c.grants.check_access(m.tax.operator.address, m.tax.id, world.dataset, ALL_FIELDS, world.grant)
    assert check.reason is AccessReason.QUOTA_EXHAUSTED


def test_over_quota_in_a_single_batch_and_under_a_revoked_grant(world: Ledger) -> None:
    c, m = world.consortium, world.members
    world.append(m.samr.oracle, [world.served() for _ in range(QUOTA + 3)])
    assert c.grants.grant(world.grant).used == QUOTA + 3
    c.grants.revoke(m.samr.operator, world.grant, "investigation closed")
    world.append(m.samr.oracle, [world.served()])  # served before the oracle saw the revocation
    assert c.grants.grant(world.grant).used == QUOTA + 4
    check = c.grants.check_access(m.tax.operator.address, m.tax.id, world.dataset, ALL_FIELDS, world.grant)
    assert check.reason is AccessReason.REVOKED


def test_only_the_audit_log_may_record_use(world: Ledger) -> None:
    m = world.members
    for signer in (m.samr.oracle, m.samr.operator, m.outsider):
        fn = world.consortium.grants.contract.functions.recordUse(world.grant, world.dataset, 1)
        with pytest.raises(ContractRevert) as info:
            world.consortium.chain.transact(signer, fn)
        assert (info.value.name, info.value.args) == ("AccessGrantsNotAuditLog", {"caller": signer.address})
    assert world.consortium.grants.grant(world.grant).used == 0


# --------------------------------------------------------------------------- reading back


def test_records_read_in_bounded_ranges_are_identical_and_ordered(world: Ledger, ganache) -> None:
    c, m = world.consortium, world.members
    tax_dataset = new_dataset(c, m.tax.operator, "taxpayers")
    written: list[AuditEntry] = []
    for size in (3, 1, 5, 2):
        batch = [world.served() if i % 2 == 0 else world.entry(Outcome.DENIED) for i in range(size)]
        world.append(m.samr.oracle, batch)
        written += batch
        ganache.mine(3)
        world.append(m.tax.oracle, [world.entry(Outcome.DENIED, dataset=tax_dataset, grant=0)])
    first_block = c.deployment.deployment_block

    by_one = list(c.audit_log.records(step=1))
    by_many = list(c.audit_log.records(step=2000))
    assert by_one == by_many
    assert len(by_one) == len(written) + 4
    positions = [(r.block_number, r.log_index) for r in by_one]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    samr = [r for r in by_one if r.oracle == m.samr.oracle.address]
    assert [r.entry for r in samr] == written
    assert [r.sequence for r in samr] == list(range(1, len(written) + 1))
    verify_hash_chain(samr, c.audit_log.oracle_state(m.samr.oracle.address).head)
    tax = [r for r in by_one if r.oracle == m.tax.oracle.address]
    verify_hash_chain(tax, c.audit_log.oracle_state(m.tax.oracle.address).head)

    # a window of blocks returns exactly the records of those blocks, whatever the step
    middle = sorted({r.block_number for r in by_one})[2:5]
    for step in (1, 2, 2000):
        window = list(c.audit_log.records(middle[0], middle[-1], step=step))
        assert window == [r for r in by_one if middle[0] <= r.block_number <= middle[-1]]
    assert list(c.audit_log.records(first_block, first_block, step=1)) == []


def test_the_lean_anchor_path_agrees_with_append_and_refuses_alike(world: Ledger) -> None:
    """The batcher's plain JSON-RPC path: same records, same head, and a refusal decoded by name
    (it is repeated through web3's path to decode it)."""
    samr = world.members.samr
    oracle = samr.oracle.address
    entries = [world.served(), world.entry(Outcome.DENIED), world.served()]
    result = world.log.anchor(samr.oracle, 1, entries)
    state = world.log.oracle_state(oracle)
    assert state == OracleState(3, samr.id, recompute_head(oracle, entries))
    assert result.head == state.head and result.records == []
    assert result.block_number == world.consortium.chain.block_number() and result.gas_used > 0
    assert [r.entry for r in world.log.records() if r.oracle == oracle] == entries
    with pytest.raises(ContractRevert) as refused:
        world.log.anchor(samr.oracle, 2, [world.served()])
    assert refused.value.name == "AuditLogSequenceMismatch"
    assert refused.value.error_args == {"oracle": oracle, "expected": 4, "given": 2}
    with pytest.raises(ContractRevert, match="AuditLogNotOracle"):
        world.log.anchor(samr.operator, 1, [world.served()])
    world.log.anchor(samr.oracle, 4, [world.served()])  # the nonce cache survived the refusals
    assert world.log.oracle_state(oracle).last_sequence == 4


# --------------------------------------------------------------------------- anchoring without an estimate


def _anchor_and_measure(world: Ledger, entries: list[AuditEntry]) -> tuple[int, int]:
    """Anchor ``entries`` as the batcher does; (gas used, the bound it was sent with)."""
    oracle = world.members.samr.oracle
    first = world.log.oracle_state(oracle.address).last_sequence + 1
    data = _APPEND_SELECTOR + abi_encode(["uint64", "bytes"], [first, pack_entries(entries)])
    result = world.log.anchor(oracle, first, entries)
    assert world.log.oracle_state(oracle.address).last_sequence == first + len(entries) - 1
    return result.gas_used, anchoring_gas_limit(entries, data)


def test_the_anchoring_gas_bound_covers_every_shape_of_batch(world: Ledger) -> None:
    """The bound the batcher sends instead of asking the node for an estimate must cover what the
    contract spends on every shape of batch, the costliest ones included: an oracle's first record,
    batches of one grant, grants alternating record by record, many grants used for the first time
    in one batch, several datasets, every outcome, and a full batch of MAX_BATCH. Each batch is sent
    with its bound (no fallback to an estimate was needed: the gas limit of the mined transaction is
    the bound), and the bound stays within a small multiple of what was used."""
    c, m = world.consortium, world.members
    second = new_dataset(c, m.samr.operator, "individual businesses")
    other_grant = new_grant(c, m.psb.operator, m.samr.operator, world.dataset, 10**6)
    fresh = [new_grant(c, m.tax.operator, m.samr.operator, second, 10**6) for _ in range(12)]
    shapes = {
        "first record of the oracle": [world.served()],
        "100 of one grant": [world.served() for _ in range(100)],
        "200 alternating two grants": [world.served(grant=(world.grant, other_grant)[i % 2]) for i in range(200)],
        "12 grants used for the first time": [world.served(grant=g, dataset=second) for g in fresh],
        "mixed outcomes and datasets": [
            world.served(grant=fresh[i % 12], dataset=second) if i % 3 == 0 else
            world.entry(Outcome.DENIED, dataset=(world.dataset, second)[i % 2]) if i % 3 == 1 else
            world.entry(Outcome.SOURCE_FAILURE) for i in range(150)],
        "denials with no dataset": [world.entry(Outcome.DENIED, grant=0, dataset=0, requester=ZERO_ADDRESS, version=0,
                                                reason=int(OracleReason.BAD_SIGNATURE)) for _ in range(50)],
        f"{MAX_BATCH} alternating two grants": [world.served(grant=(world.grant, other_grant)[i % 2]) for i in range(MAX_BATCH)],
    }
    for name, entries in shapes.items():
        used, bound = _anchor_and_measure(world, entries)
        print(f"{name}: used {used:,} gas, bound {bound:,} ({bound / used:.2f}x)")
        assert used < bound < 3 * used + 100_000, name


def test_a_batch_that_needs_more_than_its_gas_limit_is_sent_again_with_an_estimate(world: Ledger, monkeypatch) -> None:
    """If a batch ever costs more than the bound, its transaction runs out of gas on chain (nothing
    changes: the contract's state is as before) and the batch is sent again with the node's
    estimate. The bound is cut short here on purpose to cause it for real."""
    import ledger.contracts.audit_log as audit_log

    oracle = world.members.samr.oracle
    monkeypatch.setattr(audit_log, "anchoring_gas_limit", lambda entries, data: 60_000)
    entries = [world.served() for _ in range(20)]
    nonce_before = world.consortium.chain.w3.eth.get_transaction_count(oracle.address)
    result = world.log.anchor(oracle, 1, entries)
    assert world.log.oracle_state(oracle.address).last_sequence == 20
    assert [r.entry for r in world.log.records()] == entries
    assert result.gas_used > 60_000
    # two transactions went out: the one that ran out of gas, and the one that anchored
    assert world.consortium.chain.w3.eth.get_transaction_count(oracle.address) == nonce_before + 2


# --------------------------------------------------------------------------- the decision-age bound


def test_a_back_dated_served_record_is_refused_beyond_the_consortiums_bound(world: Ledger, ganache, committee) -> None:
    """An oracle of the owning department claims, after a revocation, that it checked the grant at a
    block before it: refused once that block lies more than ``maxDecisionAgeBlocks`` before the
    anchoring block, whether the record is the first of its batch (Solidity path) or in the middle of
    a run of one grant (assembly fast path); exactly at the bound it is accepted. Denials and source
    failures are not bound (they serve nothing, and an oracle cut off from the chain records them
    late honestly). A committee vote raising the bound lets the record in."""
    c, m = world.consortium, world.members
    oracle = m.samr.oracle
    limit = c.registry.max_decision_age_blocks()
    before_revocation = c.chain.block_number()
    c.grants.revoke(m.samr.operator, world.grant, "purpose fulfilled")
    ganache.rpc("evm_mine", [{"blocks": limit}])
    anchoring = c.chain.block_number() + 1  # instamine: the next transaction's block
    assert anchoring - before_revocation > limit
    too_old = {"decisionBlock": before_revocation, "currentBlock": anchoring, "maxAgeBlocks": limit}
    world.refused(oracle, 1, pack_entries([world.served(block=before_revocation)]), "AuditLogDecisionTooOld",
                  {"sequence": 1, **too_old})
    fresh = anchoring - 1
    raw = pack_entries([world.served(block=fresh), world.served(block=fresh), world.served(block=before_revocation),
                        world.served(block=fresh)])
    world.refused(oracle, 1, raw, "AuditLogDecisionTooOld", {"sequence": 3, **too_old})
    # mined anyway (a gas limit given, no estimate): it fails on chain with the same error (decoded by
    # replaying it on the block before its own, whose number the error then carries)
    world.refused(oracle, 1, raw, "AuditLogDecisionTooOld", {"sequence": 3, **too_old, "currentBlock": anchoring - 1},
                  mined=True)
    # at the bound exactly it is accepted; denials and source failures of any age are
    edge = c.chain.block_number() + 1 - limit
    world.append(oracle, [world.entry(Outcome.DENIED, block=1), world.served(block=edge),
                          world.entry(Outcome.SOURCE_FAILURE, block=0), world.served(block=edge)])
    # the committee raises the bound by a vote: the late record can be anchored, in the open
    c.registry.pass_proposal(committee[:2], c.registry.set_max_decision_age_blocks_call(limit * 2), "outage of 2026-12-01")
    world.append(oracle, [world.served(block=before_revocation)])


def test_the_decision_age_bound_costs_little_gas(world: Ledger) -> None:
    """The bound is one view call per batch and one comparison per record: a batch of 100 served
    records of one grant stays within the per-record budget (test_gas_per_record_at_batch_100)."""
    head = world.consortium.chain.block_number()
    result = world.append(world.members.samr.oracle, [world.served(block=head) for _ in range(100)])
    assert result.gas_used / 100 < 7_000
