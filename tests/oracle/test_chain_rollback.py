"""The chain loses records the oracle had anchored: a proof-of-authority reorg, or a dev node killed
and restarted from a database that lost its newest blocks. Here the session's ganache is rolled back
for real (``evm_snapshot`` / ``evm_revert``) around a running oracle: the records the chain no longer
holds are un-marked in the outbox and anchored again, in order, with the same content, so that every
receipt the requesters hold stays valid; each record is on chain exactly once, the loss is logged
and counted (``govshare_oracle_lost_from_chain_records_total``), and with no rollback nothing is
anchored again. A chain that holds *other* records at the oracle's sequences is refused, never
overwritten."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from auditing.verification import verify_audit_trail
from devtools.devnet import GanacheNode
from devtools.sample_data import companies
from ledger.chain import Chain
from ledger.contracts.audit_log import ZERO_ADDRESS, AuditEntry, OracleReason, Outcome
from ledger.deployment import Consortium
from oracle.config import DatasetConfig
from oracle.export import export_outbox
from requester.client import save_receipt
from serving import ServerThread
from tests.conftest import Members
from tests.oracle.conftest import Published, RunningOracle, oracle_config, start_oracle

LOST_METRIC = "govshare_oracle_lost_from_chain_records_total"
ANCHORING_MODES = ["process", "thread"]


class Oracles:
    """Market supervision's oracle, started and stopped as often as a test needs (one outbox)."""

    def __init__(self, tmp_path: Path, consortium: Consortium, members: Members, published: Published,
                 company_api: ServerThread) -> None:
        self.tmp_path, self.consortium, self.members, self.published = tmp_path, consortium, members, published
        self.datasets = {published.companies: DatasetConfig(id=published.companies, base_url=company_api.url,
                                                            path="/companies", params=("company_id", "status"))}
        self.running: list[RunningOracle] = []
        self.receipts = tmp_path / "receipts"
        self.asked = 0

    def start(self, **overrides: object) -> RunningOracle:
        settings: dict[str, object] = {"batch_max_age_seconds": 0.2, "batch_stuck_after_seconds": 1.0,
                                       "batch_chain_check_seconds": 0.5, **overrides}
        config = oracle_config(self.tmp_path, self.consortium, "SAMR", self.datasets, **settings)
        running = start_oracle(config, self.members.samr.oracle, self.consortium)
        self.running.append(running)
        return running

    def stop(self, running: RunningOracle) -> None:
        self.running.remove(running)
        running.stop()

    def ask(self, running: RunningOracle, count: int) -> None:
        """``count`` served queries; each receipt is saved as its requester would keep it."""
        for _ in range(count):
            self.asked += 1
            result = running.client.query(self.members.tax.operator, self.members.tax.id, self.published.companies,
                                          self.published.tax_grant, self.published.company_fields,
                                          {"company_id": companies()[self.asked]["company_id"]})
            assert result.receipt["outcome"] == Outcome.SERVED and result.receipt["sequence"] == self.asked
            save_receipt(result.receipt, self.receipts)

    def on_chain(self) -> list[int]:
        """The oracle's sequences in the chain's events, in order (duplicates would show)."""
        oracle = self.members.samr.oracle.address
        return [r.sequence for r in self.consortium.audit_log.records() if r.oracle == oracle]

    def last_sequence(self) -> int:
        return self.consortium.audit_log.oracle_state(self.members.samr.oracle.address).last_sequence


