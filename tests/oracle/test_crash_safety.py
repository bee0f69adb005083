"""Crash safety: the oracle runs as a real process (``govshare oracle serve``) and is killed with
SIGKILL after it answered but before it anchored; once restarted, every record reaches the chain
exactly once, with no gap in the oracle's sequence. Also the harder crash: the batch transaction
went on chain but the process died before the outbox marked it. The oracle anchors through its
anchoring process (the default), which must exit when the oracle is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from devtools.devnet import free_port
from devtools.sample_data import companies
from ledger.compiler import PROJECT_ROOT
from ledger.contracts.audit_log import Outcome, verify_hash_chain
from ledger.contracts.grants import AccessReason
from ledger.keys import save_keystore
from oracle.outbox import Outbox
from requester.client import OracleClient, QueryRefused

PASSWORD = "crash-test-password"  # test keystore password, not a secret


@dataclass
class OracleProcess:
    """``python -m cli.main oracle serve --config FILE`` as a child process."""

    config_path: Path
    port: int
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> OracleProcess:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "oracle", "serve", "--config", str(self.config_path)],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=os.environ | {"GOVSHARE_KEY_PASSWORD": PASSWORD},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"oracle exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"oracle did not answer /v1/health within {timeout}s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, nothing. Its anchoring process (``oracle.anchoring``,
        a child) must then exit by itself, seeing its socket to the dead oracle close."""
        if self.process is not None and self.process.poll() is None:
            children = _children(self.process.pid)
            assert any("oracle.anchoring" in _cmdline(child) for child in children), children
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            deadline = time.monotonic() + 10
            while any(_running(child) for child in children):
                assert time.monotonic() < deadline, "the anchoring process outlived its oracle"
                time.sleep(0.05)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (the anchoring process is started by one of its threads)."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by whoever adopted it, maybe late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@dataclass
