"""Fixtures of the command-line tests: the session chain's fresh deployment with the four departments,
its manifest in a temporary directory, and keystores of the acting accounts (test password); and the
oracle fixtures of ``tests/oracle/conftest.py`` (market supervision's oracle over HTTP) for ``query``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ledger.deployment import Consortium
from ledger.keys import Signer, save_keystore
from tests.conftest import Members
from tests.oracle.conftest import published, samr_oracle  # noqa: F401 - fixtures for test_cli_query
from tests.support.cli import CliRun, cli_env, govshare

CLI_PASSWORD = "correct horse battery staple"  # test password of test keystores


@dataclass
class CliWorld:
    """A deployment the CLI reaches through ``$GOVSHARE_RPC`` and ``$GOVSHARE_MANIFEST``, and the
    keystores of the accounts it acts as (by name: samr, tax, psb, auditor, outsider, committee-1, committee-2)."""

    consortium: Consortium
    members: Members
    env: dict[str, str]
    keys: dict[str, Path] = field(default_factory=dict)

    def run(self, *args: str, key: str | None = None) -> CliRun:
        """``govshare ARGS [--key-file KEY]``; the password comes from ``$GOVSHARE_KEY_PASSWORD``."""
        return govshare(*self.args(*args, key=key), env=self.env)

    def args(self, *args: str, key: str | None = None) -> list[str]:
        return [*args, *(["--key-file", str(self.keys[key])] if key else [])]


@pytest.fixture
def cli_world(tmp_path: Path, consortium: Consortium, members: Members, accounts: list[Signer]) -> CliWorld:
    manifest = consortium.deployment.save(tmp_path / "deployments")
    env = cli_env(tmp_path / "no-devnet", GOVSHARE_RPC=consortium.chain.url, GOVSHARE_MANIFEST=str(manifest),
                  GOVSHARE_KEY_PASSWORD=CLI_PASSWORD)
    world = CliWorld(consortium, members, env)
    signers = {
        "samr": members.samr.operator, "tax": members.tax.operator, "psb": members.psb.operator,
        "auditor": members.audit.auditor, "outsider": members.outsider,
        "committee-1": accounts[0], "committee-2": accounts[1],
    }
    for name, signer in signers.items():
        world.keys[name] = save_keystore(signer, tmp_path / f"{name}.json", CLI_PASSWORD, iterations=2)
    return world
