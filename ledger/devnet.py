"""A local development chain: a real ganache node started through ``npx`` on a free port.

Used by the test suite, the demo and ``govshare devnet``. Nothing else in govshare depends on
ganache: production talks to any JSON-RPC node (Hyperledger Besu with QBFT is the reference).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Sequence

from eth_account import Account

from ledger.compiler import PROJECT_ROOT
from ledger.keys import Signer, signer_from_key

# Ganache's --wallet.deterministic mnemonic. test key material: public, well known, never a secret.
DETERMINISTIC_MNEMONIC = "myth like bonus scare over problem client lizard pioneer submit female collect"


def dev_accounts(count: int = 30) -> list[Signer]:
    """Ganache's deterministic accounts. Test/dev keys derived from a public mnemonic: never use them
    on a real chain."""
    Account.enable_unaudited_hdwallet_features()
    return [
        signer_from_key(Account.from_mnemonic(DETERMINISTIC_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key)
        for i in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GanacheNode:
    """A ganache process: ``url`` while running; ``stop()`` ends it."""

    def __init__(
        self,
        *,
        accounts: int = 30,
        chain_id: int = 1337,
        extra: Sequence[str] = (),
        log_dir: Path | None = None,
        db_path: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_id = chain_id
        log_dir = log_dir or PROJECT_ROOT / "build" / "test-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(log_dir / f"ganache-{self.port}.log", "wb")
        command = [
            "npx", "--no-install", "ganache",
            "--server.host", "127.0.0.1",
            "--server.port", str(self.port),
            "--wallet.deterministic",
            "--wallet.totalAccounts", str(accounts),
            "--chain.chainId", str(chain_id),
            "--logging.quiet",
            *(["--database.dbPath", str(db_path)] if db_path else []),
            *extra,
        ]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=os.environ | {"NODE_OPTIONS": ""}, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ganache exited with {self.process.returncode}; see {self._log.name}")
            try:
                self.rpc("eth_chainId")
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ganache did not answer on {self.url} within {timeout}s")

    def rpc(self, method: str, params: list | None = None) -> object:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def increase_time(self, seconds: int) -> None:
        """Move block time forward and mine a block at the new time."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self._log.close()