class Setup:
    consortium: Any
    members: Any
    published: Any
    oracle: OracleProcess
    outbox_path: Path
    write_config: Callable[..., None]
    client: OracleClient
    receipts: list[dict] = field(default_factory=list)  # every receipt the requester was given
    served: int = 0

    @property
    def oracle_address(self) -> str:
        return self.members.samr.oracle.address

    def last_sequence(self) -> int:
        return self.consortium.audit_log.oracle_state(self.oracle_address).last_sequence

    def serve(self, index: int) -> None:
        result = self.client.query(self.members.tax.operator, self.members.tax.id, self.published.companies,
                                   self.published.tax_grant, self.published.company_fields,
                                   {"company_id": companies()[index]["company_id"]})
        assert result.receipt["outcome"] == Outcome.SERVED
        self.receipts.append(result.receipt)
        self.served += 1

    def deny(self) -> None:
        """Fields outside the grant: refused, and recorded."""
        fields = self.consortium.catalog.dataset(self.published.companies).field_mask(["company_id", "legal_representative"])
        with pytest.raises(QueryRefused) as err:
            self.client.query(self.members.tax.operator, self.members.tax.id, self.published.companies,
                              self.published.tax_grant, fields, {"company_id": companies()[0]["company_id"]})
        assert err.value.status == 403 and err.value.reason == "FIELDS_NOT_GRANTED", err.value.problem
        self.receipts.append(err.value.receipt)

    def wait_anchored(self, sequence: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.last_sequence() < sequence:
            if time.monotonic() > deadline:
                raise AssertionError(f"the chain holds {self.last_sequence()} records after {timeout}s, expected {sequence}")
            time.sleep(0.1)
        assert self.last_sequence() == sequence

    def check_chain(self) -> None:
        """Sequences 1..n exactly once, the hash chain reaches the head, every receipt is on chain."""
        records = list(self.consortium.audit_log.records())
        records = [r for r in records if r.oracle == self.oracle_address]
        assert [r.sequence for r in records] == list(range(1, len(self.receipts) + 1))
        state = self.consortium.audit_log.oracle_state(self.oracle_address)
        assert state.last_sequence == len(self.receipts)
        verify_hash_chain(records, state.head)
        by_id = {hex(r.record_id): r for r in records}
        assert len(by_id) == len(records)
        for receipt in self.receipts:
            record = by_id[receipt["record_id"]]
            assert record.sequence == receipt["sequence"]
            assert "0x" + record.entry.request_hash.hex() == receipt["request_hash"]
            assert "0x" + record.entry.response_hash.hex() == receipt["response_hash"]
            assert (int(record.entry.outcome), record.entry.reason) == (receipt["outcome"], receipt["reason"])
        assert self.consortium.grants.grant(self.published.tax_grant).used == self.served


@pytest.fixture
def setup(tmp_path, consortium, members, published, company_api):
    manifest = consortium.deployment.save(tmp_path / "deployments")
    key_file = save_keystore(members.samr.oracle, tmp_path / "samr-oracle.json", PASSWORD, iterations=2)
    outbox_path = tmp_path / "samr-outbox.sqlite"
    config_path = tmp_path / "samr-oracle.toml"
    port = free_port()

    def write_config(*, batch_max_age_seconds: float) -> None:
        config_path.write_text("\n".join([
            f"rpc_url = {json.dumps(consortium.chain.url)}",
            f"manifest = {json.dumps(str(manifest))}",
            'department = "SAMR"',
            f"key_file = {json.dumps(str(key_file))}",
            f"outbox = {json.dumps(str(outbox_path))}",
            f"listen_port = {port}",
            f"batch_max_age_seconds = {batch_max_age_seconds}",
            "chain_block_seconds = 60  # ganache: a block per transaction (see tests/oracle/conftest.py)",
            "request_poll_interval_seconds = 0.5",
            f"[datasets.{published.companies}]",
            f"base_url = {json.dumps(company_api.url)}",
            'path = "/companies"',
            'params = ["company_id", "status"]',
            "",
        ]))

    oracle = OracleProcess(config_path, port, tmp_path / "oracle.log")
    client = OracleClient(oracle.url, consortium.chain.chain_id, consortium.deployment.addresses["QueryRequests"],
                          oracle_address=members.samr.oracle.address)
    yield Setup(consortium, members, published, oracle, outbox_path, write_config, client)
    client.close()
    oracle.kill()


def test_killed_after_answering_before_anchoring_every_record_reaches_the_chain_once(setup):
    setup.write_config(batch_max_age_seconds=3600)  # nothing is due before the kill
    setup.oracle.start()
    for i in range(7):
        setup.serve(10 + i)
    setup.deny()
    setup.deny()
    assert [r["sequence"] for r in setup.receipts] == list(range(1, 10))
    setup.oracle.kill()

    assert setup.last_sequence() == 0  # answered, not anchored
    outbox = Outbox(setup.outbox_path)
    assert outbox.pending_count() == 9  # ... but durable
    outbox.close()

    setup.write_config(batch_max_age_seconds=0.2)
    setup.oracle.start()
    setup.wait_anchored(9)
    for i in range(3):
        setup.serve(30 + i)
    setup.deny()
    assert [r["sequence"] for r in setup.receipts[9:]] == [10, 11, 12, 13]  # numbering continued, no gap
    setup.wait_anchored(13)
    setup.oracle.terminate()

    setup.check_chain()
    assert setup.served == 10
    outbox = Outbox(setup.outbox_path)
    assert outbox.pending_count() == 0
    outbox.close()


@pytest.mark.parametrize("anchored_before_crash", [6, 4], ids=["whole-batch", "part-of-the-outbox"])
def test_batch_on_chain_but_not_marked_is_reconciled_not_resent(setup, anchored_before_crash):
    """The process died between the batch's transaction and the outbox's mark: the restarted oracle
    finds the records on chain, marks them, anchors only the rest and numbers on after the chain."""
    setup.write_config(batch_max_age_seconds=3600)
    setup.oracle.start()
    for i in range(5):
        setup.serve(40 + i)
    setup.deny()
    setup.oracle.kill()

    # The transaction the dead oracle "sent": the outbox's own records, from the oracle's own account.
    outbox = Outbox(setup.outbox_path)
    pending = outbox.unanchored(100)
    assert [r.sequence for r in pending] == [1, 2, 3, 4, 5, 6]
    outbox.close()
    setup.consortium.audit_log.append(setup.members.samr.oracle, 1, [r.entry for r in pending[:anchored_before_crash]])
    assert setup.last_sequence() == anchored_before_crash

    setup.write_config(batch_max_age_seconds=0.2)
    setup.oracle.start()
    setup.wait_anchored(6)
    setup.serve(50)
    setup.deny()
    assert [r["sequence"] for r in setup.receipts[6:]] == [7, 8]
    setup.wait_anchored(8)
    setup.oracle.terminate()

    setup.check_chain()
    outbox = Outbox(setup.outbox_path)
    records = list(outbox.all_records())
    outbox.close()
    assert [r.sequence for r in records] == list(range(1, 9))
    assert all(r.anchored_block is not None for r in records)
    # the records the chain already held were marked by reconciliation, not sent again
    assert {r.anchored_tx for r in records[:anchored_before_crash]} == {"(reconciled)"}
    assert "(reconciled)" not in {r.anchored_tx for r in records[anchored_before_crash:]}
    denials = [r for r in setup.consortium.audit_log.records() if r.entry.outcome == Outcome.DENIED]
    assert [d.entry.reason for d in denials] == [AccessReason.FIELDS_NOT_GRANTED] * 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_oracle_cleanly_and_flushes_the_outbox(setup, signum):
    """The oracle's HTTP server returns on SIGTERM or SIGINT (it finishes answers in progress), and
    the oracle then anchors what is waiting before it exits with status 0."""
    setup.write_config(batch_max_age_seconds=3600)  # nothing is due: only the shutdown's flush anchors
    setup.oracle.start()
    for i in range(3):
        setup.serve(40 + i)
    setup.deny()
    assert setup.last_sequence() == 0
    process = setup.oracle.process
    process.send_signal(signum)
    assert process.wait(timeout=30) == 0, setup.oracle.log_path.read_text()
    assert setup.last_sequence() == 4
    setup.check_chain()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{setup.oracle.url}/v1/health", timeout=2.0)
