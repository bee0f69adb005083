#!/usr/bin/env python3
"""Instructions per audited query in the oracle's answering process, counted by callgrind.

CPU time on the benchmark machine varies by a third between runs minutes apart (other tenants of
the host); instruction counts do not. This runs the same setup as ``scripts/bench/oracle_load.py`` (anvil,
the sample company API, SAMR's oracle as ``python -m cli.main oracle serve``) with the oracle under
``valgrind --tool=callgrind --instr-atstart=no``, sends warm-up queries, switches counting on
(``callgrind_control -i on``), sends ``--queries`` pre-signed queries over ``--concurrency`` kept-alive
connections, dumps the counts and stops the oracle; ``--repeats`` times. It reports instructions
per query, in all and by shared object (libsecp256k1, the interpreter, SQLite, ...).

User-space instructions only: system calls (each ``write`` and ``recv``) are not counted, and the
anchoring process (a child started with ``exec``) is not traced.

Usage (from the project root; valgrind, anvil and the project's virtualenv):

    apt-get install -y valgrind
    npm install --prefix /tmp/bench-node @foundry-rs/anvil
    .venv/bin/python scripts/bench/oracle_instructions.py            # ~4 min; --json for JSON
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402 - the same processes as the throughput benchmark
import oracle_setup as load  # noqa: E402 - and the same setup


def send(port: int, bodies: list[str], concurrency: int) -> list[int]:
    """POST every body over ``concurrency`` kept-alive connections; the non-200 statuses."""
    refused: list[int] = []

    def run(chunk: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for body in chunk:
            connection.request("POST", "/v1/query", body=body.encode(), headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                refused.append(answer.status)
        connection.close()

    threads = [threading.Thread(target=run, args=(bodies[i::concurrency],)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return refused


_OBJECT = re.compile(r"\[([^\]]+)\]\s*$")


def by_object(dump: Path) -> tuple[int, Counter[str]]:
    """Total instructions of a callgrind dump, and per shared object (``callgrind_annotate``)."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", str(dump)], capture_output=True, text=True, check=True).stdout
    total, objects = 0, Counter()
    for line in out.splitlines():
        fields = line.split()
        if not fields or not fields[0][0].isdigit():
            continue
        count = int(fields[0].replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = count
            continue
        match = _OBJECT.search(line)
        objects[Path(match.group(1)).name if match else "?"] += count
    return total, objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install -y valgrind)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="oracle-instructions-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    procs: list[harness.Proc] = []
    node: harness.ChainNode | None = None
    runs: list[dict[str, Any]] = []
    try:
        api_port = harness.free_port()
        api = harness.Proc("company-api", [harness.PYTHON, "-m", "devtools.sample_apis", "companies", "--port", str(api_port)], workdir)
        procs.append(api)
        api_url = f"http://127.0.0.1:{api_port}"
        harness.wait_http(api_url + "/health", api)
        node = harness.ChainNode(workdir, "chain")
        setup = load.set_up_consortium(node.url, workdir)
        log(f"signing {(args.warmup + args.queries) * args.repeats} request bodies")
        bodies = load.Bodies(setup, (args.warmup + args.queries) * args.repeats)
        for repeat in range(args.repeats):
            port = harness.free_port()
            config = load.write_config(workdir, f"oracle-{repeat}", setup, node.url, api_url, port, "fast",
                                       workdir / "outbox.sqlite")
            # under valgrind everything is ~50x slower: give the relay time
            config.write_text(config.read_text().replace("timeout_seconds = 2.0", "timeout_seconds = 60.0"))
            out = workdir / f"callgrind-{repeat}.out"
            oracle = harness.Proc(f"oracle-{repeat}", ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                                    f"--callgrind-out-file={out}", harness.PYTHON, "-m", "cli.main",
                                                    "oracle", "serve", "--config", str(config)], workdir)
            procs.append(oracle)
            log(f"repeat {repeat + 1}: the oracle under callgrind (startup is slow)")
            harness.wait_http(f"http://127.0.0.1:{port}/v1/health", oracle, timeout=900)
            if send(port, bodies.take(args.warmup), args.concurrency):
                raise RuntimeError("warm-up queries were refused")
            subprocess.run(["callgrind_control", "-i", "on", str(oracle.pid)], check=True, capture_output=True)
            started = time.monotonic()
            refused = send(port, bodies.take(args.queries), args.concurrency)
            elapsed = time.monotonic() - started
            subprocess.run(["callgrind_control", "-d", str(oracle.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-i", "off", str(oracle.pid)], check=True, capture_output=True)
            oracle.stop(timeout=300)
            procs.remove(oracle)
            dumps = sorted(workdir.glob(f"callgrind-{repeat}.out.*"))  # the -d dump (the exit dump counts nothing more)
            total, objects = by_object(dumps[0])
            runs.append({"queries": args.queries, "refused": len(refused), "seconds": round(elapsed, 1),
                         "instructions_per_query": total / args.queries,
                         "by_object": {name: count / args.queries for name, count in objects.most_common(8)}})
            log(f"repeat {repeat + 1}: {total / args.queries / 1e6:.3f} M instructions per query")
    finally:
        for proc in procs:
            proc.stop()
        if node is not None:
            node.stop()
    report = {"workdir": str(workdir), "concurrency": args.concurrency, "runs": runs}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"instructions per audited query in the answering process (callgrind; {args.queries} queries over "
          f"{args.concurrency} connections after {args.warmup} warm-up ones; work dir {workdir}):")
    for i, run in enumerate(runs):
        parts = ", ".join(f"{name} {count / 1e6:.3f} M" for name, count in run["by_object"].items())
        print(f"  repeat {i + 1}: {run['instructions_per_query'] / 1e6:.3f} M (refused {run['refused']}); by object: {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
