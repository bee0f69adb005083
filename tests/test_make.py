"""The README's two commands bring what they need: ``make test`` installs the Debian packages its
tests use (Chromium for the browser tests, wrk for the benchmark smoke test) when they are missing
and the user may install packages, and otherwise stops at once with the exact command to run
(``make test-tools``, which ``make test`` depends on)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _make_test_tools(files: str, *, as_nobody: bool) -> subprocess.CompletedProcess[str]:
    command = ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "test-tools", f"TEST_FILES={files}"]
    if as_nobody:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_make_test_depends_on_the_test_tools_step() -> None:
    plan = subprocess.run(["make", "-n", "-C", str(PROJECT_ROOT), "test"], capture_output=True, text=True, timeout=60).stdout
    assert "TEST_FILES" not in plan and "/usr/bin/chromedriver" in plan, plan  # the tools step runs before pytest
    assert plan.index("/usr/bin/chromedriver") < plan.index("-m pytest")


def test_nothing_happens_when_the_tools_are_there(tmp_path: Path) -> None:
    present = tmp_path / "chromium"
    present.touch()
    done = _make_test_tools(str(present), as_nobody=False)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_without_the_right_to_install_it_stops_with_the_command_to_run() -> None:
    done = _make_test_tools("/nonexistent/chromium /usr/bin/true", as_nobody=os.geteuid() == 0)
    assert done.returncode != 0
    assert "missing: /nonexistent/chromium)" in done.stderr
    assert "sudo apt-get install -y chromium chromium-driver fonts-wqy-microhei wrk" in done.stderr
