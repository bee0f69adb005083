"""The benchmarks' harness: real processes and their CPU time, the machine's CPU counters, a chain
node (anvil, else ganache), closed-loop load with wrk, open-loop load with ``openloop.c``, and
py-spy profiles. Used by ``oracle_load.py``, ``oracle_compare.py`` and ``oracle_instructions.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from devtools.devnet import DETERMINISTIC_MNEMONIC, GanacheNode, free_port  # noqa: E402
from ledger.chain import Chain  # noqa: E402
from ledger.rpc import JsonRpc  # noqa: E402

PYTHON = sys.executable
BENCH = Path(__file__).resolve().parent


def _anvil() -> Path:
    """``$ANVIL``, else the platform binary the npm package @foundry-rs/anvil installed (not its node
    wrapper: one process less on the shared cores, and its CPU time can be read), else the wrapper."""
    if "ANVIL" in os.environ:
        return Path(os.environ["ANVIL"])
    modules = Path("/tmp/bench-node/node_modules")
    native = sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil"))
    return native[0] if native else modules / ".bin" / "anvil"


ANVIL = _anvil()
PY_SPY = Path(PYTHON).parent / "py-spy"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------- processes

class Proc:
    """A child process with its log in the work directory; ``stop()`` sends SIGINT, then SIGKILL."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None,
                 cwd: Path = PROJECT_ROOT) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=os.environ | (env or {}), start_new_session=True)
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads) so far."""
        return _cpu_seconds(self.pid)

    def children_cpu_seconds(self) -> float:
        """utime + stime so far of the process's live children (the oracle's anchoring process)."""
        return sum(_cpu_seconds(child) for child in _children(self.pid))

    def stop(self, timeout: float = 60.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


class MachineCounters:
    """CPU time of the machine (``/proc/stat``: busy, and stolen by the hypervisor) and of the given
    processes between :meth:`start` and :meth:`stop`, as shares of one core (process) or of all cores."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.procs = procs

    @staticmethod
    def _stat() -> list[int]:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]

    def start(self) -> None:
        self._t0, self._stat0 = time.monotonic(), self._stat()
        self._cpu0 = {name: p.cpu_seconds() for name, p in self.procs.items()}
        self._anchoring0 = self.procs["oracle"].children_cpu_seconds() if "oracle" in self.procs else 0.0

    def stop(self) -> dict[str, float]:
        elapsed, stat = time.monotonic() - self._t0, self._stat()
        delta = [b - a for a, b in zip(self._stat0, stat)]
        total = sum(delta[:8]) or 1  # user nice system idle iowait irq softirq steal
        out = {"machine_busy_pct": 100 * (total - delta[3] - delta[4]) / total, "steal_pct": 100 * delta[7] / total}
        for name, p in self.procs.items():
            out[f"{name}_core_pct"] = 100 * (p.cpu_seconds() - self._cpu0[name]) / elapsed
        if "oracle" in self.procs:
            out["anchoring_core_pct"] = 100 * (self.procs["oracle"].children_cpu_seconds() - self._anchoring0) / elapsed
        return out


