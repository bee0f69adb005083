"""The anchoring process (``oracle.anchoring``, ``anchoring = "process"``, the default): the batcher in
a process of its own, told by the answering process when a strict answer waits and when to stop,
telling it what reached the chain. Real processes, the real chain, real HTTP."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

from devtools.sample_data import companies
from oracle.errors import ConfigError
from tests.oracle.conftest import RunningOracle


def _ask(running: RunningOracle, members, published, index: int):
    return running.client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                                published.company_fields, {"company_id": companies()[index]["company_id"]})


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _on_chain(consortium, oracle: str) -> list[int]:
    return [r.sequence for r in consortium.audit_log.records() if r.oracle == oracle]


def test_an_oracle_whose_batching_cannot_meet_the_decision_age_bound_does_not_start(
        consortium, members, published, start, committee, tmp_path: Path) -> None:
    """The consortium lowers maxDecisionAgeBlocks by a vote below what the oracle's batching needs:
    the oracle refuses to start (read from the chain at start-up), naming the settings and the bound,
    before it opens its outbox; within the bound it starts."""
    registry = consortium.registry
    registry.pass_proposal(committee[:2], registry.set_max_decision_age_blocks_call(60), "tighter")
    with pytest.raises(ConfigError) as refused:
        start(batch_max_age_seconds=3600.0)  # needs ceil(3841 / 60) + 4 = 69 blocks
    assert refused.value.key == "batch_max_age_seconds"
    assert "up to 69 blocks" in str(refused.value) and "the consortium allows 60" in str(refused.value)
    assert not (tmp_path / "SAMR-outbox.sqlite").exists()
    running = start(batch_max_age_seconds=60.0)  # ceil(301 / 60) + 4 = 10 blocks
    assert running.oracle.batcher.last_error is None


def test_records_reach_the_chain_and_are_marked_in_the_outbox(consortium, members, published, start) -> None:
    running = start(anchoring="process", batch_max_age_seconds=0.2)
    process = running.oracle.batcher.process
    assert process is not None and process.poll() is None
    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    assert b"oracle.anchoring" in cmdline
    key = bytes(members.samr.oracle.account.key).hex().encode()
    environ = Path(f"/proc/{process.pid}/environ").read_bytes()
    assert key not in cmdline.lower() and key not in environ.lower()  # the key went through the socket only
    receipts = [_ask(running, members, published, 60 + i).receipt for i in range(5)]
    outbox = running.oracle.outbox
    _wait(lambda: outbox.pending_count() == 0, "the five records anchored and marked")
    assert _on_chain(consortium, members.samr.oracle.address) == [r["sequence"] for r in receipts] == [1, 2, 3, 4, 5]
    assert all(outbox.get(s).anchored_block for s in range(1, 6))
    assert consortium.grants.grant(published.tax_grant).used == 5  # the quota count followed
    health = httpx.get(f"{running.url}/v1/health").json()
    assert health["pending"] == 0 and health["last_anchoring_error"] is None


def test_a_strict_answer_is_anchored_at_once(consortium, members, published, start) -> None:
    """Nothing would fall due for an hour; the answer's wait, told to the anchoring process, anchors it."""
    running = start(anchoring="process", mode="strict", batch_max_age_seconds=3600.0, strict_timeout_seconds=15.0)
    began = time.monotonic()
    result = _ask(running, members, published, 70)
    assert result.records and time.monotonic() - began < 10
    assert _on_chain(consortium, members.samr.oracle.address) == [result.receipt["sequence"]]


def test_a_dead_anchoring_process_is_replaced_and_nothing_is_lost(consortium, members, published, start) -> None:
    running = start(anchoring="process", batch_max_age_seconds=0.2)
    first = running.oracle.batcher.process
    assert first is not None
    _ask(running, members, published, 80)
    _wait(lambda: running.oracle.outbox.pending_count() == 0, "the first record anchored")
    os.kill(first.pid, signal.SIGKILL)
    for i in range(3):  # answered meanwhile: the outbox keeps them
        _ask(running, members, published, 81 + i)
    _wait(lambda: running.oracle.batcher.process is not first and running.oracle.outbox.pending_count() == 0,
          "a new anchoring process anchored the rest")
    assert _on_chain(consortium, members.samr.oracle.address) == [1, 2, 3, 4]


