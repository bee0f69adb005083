"""The independent JavaScript client (``tests/js/``, ethers v6, written from docs/PROTOCOL.md and the
vectors alone) run with ``node`` as a real subprocess: it must reproduce every test vector, and
against a real chain, a real oracle over HTTP and the real sample company registry it must sign
queries the oracle accepts, verify the receipts and find each one's audit record on chain.

The oracle of the fixtures anchors by hand (``batch_max_age_seconds`` is an hour): while the client
waits for its records, this test anchors whatever is pending, as the oracle's batcher would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.sample_data import companies
from ledger.compiler import PROJECT_ROOT, CompilationResult
from ledger.deployment import Consortium
from tests.conftest import Members
from tests.oracle.conftest import Published, RunningOracle, published, samr_oracle  # noqa: F401 - fixtures

CLIENT = PROJECT_ROOT / "tests" / "js" / "govshare-client.mjs"
VECTORS = PROJECT_ROOT / "tests" / "protocol" / "vectors"
TIMEOUT = 120


def node() -> str:
    path = shutil.which("node")
    if path is None or not (PROJECT_ROOT / "node_modules" / "ethers").is_dir():
        pytest.fail("the JavaScript client needs node 20+ and node_modules (make setup runs npm ci)")
    return path


def results(stdout: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The client's checks and its summary, from its JSON lines."""
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    checks = [line for line in lines if "check" in line]
    summaries = [line["summary"] for line in lines if "summary" in line]
    assert len(summaries) == 1, stdout[-2000:]
    return checks, summaries[0]


def run_vectors(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node(), str(CLIENT), "vectors", "--dir", str(directory)], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)


def test_the_js_client_reproduces_every_vector() -> None:
    done = run_vectors(VECTORS)
    checks, summary = results(done.stdout)
    failed = [c for c in checks if not c["ok"]]
    assert done.returncode == 0 and not failed, f"{failed}\n{done.stderr[-2000:]}"
    assert summary == {"passed": len(checks), "failed": 0} and len(checks) >= 130
    names = " | ".join(c["check"] for c in checks)
    for kind in ("canonical_json refuses", "tampered query refused", "tampered receipt refused", "merkle proof refused",
                 "ECIES refused", "body refused", "audit record 6", "result-fetching Authorization"):
        assert kind in names, kind


def test_the_js_client_fails_on_a_wrong_vector(tmp_path: Path) -> None:
    """A client that found a mismatch exits 1 and names it: one digest and one tampered receipt's
    expected recovery changed in a copy of the vectors."""
    directory = tmp_path / "vectors"
    shutil.copytree(VECTORS, directory)
    queries = json.loads((directory / "queries.json").read_text(encoding="utf-8"))
    queries["queries"][0]["digest"] = "0x" + "ab" * 32
    (directory / "queries.json").write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
    receipts = json.loads((directory / "receipts.json").read_text(encoding="utf-8"))
    receipts["tampered"][0]["recovers"] = receipts["oracle"]
    (directory / "receipts.json").write_text(json.dumps(receipts, ensure_ascii=False), encoding="utf-8")
    done = run_vectors(directory)
    checks, summary = results(done.stdout)
    assert done.returncode == 1
    assert sorted(c["check"] for c in checks if not c["ok"]) == [
        f"query: {queries['queries'][0]['name']}", f"tampered receipt refused: {receipts['tampered'][0]['name']}"]
    assert summary["failed"] == 2


def test_the_js_client_against_a_live_oracle_and_chain(tmp_path: Path, consortium: Consortium, members: Members,
                                                      published: Published, samr_oracle: RunningOracle,  # noqa: F811
                                                      compilation: CompilationResult) -> None:
    """Sign with tax's operator key (a public test key, given through the environment only), post to
    market supervision's oracle, verify the receipts, and match each audit record and the hash chain."""
    consortium.deployment.save(tmp_path, compilation)  # <chain-id>.json and <chain-id>.contracts.json
    chain_id = consortium.chain.chain_id
    env = {**os.environ, "GOVSHARE_JS_PRIVATE_KEY": "0x" + bytes(members.tax.operator.account.key).hex()}
    argv = [node(), str(CLIENT), "live", "--contracts", str(tmp_path / f"{chain_id}.contracts.json"),
            "--manifest", str(tmp_path / f"{chain_id}.json"), "--rpc", consortium.chain.url, "--oracle", samr_oracle.url,
            "--grant", str(published.tax_grant), "--params", json.dumps({"company_id": companies()[0]["company_id"]}),
            "--anchor-timeout", "60"]
    out, err = tmp_path / "client.out", tmp_path / "client.err"
    deadline = time.monotonic() + TIMEOUT
    with out.open("w") as stdout, err.open("w") as stderr:
        client = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        try:
            while client.poll() is None and time.monotonic() < deadline:
                samr_oracle.oracle.batcher.anchor_once(force=True)  # what the batcher does when a batch is due
                time.sleep(0.2)
        finally:
            if client.poll() is None:
                client.kill()
            client.wait(timeout=10)
    checks, summary = results(out.read_text())
    failed = [c for c in checks if not c["ok"]]
    assert client.returncode == 0 and not failed, f"{failed}\n{err.read_text()[-2000:]}"
    assert summary["failed"] == 0 and summary["passed"] == len(checks) >= 17
    state = consortium.audit_log.oracle_state(members.samr.oracle.address)
    assert state.last_sequence == 4  # served, replayed, field not granted, bad signature: all on chain
