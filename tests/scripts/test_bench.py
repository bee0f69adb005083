"""The benchmark runners (``scripts/bench/``) run, with small parameters, as real processes, and say
what their README sections say they measure. Figures are not asserted (timings are noisy); what a
run must show is (gas falling with the batch, a verification that passes, every client measured,
the oracle answering without a refusal, the anchoring delay measured...)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BENCH = PROJECT_ROOT / "scripts" / "bench"


def _run(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=PROJECT_ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout)


def _json(script: str, *args: str, timeout: float = 600, exit_codes: tuple[int, ...] = (0,)) -> Any:
    done = _run(script, *args, "--json", timeout=timeout)
    assert done.returncode in exit_codes and done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout)


RUNNERS = sorted(p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__"' in p.read_text())


def test_the_runners_are_found() -> None:
    assert {"oracle_load.py", "oracle_compare.py", "oracle_instructions.py", "audit_verify.py", "gas_audit_log.py",
            "http_clients.py", "outbox_writes.py", "metrics_overhead.py"} <= set(RUNNERS)


@pytest.mark.parametrize("script", RUNNERS)
def test_every_runner_answers_help(script: str) -> None:
    done = _run(script, "--help", timeout=120)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]


def test_gas_per_record_falls_with_the_batch() -> None:
    report = _json("gas_audit_log.py", "--sizes", "1,10", "--rounds", "1", "--baseline-txs", "2")
    cells = {(c["scenario"], c["batch"]): c["gas_per_record"] for c in report["results"]}
    for scenario in ("single-grant", "two-grants", "mixed"):
        assert cells[(scenario, 10)] < cells[(scenario, 1)] < 80_000, cells
    assert cells[("single-grant", 10)] < cells[("two-grants", 10)], cells  # a new quota run per record costs more


def test_audit_verification_of_a_small_trail() -> None:
    """The runner asserts every verification passes before it reports; its exit code says whether the
    rate target was met, which a trail this small need not."""
    report = _json("audit_verify.py", "--records", "600", "--batch", "200", "--rounds", "1", "--node", "ganache",
                   timeout=900, exit_codes=(0, 1))
    assert report["records"] == 600 and report["target_per_second"] == 20_000
    assert 0 < report["served_replayed"] < 600 and report["verify_records_per_second"] > 0
    assert report["resume_records"] > 0 and report["index_file_mb"] > 0


def test_http_clients_are_all_measured() -> None:
    report = _json("http_clients.py", "--calls", "40", "--rounds", "1", timeout=300)
    assert report["ratio_to_baseline"]["ledger.http_client KeepAlivePool"] == 1.0
    assert {"aiohttp", "urllib3", "requests", "httpx (blocking)", "httpx (asyncio)"} <= set(report["cpu_us_per_call"])
    assert all(value > 0 for value in report["cpu_us_per_call"].values())


def test_outbox_writes_and_metrics_overhead() -> None:
    writes = _run("outbox_writes.py", "--rate", "200", "--seconds", "2", timeout=300)
    assert writes.returncode == 0, writes.stderr[-2000:]
    result = json.loads(writes.stdout.strip().splitlines()[-1])
    assert result["rate"] == 200 and 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"], result
    assert result["largest_wal_mb"] > 0, result
    overhead = _json("metrics_overhead.py", "--answers", "2000", "--rounds", "1", "--scrapes", "3", timeout=300)
    assert overhead["answers"] == 2000 and overhead["scrape_ms"] > 0 and overhead["exposition_bytes"] > 1000, overhead


def test_oracle_load_runs_every_phase(tmp_path: Path) -> None:
    """The oracle benchmark end to end in miniature: the chain (ganache when anvil is missing), the
    department API, the oracle as a process, every phase but strict mode (tested in
    tests/oracle/test_strict_mode.py; with 2 s blocks it would add a minute), no refusal."""
    missing = [tool for tool in ("wrk", "cc") if shutil.which(tool) is None]
    assert not missing, f"{missing} missing: `make test-tools` installs them (make test does)"
    report = _json("oracle_load.py", "--duration", "1", "--open-duration", "2", "--open-repeats", "1",
                   "--anchor-duration", "4", "--anchor-rate", "20", "--max-rps", "3000", "--threads", "1",
                   "--connections", "4", "--skip-strict", "--workdir", str(tmp_path), timeout=900)
    assert not report["fast"]["wrapped"], "the oracle outran the signed bodies: raise --max-rps"
    assert report["direct"]["rps"] > 0 and report["fast"]["rps"] > 0 and report["fast"]["non2xx"] == 0
    assert report["open_oracle"]["non2xx"] == 0 and report["added_ms"]["p99"] is not None
    assert report["anchoring_delay"]["records"] > 0 and report["anchoring_delay"]["unanchored"] == 0
    assert report["anchoring_throughput"]["batch_100"]["gas_per_record"] < report["anchoring_throughput"]["one_tx_per_record"]["gas_per_record"]


def test_the_gas_benchmark_survives_a_node_slower_than_its_rpc_timeout(ganache) -> None:
    """An estimate left unanswered past the runner's RPC timeout (as a busy ganache did with a batch
    of 500) is asked again instead of aborting the run; the batch is appended once."""
    import importlib.util

    from ledger.chain import Chain
    from tests.support.rpc_gateway import RpcGateway

    spec = importlib.util.spec_from_file_location("gas_audit_log_under_test", BENCH / "gas_audit_log.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    gateway = RpcGateway(ganache.url).start()
    try:
        bench = module.Bench(Chain(f"http://127.0.0.1:{gateway.server_address[1]}", timeout=2.0))
        before = bench.c.audit_log.oracle_state(bench.oracle.address).last_sequence
        gateway.estimates_to_drop = 2  # the first append's estimates (1 s, then the rest of the 2 s) go unanswered
        gas, _ = bench.append(bench.entries("single-grant", 3))
        assert gas > 0 and gateway.estimates_to_drop == 0
        assert bench.c.audit_log.oracle_state(bench.oracle.address).last_sequence == before + 3
    finally:
        gateway.stop()


def test_the_fault_soak_injects_every_fault_and_loses_nothing(tmp_path: Path) -> None:
    """The fault soak in miniature: each kind of fault once (and one more), real processes, under
    load in fast and strict mode; no receipt without its record on chain, no record twice, and
    `govshare audit verify` with the oracle's export and every receipt passes."""
    report = _json("fault_soak.py", "--faults", "6", "--interval", "0.3", "--warmup", "2", "--settle", "2",
                   "--progress", "0", "--workdir", str(tmp_path), timeout=600, exit_codes=(0, 1))
    assert set(report["faults_by_kind"]) == {"kill-answering", "kill-anchoring", "kill-chain", "kill-department-api",
                                             "oracle-restart-chain-down"}, report["faults_by_kind"]
    assert report["faults"] == 6 and report["aborted"] is None and report["oracle_exited_by_itself"] == []
    assert {e.split(" (")[1] for e in report["faults_by_kind_and_mode"]} == {"fast)", "strict)"}, report["faults_by_kind_and_mode"]
    counts = report["queries"]["counts"]
    assert counts.get("status_200", 0) > 0 and counts.get("status_403", 0) > 0, counts  # served and denied answers
    assert report["receipts"] > 0 and report["records_on_chain"] >= report["receipt_sequences"], report
    assert report["lost"] == 0 and report["duplicated"] == 0 and report["gaps"] == 0, report.get("examples")
    assert report["records_unmatched"] == 0 and report["conflicting_receipts"] == 0, report.get("examples")
    assert report["drained"] and report["verify_exit_code"] == 0, report.get("verify_violations") or report.get("verify_output")
    assert report["chain_down_start_not_refused"] == [] and report["anchoring_orphaned"] == 0
    assert report["passed"]


