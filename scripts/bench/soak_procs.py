"""The fault soak's processes (``fault_soak.py``), each a real one that can be SIGKILLed and started
again: ganache on a database directory (the same port and state after a restart), the sample
company API, and SAMR's oracle (``govshare oracle serve``: its answering process and the anchoring
process it starts and restarts)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT, PYTHON, Proc, rpc, wait_http
from oracle_setup import Setup, write_config

from devtools.devnet import GanacheNode, free_port

#: Exit code of ``govshare`` when the chain cannot be reached (cli/exit codes, README "Exit codes").
EXIT_UNREACHABLE = 3


class SoakChain:
    """ganache with its state in ``workdir/chain``, on one port for its whole life."""

    def __init__(self, workdir: Path) -> None:
        self.db_path = workdir / "chain"
        self.log_dir = workdir / "ganache-logs"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.node: GanacheNode | None = None
        self.starts = 0

    def start(self) -> float:
        """Start ganache on the database directory; seconds until it answered."""
        t0 = time.monotonic()
        self.starts += 1
        self.node = GanacheNode(db_path=self.db_path, port=self.port, log_dir=self.log_dir)
        return time.monotonic() - t0

    def head(self) -> tuple[int, str]:
        """The head's number and hash."""
        block = rpc(self.url, "eth_getBlockByNumber", ["latest", False])
        return int(block["number"], 16), block["hash"]

    def block_hash(self, number: int) -> str | None:
        block = rpc(self.url, "eth_getBlockByNumber", [hex(number), False])
        return block["hash"] if block else None

    def kill(self) -> None:
        """SIGKILL ganache (npx and node: its whole process group)."""
        assert self.node is not None
        os.killpg(self.node.process.pid, signal.SIGKILL)
        self.node.process.wait()
        self.node.stop()  # closes its log
        self.node = None

    def stop(self) -> None:
        """Stop ganache cleanly (SIGTERM: it closes its database)."""
        if self.node is not None:
            self.node.stop()
            self.node = None


class DepartmentApi:
    """``python -m devtools.sample_apis companies`` on one port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.proc = Proc(f"company-api-{self.starts}", [PYTHON, "-m", "devtools.sample_apis", "companies", "--port",
                                                        str(self.port)], self.workdir)
        wait_http(f"{self.url}/health", self.proc)  # self.proc is set first: an interrupted start is stopped too

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.stop()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.process.terminate()
            self.proc.stop()
            self.proc = None


class SoakOracle:
    """SAMR's oracle on one port and one outbox for the whole soak; each start may take another mode."""

    def __init__(self, workdir: Path, setup: Setup, chain_url: str, api_url: str) -> None:
        self.workdir, self.setup, self.chain_url, self.api_url = workdir, setup, chain_url, api_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outbox = workdir / "samr-outbox.sqlite"
        self.proc: Proc | None = None
        self.mode = "fast"
        self.starts = 0

    def config(self, mode: str) -> Path:
        return write_config(self.workdir, f"oracle-{mode}", self.setup, self.chain_url, self.api_url, self.port, mode,
                            self.outbox)

    def start(self, mode: str) -> float:
        """``govshare oracle serve`` in ``mode``, until /v1/health answers; seconds it took."""
        t0 = time.monotonic()
        self.starts += 1
        self.mode = mode
        config = self.config(mode)
        self.proc = Proc(f"oracle-{self.starts:04d}-{mode}", [PYTHON, "-m", "cli.main", "oracle", "serve", "--config",
                                                              str(config)], self.workdir)
        wait_http(f"{self.url}/v1/health", self.proc, timeout=120)  # as oracle_setup.start_oracle, self.proc set first
        return time.monotonic() - t0

    def anchoring_pid(self) -> int | None:
        """The anchoring process (``python -m oracle.anchoring``), a child of the answering process."""
        if self.proc is None:
            return None
        try:
            children = [int(c) for task in Path(f"/proc/{self.proc.pid}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return None
        return next((c for c in children if "oracle.anchoring" in _cmdline(c) and _running(c)), None)

    def wait_anchoring(self, other_than: int | None = None, timeout: float = 120.0) -> int | None:
        """An anchoring process other than ``other_than``, once there is one (None past ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.anchoring_pid()
            if pid is not None and pid != other_than:
                return pid
            time.sleep(0.05)
        return None

    def kill_answering(self) -> dict[str, Any]:
        """SIGKILL the answering process; whether its anchoring process then exits by itself (it must)."""
        assert self.proc is not None
        anchoring = self.anchoring_pid()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.stop()
        self.proc = None
        t0 = time.monotonic()
        while anchoring is not None and _running(anchoring) and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        orphaned = anchoring is not None and _running(anchoring)
        if orphaned:
            os.kill(anchoring, signal.SIGKILL)
        return {"anchoring_exit_seconds": round(time.monotonic() - t0, 2), "anchoring_orphaned": orphaned}

    def kill_anchoring(self) -> dict[str, Any]:
        """SIGKILL the anchoring process; seconds until the answering process has started another."""
        pid = self.wait_anchoring()
        if pid is None:
            return {"killed": False}
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        new = self.wait_anchoring(other_than=pid)
        return {"killed": True, "restarted": new is not None, "restart_seconds": round(time.monotonic() - t0, 2)}

    def stop(self, timeout: float = 90.0) -> dict[str, Any]:
        """SIGTERM and wait (the oracle anchors what is pending first when it can); its exit code."""
        if self.proc is None:
            return {}
        t0 = time.monotonic()
        process = self.proc.process
        process.terminate()
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
            anchoring = self.anchoring_pid()
            process.kill()
            process.wait()
            if anchoring is not None:
                os.kill(anchoring, signal.SIGKILL)
        self.proc.stop()
        self.proc = None
        return {"stop_exit_code": code, "stop_seconds": round(time.monotonic() - t0, 2)}

    def start_refused(self, mode: str, timeout: float = 120.0) -> dict[str, Any]:
        """Start the oracle while the chain is down: it must exit, with ``EXIT_UNREACHABLE``, by itself."""
        t0 = time.monotonic()
        log = self.workdir / f"oracle-chain-down-{self.starts:04d}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([PYTHON, "-m", "cli.main", "oracle", "serve", "--config", str(self.config(mode))],
                                       cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                code = None
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return {"refused_exit_code": code, "refused_seconds": round(time.monotonic() - t0, 2),
                "refused_cleanly": code == EXIT_UNREACHABLE, "refused_log": log.name}

    def health(self) -> dict[str, Any] | None:
        import json
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/v1/health", timeout=10) as reply:
                return json.loads(reply.read())
        except OSError:
            return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
