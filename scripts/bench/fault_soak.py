"""Fault soak (issue 15): the oracle under steady query load while faults are injected at random,
then a count of what was answered against what reached the chain.

Real parts only: ganache with its state on disk (``--database.dbPath``), a consortium deployed and
bootstrapped on it (SAMR's company dataset, a grant to TAX), the sample company API, SAMR's oracle
as ``govshare oracle serve`` (its answering process and its anchoring process), requesters sending
signed queries over HTTP (``soak_load.py``). Faults, drawn with ``--seed`` (every kind once first,
then at random), one at a time, each followed by its recovery:

* ``kill-answering``: SIGKILL the answering process (its anchoring process must exit by itself);
  the oracle is started again, in the other mode (fast and strict alternate at every start);
* ``kill-anchoring``: SIGKILL the anchoring process (the answering process must start another);
* ``kill-chain``: SIGKILL ganache, start it again on the same database; blocks lost (the head
  before the kill missing, or another block at its height) and audit records lost from the chain
  are counted, never hidden;
* ``kill-department-api``: SIGKILL the department API, start it again after a moment;
* ``oracle-restart-chain-down``: stop the chain, stop the oracle (SIGTERM), start the oracle while
  the chain is down (it must exit by itself with code 3), start the chain, start the oracle.

At the end the oracle drains its outbox and stops; ``govshare oracle export`` and ``govshare audit
verify --oracle-export --receipts`` run; ``soak_tally.py`` counts lost and duplicated records.
Exit 0 only if none was lost or duplicated and audit verify passed.

    .venv/bin/python scripts/bench/fault_soak.py --faults 1000 --interval 1.0 --seed 15 --out soak.json
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT, PYTHON
from oracle_setup import Setup, set_up_consortium
from soak_load import Requesters
from soak_procs import DepartmentApi, SoakChain, SoakOracle
from soak_tally import tally

from ledger.errors import LedgerError

FAULT_KINDS = ("kill-answering", "kill-anchoring", "kill-chain", "kill-department-api", "oracle-restart-chain-down")
MODES = ("fast", "strict")


class Soak:
    """The running parts and the faults' log."""

    def __init__(self, workdir: Path, seed: int) -> None:
        self.workdir, self.seed, self.rng = workdir, seed, random.Random(seed)
        self.chain = SoakChain(workdir)
        self.api = DepartmentApi(workdir)
        self.oracle: SoakOracle | None = None
        self.load: Requesters | None = None
        self.events: list[dict[str, Any]] = []
        self.block_losses: list[dict[str, Any]] = []
        self.unexpected_exits: list[dict[str, Any]] = []

    def start(self, rate: float, threads: int) -> None:
        """The chain, the consortium on it, the department API, the oracle (fast mode first), the load."""
        self.chain.start()
        self.setup: Setup = set_up_consortium(self.chain.url, self.workdir)
        self.api.start()
        self.oracle = SoakOracle(self.workdir, self.setup, self.chain.url, self.api.url)
        self.oracle.start(MODES[0])
        self.load = Requesters(self.setup, self.oracle.url, self.workdir / "receipts", rate=rate, threads=threads,
                               seed=self.seed).start()

    @property
    def oracle_address(self) -> str:
        return self.setup.members.samr.oracle.address

    def last_sequence(self) -> int:
        return self.setup.consortium.audit_log.oracle_state(self.oracle_address).last_sequence

    def next_mode(self) -> str:
        return MODES[self.oracle.starts % len(MODES)]

    # ------------------------------------------------------------------ faults

    def ensure_up(self) -> None:
        """Start whatever is down; an oracle that exited by itself is noted (no fault does that)."""
        if self.chain.node is None:
            self.chain.start()
        if self.api.proc is None:
            self.api.start()
        proc = self.oracle.proc
        if proc is not None and not proc.alive():
            self.unexpected_exits.append({"at": round(time.time(), 2), "exit_code": proc.process.returncode,
                                          "log": proc.log_path.name, "tail": proc.log_path.read_text()[-1500:]})
            proc.stop()
            self.oracle.proc = None
        if self.oracle.proc is None:
            self.oracle.start(self.next_mode())

    def inject(self, kind: str) -> dict[str, Any]:
        self.ensure_up()
        event: dict[str, Any] = {"kind": kind, "mode": self.oracle.mode, "at": round(time.time(), 2)}
        t0 = time.monotonic()
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "kill-answering": self._kill_answering, "kill-anchoring": self.oracle.kill_anchoring,
            "kill-chain": self._kill_chain, "kill-department-api": self._kill_api,
            "oracle-restart-chain-down": self._restart_chain_down}
        event.update(actions[kind]())
        event["seconds"] = round(time.monotonic() - t0, 2)
        self.events.append(event)
        return event

    def _kill_answering(self) -> dict[str, Any]:
        out = self.oracle.kill_answering()
        time.sleep(self.rng.uniform(0.0, 1.0))
        out["start_seconds"] = round(self.oracle.start(self.next_mode()), 2)
        return out

    def _kill_chain(self) -> dict[str, Any]:
        before = self._chain_position()
        self.chain.kill()
        time.sleep(self.rng.uniform(0.2, 2.0))
        start = self.chain.start()
        return {"start_seconds": round(start, 2), **self._compare(before)}

    def _kill_api(self) -> dict[str, Any]:
        self.api.kill()
        time.sleep(self.rng.uniform(0.2, 2.0))
        self.api.start()
        return {}

    def _restart_chain_down(self) -> dict[str, Any]:
        before = self._chain_position()
        self.chain.stop()
        out = self.oracle.stop()
        out.update(self.oracle.start_refused(self.next_mode()))
        self.chain.start()
        out.update(self._compare(before))
        out["start_seconds"] = round(self.oracle.start(self.next_mode()), 2)
        return out

    def _chain_position(self) -> dict[str, Any]:
        number, block_hash = self.chain.head()
        return {"head": number, "hash": block_hash, "last_sequence": self.last_sequence()}

    def _compare(self, before: dict[str, Any]) -> dict[str, Any]:
        """Did the restarted chain keep the head seen before it went down, and the oracle's records?"""
        number, _ = self.chain.head()
        kept = self.chain.block_hash(before["head"]) if number >= before["head"] else None
        last_sequence = self.last_sequence()
        out = {"head_before": before["head"], "head_after": number,
               "blocks_lost": kept != before["hash"], "records_lost_from_chain": max(0, before["last_sequence"] - last_sequence)}
        if out["blocks_lost"] or out["records_lost_from_chain"]:
            self.block_losses.append({**out, "hash_before": before["hash"], "hash_at_height_after": kept})
        return out

    # ------------------------------------------------------------------ the end

    def drain(self, timeout: float) -> dict[str, Any]:
        """Wait until the oracle's outbox is all on chain (the chain's last sequence equals the outbox's)."""
        t0 = time.monotonic()
        health: dict[str, Any] | None = None
        while time.monotonic() - t0 < timeout:
            health = self.oracle.health()
            if health is not None and health.get("pending") == 0:
                break
            time.sleep(0.5)
        return {"drained": bool(health and health.get("pending") == 0), "drain_seconds": round(time.monotonic() - t0, 1),
                "pending": health.get("pending") if health else None,
                "last_anchoring_error": health.get("last_anchoring_error") if health else "no health answer"}

    def close(self) -> None:
        if self.load is not None:
            self.load.stop()
        for part in (self.oracle, self.api, self.chain):
            try:
                if part is not None:
                    part.stop()
            except Exception as exc:  # noqa: BLE001 - stop every part whatever one of them does
                print(f"stopping {type(part).__name__}: {exc}", file=sys.stderr)


