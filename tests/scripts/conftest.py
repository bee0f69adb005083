"""Run the operator scripts (``scripts/*.py``) as real subprocesses against the session ganache, with
an environment the test controls (no ``GOVSHARE_*`` setting of the developer's leaks in), and
keystores of the dev accounts (test password)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.chain import Chain
from ledger.keys import Signer, save_keystore
from tests.support.cli import PROJECT_ROOT, CliRun, cli_env

PASSWORD = "correct horse battery staple"  # test password of test keystores
EXAMPLE_PLAN = PROJECT_ROOT / "scripts" / "examples" / "consortium.toml"

#: Keystores written for each test, by name: dev account indices (devtools.sample_consortium).
KEY_ACCOUNTS = {"committee-1": 0, "committee-2": 1, "committee-3": 2, "samr": 3, "tax": 5, "psb": 7, "audit": 9,
                "outsider": 12, "deployer": 20}


def run_script(script: str, *args: str, env: Mapping[str, str], timeout: float = 180) -> CliRun:
    """``python scripts/SCRIPT ARGS`` from the project root."""
    process = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / script), *args], cwd=PROJECT_ROOT,
                             env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    return CliRun(tuple(args), process.returncode, process.stdout, process.stderr)


@dataclass
class Operator:
    """What a script test needs: the environment, keystores by name, and a way to tell that nothing was sent."""

    env: dict[str, str]
    keys: dict[str, Path]
    tmp: Path

    def run(self, script: str, *args: str, env: Mapping[str, str] | None = None) -> CliRun:
        """``python scripts/SCRIPT ARGS`` in this environment (or ``env``)."""
        return run_script(script, *args, env=self.env if env is None else env)

    def key_args(self, *names: str) -> list[str]:
        return [arg for name in names for arg in ("--key-file", str(self.keys[name]))]


@pytest.fixture
def operator(tmp_path: Path, accounts: list[Signer]) -> Operator:
    env = cli_env(tmp_path / "no-devnet", GOVSHARE_KEY_PASSWORD=PASSWORD)
    keys = {name: save_keystore(accounts[i], tmp_path / f"{name}.json", PASSWORD, iterations=2)
            for name, i in KEY_ACCOUNTS.items()}
    return Operator(env, keys, tmp_path)


def chain_position(chain: Chain, accounts: list[Signer]) -> tuple[int, list[int]]:
    """The head and the nonce of every keystore account: equal before and after means nothing was sent."""
    return chain.block_number(), [chain.w3.eth.get_transaction_count(accounts[i].address) for i in KEY_ACCOUNTS.values()]
