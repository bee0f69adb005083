#!/usr/bin/env python3
"""Oracle throughput, latency, anchoring delay and CPU per query: one run, real processes.

Usage (from the project root, with the project's virtualenv; wrk, a C compiler and anvil must be installed):

    apt-get install -y wrk gcc
    npm install --prefix /tmp/bench-node @foundry-rs/anvil
    .venv/bin/pip install py-spy            # optional: the profile
    .venv/bin/python scripts/bench/oracle_load.py   # prints a report; --json for JSON

What it does (see bench/README.md, "Oracle throughput and latency"):

1. chain A: anvil with instant mining (ganache via devtools.devnet.GanacheNode if anvil is missing);
   deploy, admit the departments by vote, publish SAMR's company dataset, approve a grant to TAX
   (quota 10**12, 10 years). The sample company API (``python -m devtools.sample_apis``) and SAMR's
   oracle (``python -m cli.main oracle serve --config FILE``) run as separate processes.
2. closed loop with wrk (-t2 -c32 by default): the department API directly (the baseline), the
   oracle in fast mode (with the oracle process's CPU time per query from /proc/<pid>/stat), a
   py-spy profile of the oracle under the same load, and the oracle in strict mode.
3. open loop at half the fast-mode peak (scripts/bench/openloop.c, compiled here with ``cc``: wrk2 is not
   packaged here), direct then oracle, three pairs back to back: the latency the oracle adds (the
   report's figures are the median pair's; every pair is listed).
4. records per second anchored, one transaction per record vs batches of 100 (AuditLog.append
   from this process, after the oracle stopped).
5. chain B: a fresh anvil with ``--block-time 2``; a fixed rate for 30 s, then the delay from a
   record's ``created_at`` in the outbox to its block (block timestamp, and when a client polling
   every 20 ms first saw the block); then strict mode on this chain.

Every oracle request body is signed in advance (``OracleClient.signed_body``, a fresh nonce each)
and used once; any non-2xx answer is counted and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from devtools.devnet import free_port  # noqa: E402
from ledger.chain import Chain  # noqa: E402
from ledger.contracts.audit_log import AuditEntry, Outcome  # noqa: E402
from ledger.contracts.grants import AccessReason  # noqa: E402
from oracle.outbox import Outbox  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402 - the processes, the load generators and the profiler
    OPEN_WARMUP,
    PYTHON,
    ChainNode,
    MachineCounters,
    Proc,
    direct_requests,
    open_loop,
    oracle_requests,
    pct,
    profile,
    rpc,
    run_wrk,
    wait_http,
)
from oracle_setup import (  # noqa: E402 - the consortium, the oracle's config and process, signed bodies
    HEAD_POLL_INTERVAL,
    Bodies,
    Setup,
    direct_paths,
    set_up_consortium,
    start_oracle,
    write_config,
)

DAY = 86_400


# ---------------------------------------------------------------------------------------- anchoring

class BlockWatcher(threading.Thread):
    """Polls eth_blockNumber every 20 ms: when a client could first see each block."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: dict[int, float] = {}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        last = -1
        while not self.stop_flag.is_set():
            try:
                head = int(rpc(self.url, "eth_blockNumber"), 16)
            except OSError:
                head = last
            now = time.time()
            for b in range(last + 1, head + 1):
                self.seen.setdefault(b, now)
            last = max(last, head)
            self.stop_flag.wait(0.02)


def anchoring_delays(outbox_path: Path, chain: Chain, watcher: BlockWatcher, since: float) -> dict[str, Any]:
    outbox = Outbox(outbox_path)
    records = [r for r in outbox.all_records() if r.created_at >= since]
    outbox.close()
    stamps: dict[int, int] = {}
    by_block, by_seen, unanchored = [], [], 0
    for r in records:
        if r.anchored_block is None:
            unanchored += 1
            continue
        if r.anchored_block not in stamps:
            stamps[r.anchored_block] = chain.block_timestamp(r.anchored_block)
        by_block.append(stamps[r.anchored_block] - r.created_at)
        if r.anchored_block in watcher.seen:
            by_seen.append(watcher.seen[r.anchored_block] - r.created_at)
    blocks = sorted(stamps)
    return {
        "records": len(records), "unanchored": unanchored, "batches_blocks": len(blocks),
        "to_block_timestamp_s": {"p50": pct(by_block, 50), "p95": pct(by_block, 95), "max": max(by_block, default=None)},
        "to_block_seen_s": {"p50": pct(by_seen, 50), "p95": pct(by_seen, 95), "max": max(by_seen, default=None),
                            "n": len(by_seen)},
    }


