#!/usr/bin/env python3
"""CPU a per-caller rate limit adds per request (``serving.rate_limit.RateLimit.acquire``, the
``limits`` library's moving window in memory), as the oracle (``requester_rate_limit``, after the
signature check) and the API (``rate_limit``, after authentication) call it.

Times ``--calls`` acquisitions spread over ``--keys`` accounts, for a request that is allowed (a
limit the run never reaches) and one that is refused (a limit already reached: the refusal also
reads the window for ``Retry-After``); the best of ``--rounds``. Compare with the oracle's CPU per
query in ``bench/README.md`` (~0.4-0.7 ms).

Usage (from the project root): ``.venv/bin/python scripts/bench/rate_limit.py [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from serving.rate_limit import RateLimit  # noqa: E402


def _per_call(limit: RateLimit, keys: list[str], calls: int, rounds: int, *, allowed: bool) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(calls):
            result = limit.acquire(keys[i % len(keys)])
            if (result is None) != allowed:
                raise SystemExit(f"expected {'allowed' if allowed else 'refused'}, got {result!r}")
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def run(calls: int, keys: int, rounds: int) -> dict[str, float]:
    accounts = [f"0x{i:040x}" for i in range(keys)]
    roomy = RateLimit(f"{calls * rounds * 2}/hour")
    allowed = _per_call(roomy, accounts, calls, rounds, allowed=True)
    full = RateLimit("5/hour")
    for key in accounts:
        for _ in range(5):
            full.acquire(key)
    refused = _per_call(full, accounts, calls, rounds, allowed=False)
    return {"allowed_us": allowed * 1e6, "refused_us": refused * 1e6, "calls": calls, "keys": keys, "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="acquisitions per round (default 20000)")
    parser.add_argument("--keys", type=int, default=100, help="distinct accounts (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is reported (default 5)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.calls, args.keys, args.rounds)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"allowed: {result['allowed_us']:.2f} µs per request; refused (with Retry-After): "
              f"{result['refused_us']:.2f} µs ({args.keys} accounts, best of {args.rounds} x {args.calls})")


if __name__ == "__main__":
    main()
