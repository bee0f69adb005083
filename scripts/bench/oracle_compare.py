#!/usr/bin/env python3
"""This tree's oracle against another checkout's, side by side in one run: throughput, CPU per
query and the latency added at a fixed open-loop rate; for "no regression, measured as a ratio in
one run". (At 2118fba it also ran this tree's oracle on its former hand-written HTTP server, the
variant ``builtin``: the ninth round of ``bench/README.md``, which chose uvicorn.)

The same setup as ``oracle_load.py`` (anvil or ganache with instant mining, the sample company API,
SAMR's oracle as ``python -m cli.main oracle serve``, pre-signed bodies used once). For each of
``--rounds`` rounds, the two run in turn, in reverse order every other round (after, before, then
before, after, ...), so a drift of the machine weighs on both alike; each run: a fresh oracle
process on the same outbox, a warm-up, a closed-loop wrk run in fast mode (answers/s and the
answering process's CPU per query), then ``--open-repeats`` open-loop runs at one rate for all runs
(half the first run's peak, or ``--rate``), each paired with the direct API at that rate. The
report gives each side's medians and the ratios after / before.

``before`` is the oracle of another checkout (with its own ``.venv``), started as that tree starts
it (``--before-command``, default ``-m cli.main oracle serve``; ``-m ledger.cli oracle serve`` for
a tree before the layout change, 82e766b and older), cwd that tree, with the same config.

Usage (from the project root; wrk, a C compiler and anvil as for ``oracle_load.py``):

    git worktree add /tmp/before 82e766b && make -C /tmp/before setup
    .venv/bin/python scripts/bench/oracle_compare.py --before-tree /tmp/before \
        --before-command "-m ledger.cli oracle serve" --max-rps 4500     # ~25 min; --json for JSON
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    OPEN_WARMUP,
    PYTHON,
    ChainNode,
    Proc,
    direct_requests,
    free_port,
    open_loop,
    oracle_requests,
    run_wrk,
    wait_http,
)
from oracle_setup import Bodies, direct_paths, set_up_consortium, start_oracle, write_config  # noqa: E402

VARIANTS = ("after", "before")


def start_variant(variant: str, workdir: Path, name: str, config: Path, port: int, before_tree: Path,
                  before_command: list[str]) -> Proc:
    """The oracle of ``variant``: this tree's (``after``) or the other checkout's (``before``), as
    each tree starts it."""
    if variant == "after":
        return start_oracle(workdir, name, config, port)
    proc = Proc(name, [str(before_tree / ".venv" / "bin" / "python"), *before_command, "--config", str(config)],
                workdir, cwd=before_tree)
    wait_http(f"http://127.0.0.1:{port}/v1/health", proc, timeout=120)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-tree", type=Path, required=True, help="the other checkout (with its .venv)")
    parser.add_argument("--before-command", default="-m cli.main oracle serve",
                        help="how that tree starts its oracle, after its python (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both (ABBA order)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--open-duration", type=int, default=15, help="seconds per open-loop run")
    parser.add_argument("--open-repeats", type=int, default=2, help="open-loop pairs per server run")
    parser.add_argument("--rate", type=float, default=None, help="open-loop rate (default: half the first run's peak)")
    parser.add_argument("--max-rps", type=float, default=3000.0, help="an upper bound of the oracle's peak, to size the bodies")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    variants = VARIANTS
    before_command = args.before_command.split()
    for tool in ("wrk", "cc"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install -y wrk gcc)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="oracle-compare-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    wrk_kw = dict(threads=args.threads, connections=args.connections, duration=args.duration)
    order = [s for r in range(args.rounds) for s in (variants if r % 2 == 0 else variants[::-1])]
    procs: list[Proc] = []
    node: ChainNode | None = None
    runs: list[dict[str, Any]] = []
    try:
        api_port = free_port()
        api = Proc("company-api", [PYTHON, "-m", "devtools.sample_apis", "companies", "--port", str(api_port)], workdir)
        procs.append(api)
        api_url = f"http://127.0.0.1:{api_port}"
        wait_http(api_url + "/health", api)
        node = ChainNode(workdir, "chain")
        setup = set_up_consortium(node.url, workdir)
        per_closed = int(args.max_rps * args.duration)
        per_open = int(args.max_rps / 2 * (args.open_duration + OPEN_WARMUP)) + 1
        count = len(order) * (400 + per_closed + args.open_repeats * per_open)
        log(f"signing {count} request bodies")
        bodies = Bodies(setup, count)
        paths = direct_paths()
        rate = args.rate
        for i, server in enumerate(order):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            config = write_config(workdir, f"oracle-{i}-{server}", setup, node.url, api_url, port, "fast",
                                  workdir / "outbox.sqlite")
            oracle = start_variant(server, workdir, f"oracle-{i}-{server}", config, port, args.before_tree, before_command)
            procs.append(oracle)
            run_wrk(url, "oracle_query.lua", bodies.take(400), workdir, f"warmup-{i}", threads=1, connections=4, duration=2)
            log(f"run {i + 1} of {len(order)}: {server}, closed loop")
            cpu0 = oracle.cpu_seconds()
            closed = run_wrk(url, "oracle_query.lua", bodies.take(per_closed), workdir, f"closed-{i}-{server}", **wrk_kw)
            closed["oracle_cpu_ms_per_request"] = (oracle.cpu_seconds() - cpu0) / max(1, closed["responses"]) * 1000
            if closed["wrapped"]:
                log("WARNING: the closed-loop run used bodies twice; raise --max-rps")
            if rate is None:
                rate = round(closed["rps"] / 2)
            pairs = []
            for k in range(args.open_repeats):
                log(f"run {i + 1}: {server}, open loop at {rate}/s ({k + 1} of {args.open_repeats})")
                direct = open_loop(api_url, direct_requests(api_url, paths), rate, args.open_duration, workdir,
                                   f"open-direct-{i}-{k}")
                served = open_loop(url, oracle_requests(url, bodies.take(per_open)), rate, args.open_duration, workdir,
                                   f"open-{server}-{i}-{k}")
                pairs.append({"direct_p99_ms": direct["p99_ms"], "oracle_p50_ms": served["p50_ms"],
                              "oracle_p99_ms": served["p99_ms"], "added_p99_ms": served["p99_ms"] - direct["p99_ms"],
                              "non2xx": served["non2xx"]})
            oracle.stop()
            procs.remove(oracle)
            runs.append({"server": server, "rps": closed["rps"], "non2xx": closed["non2xx"],
                         "cpu_ms_per_query": closed["oracle_cpu_ms_per_request"], "open": pairs})
    finally:
        for proc in procs:
            proc.stop()
        if node is not None:
            node.stop()
    summary = {}
    for server in variants:
        mine = [r for r in runs if r["server"] == server]
        summary[server] = {
            "rps": statistics.median(r["rps"] for r in mine),
            "cpu_ms_per_query": statistics.median(r["cpu_ms_per_query"] for r in mine),
            "added_p99_ms": statistics.median(p["added_p99_ms"] for r in mine for p in r["open"]),
        }
    ratios = {"rps": summary["after"]["rps"] / summary["before"]["rps"],
              "cpu_ms_per_query": summary["after"]["cpu_ms_per_query"] / summary["before"]["cpu_ms_per_query"],
              "added_p99_ms": summary["after"]["added_p99_ms"] / summary["before"]["added_p99_ms"]}
    report = {"workdir": str(workdir), "cpus": os.cpu_count(), "chain": f"{node.kind} {node.version}" if node else None,
              "open_rate": rate, "order": order, "runs": runs, "summary": summary, "after_over_before": ratios}
    (workdir / "report.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"this tree's oracle (after) and {args.before_tree}'s (before) side by side ({report['chain']}; open loop at "
          f"{rate}/s; work dir {workdir})")
    for i, run in enumerate(runs):
        added = ", ".join(f"{p['added_p99_ms']:.1f}" for p in run["open"])
        print(f"  run {i + 1} {run['server']:<8} {run['rps']:>8.0f} answers/s  {run['cpu_ms_per_query']:.3f} ms CPU/query  "
              f"added p99 {added} ms  (non-2xx {run['non2xx']})")
    for server, s in summary.items():
        print(f"  median {server:<8} {s['rps']:>8.0f} answers/s  {s['cpu_ms_per_query']:.3f} ms CPU/query  "
              f"added p99 {s['added_p99_ms']:.1f} ms")
    print(f"  after / before: throughput {ratios['rps']:.3f}, CPU per query {ratios['cpu_ms_per_query']:.3f}, "
          f"added p99 {ratios['added_p99_ms']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