def _soak_tally() -> Any:
    import importlib.util

    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("soak_tally_under_test", BENCH / "soak_tally.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_soak_tally_counts_lost_and_duplicated_records() -> None:
    """The soak's accounting on made-up records: a receipt whose record is missing or another is
    lost; the same request hash twice is a duplicate, except strict mode's SERVED + WITHHELD pair; a
    record without a receipt is tied to its lost answer's query, and a second non-replay record of
    that query is a duplicate."""
    from ledger.contracts.audit_log import (
        AuditEntry,
        AuditRecord,
        OracleReason,
        Outcome,
    )
    from ledger.contracts.audit_log import record_id as make_record_id
    from ledger.hashing import new_salt
    from protocol import commitments

    tally = _soak_tally()
    oracle, requester = "0x" + "0A" * 20, "0x" + "0B" * 20

    def record(sequence: int, request_hash: bytes, outcome: Outcome = Outcome.SERVED, reason: int = 0) -> AuditRecord:
        entry = AuditEntry(1, requester, 1, 1, outcome, reason, 5, request_hash, b"\x00" * 32)
        return AuditRecord(make_record_id(oracle, sequence), oracle, sequence, entry, sequence, "0x", 0)

    def receipt(r: AuditRecord) -> dict[str, Any]:
        return {"sequence": r.sequence, "record_id": hex(r.record_id), "request_hash": "0x" + r.entry.request_hash.hex(),
                "response_hash": "0x" + r.entry.response_hash.hex(), "outcome": int(r.entry.outcome), "reason": r.entry.reason}

    h = [bytes([i]) * 32 for i in range(10)]
    chain = [record(1, h[1]), record(2, h[2]), record(3, h[2], Outcome.DENIED, int(OracleReason.WITHHELD))]
    ledger = tally.Ledger(receipts=[(11, receipt(chain[0])), (12, receipt(chain[2]))])
    clean = tally.tally(chain, oracle, ledger, [])
    assert (clean["lost"], clean["duplicated"], clean["withheld_pairs"], clean["records_unmatched"]) == (0, 0, 1, 0), clean

    missing = tally.Ledger(receipts=[*ledger.receipts, (13, receipt(record(4, h[4])))])
    altered = tally.Ledger(receipts=[*ledger.receipts, (14, receipt(record(2, h[5])))])
    assert tally.tally(chain, oracle, missing, [])["lost"] == 1
    assert tally.tally(chain, oracle, altered, [])["lost"] == 1
    assert tally.tally([*chain, record(4, h[1])], oracle, ledger, [])["duplicated"] == 1  # one request anchored twice

    # a lost answer: its query's committed form, and the records the oracle made of it (salt from its export)
    query = {"query": {"nonce": "7"}, "signature": "0x01", "params": {"company_id": "X"}}
    salt, salt2 = new_salt(), new_salt()
    first = record(4, commitments.request_hash(query, salt))
    replayed = record(5, commitments.request_hash(query, salt2), Outcome.DENIED, int(OracleReason.NONCE_REPLAYED))
    export = [{"sequence": 4, "request_salt": "0x" + salt.hex()}, {"sequence": 5, "request_salt": "0x" + salt2.hex()}]
    lost_answer = tally.Ledger(receipts=[*ledger.receipts, (7, receipt(replayed))], lost_answers={7: query})
    fine = tally.tally([*chain, first, replayed], oracle, lost_answer, export)
    assert (fine["duplicated"], fine["records_matched_to_lost_answers"], fine["records_unmatched"]) == (0, 1, 0), fine
    served_twice = record(5, commitments.request_hash(query, salt2))
    twice = tally.Ledger(receipts=[*ledger.receipts, (7, receipt(served_twice))], lost_answers={7: query})
    assert tally.tally([*chain, first, served_twice], oracle, twice, export)["duplicated"] == 1
    assert tally.tally([*chain, first], oracle, ledger, [])["records_unmatched"] == 1  # no salt: not tied to a query
