"""``scripts/deploy.py`` as an operator runs it: deploy from a keystore and write the manifest and the
contracts export; re-run, verify without sending anything; a manifest that does not match the chain
is reported with the reason (exit 1), a missing password is a usage error (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from ledger.chain import Chain
from ledger.compiler import DEPLOYABLE
from ledger.deployment import Consortium, Deployment
from ledger.keys import Signer
from tests.scripts.conftest import Operator, chain_position


def test_deploy_writes_the_manifest_and_a_rerun_verifies_without_sending(
    operator: Operator, ganache: Any, accounts: list[Signer], chain: Chain
) -> None:
    committee = [accounts[20].address, accounts[21].address]
    out_dir = operator.tmp / "deployments"
    args = ["--rpc", ganache.url, *operator.key_args("deployer"), "--committee", *committee, "--threshold", "2",
            "--manifest-dir", str(out_dir)]
    first = operator.run("deploy.py", *args, "--json")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["status"] == "deployed" and result["manifest"] == str(out_dir / "1337.json")
    assert "no manifest for chain 1337" in result["reasons"][0]
    manifest = Deployment.load(out_dir / "1337.json")
    assert manifest.addresses == result["addresses"] and manifest.deployer == accounts[20].address
    export = json.loads((out_dir / "1337.contracts.json").read_text())
    assert export["chainId"] == 1337 and set(export["contracts"]) == set(DEPLOYABLE)
    assert all(export["contracts"][n]["address"] == manifest.addresses[n] and export["contracts"][n]["abi"] for n in DEPLOYABLE)
    consortium = Consortium.connect(ganache.url, out_dir / "1337.json")  # checks the code at every address
    assert consortium.registry.committee() == committee and consortium.registry.threshold() == 2
    assert accounts[20].account.key.hex()[2:] not in first.stdout + first.stderr

    before = chain_position(chain, accounts)
    again = operator.run("deploy.py", *args)
    assert again.returncode == 0, again.stderr
    assert "verified" in again.stdout and "nothing was sent" in again.stdout
    assert "the committee is the 2 member(s) asked for" in again.stdout and "the threshold is 2" in again.stdout
    (out_dir / "1337.contracts.json").unlink()  # derived: a verification writes it back
    bare = operator.run("deploy.py", "--rpc", ganache.url, *operator.key_args("deployer"), "--manifest-dir", str(out_dir), "--json")
    assert bare.returncode == 0, bare.stderr
    assert json.loads(bare.stdout)["status"] == "verified" and json.loads(bare.stdout)["export_written"] is True
    assert json.loads((out_dir / "1337.contracts.json").read_text()) == export
    other = operator.run("deploy.py", "--rpc", ganache.url, *operator.key_args("deployer"), "--manifest-dir", str(out_dir),
                       "--committee", accounts[20].address, "--threshold", "1")
    assert other.returncode == 1, other.stdout
    assert "the threshold on chain is 2; asked for 1" in other.stderr
    assert f"the committee on chain is {committee[0]}, {committee[1]}; asked for {committee[0]}" in other.stderr
    assert chain_position(chain, accounts) == before
    assert Deployment.load(out_dir / "1337.json") == manifest


def _tamper(field: str, value: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], None]:
    def apply(data: dict[str, Any], template: Any) -> None:
        data[field] = value(data, template)
    return apply


TAMPERED = {
    "runtime hash": (_tamper("runtime_code_sha256", lambda d, _: {**d["runtime_code_sha256"], "AuditLog": "0x" + "00" * 32}),
                     "AuditLog: the code at {AuditLog} (sha256 0x"),
    "other chain id": (_tamper("chain_id", lambda d, _: 1338), "the manifest is for chain 1338, the node is chain 1337"),
    # another deployment's registry runs the very same code (no immutables): only the wiring tells
    "another registry": (_tamper("addresses", lambda d, t: {**d["addresses"], "ConsortiumRegistry": t.populated.addresses["ConsortiumRegistry"]}),
                         "DataCatalog at {DataCatalog} is bound to ConsortiumRegistry {ConsortiumRegistry}, not the manifest's"),
    "compiler": (_tamper("compiler", lambda d, _: {**d["compiler"], "version": "0.8.27"}),
                 "compiled by solc 0.8.27, this checkout compiles with solc 0.8.28"),
    "creation bytecode": (_tamper("creation_bytecode_sha256", lambda d, _: {**d["creation_bytecode_sha256"], "DataCatalog": "0x" + "11" * 32}),
                          "DataCatalog: the manifest's creation bytecode (sha256 0x1111"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_manifest_that_does_not_match_the_chain_exits_1_with_the_reason(
    case: str, operator: Operator, consortium: Consortium, template: Any, chain: Chain, accounts: list[Signer]
) -> None:
    out_dir = operator.tmp / "deployments"
    path = consortium.deployment.save(out_dir, consortium.compilation)
    untouched = operator.run("deploy.py", "--rpc", chain.url, *operator.key_args("committee-1"), "--manifest-dir", str(out_dir))
    assert untouched.returncode == 0 and "verified" in untouched.stdout, untouched.stderr
    tamper, reason = TAMPERED[case]
    data = json.loads(path.read_text())
    tamper(data, template)
    path.write_text(json.dumps(data))
    before = chain_position(chain, accounts)
    out = operator.run("deploy.py", "--rpc", chain.url, *operator.key_args("committee-1"), "--manifest-dir", str(out_dir), "--json")
    assert out.returncode == 1, (out.stdout, out.stderr)
    expected = reason.format(**consortium.deployment.addresses)
    assert "does not match the manifest" in out.stderr and expected in out.stderr, out.stderr
    assert json.loads(out.stdout)["status"] == "mismatch" and any(expected in r for r in json.loads(out.stdout)["reasons"])
    assert "--force-new" in out.stderr
    assert chain_position(chain, accounts) == before
    assert json.loads(path.read_text()) == data  # a mismatch writes nothing


def test_an_unreadable_manifest_is_a_mismatch(operator: Operator, chain: Chain, consortium: Consortium) -> None:
    out_dir = operator.tmp / "deployments"
    out_dir.mkdir()
    (out_dir / "1337.json").write_text("{ not json")
    out = operator.run("deploy.py", "--rpc", chain.url, *operator.key_args("committee-1"), "--manifest-dir", str(out_dir))
    assert out.returncode == 1 and "malformed deployment manifest" in out.stderr, out.stderr


def test_force_new_deploys_anew_and_keeps_the_old_manifest(operator: Operator, consortium: Consortium, chain: Chain) -> None:
    out_dir = operator.tmp / "deployments"
    consortium.deployment.save(out_dir, consortium.compilation)
    out = operator.run("deploy.py", "--rpc", chain.url, *operator.key_args("committee-1"), "--manifest-dir", str(out_dir),
                     "--force-new", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "deployed" and result["reasons"] == ["deployed anew as asked (--force-new)"]
    assert result["addresses"]["ConsortiumRegistry"] != consortium.deployment.addresses["ConsortiumRegistry"]
    old = Path(result["superseded"])
    assert old.name == f"1337.superseded-block-{result['deployment_block']}.json"
    assert Deployment.load(old) == consortium.deployment
    assert (out_dir / old.name.replace(".json", ".contracts.json")).is_file()
    assert Deployment.load(out_dir / "1337.json").addresses == result["addresses"]
    again = operator.run("deploy.py", "--rpc", chain.url, *operator.key_args("committee-1"), "--manifest-dir", str(out_dir))
    assert again.returncode == 0 and "verified" in again.stdout, again.stderr


def test_a_missing_password_is_a_usage_error_and_a_wrong_one_a_refusal(
    operator: Operator, chain: Chain, accounts: list[Signer], ganache: Any
) -> None:
    before = chain_position(chain, accounts)
    out_dir = operator.tmp / "deployments"
    env = {k: v for k, v in operator.env.items() if k != "GOVSHARE_KEY_PASSWORD"}
    missing = operator.run("deploy.py", "--rpc", ganache.url, *operator.key_args("deployer"), "--manifest-dir", str(out_dir), env=env)
    assert missing.returncode == 2, missing.stderr
    assert "no keystore password" in missing.stderr and "GOVSHARE_KEY_PASSWORD" in missing.stderr
    no_file = operator.run("deploy.py", "--rpc", ganache.url, *operator.key_args("deployer"), "--manifest-dir", str(out_dir),
                         "--password-file", str(operator.tmp / "absent"), env=env)
    assert no_file.returncode == 2 and "cannot read password file" in no_file.stderr, no_file.stderr
    wrong = operator.run("deploy.py", "--rpc", ganache.url, *operator.key_args("deployer"), "--manifest-dir", str(out_dir),
                       env=env | {"GOVSHARE_KEY_PASSWORD": "not the password"})
    assert wrong.returncode == 1 and "wrong password" in wrong.stderr and "not the password" not in wrong.stderr
    usage = operator.run("deploy.py", "--rpc", ganache.url, *operator.key_args("deployer"), "--committee", "0x1234")
    assert usage.returncode == 2 and "not an account address" in usage.stderr
    assert not out_dir.exists()
    assert chain_position(chain, accounts) == before
