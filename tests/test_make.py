"""The README's two commands bring what they need: ``make test`` installs Debian's Chromium for the
browser tests when it is missing and the user may install packages, and otherwise stops at once
with the exact command to run (``make browser``, which ``make test`` depends on)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _make_browser(files: str, *, as_nobody: bool) -> subprocess.CompletedProcess[str]:
    command = ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "browser", f"BROWSER_FILES={files}"]
    if as_nobody:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_make_test_depends_on_the_browser_step() -> None:
    plan = subprocess.run(["make", "-n", "-C", str(PROJECT_ROOT), "test"], capture_output=True, text=True, timeout=60).stdout
    assert "BROWSER" not in plan and "/usr/bin/chromedriver" in plan, plan  # the browser step runs before pytest
    assert plan.index("/usr/bin/chromedriver") < plan.index("-m pytest")


def test_nothing_happens_when_the_browser_is_there(tmp_path: Path) -> None:
    present = tmp_path / "chromium"
    present.touch()
    done = _make_browser(str(present), as_nobody=False)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_without_the_right_to_install_it_stops_with_the_command_to_run() -> None:
    done = _make_browser("/nonexistent/chromium /usr/bin/true", as_nobody=os.geteuid() == 0)
    assert done.returncode != 0
    assert "missing: /nonexistent/chromium)" in done.stderr
    assert "sudo apt-get install -y chromium chromium-driver fonts-wqy-microhei" in done.stderr