def govshare(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "cli.main", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def audit(soak: Soak) -> dict[str, Any]:
    """``govshare oracle export`` of the outbox, then ``govshare audit verify`` with it and every receipt."""
    export = soak.workdir / "samr-export.jsonl"
    done = govshare("oracle", "export", "--outbox", str(soak.oracle.outbox), "--out", str(export))
    if done.returncode != 0:
        return {"export_exit_code": done.returncode, "export_error": done.stderr[-2000:], "verify_exit_code": None}
    verify = ["--json", "audit", "verify", "--rpc", soak.chain.url, "--manifest", str(soak.setup.manifest),
              "--index", str(soak.workdir / "audit-index.sqlite"), "--oracle-export", str(export),
              "--receipts", str(soak.workdir / "receipts")]
    t0 = time.monotonic()
    done = govshare(*verify)
    out: dict[str, Any] = {"verify_command": "govshare " + " ".join(verify), "verify_exit_code": done.returncode,
                           "verify_seconds": round(time.monotonic() - t0, 1), "export": str(export)}
    try:
        report = json.loads(done.stdout)
        out["verify_ok"] = report.get("ok")
        out["verify_violations"] = report.get("violations", [])[:20]
        out["verify_checks"] = report.get("checks")
    except ValueError:
        out["verify_output"] = (done.stdout + done.stderr)[-3000:]
    return out


def fault_plan(rng: random.Random, count: int) -> list[str]:
    """Every kind once (in random order), then kinds at random."""
    first = rng.sample(FAULT_KINDS, len(FAULT_KINDS))
    return (first + [rng.choice(FAULT_KINDS) for _ in range(max(0, count - len(first)))])[:count]


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="fault-soak-"))).resolve()  # the configs name files in it
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    soak = Soak(workdir, args.seed)
    try:
        soak.start(args.rate, args.threads)
        interval = args.interval if args.minutes is None else max(0.0, args.minutes * 60 / max(1, args.faults) - 3.0)
        plan = fault_plan(soak.rng, args.faults)
        time.sleep(args.warmup)
        aborted = None
        for n, kind in enumerate(plan, start=1):
            try:
                event = soak.inject(kind)
            except (LedgerError, RuntimeError, OSError, AssertionError) as exc:  # a part that would not come back
                aborted = {"fault": n, "kind": kind, "error": f"{type(exc).__name__}: {exc}"[-3000:]}
                print(f"fault {n} ({kind}) failed: {aborted['error']}", file=sys.stderr, flush=True)
                soak.ensure_up()
                break
            if args.progress and (n % args.progress == 0 or n == len(plan)):
                print(f"[{time.strftime('%H:%M:%S')}] fault {n}/{len(plan)} {kind} ({event['seconds']} s) "
                      f"{soak.load.snapshot()['counts']}", file=sys.stderr, flush=True)
            time.sleep(soak.rng.uniform(0.5, 1.5) * interval)
        time.sleep(args.settle)
        soak.ensure_up()
        soak.load.stop()
        drain = soak.drain(args.drain_timeout)
        stop = soak.oracle.stop()
        audited = audit(soak)
        ledger = soak.load.ledger
        (workdir / "requesters.json").write_text(json.dumps({  # what the requesters hold, to count again by hand
            "receipt_nonces": [[hex(nonce), r["sequence"]] for nonce, r in ledger.receipts],
            "lost_answers": {hex(nonce): canonical for nonce, canonical in ledger.lost_answers.items()}}))
        try:
            export_lines = _read_export(Path(audited["export"])) if "export" in audited else []
            counts = tally(soak.setup.consortium.audit_log.records(), soak.oracle_address, ledger, export_lines)
        except (LedgerError, OSError, ValueError, KeyError) as exc:  # report it with everything else, not instead
            counts = {"tally_error": f"{type(exc).__name__}: {exc}", "lost": None, "duplicated": None}
    finally:
        soak.close()
    faults = Counter(e["kind"] for e in soak.events)
    by_mode = Counter(f"{e['kind']} ({e['mode']})" for e in soak.events)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "workdir": str(workdir), "seed": args.seed,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "minutes": round((time.time() - started) / 60, 1), "faults": len(soak.events), "faults_by_kind": dict(faults),
        "faults_by_kind_and_mode": dict(by_mode), "oracle_starts": soak.oracle.starts, "chain_starts": soak.chain.starts,
        "queries": soak.load.snapshot(), **counts, **drain, "final_stop": stop, **{k: v for k, v in audited.items() if k != "export"},
        "chain_restarts_with_block_loss": len(soak.block_losses), "block_losses": soak.block_losses[:50],
        "anchoring_orphaned": sum(1 for e in soak.events if e.get("anchoring_orphaned")),
        "anchoring_not_restarted": sum(1 for e in soak.events if e["kind"] == "kill-anchoring" and not e.get("restarted")),
        "chain_down_start_not_refused": [e for e in soak.events if "refused_cleanly" in e and not e["refused_cleanly"]][:20],
        "aborted": aborted, "oracle_exited_by_itself": soak.unexpected_exits,
        "fault_seconds": _spread([e["seconds"] for e in soak.events]),
        "fault_seconds_by_kind": {k: _spread([e["seconds"] for e in soak.events if e["kind"] == k]) for k in faults},
    }
    report["passed"] = (report["lost"] == 0 and report["duplicated"] == 0 and report["verify_exit_code"] == 0
                        and aborted is None and not soak.unexpected_exits)
    (workdir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in soak.events))
    return report