def test_stopping_anchors_what_is_pending(consortium, members, published, start) -> None:
    running = start(anchoring="process", batch_max_age_seconds=3600.0)
    for i in range(4):
        _ask(running, members, published, 90 + i)
    assert _on_chain(consortium, members.samr.oracle.address) == []  # nothing was due
    process = running.oracle.batcher.process
    running.oracle.batcher.stop(flush=True)  # what the oracle's close does on a clean shutdown
    assert _on_chain(consortium, members.samr.oracle.address) == [1, 2, 3, 4]
    assert running.oracle.outbox.pending_count() == 0  # and marked, before stop returned
    assert process is not None and process.poll() == 0


def test_a_refusal_in_the_anchoring_process_is_reported_and_the_records_wait(consortium, members, published, start) -> None:
    """The oracle account loses its ORACLE role: the chain refuses the batch, the anchoring process
    says so, ``/v1/health`` shows it, and the records wait; once the role is back, they are anchored."""
    from ledger.contracts.registry import Role

    running = start(anchoring="process", batch_max_age_seconds=0.2)
    oracle = members.samr.oracle.address
    consortium.registry.remove_account(members.samr.operator, oracle, Role.ORACLE)
    _ask(running, members, published, 95)  # answered (fast mode) and durable
    _wait(lambda: "AuditLogNotOracle" in (httpx.get(f"{running.url}/v1/health").json()["last_anchoring_error"] or ""),
          "the refusal reported in /v1/health")
    assert running.oracle.outbox.pending_count() == 1
    consortium.registry.add_account(members.samr.operator, oracle, Role.ORACLE)
    _wait(lambda: running.oracle.outbox.pending_count() == 0, "the record anchored once the role is back")
    assert _on_chain(consortium, oracle) == [1]
    assert httpx.get(f"{running.url}/v1/health").json()["last_anchoring_error"] is None


def test_a_stop_is_heard_while_the_chain_keeps_refusing(consortium, members, published, start) -> None:
    """While every batch is refused the anchoring process never waits for work; a stop still reaches
    it between two attempts, and it exits by itself (not killed after the stop's timeout)."""
    from ledger.contracts.registry import Role

    running = start(anchoring="process", batch_max_age_seconds=0.2)
    consortium.registry.remove_account(members.samr.operator, members.samr.oracle.address, Role.ORACLE)
    _ask(running, members, published, 96)
    _wait(lambda: running.oracle.batcher.last_error is not None, "the refusal reported")
    process = running.oracle.batcher.process
    began = time.monotonic()
    running.oracle.batcher.stop(flush=False, timeout=20.0)
    assert time.monotonic() - began < 10
    assert process is not None and process.poll() == 0
    assert running.oracle.outbox.pending_count() == 1  # the record waits in the outbox for the next start


def test_an_oracle_on_an_https_node_with_its_own_ca_answers_and_anchors(
    tmp_path, consortium, members, published, company_api, compilation
) -> None:
    """The chain behind TLS with a certificate from the consortium's own CA (``rpc_ca_file``): the
    answering process checks the grant over it, and the anchoring process, which connects by
    itself from the settings it is sent, anchors over it."""
    from ledger.chain import Chain
    from ledger.deployment import Consortium
    from ledger.tls import ClientTls
    from oracle.config import DatasetConfig
    from tests.oracle.conftest import oracle_config, start_oracle
    from tests.support.certificates import TestAuthority, https_server_context
    from tests.support.rpc_gateway import RpcGateway

    authority = TestAuthority(tmp_path, "consortium")
    gateway = RpcGateway(consortium.chain.url, tls=https_server_context(authority, "besu-node")).start()
    running = None
    try:
        over_tls = Consortium(Chain(gateway.url, tls=ClientTls(authority.ca_file)), consortium.deployment, compilation)
        datasets = {published.companies: DatasetConfig(id=published.companies, base_url=company_api.url,
                                                       path="/companies", params=("company_id", "status"))}
        config = oracle_config(tmp_path, over_tls, "SAMR", datasets, anchoring="process", batch_max_age_seconds=0.2,
                               rpc_ca_file=authority.ca_file)
        assert config.rpc_url.startswith("https://")
        running = start_oracle(config, members.samr.oracle, over_tls)
        answer = _ask(running, members, published, 12)
        assert answer.records and answer.receipt["sequence"] == 1
        _wait(lambda: running.oracle.outbox.pending_count() == 0, "the record anchored over TLS")
        assert _on_chain(consortium, members.samr.oracle.address) == [1]
        assert "eth_sendRawTransaction" in gateway.methods  # it went through the https node
    finally:
        if running is not None:
            running.stop()
        gateway.stop()


