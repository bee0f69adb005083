#!/usr/bin/env python3
"""Auditor's verification throughput: records verified per second once indexed, and resuming.

Usage (from the project root, with the project's virtualenv):

    python scripts/bench/audit_verify.py                      # starts its own anvil (or ganache), 100,000 records
    python scripts/bench/audit_verify.py --records 20000      # a smaller run
    python scripts/bench/audit_verify.py --node ganache       # ganache instead of anvil (slower to feed)
    python scripts/bench/audit_verify.py --rpc URL            # a running node with ganache's deterministic accounts
    python scripts/bench/audit_verify.py --json               # the results as JSON

Deploys a fresh consortium, admits the four sample departments by committee vote, has SAMR, PSB and
TAX each register and publish a dataset and approve grants to the others (quota large enough), then
has the three departments' oracles append ``--records`` audit records through
``AuditLog.appendRecords`` in batches of ``--batch`` (80 % served, 15 % denied, 5 % source failures;
fresh random request and response hashes; every decision taken at the block before its batch).

Measured:

* feeding the chain (for the record, not a target);
* the first ``AuditIndex.sync`` of the whole chain into a fresh SQLite file (``--step`` blocks per range);
* ``verify_audit_trail(index, consortium)`` over every record: sequences, hash chains against every
  published head and the contracts' live state, every served decision replayed, every writer's role:
  **records verified per second** (target: at least 20,000);
* the same verification from the index alone (no chain);
* searches over the index (dataset + outcome, a department's page, a time window with its count);
* after 1,000 more records: the time ``sync`` takes to resume, and the time of a full re-verification.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from auditing.index import AuditIndex
from auditing.verification import verify_audit_trail
from devtools.devnet import DETERMINISTIC_MNEMONIC, GanacheNode, dev_accounts
from devtools.sample_consortium import (
    SAMPLE_COMMITTEE,
    SAMPLE_DEPARTMENTS,
    admit_sample_departments,
)
from ledger.chain import Chain
from ledger.compiler import compile_contracts
from ledger.contracts.audit_log import ZERO_HASH, AuditEntry, OracleReason, Outcome
from ledger.contracts.catalog import Classification
from ledger.contracts.grants import AccessReason
from ledger.deployment import Consortium, deploy_consortium
from ledger.errors import ChainUnavailable
from ledger.keys import Signer

ANVIL = Path(os.environ.get("ANVIL", "/tmp/bench-node/node_modules/.bin/anvil"))
TARGET_PER_SECOND = 20_000
FIELDS = ("credit_code", "name", "legal_rep", "capital", "status")


class AnvilNode:
    """An anvil process with ganache's deterministic accounts (so the dev keys match)."""

    def __init__(self, binary: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(binary), "--port", str(self.port), "--mnemonic", DETERMINISTIC_MNEMONIC, "--accounts", "30",
             "--chain-id", "1337", "--silent", "--gas-limit", "100000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                Chain(self.url).block_number()
                return
            except ChainUnavailable:  # not listening yet
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("anvil did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the npm wrapper and the anvil binary it starts
            self.process.wait(10)


@dataclass
class Results:
    node: str
    records: int
    batch: int
    oracles: int
    blocks: int
    feed_seconds: float
    index_seconds: float
    index_records_per_second: float
    verify_seconds: float
    verify_records_per_second: float
    verify_offline_seconds: float
    verify_offline_records_per_second: float
    served_replayed: int
    search_ms: dict[str, float]
    resume_records: int
    resume_sync_seconds: float
    reverify_seconds: float
    index_file_mb: float
    ok: bool
    target_per_second: int = TARGET_PER_SECOND


class Feeder:
    """Three departments' oracles appending records about their own datasets."""

    def __init__(self, consortium: Consortium, accounts: list[Signer], seed: int = 2024) -> None:
        self.consortium = consortium
        self.rng = random.Random(seed)
        ids = admit_sample_departments(consortium, [accounts[i] for i in SAMPLE_COMMITTEE], accounts)
        dept = {d.code: d for d in SAMPLE_DEPARTMENTS}
        self.writers: list[tuple[Signer, int, list[tuple[int, str]]]] = []  # (oracle, dataset, [(grant, requester)])
        codes = ("SAMR", "PSB", "TAX")
        for owner in codes:
            operator = accounts[dept[owner].operator]
            dataset = consortium.catalog.register(operator, f"{owner} registry", FIELDS, Classification.INTERNAL)
            consortium.catalog.publish_version(operator, dataset, os.urandom(32), os.urandom(32), 1000)
            grants = []
            for requester in codes:
                if requester == owner:
                    continue
                asker = accounts[dept[requester].operator]
                grant = consortium.grants.request(asker, dataset, 0b11111, "bench", 3650 * 86_400, 10**12)
                consortium.grants.approve(operator, grant, 0b11111, 3650 * 86_400, 10**12)
                grants.append((grant, asker.address))
            self.writers.append((accounts[dept[owner].oracle], dataset, grants))
        self.next = {oracle.address: 1 for oracle, _, _ in self.writers}
        self.dept_ids = ids

    def entries(self, dataset: int, grants: list[tuple[int, str]], count: int, checked: int) -> list[AuditEntry]:
        rng = self.rng
        out = []
        for _ in range(count):
            grant, requester = grants[rng.randrange(len(grants))]
            roll = rng.random()
            if roll < 0.80:
                outcome, reason, response = Outcome.SERVED, int(AccessReason.GRANTED), rng.randbytes(32)
            elif roll < 0.95:
                outcome, reason, response = Outcome.DENIED, int(AccessReason.FIELDS_NOT_GRANTED), ZERO_HASH
            else:
                outcome, reason, response = Outcome.SOURCE_FAILURE, int(OracleReason.SOURCE_TIMEOUT), ZERO_HASH
            out.append(AuditEntry(grant, requester, dataset, 1, outcome, reason, checked, rng.randbytes(32), response))
        return out

    def feed(self, total: int, batch: int) -> None:
        log = self.consortium.audit_log
        sent = 0
        turn = 0
        while sent < total:
            oracle, dataset, grants = self.writers[turn % len(self.writers)]
            turn += 1
            count = min(batch, total - sent)
            checked = self.consortium.chain.block_number()
            log.anchor(oracle, self.next[oracle.address], self.entries(dataset, grants, count, checked))
            self.next[oracle.address] += count
            sent += count


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def run(args: argparse.Namespace) -> Results:
    node = None
    if args.rpc:
        url, name = args.rpc, "given RPC"
    elif args.node == "anvil" and ANVIL.is_file():
        node, name = AnvilNode(ANVIL), "anvil " + subprocess.run([str(ANVIL), "--version"], capture_output=True,
                                                                 text=True, check=False).stdout.split()[2]
        url = node.url
    else:
        node, name = GanacheNode(), "ganache 7.9.2"
        url = node.url
    workdir = Path(tempfile.mkdtemp(prefix="govshare-audit-bench-"))
    try:
        chain = Chain(url, timeout=300.0, receipt_timeout=600.0)  # a benchmark waits out a busy node (30 s did not)
        accounts = dev_accounts(16)  # test keys from ganache's public mnemonic
        compilation = compile_contracts()
        deployment = deploy_consortium(chain, accounts[0], [accounts[i].address for i in SAMPLE_COMMITTEE], 2, compilation)
        consortium = Consortium(chain, deployment, compilation)
        feeder = Feeder(consortium, accounts)
        _, feed_seconds = timed(lambda: feeder.feed(args.records, args.batch))
        print(f"fed {args.records:,} records in {feed_seconds:.1f}s", file=sys.stderr)

        index = AuditIndex(workdir / "audit-index.sqlite")
        sync, index_seconds = timed(lambda: index.sync(consortium, step=args.step))
        assert sync.records == args.records, sync
        verify_runs = []
        for _ in range(args.rounds):
            report, seconds = timed(lambda: verify_audit_trail(index, consortium))
            assert report.ok, report.summary()
            verify_runs.append(seconds)
        verify_seconds = statistics.median(verify_runs)
        offline, offline_seconds = timed(lambda: verify_audit_trail(index))
        assert offline.ok, offline.summary()

        samr = feeder.writers[0][1]
        window_from = index.search(limit=1, offset=args.records // 2).records[0].block_time
        searches = {
            "dataset + served, newest 50": lambda: index.search(dataset_id=samr, outcome="served", limit=50),
            "requester dept TAX, page 2 (keyset)": lambda: index.search(
                requester_dept="TAX", limit=50, cursor=index.search(requester_dept="TAX", limit=50).next_cursor),
            "provider PSB + denied, offset 1000": lambda: index.search(provider_dept="PSB", outcome="denied", offset=1000),
            "time window (half the trail) + count": lambda: index.search(since=window_from, limit=50),
            "daily counts by provider": lambda: index.daily_counts(by="provider"),
            "one record by id": lambda: index.record(index.search(limit=1).records[0].record_id),
        }
        search_ms = {}
        for label, query in searches.items():
            best = min(timed(query)[1] for _ in range(5))
            search_ms[label] = round(best * 1000, 2)

        feeder.feed(1_000, args.batch)
        resumed, resume_seconds = timed(lambda: index.sync(consortium, step=args.step))
        assert resumed.records == 1_000, resumed
        again, reverify_seconds = timed(lambda: verify_audit_trail(index, consortium))
        assert again.ok and again.scope.records == args.records + 1_000
        index.close()
        size = sum(f.stat().st_size for f in workdir.glob("audit-index.sqlite*")) / 1e6  # with the WAL
        return Results(
            node=name, records=args.records, batch=args.batch, oracles=len(feeder.writers),
            blocks=chain.block_number() - deployment.deployment_block, feed_seconds=round(feed_seconds, 2),
            index_seconds=round(index_seconds, 2), index_records_per_second=round(args.records / index_seconds),
            verify_seconds=round(verify_seconds, 3), verify_records_per_second=round(args.records / verify_seconds),
            verify_offline_seconds=round(offline_seconds, 3),
            verify_offline_records_per_second=round(args.records / offline_seconds),
            served_replayed=report.check("authorisation").checked, search_ms=search_ms, resume_records=1_000,
            resume_sync_seconds=round(resume_seconds, 3), reverify_seconds=round(reverify_seconds, 3),
            index_file_mb=round(size, 1), ok=report.ok and args.records / verify_seconds >= TARGET_PER_SECOND,
        )
    finally:
        if node is not None:
            node.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--step", type=int, default=100, help="blocks per eth_getLogs range of the index sync")
    parser.add_argument("--rounds", type=int, default=3, help="verifications timed (the median is reported)")
    parser.add_argument("--node", choices=["anvil", "ganache"], default="anvil")
    parser.add_argument("--rpc", help="a running node with ganache's deterministic accounts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(asdict(results), indent=2))
        return 0
    r = results
    print(f"node {r.node}; {r.records:,} records by {r.oracles} oracles in batches of {r.batch} ({r.blocks} blocks)")
    rows = [
        ("feed the chain (AuditLog.appendRecords)", f"{r.feed_seconds:.1f} s", ""),
        ("index: first sync of the whole chain", f"{r.index_seconds:.2f} s", f"{r.index_records_per_second:,} records/s"),
        ("verify (index + live contract state)", f"{r.verify_seconds:.2f} s", f"{r.verify_records_per_second:,} records/s"),
        ("verify (index alone)", f"{r.verify_offline_seconds:.2f} s", f"{r.verify_offline_records_per_second:,} records/s"),
        ("resume: sync 1,000 new records", f"{r.resume_sync_seconds * 1000:.0f} ms", ""),
        ("re-verify everything after resuming", f"{r.reverify_seconds:.2f} s", ""),
    ]
    for label, value, rate in rows:
        print(f"  {label:<42} {value:>10}  {rate}")
    for label, ms in r.search_ms.items():
        print(f"  search: {label:<34} {ms:>8.2f} ms")
    print(f"  index file {r.index_file_mb} MB; served decisions replayed {r.served_replayed:,}")
    verdict = "met" if r.ok else "NOT met"
    print(f"target >= {TARGET_PER_SECOND:,} records verified per second: {verdict}")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
