"""The ``govshare`` command line, run as a real subprocess: keys, deploy, chain status, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.keys import Signer, save_keystore
from tests.support.certificates import TestAuthority, https_server_context
from tests.support.ganache import GanacheNode, free_port
from tests.support.rpc_gateway import RpcGateway

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"  # test password


def govshare(*args: str, password: str | None = PASSWORD, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GOVSHARE_KEY_PASSWORD"}
    if password is not None:
        env["GOVSHARE_KEY_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "govshare"
    assert script.is_file(), "pip install -e . should install the govshare console script"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "deploy" in out.stdout


def test_keys_new_writes_private_keystore(tmp_path: Path) -> None:
    out = govshare("--json", "keys", "new", "--out", str(tmp_path / "k.json"))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    keystore = json.loads((tmp_path / "k.json").read_text())
    assert keystore["address"].lower() == data["address"][2:].lower()
    assert (tmp_path / "k.json").stat().st_mode & 0o777 == 0o600
    assert set(data) == {"address", "keystore"}  # the key itself is never printed


def test_deploy_then_status(ganache: GanacheNode, accounts: list[Signer], tmp_path: Path) -> None:
    key_file = save_keystore(accounts[20], tmp_path / "deployer.json", PASSWORD, iterations=2)
    members = [accounts[20].address, accounts[21].address]
    out = govshare(
        "--json", "deploy", "--rpc", ganache.url, "--key-file", str(key_file),
        "--committee", *members, "--threshold", "2", "--manifest-dir", str(tmp_path / "deployments"),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    manifest = Path(result["manifest"])
    assert manifest == tmp_path / "deployments" / "1337.json"
    assert set(result["addresses"]) == {"ConsortiumRegistry", "DataCatalog", "AccessGrants", "AuditLog", "QueryRequests"}
    assert accounts[20].account.key.hex() not in out.stdout + out.stderr
    assert result["status"] == "deployed"

    again = govshare(
        "deploy", "--rpc", ganache.url, "--key-file", str(key_file), "--json",
        "--committee", *members, "--threshold", "2", "--manifest-dir", str(tmp_path / "deployments"),
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "verified"  # the same deployment: nothing sent
    assert json.loads(again.stdout)["addresses"] == result["addresses"]

    status = govshare("--json", "chain", "status", "--rpc", ganache.url, "--manifest", str(manifest))
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["committee"] == members
    assert data["threshold"] == 2
    assert data["departments"] == []

    human = govshare("chain", "status", "--rpc", ganache.url, "--manifest", str(manifest))
    assert "committee of 2, threshold 2" in human.stdout


def test_wrong_password_is_refused_without_leaking(accounts: list[Signer], tmp_path: Path, ganache: GanacheNode) -> None:
    key_file = save_keystore(accounts[22], tmp_path / "k.json", PASSWORD, iterations=2)
    out = govshare("deploy", "--rpc", ganache.url, "--key-file", str(key_file), password="not the password")
    assert out.returncode == 1
    assert "not the password" not in out.stderr
    assert accounts[22].account.key.hex()[2:] not in out.stderr


def test_unreachable_chain_exits_3(accounts: list[Signer], tmp_path: Path) -> None:
    key_file = save_keystore(accounts[23], tmp_path / "k.json", PASSWORD, iterations=2)
    out = govshare("deploy", "--rpc", f"http://127.0.0.1:{free_port()}", "--key-file", str(key_file))
    assert out.returncode == 3, out.stderr
    assert "cannot reach" in out.stderr


def test_usage_error_exits_2() -> None:
    out = govshare("deploy")
    assert out.returncode == 2
    assert "--rpc" in out.stderr


def test_a_missing_password_is_a_usage_error(accounts: list[Signer], tmp_path: Path, ganache: GanacheNode) -> None:
    key_file = save_keystore(accounts[22], tmp_path / "k.json", PASSWORD, iterations=2)
    out = govshare("deploy", "--rpc", ganache.url, "--key-file", str(key_file), password=None)
    assert out.returncode == 2 and "no keystore password" in out.stderr, out.stderr


@pytest.mark.parametrize("command", [["deploy", "--help"], ["chain", "status", "--help"], ["keys", "new", "--help"], ["compile", "--help"],
                                     ["consortium", "apply", "--help"]])
def test_every_command_has_help(command: list[str]) -> None:
    out = govshare(*command)
    assert out.returncode == 0 and "usage: govshare" in out.stdout


def test_deploy_and_status_on_an_https_node_with_the_consortiums_ca(
    ganache: GanacheNode, accounts: list[Signer], tmp_path: Path
) -> None:
    """``--rpc-ca-file`` on both commands; without it, the node's certificate is refused (exit 3)."""
    authority = TestAuthority(tmp_path, "consortium")
    gateway = RpcGateway(ganache.url, tls=https_server_context(authority, "besu-node")).start()
    try:
        key_file = save_keystore(accounts[24], tmp_path / "deployer.json", PASSWORD, iterations=2)
        out = govshare("--json", "deploy", "--rpc", gateway.url, "--rpc-ca-file", str(authority.ca_file),
                       "--key-file", str(key_file), "--manifest-dir", str(tmp_path / "deployments"))
        assert out.returncode == 0, out.stderr
        manifest = json.loads(out.stdout)["manifest"]
        status = govshare("--json", "chain", "status", "--rpc", gateway.url, "--rpc-ca-file", str(authority.ca_file),
                          "--manifest", manifest)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["committee"] == [accounts[24].address]
        untrusting = govshare("chain", "status", "--rpc", gateway.url, "--manifest", manifest)
        assert untrusting.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusting.stderr, untrusting.stderr
    finally:
        gateway.stop()


def test_a_node_slower_than_rpc_timeout_is_unreachable_within_it_and_the_option_is_checked() -> None:
    import socket

    with socket.socket() as silent:  # takes connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        out = govshare("chain", "status", "--rpc", url, "--rpc-timeout", "1.5")
        assert out.returncode == 3, out.stderr
        assert "did not answer" in out.stderr and "within 1.5s" in out.stderr, out.stderr
        env_out = subprocess.run([sys.executable, "-m", "cli.main", "chain", "status", "--rpc", url], capture_output=True,
                                 text=True, timeout=120, cwd=PROJECT_ROOT, env=os.environ | {"GOVSHARE_RPC_TIMEOUT": "2.5"})
        assert env_out.returncode == 3 and "within 2.5s" in env_out.stderr, env_out.stderr
    bad = govshare("chain", "status", "--rpc", url, "--rpc-timeout", "soon")
    assert bad.returncode == 2 and "--rpc-timeout must be a number of seconds" in bad.stderr, bad.stderr