@pytest.fixture
def oracles(tmp_path: Path, consortium: Consortium, members: Members, published: Published,
            company_api: ServerThread) -> Iterator[Oracles]:
    made = Oracles(tmp_path, consortium, members, published, company_api)
    yield made
    for running in list(made.running):
        made.stop(running)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def _lost_metric(running: RunningOracle) -> float | None:
    text = httpx.get(f"{running.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LOST_METRIC:
                return sample.value
    return None


def _logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """What the oracle logged: its own records (anchoring on a thread) and its anchoring process's
    stderr (a child process: its log goes to the inherited file descriptor)."""
    return caplog.text + capfd.readouterr().err


def _assert_recovered(oracles: Oracles, running: RunningOracle, total: int) -> None:
    """Every record on chain exactly once, marked in the outbox with the transaction and block that
    hold it now, and the whole trail verified by the auditors' library: hash chains, the oracle's
    export matched record for record, every requester's receipt matched with the chain."""
    assert oracles.on_chain() == list(range(1, total + 1))
    chain = oracles.consortium.chain
    outbox_records = list(running.oracle.outbox.all_records())
    assert [r.sequence for r in outbox_records] == list(range(1, total + 1))
    on_chain = {r.sequence: r for r in oracles.consortium.audit_log.records()}
    for record in outbox_records:
        assert (record.anchored_tx, record.anchored_block) == (on_chain[record.sequence].tx_hash,
                                                                on_chain[record.sequence].block_number), record.sequence
        assert chain.raw_rpc("eth_getTransactionReceipt", [record.anchored_tx]) is not None
    export = oracles.tmp_path / "export" / "samr.jsonl"
    export_outbox(running.oracle.config.outbox, export)
    report = verify_audit_trail(oracles.consortium, oracle_exports=[export], receipts=[oracles.receipts])
    assert report.ok, report.summary()
    assert report.check("receipts").checked == report.check("receipts").passed == total


@pytest.mark.parametrize("anchoring", ANCHORING_MODES)
def test_records_lost_while_the_oracle_was_stopped_are_anchored_again_at_start_up(
        oracles: Oracles, ganache: GanacheNode, anchoring: str,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """Records 1..2 anchored, then 3..5; the oracle stops; the chain loses the blocks holding 3..5 (a
    node restarted from an older database). At start-up the oracle finds the outbox marking 3..5 on
    chain where the chain ends at 2: it un-marks them, says so, and anchors them again."""
    caplog.set_level(logging.WARNING, logger="govshare")
    running = oracles.start(anchoring=anchoring)
    oracles.ask(running, 2)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 2, "records 1..2 anchored")
    snapshot = ganache.rpc("evm_snapshot")
    oracles.ask(running, 3)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 5, "records 3..5 anchored")
    oracles.stop(running)
    assert ganache.rpc("evm_revert", [snapshot]) is True
    assert oracles.on_chain() == [1, 2]  # the chain lost records the outbox had marked anchored

    running = oracles.start(anchoring=anchoring)
    _wait(lambda: oracles.last_sequence() == 5 and running.oracle.outbox.pending_count() == 0,
          "the lost records anchored again")
    _wait(lambda: all(r.anchored_block for r in running.oracle.outbox.all_records()), "marked again")
    _assert_recovered(oracles, running, 5)
    assert "3 records lost from the chain (sequences 3..5), anchoring them again" in _logged(caplog, capfd)
    assert _lost_metric(running) == 3
    oracles.ask(running, 1)  # and anchoring goes on
    _wait(lambda: oracles.last_sequence() == 6 and running.oracle.outbox.pending_count() == 0, "record 6 anchored")
    _assert_recovered(oracles, running, 6)


@pytest.mark.parametrize("anchoring", ANCHORING_MODES)
def test_records_lost_while_the_oracle_runs_and_idles_are_anchored_again(
        oracles: Oracles, ganache: GanacheNode, anchoring: str,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """The chain rolls back under a running oracle with nothing to anchor: its periodic look at the
    chain (``batch_chain_check_seconds``) finds the loss and anchors the records again; a record
    answered afterwards follows them (its batch goes out with the nonce the chain expects now)."""
    caplog.set_level(logging.WARNING, logger="govshare")
    running = oracles.start(anchoring=anchoring)
    oracles.ask(running, 1)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 1, "record 1 anchored")
    snapshot = ganache.rpc("evm_snapshot")
    oracles.ask(running, 3)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 4, "records 2..4 anchored")
    assert ganache.rpc("evm_revert", [snapshot]) is True
    assert oracles.on_chain() == [1]
    _wait(lambda: oracles.last_sequence() == 4, "the lost records anchored again while the oracle runs")
    _wait(lambda: running.oracle.outbox.pending_count() == 0
          and all(r.anchored_block for r in running.oracle.outbox.all_records()), "marked again")
    _assert_recovered(oracles, running, 4)
    assert "3 records lost from the chain (sequences 2..4), anchoring them again" in _logged(caplog, capfd)
    assert _lost_metric(running) == 3
    oracles.ask(running, 2)
    _wait(lambda: oracles.last_sequence() == 6 and running.oracle.outbox.pending_count() == 0, "records 5..6 anchored")
    _assert_recovered(oracles, running, 6)