def _read_export(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if "sequence" in line]


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1], "total": round(sum(ordered), 1)}


def summary(report: dict[str, Any]) -> str:
    q = report["queries"]["counts"]
    rows = [
        ("faults", f"{report['faults']}  " + ", ".join(f"{k} {v}" for k, v in sorted(report["faults_by_kind"].items()))),
        ("queries sent", f"{sum(v for k, v in q.items() if k.startswith('sent_'))}  "
                         + ", ".join(f"{k[5:]} {v}" for k, v in sorted(q.items()) if k.startswith("sent_"))),
        ("answers with a receipt", f"{report['queries']['receipts']}  " + ", ".join(f"{k} {v}" for k, v in sorted(q.items()) if k.startswith("status_"))),
        ("not answered", (f"unreachable {q.get('unreachable', 0)}, answer lost {q.get('answer_lost', 0)}, "
                          f"bad receipt {q.get('bad_receipt', 0)}")),
        ("records on chain", f"{report.get('records_on_chain')}  {report.get('records_by_outcome')}"),
        ("  without a receipt", (f"{report.get('records_without_receipt')} (matched to lost answers "
                                 f"{report.get('records_matched_to_lost_answers')}, withheld pairs {report.get('withheld_pairs')}, "
                                 f"unmatched {report.get('records_unmatched')})")),
        ("lost", report["lost"]), ("duplicated", report["duplicated"]), ("sequence gaps", report.get("gaps")),
        ("tally error", report.get("tally_error")), ("aborted", report["aborted"]),
        ("oracle exited by itself", len(report["oracle_exited_by_itself"])),
        ("chain restarts with block loss", f"{report['chain_restarts_with_block_loss']} of {report['chain_starts'] - 1}"),
        ("drained", f"{report['drained']} in {report['drain_seconds']} s"),
        ("audit verify", f"exit {report['verify_exit_code']}"),
        ("passed", report["passed"]),
    ]
    return "\n".join(f"{name:<32} {value}" for name, value in rows)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=1000, help="faults to inject in all")
    parser.add_argument("--interval", type=float, default=1.0, help="mean seconds of load between a fault's recovery and the next fault")
    parser.add_argument("--minutes", type=float, help="instead of --interval: aim for about this many minutes in all")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--rate", type=float, default=20.0, help="queries per second, all requesters together")
    parser.add_argument("--threads", type=int, default=4, help="requester threads")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the first fault")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load after the last fault")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--progress", type=int, default=25, help="a progress line every N faults (0: none)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    args = parser.parse_args()
    # Started in the background (`nohup ... &`), the soak inherits SIGINT ignored, and so would every
    # process it starts (a stop by SIGINT then waits out its timeout): take SIGINT back, and stop on
    # SIGTERM as on SIGINT, stopping what it started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run(args)
    except (LedgerError, RuntimeError, OSError) as exc:
        print(f"fault soak failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text if args.json else summary(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
