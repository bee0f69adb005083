#!/usr/bin/env python3
"""CPU the oracle's metrics add per answered query (``oracle.metrics.OracleMetrics.answered``: one
counter increment by outcome and reason, one histogram observation), and what a scrape costs.

Times ``--answers`` calls of what ``OracleHttpApp.answer_query`` adds per query (two
``time.perf_counter()`` reads and ``answered``), with the answers' outcomes mixed as under load
(mostly served, some denials and source failures), against the same loop without them; then
``--scrapes`` expositions of the registry (the scrape-time gauges read a stub outbox and a stub
chain here: the real ones add one SQLite read and one JSON-RPC call per scrape).

Usage (from the project root): ``.venv/bin/python scripts/bench/metrics_overhead.py [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.contracts.audit_log import OracleReason, Outcome  # noqa: E402
from ledger.contracts.grants import AccessReason  # noqa: E402
from oracle.metrics import OracleMetrics  # noqa: E402
from oracle.service import QueryAnswer  # noqa: E402
from protocol.receipt import Receipt  # noqa: E402


def _answer(outcome: Outcome, reason: int) -> QueryAnswer:
    receipt = Receipt(record_id="0x1", oracle="0x" + "00" * 20, sequence=1, dataset_id=1, dataset_version=1, grant_id=1,
                      requester="0x" + "11" * 20, outcome=int(outcome), reason=int(reason), checked_at_block=1,
                      request_hash="0x", response_hash="0x", request_salt="0x", response_salt="",
                      record_hash="0x", previous_head="0x", chain_head="0x")
    return QueryAnswer(200 if outcome is Outcome.SERVED else 403, receipt)


def _stub_service() -> SimpleNamespace:
    block = {"number": hex(1000), "timestamp": hex(int(time.time()))}
    chain = SimpleNamespace(rpc=SimpleNamespace(call=lambda method, params, timeout=None: block))
    outbox = SimpleNamespace(pending_count=lambda: 0, unanchored=lambda limit: [])
    config = SimpleNamespace(department="SAMR", mode="fast", anchoring="process")
    return SimpleNamespace(config=config, outbox=outbox, consortium=SimpleNamespace(chain=chain))


def run(answers: int, scrapes: int, rounds: int) -> dict[str, float]:
    metrics = OracleMetrics(_stub_service(), SimpleNamespace(anchored_batches=0, failures=0, lost_from_chain=0))  # type: ignore[arg-type]
    mix = [_answer(Outcome.SERVED, AccessReason.GRANTED)] * 8 + [
        _answer(Outcome.DENIED, AccessReason.FIELDS_NOT_GRANTED), _answer(Outcome.SOURCE_FAILURE, OracleReason.SOURCE_TIMEOUT)]
    workload = [mix[i % len(mix)] for i in range(answers)]
    clock = time.perf_counter

    def baseline() -> float:
        start = time.process_time()
        for answer in workload:
            answer.receipt  # noqa: B018 - the loop's own cost
        return time.process_time() - start

    def measured() -> float:
        start = time.process_time()
        for answer in workload:
            started = clock()
            metrics.answered(answer, clock() - started)
        return time.process_time() - start

    added = []
    for _ in range(rounds):
        added.append((measured() - baseline()) / answers * 1e6)
    start = time.process_time()
    for _ in range(scrapes):
        metrics.exposition(None)
    scrape_ms = (time.process_time() - start) / scrapes * 1e3
    return {"answers": answers, "rounds": rounds, "us_per_query_median": statistics.median(added),
            "us_per_query_min": min(added), "us_per_query_max": max(added), "scrape_ms": scrape_ms,
            "exposition_bytes": len(metrics.exposition(None)[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.answers, args.scrapes, args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"added CPU per answered query: {result['us_per_query_median']:.2f} µs median of {args.rounds} rounds "
          f"of {args.answers:,} (min {result['us_per_query_min']:.2f}, max {result['us_per_query_max']:.2f})")
    print(f"one scrape (exposition, stub outbox and chain): {result['scrape_ms']:.2f} ms, "
          f"{result['exposition_bytes']:,} bytes")


if __name__ == "__main__":
    main()