@pytest.mark.parametrize("anchoring", ANCHORING_MODES)
def test_a_batch_stuck_behind_a_rolled_back_nonce_leads_to_reconciliation(
        oracles: Oracles, ganache: GanacheNode, anchoring: str,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """The chain rolls back under a running oracle and a new record is due before the periodic look:
    its batch goes out with the nonce after the oracle's lost transactions, which the node will never
    mine (the transactions before it are gone). Found stuck, the batcher sees the node's nonce below
    it and reconciles instead of waiting out the receipt timeout: the lost records and the new one
    reach the chain, once each, in order."""
    caplog.set_level(logging.WARNING, logger="govshare")
    running = oracles.start(anchoring=anchoring, batch_chain_check_seconds=3600.0)
    oracles.ask(running, 1)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 1, "record 1 anchored")
    snapshot = ganache.rpc("evm_snapshot")
    oracles.ask(running, 2)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 3, "records 2..3 anchored")
    assert ganache.rpc("evm_revert", [snapshot]) is True
    oracles.ask(running, 1)  # record 4: its batch is sent with a nonce the chain has not reached
    _wait(lambda: oracles.last_sequence() == 4 and running.oracle.outbox.pending_count() == 0,
          "the lost records and the new one anchored (the receipt timeout is 120 s)", timeout=60.0)
    _wait(lambda: all(r.anchored_block for r in running.oracle.outbox.all_records()), "marked again")
    _assert_recovered(oracles, running, 4)
    assert "2 records lost from the chain (sequences 2..3), anchoring them again" in _logged(caplog, capfd)
    assert _lost_metric(running) == 2


@pytest.mark.parametrize("anchoring", ANCHORING_MODES)
def test_a_lost_record_decided_at_a_block_the_chain_lost_waits_for_the_chain_to_reach_it(
        oracles: Oracles, ganache: GanacheNode, anchoring: str) -> None:
    """Records 2, 3 and 4 were decided at blocks S, S+1 and S+2 (each after the one before was mined);
    the chain goes back to S. Anchored again in one batch, at S+1, record 4 would be a served record
    anchored before the block it was decided at, which auditors flag (``decision_after_anchoring``):
    the batcher anchors 2..3 and holds 4 until the chain's next block is S+2."""
    running = oracles.start(anchoring=anchoring)
    oracles.ask(running, 1)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 1, "record 1 anchored")
    snapshot = ganache.rpc("evm_snapshot")
    start = oracles.consortium.chain.block_number()
    for sequence in (2, 3, 4):
        oracles.ask(running, 1)
        _wait(lambda: oracles.last_sequence() == sequence and running.oracle.outbox.pending_count() == 0,
              f"record {sequence} anchored and marked")
    decided = {r.sequence: r.entry.checked_at_block for r in running.oracle.outbox.all_records()}
    assert [decided[s] - start for s in (2, 3, 4)] == [0, 1, 2]
    assert ganache.rpc("evm_revert", [snapshot]) is True
    _wait(lambda: oracles.last_sequence() == 4 and running.oracle.outbox.pending_count() == 0,
          "the lost records anchored again")
    _wait(lambda: all(r.anchored_block for r in running.oracle.outbox.all_records()), "marked again")
    _assert_recovered(oracles, running, 4)  # the auditors' verification: no decision after its anchoring
    anchored = {r.sequence: r.anchored_block for r in running.oracle.outbox.all_records()}
    assert all(anchored[s] >= decided[s] for s in (2, 3, 4)) and anchored[4] == start + 2
    assert _lost_metric(running) == 3


@pytest.mark.parametrize("anchoring", ANCHORING_MODES)
def test_without_a_rollback_nothing_is_anchored_again(
        oracles: Oracles, anchoring: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """Restarts and the periodic look at the chain with nothing lost: no record is un-marked or sent
    again (each keeps the transaction that anchored it first), no warning, the counter stays 0."""
    caplog.set_level(logging.WARNING, logger="govshare")
    running = oracles.start(anchoring=anchoring)
    oracles.ask(running, 3)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 3, "records 1..3 anchored")
    first = {r.sequence: (r.anchored_tx, r.anchored_block) for r in running.oracle.outbox.all_records()}
    oracles.stop(running)
    running = oracles.start(anchoring=anchoring)  # reconciles with a chain that holds everything
    oracles.ask(running, 2)
    _wait(lambda: oracles.last_sequence() == 5 and running.oracle.outbox.pending_count() == 0, "records 4..5 anchored")
    time.sleep(2.0)  # several periodic looks at the chain (every 0.5 s)
    assert _lost_metric(running) == 0
    oracles.ask(running, 1)
    _wait(lambda: oracles.last_sequence() == 6 and running.oracle.outbox.pending_count() == 0, "record 6 anchored")
    _wait(lambda: all(r.anchored_block for r in running.oracle.outbox.all_records()), "marked")
    _assert_recovered(oracles, running, 6)
    now = {r.sequence: (r.anchored_tx, r.anchored_block) for r in running.oracle.outbox.all_records()}
    assert {s: now[s] for s in first} == first  # never un-marked, never anchored again
    logged = _logged(caplog, capfd)
    assert "lost from the chain" not in logged and "diverge" not in logged
    assert _lost_metric(running) == 0


