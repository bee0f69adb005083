"""``govshare consortium apply``: the bootstrap of ``scripts/bootstrap.py`` as a ``govshare`` command, on
the fixture deployment where the sample departments are admitted (the example plan adds the oracle URLs)."""

from __future__ import annotations

import json

from tests.cli.conftest import CliWorld
from tests.scripts.conftest import EXAMPLE_PLAN


def test_apply_the_example_plan_to_the_sample_consortium(cli_world: CliWorld) -> None:
    w = cli_world
    dry = w.run("consortium", "apply", "--plan", str(EXAMPLE_PLAN), "--dry-run", "--json")
    assert dry.returncode == 4, dry.stderr
    assert json.loads(dry.stdout)["planned"] == ["SAMR: publish the oracle URL 'http://127.0.0.1:8700'",
                                                 "PSB: publish the oracle URL 'http://127.0.0.1:8701'"]
    applied = w.run("consortium", "apply", "--plan", str(EXAMPLE_PLAN), *w.args(key="samr"), *w.args(key="psb"), "--json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["transactions_sent"] == 2
    registry = w.consortium.registry
    assert registry.department(w.members.samr.id).oracle_url == "http://127.0.0.1:8700"
    assert registry.department(w.members.psb.id).oracle_url == "http://127.0.0.1:8701"
    again = w.run("consortium", "apply", "--plan", str(EXAMPLE_PLAN))
    assert again.returncode == 0 and "nothing to do, nothing sent" in again.stdout, again.stdout + again.stderr
