"""The demo is the main job (`make demo`): it must pass, and pass again in the same data folder."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from devtools.demo import run_demo


def test_demo_runs_twice_in_a_row(tmp_path: Path) -> None:
    for _ in range(2):
        out = io.StringIO()
        assert run_demo(tmp_path / "demo", Console(file=out, width=160)) is True
        text = out.getvalue()
        assert "every step behaved as stated" in text
        assert "403 REVOKED" in text and "********" in text  # the refusal and the masked id number
