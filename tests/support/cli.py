"""Run the real ``govshare`` command line as a subprocess, with an environment the test controls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cli_env(devnet_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any ``GOVSHARE_*`` setting, the devnet directory pinned to
    ``devnet_dir`` (so a developer's own ``.devnet`` never leaks in), and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    env["GOVSHARE_DEVNET_DIR"] = str(devnet_dir)
    env.update(extra)
    return env


@dataclass
class CliRun:
    """A finished ``govshare`` run."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, f"govshare {' '.join(self.args)} exited {self.returncode}: {self.stderr}"
        return json.loads(self.stdout)


def start(args: tuple[str, ...] | list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=PROJECT_ROOT, env=dict(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], args: tuple[str, ...] | list[str], timeout: float = 180) -> CliRun:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return CliRun(tuple(args), process.returncode, stdout, stderr)


def govshare(*args: str, env: Mapping[str, str], timeout: float = 180) -> CliRun:
    """Run ``govshare ARGS`` (``python -m cli.main``) and wait for it."""
    return finish(start(args, env), args, timeout)


def govshare_all(runs: list[list[str]], env: Mapping[str, str], timeout: float = 180) -> list[CliRun]:
    """Run several independent ``govshare`` commands at once (each costs ~1.5 s of imports) and
    wait for all; only for commands that change nothing the others read."""
    processes = [start(args, env) for args in runs]
    return [finish(process, args, timeout) for process, args in zip(processes, runs)]