def test_the_anchoring_process_sends_an_unmined_batch_again(consortium, members, published, start, ganache) -> None:
    """``batch_stuck_after_seconds`` reaches the anchoring process: with the node mining nothing, its
    batch is sent again in its own place (same nonce, higher fee: the node's pool shows the
    replacement), and once blocks come the record is on chain once."""
    oracle = members.samr.oracle.address
    consortium.chain.send_call_data(members.samr.oracle, oracle, b"", gas=21_000)  # past nonce 0 (ganache renumbers it)
    running = start(anchoring="process", batch_max_age_seconds=0.1, batch_stuck_after_seconds=0.5,
                    rpc_receipt_timeout_seconds=600.0)
    ganache.rpc("miner_stop")
    try:
        receipt = _ask(running, members, published, 80).receipt
        fees: list[int] = []

        def replaced() -> bool:
            pending = ganache.rpc("txpool_content")["pending"].get(oracle.lower(), {})
            fees.extend(int(tx["maxFeePerGas"], 16) for tx in pending.values())
            return len(set(fees)) >= 2  # the first version's fee, then a higher one in its place
        _wait(replaced, "the unmined batch sent again with a higher fee")
        assert max(fees) > min(fees) and len(ganache.rpc("txpool_content")["pending"][oracle.lower()]) == 1
        ganache.rpc("evm_mine")
    finally:
        ganache.rpc("miner_start")
    _wait(lambda: running.oracle.outbox.pending_count() == 0, "the record anchored")
    assert _on_chain(consortium, oracle) == [receipt["sequence"]] == [1]


def test_an_anchoring_process_started_while_the_chain_is_down_waits_for_it(tmp_path, consortium, members) -> None:
    """The anchoring process asks the node its chain id before anything else; a process (re)started
    while the chain is down must wait for it and say so, as it waits to reconcile, not exit with a
    traceback to be started again every second (seen in the fault soak, bench/README.md)."""
    from devtools.devnet import free_port
    from ledger.errors import LedgerError
    from oracle.anchoring import AnchoringProcess, AnchoringSettings
    from oracle.outbox import Outbox

    outbox = Outbox(tmp_path / "outbox.sqlite")
    settings = AnchoringSettings(rpc_url=f"http://127.0.0.1:{free_port()}", deployment_json=consortium.deployment.to_json(),
                                 compilation=consortium.compilation, outbox=tmp_path / "outbox.sqlite", max_records=10,
                                 max_age=0.2, retry_delay=0.2, rpc_timeout=2.0)
    handle = AnchoringProcess(outbox, members.samr.oracle, settings, restart_delay=0.2, start_timeout=3.0)
    try:
        with pytest.raises(LedgerError, match="did not start"):
            handle.start()  # never ready: nothing to reconcile with
        first = handle.process
        assert first is not None
        _wait(lambda: "cannot reach" in (handle.last_error or ""), "the outage reported")
        time.sleep(1.0)
        assert handle.process is first and first.poll() is None, handle.last_error  # the same process, waiting
        began = time.monotonic()
        handle.stop(flush=False, timeout=10.0)
        assert time.monotonic() - began < 5 and first.poll() == 0  # and it hears a stop meanwhile
    finally:
        handle.stop(flush=False, timeout=5.0)
        outbox.close()


def test_an_anchoring_process_whose_oracle_is_gone_stops_when_it_confirms_a_batch(tmp_path) -> None:
    """The answering process was killed while a batch was being mined: telling it the batch is on
    chain finds the socket closed. The anchoring process stops then (the next oracle reconciles with
    the chain), as it does when a status report finds the socket closed; it does not log a traceback
    and go on anchoring beside the next oracle's anchoring process (seen in the fault soak)."""
    from multiprocessing import Pipe

    from oracle.anchoring import OutboxFile

    ours, theirs = Pipe()
    side = OutboxFile(tmp_path / "outbox.sqlite", ours)
    stops: list[bool] = []

    class Batcher:
        def request_stop(self) -> None:
            stops.append(True)

    side.batcher = Batcher()  # type: ignore[assignment]  # only its stop is asked for
    theirs.close()
    side.mark_anchored(1, 3, "0x" + "ab" * 32, 7)
    assert side.parent_gone and stops == [True]