def test_a_chain_holding_other_records_at_the_oracles_sequences_is_refused(
        oracles: Oracles, ganache: GanacheNode) -> None:
    """The chain rolled back past records 2..3 and then took a *different* record 2 from the oracle's
    key (another instance, or a forged history): the outbox's records cannot follow on from the
    chain's head without changing what the receipts signed. The oracle refuses to start, saying the
    chain diverged, and sends nothing: the chain keeps what it holds, nothing is overwritten."""
    from oracle.chain_rollback import ChainDiverged

    running = oracles.start(anchoring="thread")
    oracles.ask(running, 1)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 1, "record 1 anchored")
    snapshot = ganache.rpc("evm_snapshot")
    oracles.ask(running, 2)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 3, "records 2..3 anchored")
    oracles.stop(running)
    assert ganache.rpc("evm_revert", [snapshot]) is True
    other = AuditEntry(0, ZERO_ADDRESS, 0, 0, Outcome.DENIED, int(OracleReason.BAD_SIGNATURE), 1, b"\x22" * 32, b"\x00" * 32)
    # another sender with the oracle's key, on a connection of its own (its own nonce cache)
    consortium = Consortium(Chain(oracles.consortium.chain.url), oracles.consortium.deployment, oracles.consortium.compilation)
    consortium.audit_log.append(oracles.members.samr.oracle, 2, [other])
    head = consortium.audit_log.oracle_state(oracles.members.samr.oracle.address)
    with pytest.raises(ChainDiverged) as refused:
        oracles.start(anchoring="thread")
    assert "diverged" in str(refused.value) and "sequence 2" in str(refused.value)
    assert consortium.audit_log.oracle_state(oracles.members.samr.oracle.address) == head  # nothing sent
    assert oracles.on_chain() == [1, 2]


@pytest.mark.parametrize("anchoring", ANCHORING_MODES)
def test_a_running_oracle_stops_anchoring_on_a_chain_holding_other_records(
        oracles: Oracles, ganache: GanacheNode, anchoring: str,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """The same divergence under a running oracle: its look at the chain finds it, anchoring stops
    for good (CRITICAL in the log, ``/v1/health``'s last error), and nothing more is sent: a record
    answered afterwards stays in the outbox, and the chain keeps what it holds."""
    caplog.set_level(logging.WARNING, logger="govshare")
    running = oracles.start(anchoring=anchoring)
    oracles.ask(running, 1)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 1, "record 1 anchored")
    snapshot = ganache.rpc("evm_snapshot")
    oracles.ask(running, 2)
    _wait(lambda: running.oracle.outbox.pending_count() == 0 and oracles.last_sequence() == 3, "records 2..3 anchored")
    assert ganache.rpc("evm_revert", [snapshot]) is True
    other = AuditEntry(0, ZERO_ADDRESS, 0, 0, Outcome.DENIED, int(OracleReason.BAD_SIGNATURE), 1, b"\x22" * 32, b"\x00" * 32)
    consortium = Consortium(Chain(oracles.consortium.chain.url), oracles.consortium.deployment, oracles.consortium.compilation)
    consortium.audit_log.append(oracles.members.samr.oracle, 2, [other])
    head = consortium.audit_log.oracle_state(oracles.members.samr.oracle.address)
    _wait(lambda: "anchoring stopped" in (httpx.get(f"{running.url}/v1/health").json()["last_anchoring_error"] or ""),
          "the divergence reported in /v1/health")
    assert "diverged" in httpx.get(f"{running.url}/v1/health").json()["last_anchoring_error"]
    oracles.ask(running, 1)  # still answered (the record is durable), never anchored over the other history
    time.sleep(2.0)  # several looks at the chain and batch ages
    assert consortium.audit_log.oracle_state(oracles.members.samr.oracle.address) == head
    assert running.oracle.outbox.pending_count() == 1 and oracles.on_chain() == [1, 2]
    logged = _logged(caplog, capfd)
    assert "CRITICAL" in logged and "anchoring stopped for good" in logged and "lost from the chain" not in logged
