#!/usr/bin/env python3
"""The oracle served by uvicorn (``serving``) against its former hand-written HTTP server (and,
with ``--before-tree``, against the code before the layout change), side by side in one run:
throughput, CPU per query and the latency added at a fixed open-loop rate.

The same setup as ``oracle_load.py`` (anvil or ganache with instant mining, the sample company API,
SAMR's oracle as ``python -m cli.main oracle serve``, pre-signed bodies used once). For each of
``--rounds`` rounds, the variants run in turn, in reverse order every other round (uvicorn, builtin,
then builtin, uvicorn, ...), so a drift of the machine weighs on all alike; each run: a fresh oracle
process on the same outbox, a warm-up, a closed-loop wrk run in fast mode (answers/s and the
answering process's CPU per query), then ``--open-repeats`` open-loop runs at one rate for all runs
(half the first uvicorn run's peak, or ``--rate``), each paired with the direct API at that rate.
The report gives each variant's medians and the ratios to ``builtin``.

``--before-tree DIR`` adds the variant ``before``: the oracle of another checkout (e.g. the commit
before the layout change, with its own ``.venv``), started as that tree starts it
(``DIR/.venv/bin/python -m ledger.cli oracle serve``, cwd DIR) with the same config.

Usage (from the project root; wrk, a C compiler and anvil as for ``oracle_load.py``):

    .venv/bin/python scripts/bench/oracle_servers.py --max-rps 3000     # ~15 min; --json for JSON
    git worktree add /tmp/before 82e766b && make -C /tmp/before setup
    .venv/bin/python scripts/bench/oracle_servers.py --max-rps 3000 --before-tree /tmp/before
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
    PYTHON,
    ChainNode,
    Proc,
    direct_requests,
    free_port,
    open_loop,
    OPEN_WARMUP,
    oracle_requests,
    run_wrk,
    wait_http,
)
from oracle_setup import Bodies, direct_paths, set_up_consortium, start_oracle, write_config  # noqa: E402

SERVERS = ("uvicorn", "builtin")


def start_variant(variant: str, workdir: Path, name: str, config: Path, port: int, before_tree: Path | None) -> Proc:
    """The oracle of ``variant``: this tree's, served by uvicorn or the builtin server, or ``before``:
    the other checkout's, as that tree starts it."""
    if variant != "before":
        return start_oracle(workdir, name, config, port, env={"GOVSHARE_ORACLE_HTTP_SERVER": variant})
    assert before_tree is not None
    proc = Proc(name, [str(before_tree / ".venv" / "bin" / "python"), "-m", "ledger.cli", "oracle", "serve",
                       "--config", str(config)], workdir, cwd=before_tree)
    wait_http(f"http://127.0.0.1:{port}/v1/health", proc, timeout=120)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both servers (ABBA order)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--open-duration", type=int, default=15, help="seconds per open-loop run")
    parser.add_argument("--open-repeats", type=int, default=2, help="open-loop pairs per server run")
    parser.add_argument("--rate", type=float, default=None, help="open-loop rate (default: half the first uvicorn peak)")
    parser.add_argument("--max-rps", type=float, default=3000.0, help="an upper bound of the oracle's peak, to size the bodies")
    parser.add_argument("--before-tree", type=Path, default=None, help="another checkout to measure as 'before'")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    variants = SERVERS + (("before",) if args.before_tree else ())
    for tool in ("wrk", "cc"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install -y wrk gcc)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="oracle-servers-"))
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
            oracle = start_variant(server, workdir, f"oracle-{i}-{server}", config, port, args.before_tree)
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
    ratios = {variant: {"rps": summary[variant]["rps"] / summary["builtin"]["rps"],
                        "cpu_ms_per_query": summary[variant]["cpu_ms_per_query"] / summary["builtin"]["cpu_ms_per_query"]}
              for variant in variants if variant != "builtin"}
    report = {"workdir": str(workdir), "cpus": os.cpu_count(), "chain": f"{node.kind} {node.version}" if node else None,
              "open_rate": rate, "order": order, "runs": runs, "summary": summary, "over_builtin": ratios}
    (workdir / "report.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"oracle HTTP servers side by side ({report['chain']}; open loop at {rate}/s; work dir {workdir})")
    for i, run in enumerate(runs):
        added = ", ".join(f"{p['added_p99_ms']:.1f}" for p in run["open"])
        print(f"  run {i + 1} {run['server']:<8} {run['rps']:>8.0f} answers/s  {run['cpu_ms_per_query']:.3f} ms CPU/query  "
              f"added p99 {added} ms  (non-2xx {run['non2xx']})")
    for server, s in summary.items():
        print(f"  median {server:<8} {s['rps']:>8.0f} answers/s  {s['cpu_ms_per_query']:.3f} ms CPU/query  "
              f"added p99 {s['added_p99_ms']:.1f} ms")
    for variant, ratio in ratios.items():
        print(f"  {variant} / builtin: throughput {ratio['rps']:.3f}, CPU per query {ratio['cpu_ms_per_query']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