def anchoring_throughput(setup: Setup, rounds_single: int = 30, rounds_batch: int = 5) -> dict[str, Any]:
    """Records per second through AuditLog.appendRecords (instant mining, sequential transactions),
    sent as the batcher sends them (``AuditLogClient.anchor``)."""
    c = setup.consortium
    oracle = setup.members.samr.oracle
    sequence = c.audit_log.oracle_state(oracle.address).last_sequence
    version = c.catalog.latest_version(setup.dataset)

    def entries(n: int) -> list[AuditEntry]:
        block = c.chain.block_number()
        return [AuditEntry(setup.grant, setup.members.tax.operator.address, setup.dataset, version, Outcome.SERVED,
                           int(AccessReason.GRANTED), block, os.urandom(32), os.urandom(32)) for _ in range(n)]

    out = {}
    for label, size, rounds in (("one_tx_per_record", 1, rounds_single), ("batch_100", 100, rounds_batch)):
        gas = []
        batches = [entries(size) for _ in range(rounds)]
        start = time.perf_counter()
        for batch in batches:
            result = c.audit_log.anchor(oracle, sequence + 1, batch)
            sequence += size
            gas.append(result.gas_used)
        elapsed = time.perf_counter() - start
        per_record = statistics.fmean(gas) / size
        out[label] = {"records": size * rounds, "seconds": elapsed, "records_per_s": size * rounds / elapsed,
                      "gas_per_record": per_record,
                      "records_per_2s_block_30M_gas": int(30_000_000 // round(per_record * size)) * size}
    return out


# ---------------------------------------------------------------------------------------- the run

def main(argv: list[str] | None = None) -> int:
    global HEAD_POLL_INTERVAL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--open-duration", type=int, default=20, help="seconds per open-loop run")
    parser.add_argument("--open-repeats", type=int, default=5,
                        help="open-loop pairs (direct, then oracle); the report's figures are the median pair's")
    parser.add_argument("--anchor-rate", type=float, default=50.0, help="requests/s during the 2 s block-time run")
    parser.add_argument("--anchor-duration", type=int, default=30)
    parser.add_argument("--bodies", type=int, default=0, help="pre-signed bodies for chain A (default: sized from --max-rps)")
    parser.add_argument("--max-rps", type=float, default=300.0, help="an upper bound of the oracle's peak, to size the bodies")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-strict", action="store_true")
    parser.add_argument("--head-poll-interval", type=float, default=HEAD_POLL_INTERVAL,
                        help="seconds between the oracle's reads of the chain head (0: on every request)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    HEAD_POLL_INTERVAL = args.head_poll_interval
    for tool in ("wrk", "cc"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install -y wrk gcc)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="oracle-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"workdir": str(workdir), "cpus": os.cpu_count(), "head_poll_interval": HEAD_POLL_INTERVAL,
                              "load": f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s"}
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    wrk_kw = dict(threads=args.threads, connections=args.connections, duration=args.duration)
    procs: list[Proc] = []
    nodes: list[ChainNode] = []
    try:
        # ---- the department API (shared by both chains)
        api_port = free_port()
        api = Proc("company-api", [PYTHON, "-m", "devtools.sample_apis", "companies", "--port", str(api_port)], workdir)
        procs.append(api)
        api_url = f"http://127.0.0.1:{api_port}"
        wait_http(api_url + "/health", api)

        # ---- chain A: instant mining
        log("chain A (instant mining): deploy, admit, publish, grant")
        node = ChainNode(workdir, "chain-a")
        nodes.append(node)
        report["chain"] = f"{node.kind} {node.version}"
        setup = set_up_consortium(node.url, workdir)
        per_run = int(args.max_rps * args.duration)
        n_bodies = args.bodies or (per_run * 4 + (int(args.max_rps / 2 * (args.open_duration + OPEN_WARMUP)) + 1) * args.open_repeats
                                   + (0 if args.skip_strict else per_run))
        log(f"signing {n_bodies} request bodies")
        t0 = time.perf_counter()
        bodies = Bodies(setup, n_bodies)
        log(f"signed in {time.perf_counter() - t0:.1f}s")
        port = free_port()
        outbox_a = workdir / "chain-a-outbox.sqlite"
        oracle = start_oracle(workdir, "oracle-a-fast", write_config(workdir, "oracle-a-fast", setup, node.url, api_url, port,
                                                                     "fast", outbox_a, HEAD_POLL_INTERVAL), port)
        procs.append(oracle)
        oracle_url = f"http://127.0.0.1:{port}"
        # warm up (connection pools, dataset lookup, the check cache)
        run_wrk(oracle_url, "oracle_query.lua", bodies.take(400), workdir, "warmup-oracle", threads=1, connections=4, duration=2)
        paths = direct_paths()
        run_wrk(api_url, "direct_api.lua", paths, workdir, "warmup-direct", threads=1, connections=4, duration=2)

        log("closed loop: direct API")
        api_cpu0 = api.cpu_seconds()
        direct = run_wrk(api_url, "direct_api.lua", paths, workdir, "direct", **wrk_kw)
        direct["api_cpu_ms_per_request"] = (api.cpu_seconds() - api_cpu0) / max(1, direct["responses"]) * 1000
        report["direct"] = direct

        log("closed loop: oracle, fast mode")
        cpu0, api_cpu0, anchoring_cpu0 = oracle.cpu_seconds(), api.cpu_seconds(), oracle.children_cpu_seconds()
        fast = run_wrk(oracle_url, "oracle_query.lua", bodies.take(per_run), workdir, "oracle-fast", **wrk_kw)
        fast["oracle_cpu_ms_per_request"] = (oracle.cpu_seconds() - cpu0) / max(1, fast["responses"]) * 1000
        fast["anchoring_cpu_ms_per_request"] = (oracle.children_cpu_seconds() - anchoring_cpu0) / max(1, fast["responses"]) * 1000
        fast["api_cpu_ms_per_request"] = (api.cpu_seconds() - api_cpu0) / max(1, fast["responses"]) * 1000
        report["fast"] = fast
        report["fast_over_direct"] = fast["rps"] / direct["rps"]
        if fast["wrapped"]:
            log("WARNING: the oracle run used bodies twice; raise --max-rps")

        log("profile: oracle under the same load (py-spy)")
        holder: dict[str, Any] = {}
        spell = max(3, (args.duration - 4) // 2)
        prof_kw = dict(wrk_kw, duration=2 + 2 * spell + 6)  # both recordings fall inside the load
        prof_lines = bodies.take(min(bodies.remaining() - (int(args.max_rps / 2 * (args.open_duration + OPEN_WARMUP)) + 1) * args.open_repeats
                                     - per_run,
                                     int(args.max_rps * prof_kw["duration"])))
        loader = threading.Thread(target=lambda: holder.update(run=run_wrk(
            oracle_url, "oracle_query.lua", prof_lines, workdir, "oracle-fast-profiled", **prof_kw)))
        loader.start()
        time.sleep(2)
        report["profile"] = profile(oracle.pid, spell, workdir / "oracle-profile-wall.txt")
        report["profile_gil"] = profile(oracle.pid, spell, workdir / "oracle-profile-gil.txt", gil=True)
        loader.join()
        report["fast_profiled_run"] = holder.get("run")

        rate = round(fast["rps"] / 2)
        total = int(rate * (args.open_duration + OPEN_WARMUP)) + 1
        runs = []
        counted = {"oracle": oracle, "api": api} | ({"anvil": node.proc} if node.proc else {})
        for k in range(args.open_repeats):  # direct then oracle, back to back: both see the machine alike
            log(f"open loop at half the fast-mode peak: {rate}/s ({k + 1} of {args.open_repeats})")
            counters = MachineCounters(counted)
            counters.start()
            direct_k = open_loop(api_url, direct_requests(api_url, paths), rate, args.open_duration, workdir, f"open-direct-{k}")
            direct_k["machine"] = counters.stop()
            counters.start()
            oracle_k = open_loop(oracle_url, oracle_requests(oracle_url, bodies.take(total)), rate, args.open_duration,
                                 workdir, f"open-oracle-{k}")
            oracle_k["machine"] = counters.stop()
            runs.append({"direct": direct_k, "oracle": oracle_k,
                         "added_ms": {p: oracle_k[f"{p}_ms"] - direct_k[f"{p}_ms"] for p in ("p50", "p90", "p99")}})
        report["open_runs"] = runs
        median = sorted(runs, key=lambda run: run["added_ms"]["p99"])[len(runs) // 2]
        report["open_direct"], report["open_oracle"], report["added_ms"] = median["direct"], median["oracle"], median["added_ms"]

        if not args.skip_strict:
            log("closed loop: oracle, strict mode (instant mining)")
            oracle.stop()
            procs.remove(oracle)
            oracle = start_oracle(workdir, "oracle-a-strict", write_config(workdir, "oracle-a-strict", setup, node.url, api_url,
                                                                           port, "strict", outbox_a, HEAD_POLL_INTERVAL), port)
            procs.append(oracle)
            report["strict_instant"] = run_wrk(oracle_url, "oracle_query.lua", bodies.take(min(per_run, bodies.remaining())),
                                               workdir, "oracle-strict-instant", **wrk_kw)
        oracle.stop()  # flushes the outbox to the chain
        procs.remove(oracle)
        log("anchoring throughput: one transaction per record vs batches of 100")
        report["anchoring_throughput"] = anchoring_throughput(setup)
        node.stop()
        nodes.remove(node)

        # ---- chain B: 2 s blocks
        log("chain B (--block-time 2): deploy, admit, publish, grant")
        node = ChainNode(workdir, "chain-b", block_time=2)
        nodes.append(node)
        setup_b = set_up_consortium(node.url, workdir)
        anchor_total = int(args.anchor_rate * args.anchor_duration)
        strict_b = 0 if args.skip_strict else int(args.connections / 2.5 * args.duration * 2)
        bodies_b = Bodies(setup_b, anchor_total + strict_b + 50)
        outbox_b = workdir / "chain-b-outbox.sqlite"
        port = free_port()
        oracle_url = f"http://127.0.0.1:{port}"
        oracle = start_oracle(workdir, "oracle-b-fast", write_config(workdir, "oracle-b-fast", setup_b, node.url, api_url, port,
                                                                     "fast", outbox_b, HEAD_POLL_INTERVAL), port)
        procs.append(oracle)
        watcher = BlockWatcher(node.url)
        watcher.start()
        log(f"anchoring delay: {args.anchor_rate}/s for {args.anchor_duration}s, 2 s blocks")
        since = time.time()
        report["anchor_load"] = open_loop(oracle_url, oracle_requests(oracle_url, bodies_b.take(anchor_total)),
                                          args.anchor_rate, args.anchor_duration, workdir, "anchor-load", warmup=0)
        time.sleep(6)  # the last batch: max age 2 s + a block
        if not args.skip_strict:
            log("closed loop: oracle, strict mode, 2 s blocks")
            oracle.stop()
            procs.remove(oracle)
            oracle = start_oracle(workdir, "oracle-b-strict", write_config(workdir, "oracle-b-strict", setup_b, node.url, api_url,
                                                                           port, "strict", outbox_b, HEAD_POLL_INTERVAL), port)
            procs.append(oracle)
            report["strict_2s_blocks"] = run_wrk(oracle_url, "oracle_query.lua", bodies_b.take(bodies_b.remaining()), workdir,
                                                 "oracle-strict-2s", **wrk_kw)
        oracle.stop()
        procs.remove(oracle)
        watcher.stop_flag.set()
        watcher.join()
        anchoring = anchoring_delays(outbox_b, setup_b.consortium.chain, watcher, since)
        anchoring["block_time_s"] = 2
        report["anchoring_delay"] = anchoring
    finally:
        for p in procs:
            p.stop()
        for n in nodes:
            n.stop()
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str) if args.json else render(report))
    (workdir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    return 0


def render(r: dict[str, Any]) -> str:
    def closed(label: str, x: dict[str, Any] | None) -> str:
        if not x:
            return f"  {label:<28} (not run)"
        return (f"  {label:<28} {x['rps']:>8.0f} req/s   p50 {x['p50_us'] / 1000:>7.1f} ms   p99 {x['p99_us'] / 1000:>7.1f} ms"
                f"   non-2xx {x['non2xx']}   socket errors {x['socket_errors']}")

    def opened(label: str, x: dict[str, Any]) -> str:
        return (f"  {label:<28} {x['rate']:>6.0f}/s  p50 {x['p50_ms']:>7.1f} ms   p90 {x['p90_ms']:>7.1f} ms   "
                f"p99 {x['p99_ms']:>7.1f} ms   non-2xx {x['non2xx']}   errors {x['errors']}   max send lag {x['max_send_lag_ms']:.0f} ms")

    lines = [f"chain: {r.get('chain')}; cpus: {r['cpus']}; closed loop: {r['load']}; work dir {r['workdir']}", "",
             "closed loop (wrk):",
             closed("direct department API", r.get("direct")),
             closed("oracle, fast", r.get("fast")),
             closed("oracle, fast (py-spy on)", r.get("fast_profiled_run")),
             closed("oracle, strict, instant", r.get("strict_instant")),
             closed("oracle, strict, 2 s blocks", r.get("strict_2s_blocks")),
             f"  fast / direct: {r['fast_over_direct']:.3f}",
             f"  CPU per audited query: answering process {r['fast']['oracle_cpu_ms_per_request']:.2f} ms, its anchoring process "
             f"{r['fast'].get('anchoring_cpu_ms_per_request', 0):.2f} ms; "
             f"department API: {r['fast']['api_cpu_ms_per_request']:.2f} ms (direct: {r['direct']['api_cpu_ms_per_request']:.2f} ms)",
             "", f"open loop at half the fast-mode peak (scripts/bench/openloop.c), the median of {len(r['open_runs'])} pairs by added p99:",
             opened("direct department API", r["open_direct"]), opened("oracle, fast", r["open_oracle"]),
             "  added by the oracle: " + ", ".join(f"{k} {v:.1f} ms" for k, v in r["added_ms"].items()),
             "  every pair, added p50 / p90 / p99 (during the oracle's run: machine busy, stolen by the hypervisor;"
             " oracle, API, anvil CPU as % of a core):"]
    for run in r["open_runs"]:
        m = run["oracle"]["machine"]
        lines.append("    " + " / ".join(f"{run['added_ms'][p]:.1f}" for p in ("p50", "p90", "p99")) + " ms"
                     f"   (busy {m['machine_busy_pct']:.0f}%, steal {m['steal_pct']:.1f}%; oracle {m['oracle_core_pct']:.0f}%"
                     f" + anchoring {m.get('anchoring_core_pct', 0):.0f}%,"
                     f" API {m['api_core_pct']:.0f}%, anvil {m.get('anvil_core_pct', float('nan')):.0f}%)")
    a = r.get("anchoring_delay")
    if a:
        ts, seen = a["to_block_timestamp_s"], a["to_block_seen_s"]
        lines += ["", f"anchoring delay, 2 s blocks ({a['records']} records in {a['batches_blocks']} blocks, "
                      f"{a['unanchored']} not anchored; load {r['anchor_load']['rate']:.0f}/s, non-2xx {r['anchor_load']['non2xx']}):",
                  f"  created_at -> block timestamp   p50 {ts['p50']:.2f} s  p95 {ts['p95']:.2f} s  max {ts['max']:.2f} s",
                  f"  created_at -> block seen by a client polling every 20 ms   p50 {seen['p50']:.2f} s  p95 {seen['p95']:.2f} s  "
                  f"max {seen['max']:.2f} s"]
    t = r.get("anchoring_throughput")
    if t:
        lines += ["", "anchoring throughput (sequential appendRecords, instant mining):"]
        for k, v in t.items():
            lines.append(f"  {k:<20} {v['records_per_s']:>8.0f} records/s   {v['gas_per_record']:>8,.0f} gas/record   "
                         f"{v['records_per_2s_block_30M_gas']:>6,} records per 30M-gas block")
    for key, title in (("profile", "all non-idle threads (wall time)"), ("profile_gil", "the GIL holder only (Python CPU)")):
        p = r.get(key)
        if p and "self" in p:
            lines += ["", f"oracle profile, {title} (py-spy, {p['samples']} samples), top by self time:"]
            lines += [f"  {pct_:>5.1f}%  {f}" for f, pct_ in p["self"][:15]]
            lines += ["top by total (inclusive) time:"] + [f"  {pct_:>5.1f}%  {f}" for f, pct_ in p["total"][:30]]
        elif p:
            lines += ["", f"profile failed: {p.get('error')}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
