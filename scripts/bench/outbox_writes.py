"""The outbox's write latency under a steady stream of answers, with the anchoring side checkpointing.

One process writes records (each with its requester's nonce, as the answering path does) into a real
:class:`oracle.outbox.Outbox` at a fixed rate, and marks them anchored in batches of 100; a second
process checkpoints the WAL every 0.12 s from its own connection (as the anchoring process does after
each batch, :func:`oracle.outbox_file.copy_wal_back`). Each write's latency is measured from its
scheduled time. Reported: p50/p99/p99.9/max write latency, the writes over 20 ms and when they came,
and the largest WAL.

    .venv/bin/python scripts/bench/outbox_writes.py                       # the oracle's settings
    .venv/bin/python scripts/bench/outbox_writes.py --writer-pages 0      # only the anchoring side checkpoints
    .venv/bin/python scripts/bench/outbox_writes.py --writer-pages 0 --restart-past 256
                                          # the bound before 2 Dec: a RESTART checkpoint past 256 MB
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import oracle.outbox as outbox_module  # noqa: E402
from ledger.contracts.audit_log import AuditEntry, Outcome  # noqa: E402
from oracle.outbox import Outbox  # noqa: E402
from oracle.outbox_file import copy_wal_back  # noqa: E402

REQUESTER = "0x" + "ab" * 20
CHECKPOINT_EVERY = 0.12  # a batch of 100 at ~800 answers a second


def anchoring_side(path: Path, restart_past: int, stop: multiprocessing.synchronize.Event) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    wal = Path(f"{path}-wal")
    while not stop.is_set():
        copy_wal_back(db)
        if restart_past and wal.exists() and wal.stat().st_size >= restart_past:
            db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        time.sleep(CHECKPOINT_EVERY)


def run(rate: float, seconds: float, writer_pages: int, restart_past: int) -> dict:
    outbox_module.WRITER_CHECKPOINT_PAGES = writer_pages
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "outbox.sqlite"
        outbox = Outbox(path)
        outbox.bind({"oracle": "0x" + "01" * 20}, 0, seal_key=b"bench seal key, not a secret")
        stop = multiprocessing.Event()
        side = multiprocessing.Process(target=anchoring_side, args=(path, restart_past, stop))
        side.start()
        wal = Path(f"{path}-wal")
        latencies: list[tuple[float, float]] = []
        largest_wal = 0
        count = int(rate * seconds)
        gc.collect()
        gc.disable()  # the writes' own latency, not this loop's collections
        start = time.perf_counter()
        try:
            for i in range(count):
                due = start + i / rate
                now = time.perf_counter()
                if now < due:
                    time.sleep(due - now)
                entry = AuditEntry(1, REQUESTER, 1, 1, Outcome.SERVED, 0, 5, secrets.token_bytes(32), secrets.token_bytes(32))
                outbox.record(entry, request_salt=secrets.token_bytes(32), response_salt=secrets.token_bytes(32),
                              nonce=(REQUESTER, str(secrets.randbits(250))))
                if i % 100 == 99:
                    outbox.mark_anchored(i - 98, i + 1, "0x" + "00" * 32, 10)
                latencies.append((time.perf_counter() - due, i / rate))
                if i % 200 == 0:
                    largest_wal = max(largest_wal, wal.stat().st_size)
        finally:
            gc.enable()
            stop.set()
            side.join()
            outbox.close()
    ordered = sorted(latency for latency, _ in latencies)

    def ms(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    slow = [(round(at, 2), round(latency * 1000, 1)) for latency, at in latencies if latency > 0.02]
    return {"rate": rate, "seconds": seconds, "writer_pages": writer_pages, "restart_past_mb": restart_past >> 20,
            "p50_ms": ms(0.5), "p99_ms": ms(0.99), "p999_ms": ms(0.999), "max_ms": round(ordered[-1] * 1000, 1),
            "over_20ms": len(slow), "first_over_20ms_at_s": slow[0][0] if slow else None,
            "largest_wal_mb": round(largest_wal / (1 << 20), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=800.0, help="answers a second")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--writer-pages", type=int, default=outbox_module.WRITER_CHECKPOINT_PAGES,
                        help="the writer's wal_autocheckpoint (0: the writer never checkpoints)")
    parser.add_argument("--restart-past", type=int, default=0, metavar="MB",
                        help="the anchoring side also runs a RESTART checkpoint once the WAL passes MB (0: never)")
    args = parser.parse_args()
    print(json.dumps(run(args.rate, args.seconds, args.writer_pages, args.restart_past << 20)))


if __name__ == "__main__":
    main()
