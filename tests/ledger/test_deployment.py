"""ledger.deployment: deployment, the manifest every component reads, and code verification."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from ledger.chain import Chain
from ledger.compiler import DEPLOYABLE, CompilationResult
from ledger.deployment import Consortium, Deployment, deploy_consortium
from ledger.errors import ManifestError
from ledger.keys import Signer


def test_deployment_wires_contracts_together(consortium: Consortium, accounts: list[Signer]) -> None:
    d = consortium.deployment
    assert set(d.addresses) == set(DEPLOYABLE)
    assert d.deployer == accounts[0].address
    assert consortium.grants._call("auditLog") == d.addresses["AuditLog"]
    assert consortium.catalog._call("i_registry") == d.addresses["ConsortiumRegistry"]
    assert consortium.audit_log._call("i_grants") == d.addresses["AccessGrants"]
    assert consortium.queries._call("i_grants") == d.addresses["AccessGrants"]
    assert consortium.queries._call("i_registry") == d.addresses["ConsortiumRegistry"]
    assert consortium.registry.threshold() == 2
    assert consortium.registry.committee() == [a.address for a in accounts[:3]]
    assert d.deployment_block <= consortium.chain.block_number()
    consortium.verify_code()


def test_manifest_round_trip_and_connect(consortium: Consortium, tmp_path: Path) -> None:
    path = consortium.deployment.save(tmp_path)
    assert path.name == f"{consortium.chain.chain_id}.json"
    data = json.loads(path.read_text())
    assert data["compiler"]["version"] == "0.8.28"
    assert set(data["runtime_code_sha256"]) == set(DEPLOYABLE)
    assert data["creation_bytecode_sha256"]["AuditLog"] == "0x" + hashlib.sha256(consortium.compilation["AuditLog"].bytecode).hexdigest()
    assert Deployment.load(path) == consortium.deployment
    again = Consortium.connect(consortium.chain.url, path)
    assert again.registry.address == consortium.registry.address
    assert not (tmp_path / f"{consortium.chain.chain_id}.contracts.json").exists()  # only with the compilation


def test_the_abis_are_published_with_the_manifest(consortium: Consortium, tmp_path: Path) -> None:
    """Integrators in other languages find every address and ABI beside the manifest, and the ABI
    is the one the chain's code was compiled with (a call through it answers)."""
    consortium.deployment.save(tmp_path, consortium.compilation)
    exported = json.loads((tmp_path / f"{consortium.chain.chain_id}.contracts.json").read_text())
    assert exported["chainId"] == consortium.chain.chain_id
    assert set(exported["contracts"]) == set(DEPLOYABLE)
    for name, entry in exported["contracts"].items():
        assert entry["address"] == consortium.deployment.addresses[name]
        assert entry["abi"] == consortium.compilation.abi_of(name)
    registry = consortium.chain.w3.eth.contract(address=exported["contracts"]["ConsortiumRegistry"]["address"],
                                                abi=exported["contracts"]["ConsortiumRegistry"]["abi"])
    assert registry.functions.threshold().call() == consortium.registry.threshold()


def test_manifest_for_another_chain_is_refused(consortium: Consortium) -> None:
    other = replace(consortium.deployment, chain_id=consortium.deployment.chain_id + 1)
    with pytest.raises(ManifestError, match="manifest is for chain"):
        Consortium(consortium.chain, other, consortium.compilation)


def test_code_mismatch_is_detected(consortium: Consortium) -> None:
    tampered = dict(consortium.deployment.runtime_code_sha256, AuditLog="0x" + "00" * 32)
    bad = Consortium(consortium.chain, replace(consortium.deployment, runtime_code_sha256=tampered), consortium.compilation)
    with pytest.raises(ManifestError, match="AuditLog"):
        bad.verify_code()


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "malformed"),
        ('{"format": 99}', "unsupported manifest format"),
        ('{"format": 1, "addresses": {}}', "lacks addresses"),
    ],
)
def test_malformed_manifests_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "1337.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        Deployment.load(path)


def test_missing_manifest_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="govshare deploy"):
        Deployment.for_chain(4242, tmp_path)


def test_threshold_above_committee_fails_deployment(chain: Chain, accounts: list[Signer], compilation: CompilationResult) -> None:
    from ledger.errors import ContractRevert

    with pytest.raises(ContractRevert) as err:
        deploy_consortium(chain, accounts[0], [accounts[0].address], 2, compilation)
    assert err.value.name == "GovernanceThresholdOutOfRange"
    assert err.value.args == {"threshold": 2, "committeeSize": 1}


def test_deploy_or_verify_deploys_once_then_verifies_without_sending(
    chain: Chain, accounts: list[Signer], compilation: CompilationResult, tmp_path: Path
) -> None:
    from ledger.deployment import deploy_or_verify

    committee = [a.address for a in accounts[:3]]
    first = deploy_or_verify(chain, accounts[0], tmp_path, committee=committee, threshold=2, max_decision_age_blocks=300,
                             compilation=compilation)
    assert (first.status, first.ok, first.export_written) == ("deployed", True, True)
    assert Consortium(chain, first.deployment, compilation).registry.max_decision_age_blocks() == 300
    assert first.manifest == tmp_path / "1337.json" and Deployment.load(first.manifest) == first.deployment
    head = chain.block_number()
    again = deploy_or_verify(chain, accounts[0], tmp_path, committee=list(reversed(committee)), threshold=2, compilation=compilation)
    assert (again.status, again.deployment, again.export_written) == ("verified", first.deployment, False)
    assert "the threshold is 2" in again.reasons
    other = deploy_or_verify(chain, accounts[5], tmp_path, committee=committee[:2], threshold=3, max_decision_age_blocks=150,
                             compilation=compilation)
    assert other.status == "mismatch" and not other.ok
    assert other.reasons == (f"the committee on chain is {', '.join(committee)}; asked for {', '.join(committee[:2])}",
                             "the threshold on chain is 2; asked for 3", "maxDecisionAgeBlocks on chain is 300; asked for 150")
    assert chain.block_number() == head


def test_verify_deployment_names_every_difference(consortium: Consortium, template) -> None:
    from ledger.deployment import verify_deployment

    d = consortium.deployment
    assert verify_deployment(consortium.chain, d, consortium.compilation, committee=consortium.registry.committee(), threshold=2) == []
    swapped = replace(d, addresses={**d.addresses, "AuditLog": template.populated.addresses["AuditLog"]},
                      runtime_code_sha256={**d.runtime_code_sha256, "AuditLog": template.populated.runtime_code_sha256["AuditLog"]})
    problems = verify_deployment(consortium.chain, swapped, consortium.compilation)  # another deployment's audit log
    other = template.populated.addresses
    assert problems == [
        f"AccessGrants at {d.addresses['AccessGrants']} is bound to AuditLog {d.addresses['AuditLog']}, not the manifest's {other['AuditLog']}",
        *(f"AuditLog at {other['AuditLog']} is bound to {name} {other[name]}, not the manifest's {d.addresses[name]}"
          for name in ("ConsortiumRegistry", "DataCatalog", "AccessGrants")),
    ]
    empty = replace(d, addresses={**d.addresses, "QueryRequests": to_checksum_address("0x" + "ab" * 20)})
    assert verify_deployment(consortium.chain, empty, consortium.compilation) == [
        f"QueryRequests: there is no code at {empty.addresses['QueryRequests']} (the manifest names {d.runtime_code_sha256['QueryRequests']})"]
