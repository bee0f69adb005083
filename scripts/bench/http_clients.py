#!/usr/bin/env python3
"""CPU per call of HTTP clients, side by side in one run: why govshare keeps one HTTP client of
its own (``ledger.http_client``) for every outbound call.

Each client sends ``--calls`` sequential ``GET /companies?company_id=…&limit=100`` requests (what
the oracle's relay sends) over one kept-alive connection to the sample company API, a process of
its own, and the benchmark reads this process's CPU time (``time.process_time``: the client's
work, not the server's). Rounds alternate the clients' order; the report gives each client's median
µs of CPU per call and its ratio to ``ledger.http_client``'s blocking pool. Clients measured:
``ledger.http_client`` (blocking pool, its asyncio face, and the plain ``HttpClient``), urllib3,
requests, httpx (blocking and asyncio) and aiohttp — every one already installed as a dependency of
web3 or of the tests.

Usage (from the project root):

    .venv/bin/python scripts/bench/http_clients.py            # ~1 min; --json for JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PYTHON, Proc, free_port, wait_http  # noqa: E402

from devtools.sample_data import companies  # noqa: E402
from ledger.http_client import AsyncKeepAlivePool, HttpClient, KeepAlivePool, Origin, ResponseReader  # noqa: E402


def _paths(n: int) -> list[str]:
    ids = [r["company_id"] for r in companies()]
    return [f"/companies?company_id={ids[i % len(ids)]}&limit=100" for i in range(n)]


def own_pool(base: str, paths: list[str]) -> None:
    origin = Origin(base)
    pool = KeepAlivePool(origin, max_idle=1)
    head = f" HTTP/1.1\r\nHost: {origin.host_header}\r\nAccept-Encoding: identity\r\n\r\n".encode()
    for path in paths:
        reader = pool.exchange(b"GET " + path.encode() + head, ResponseReader(1 << 20), timeout=10)
        assert reader.status == 200 and reader.body()
    pool.close()


def own_plain(base: str, paths: list[str]) -> None:
    with HttpClient(base, timeout=10) as client:
        for path in paths:
            assert client.request("GET", path).status == 200


def own_async(base: str, paths: list[str]) -> None:
    origin = Origin(base)
    head = f" HTTP/1.1\r\nHost: {origin.host_header}\r\nAccept-Encoding: identity\r\n\r\n".encode()

    async def run() -> None:
        pool = AsyncKeepAlivePool(origin, max_idle=1)
        for path in paths:
            reader = await pool.exchange(b"GET " + path.encode() + head, ResponseReader(1 << 20))
            assert reader.status == 200 and reader.body()
        pool.close()

    asyncio.run(run())


def urllib3_pool(base: str, paths: list[str]) -> None:
    import urllib3

    pool = urllib3.HTTPConnectionPool(*Origin(base).host_header.split(":"), maxsize=1, retries=False)
    for path in paths:
        assert pool.request("GET", path).status == 200
    pool.close()


def requests_session(base: str, paths: list[str]) -> None:
    import requests

    with requests.Session() as session:
        session.trust_env = False
        for path in paths:
            assert session.get(base + path, timeout=10).status_code == 200


def httpx_sync(base: str, paths: list[str]) -> None:
    import httpx

    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        for path in paths:
            assert client.get(path).status_code == 200


def httpx_async(base: str, paths: list[str]) -> None:
    import httpx

    async def run() -> None:
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as client:
            for path in paths:
                assert (await client.get(path)).status_code == 200

    asyncio.run(run())


def aiohttp_session(base: str, paths: list[str]) -> None:
    import aiohttp

    async def run() -> None:
        async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=1)) as session:
            for path in paths:
                async with session.get(path) as answer:
                    assert answer.status == 200
                    await answer.read()

    asyncio.run(run())


CLIENTS: dict[str, Callable[[str, list[str]], None]] = {
    "ledger.http_client KeepAlivePool": own_pool,
    "ledger.http_client AsyncKeepAlivePool": own_async,
    "ledger.http_client HttpClient": own_plain,
    "urllib3": urllib3_pool,
    "requests": requests_session,
    "httpx (blocking)": httpx_sync,
    "httpx (asyncio)": httpx_async,
    "aiohttp": aiohttp_session,
}
BASELINE = "ledger.http_client KeepAlivePool"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path("/tmp") / f"http-clients-{int(time.time())}"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = Proc("company-api", [PYTHON, "-m", "devtools.sample_apis", "companies", "--port", str(port)], workdir)
    base = f"http://127.0.0.1:{port}"
    samples: dict[str, list[float]] = {name: [] for name in CLIENTS}
    try:
        wait_http(base + "/health", api)
        paths = _paths(args.calls)
        for name, client in CLIENTS.items():
            client(base, paths[:50])  # warm-up: imports, first connection
        for round_ in range(args.rounds):
            names = list(CLIENTS) if round_ % 2 == 0 else list(CLIENTS)[::-1]
            for name in names:
                started = time.process_time()
                CLIENTS[name](base, paths)
                samples[name].append((time.process_time() - started) / args.calls * 1e6)
    finally:
        api.stop()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    report = {"calls": args.calls, "rounds": args.rounds, "cpu_us_per_call": medians, "samples": samples,
              "ratio_to_baseline": {name: value / medians[BASELINE] for name, value in medians.items()}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"client CPU per call ({args.calls} sequential GETs, one kept-alive connection, median of {args.rounds} rounds):")
    for name, value in sorted(medians.items(), key=lambda item: item[1]):
        print(f"  {name:<40} {value:>7.1f} µs  x{value / medians[BASELINE]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