def wait_http(url: str, proc: Proc | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log_path}:\n{proc.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class ChainNode:
    """anvil (preferred) or ganache, with dev_accounts() funded."""

    def __init__(self, workdir: Path, name: str, block_time: float | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.ganache: GanacheNode | None = None
        if ANVIL.exists():
            args = [str(ANVIL), "--port", str(self.port), "--chain-id", "1337", "--mnemonic", DETERMINISTIC_MNEMONIC,
                    "--accounts", "30", "--silent"]
            if block_time:
                args += ["--block-time", str(block_time)]
            self.proc = Proc(name, args, workdir)
            self.kind = "anvil"
            deadline = time.monotonic() + 30
            while True:
                try:
                    Chain(self.url).block_number()
                    break
                except Exception:
                    if time.monotonic() > deadline or not self.proc.alive():
                        raise RuntimeError(f"anvil did not start; see {self.proc.log_path}") from None
                    time.sleep(0.1)
            self.version = rpc(self.url, "web3_clientVersion")
        else:
            extra = ["--miner.blockTime", str(block_time)] if block_time else []
            self.ganache = GanacheNode(extra=extra, log_dir=workdir)
            self.url, self.kind = self.ganache.url, "ganache"
            self.version = rpc(self.url, "web3_clientVersion")

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
        if self.ganache:
            self.ganache.stop()


def rpc(url: str, method: str, params: list | None = None) -> Any:
    """One JSON-RPC call to ``url`` on a connection of its own."""
    rpc = JsonRpc(url, timeout=10.0, max_idle=0)
    try:
        return rpc.call(method, params or [])
    finally:
        rpc.close()


# ---------------------------------------------------------------------------------------- load

def run_wrk(url: str, script: str, lines: list[str], workdir: Path, label: str, *, threads: int, connections: int,
            duration: int) -> dict[str, Any]:
    data = workdir / f"{label}.lines"
    data.write_text("\n".join(lines) + "\n")
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "60s", "--latency", "-s", str(BENCH / "wrk" / script),
            url, "--", str(data), str(threads)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    (workdir / f"{label}.wrk.txt").write_text(" ".join(args) + "\n" + out)
    line = next(l for l in out.splitlines() if l.startswith("BENCH "))
    result = json.loads(line[6:])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["command"] = " ".join(args)
    return result


#: Seconds sent at the open-loop rate before measuring.
OPEN_WARMUP = 2.0


def openloop_binary(workdir: Path) -> Path:
    """scripts/bench/openloop.c compiled into ``workdir`` (with ``cc``)."""
    binary = workdir / "openloop"
    if not binary.exists():
        subprocess.run(["cc", "-O2", "-o", str(binary), str(BENCH / "openloop.c")], check=True)
    return binary


def open_loop(url: str, requests: list[bytes], rate: float, duration: float, workdir: Path, label: str, *,
              connections: int = 64, warmup: float = OPEN_WARMUP) -> dict[str, Any]:
    """Send at a fixed rate regardless of answers (no coordinated omission) with scripts/bench/openloop.c:
    latency is measured from each request's scheduled send time. ``requests`` are complete HTTP/1.1
    requests (request i is ``requests[i % len(requests)]``). The first ``warmup`` seconds are sent at
    the same rate but not measured; ``duration`` is the measured part."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    requests_file, latencies_file = workdir / f"{label}.requests", workdir / f"{label}.latencies"
    with open(requests_file, "wb") as f:
        f.writelines(len(raw).to_bytes(4, "little") + raw for raw in requests)
    args = [str(openloop_binary(workdir)), host, port, str(rate), str(warmup), str(duration), str(connections),
            str(requests_file), str(latencies_file)]
    summary = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for line in latencies_file.read_text().splitlines():
        status, micros = (int(x) for x in line.split())
        if status:
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append(micros / 1e6)
    latencies.sort()
    return summary | {"command": " ".join(args), "statuses": statuses,
                      "non2xx": sum(v for k, v in statuses.items() if not 200 <= k < 300),
                      "p50_ms": pct(latencies, 50) * 1000, "p90_ms": pct(latencies, 90) * 1000,
                      "p99_ms": pct(latencies, 99) * 1000, "max_ms": latencies[-1] * 1000 if latencies else None}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def oracle_requests(url: str, lines: list[str]) -> list[bytes]:
    """The oracle query requests, one per pre-signed body."""
    host = url.removeprefix("http://")
    return [(f"POST /v1/query HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in (line.encode() for line in lines)]


def direct_requests(url: str, paths: list[str]) -> list[bytes]:
    """The department API's requests, one per path (the generator cycles through them)."""
    host = url.removeprefix("http://")
    return [f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for path in paths]


# ---------------------------------------------------------------------------------------- profile

def profile(pid: int, seconds: int, out: Path, *, gil: bool = False) -> dict[str, Any] | None:
    """py-spy record (collapsed stacks) of ``pid`` for ``seconds``; top functions by self and total.
    Without ``gil``: every non-idle thread (where requests spend wall time, waiting on I/O included);
    with ``gil``: only the thread holding the GIL (where the Python CPU goes)."""
    if not PY_SPY.exists():
        return None
    args = [str(PY_SPY), "record", "--pid", str(pid), "-d", str(seconds), "-r", "200", "--format", "raw",
            "-o", str(out), "--nonblocking", *(["--gil"] if gil else [])]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        return {"error": (done.stderr or done.stdout)[-500:]}
    total = 0
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        total += n
        leaf = _short_frame(frames[-1])
        self_counts[leaf] = self_counts.get(leaf, 0) + n
        for f in {_short_frame(f) for f in frames}:
            incl_counts[f] = incl_counts.get(f, 0) + n
    top = lambda d: [(f, round(100 * c / total, 1)) for f, c in sorted(d.items(), key=lambda kv: -kv[1])[:25]]  # noqa: E731
    return {"samples": total, "self": top(self_counts), "total": top(incl_counts), "raw": str(out)}


def _short_frame(frame: str) -> str:
    """'func (path/to/file.py:12)' -> 'func (file.py)' with the package dir (site-packages stripped)."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif str(PROJECT_ROOT) in path:
        path = path.split(str(PROJECT_ROOT) + "/", 1)[1]
    elif "/lib/python" in path:
        path = "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return f"{name} ({path})"


