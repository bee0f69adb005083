"""``govshare devnet``: a real detached ganache in a temporary data directory, started, used, stopped
and started again; the state (the same contracts and a registered dataset) survives the restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.args import duration, format_duration
from devtools.devnet import DEV_KEYSTORE_PASSWORD, Devnet, dev_keys, free_port
from tests.support.cli import cli_env, govshare, govshare_all


@pytest.fixture
def devnet_dir(tmp_path: Path) -> Iterator[Path]:
    data_dir = tmp_path / "devnet"
    yield data_dir
    devnet = Devnet(data_dir)
    if devnet.pid() is not None:  # a failed test must not leave ganache running
        devnet.stop()


def test_devnet_lifecycle_keeps_state_across_restart(devnet_dir: Path) -> None:
    port = free_port()
    env = cli_env(devnet_dir)  # other commands find the devnet through $GOVSHARE_DEVNET_DIR

    started = govshare("--json", "devnet", "start", "--port", str(port), env=env).json()
    assert (started["running"], started["deployed_now"], started["chain_id"]) == (True, True, 1337)
    assert started["rpc_url"] == f"http://127.0.0.1:{port}" and started["test_keys"] is True
    assert [d["code"] for d in started["departments"]] == ["SAMR", "TAX", "PSB", "AUDIT"]  # admitted by vote
    keys = {a["name"]: a for a in started["accounts"]}
    assert keys["samr"]["acts_for"] == "operator of SAMR" and keys["audit-auditor"]["acts_for"] == "auditor of AUDIT"
    devnet = Devnet(devnet_dir)
    assert Path(keys["samr"]["keystore"]).stat().st_mode & 0o777 == 0o600
    assert devnet.password_file.stat().st_mode & 0o777 == 0o600
    assert (devnet.keys_dir / "README-TEST-KEYS.txt").read_text().startswith("TEST KEYS")
    manifest = json.loads(devnet.manifest_path.read_text())

    # the devnet is the default chain; --as picks a dev key (its test password from the data dir)
    registered, again = govshare_all([
        ["dataset", "register", "--as", "samr", "--name", "企业登记信息", "--fields", "company_id,name", "--classification",
         "internal", "--json"],
        ["devnet", "start"],
    ], env)
    assert registered.json()["id"] == 1 and registered.json()["owner"] == "SAMR"
    assert again.returncode == 1 and "is already running" in again.stderr
    assert devnet.state().running

    stopped = govshare("devnet", "stop", env=env)
    assert stopped.returncode == 0 and "devnet stopped" in stopped.stdout, stopped.stderr
    assert devnet.pid() is None
    down, stop_again = govshare_all([["devnet", "status"], ["devnet", "stop"]], env)
    assert down.returncode == 3 and "devnet not running" in down.stdout
    assert stop_again.returncode == 1 and "is not running" in stop_again.stderr

    restarted = govshare("--json", "devnet", "start", env=env).json()  # the previous port by default
    assert restarted["deployed_now"] is False and restarted["rpc_url"] == started["rpc_url"]
    assert restarted["block"] >= started["block"] + 1  # the registration's block is still there
    assert json.loads(devnet.manifest_path.read_text()) == manifest  # same contracts
    listed, status = govshare_all([["dataset", "list", "--json"], ["devnet", "status", "--json"]], env)
    [dataset] = listed.json()["datasets"]
    assert (dataset["id"], dataset["name"], dataset["fields"]) == (1, "企业登记信息", ["company_id", "name"])
    assert status.json()["running"] is True and status.json()["block"] == restarted["block"]

    assert govshare("devnet", "stop", env=env).returncode == 0
    assert devnet.pid() is None


def test_dev_keys_are_the_sample_consortium_accounts() -> None:
    keys = {k.name: k for k in dev_keys()}
    assert set(keys) >= {"committee-1", "committee-2", "committee-3", "samr", "samr-oracle", "tax", "psb", "audit",
                         "audit-auditor", "outsider"}
    assert len({k.signer.address for k in keys.values()}) == len(keys)  # one account per role
    assert DEV_KEYSTORE_PASSWORD  # a test password, shown in the data directory's keys/dev-password


@pytest.mark.parametrize(("text", "seconds"), [("3600", 3600), ("90m", 5400), ("12h", 43_200), ("30d", 2_592_000), ("45s", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert duration(text) == seconds
    assert duration(format_duration(seconds)) == seconds
