"""Deploy the consortium contracts and describe the result in a manifest every component reads.

Manifest: ``deployments/<chain-id>.json`` with the addresses, the deployment block, the compiler,
the SHA-256 of each contract's creation bytecode as compiled, and the SHA-256 of the runtime code
the chain holds at each address (which embeds the constructor's immutables), checked on connect.

Beside it, for integrators in any language, ``deployments/<chain-id>.contracts.json``: the chain id
and, per contract, its address and ABI (``{"chainId": N, "contracts": {"AuditLog": {"address":
"0x…", "abi": [...]}, ...}}``, the shape of hardhat-deploy's export), written with the manifest.

:func:`deploy_or_verify` is what ``govshare deploy`` and ``scripts/deploy.py`` run: it deploys only
when the manifest directory has no manifest for the chain (or when told to deploy anew), and
otherwise checks the chain against the manifest (:func:`verify_deployment`) without sending anything.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from ledger.chain import DEFAULT_RECEIPT_TIMEOUT_SECONDS, DEFAULT_RPC_TIMEOUT_SECONDS, Chain
from ledger.compiler import DEPLOYABLE, PROJECT_ROOT, CompilationResult, compile_contracts
from ledger.contracts.audit_log import AuditLogClient
from ledger.contracts.catalog import DataCatalogClient
from ledger.contracts.grants import AccessGrantsClient
from ledger.contracts.query_requests import QueryRequestsClient
from ledger.contracts.registry import DEFAULT_MAX_DECISION_AGE_BLOCKS, ConsortiumRegistryClient
from ledger.errors import ContractRevert, ManifestError
from ledger.events import EventDecoder
from ledger.json_limits import loads
from ledger.keys import Signer
from ledger.tls import ClientTls

DEFAULT_MANIFEST_DIR = PROJECT_ROOT / "deployments"
MANIFEST_FORMAT = 1
#: Largest deployment manifest read (addresses and hashes: a few KB).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Deployment:
    """What was deployed where: the content of a manifest."""

    chain_id: int
    addresses: dict[str, ChecksumAddress]
    deployment_block: int
    deployer: ChecksumAddress
    compiler: dict[str, str]
    creation_bytecode_sha256: dict[str, str]
    runtime_code_sha256: dict[str, str]
    deployed_at: int = 0
    format: int = field(default=MANIFEST_FORMAT)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        try:
            data = loads(text, what="the deployment manifest", max_bytes=MAX_MANIFEST_BYTES, max_depth=8)
            if data.get("format") != MANIFEST_FORMAT:
                raise ManifestError(f"unsupported manifest format {data.get('format')!r}")
            missing = [name for name in DEPLOYABLE if name not in data["addresses"]]
            if missing:
                raise ManifestError(f"manifest lacks addresses of {', '.join(missing)}")
            data["addresses"] = {k: to_checksum_address(v) for k, v in data["addresses"].items()}
            data["deployer"] = to_checksum_address(data["deployer"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"malformed deployment manifest: {exc}") from exc

    def save(self, directory: Path = DEFAULT_MANIFEST_DIR, compilation: CompilationResult | None = None) -> Path:
        """Write the manifest ``<chain-id>.json`` into ``directory`` (and, given the compilation,
        ``<chain-id>.contracts.json`` with every address and ABI); the manifest's path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chain_id}.json"
        if compilation is not None:
            _write_atomically(directory / f"{self.chain_id}.contracts.json",
                              json.dumps(self.contracts_export(compilation), indent=2, sort_keys=True) + "\n")
        _write_atomically(path, self.to_json())
        return path

    def contracts_export(self, compilation: CompilationResult) -> dict[str, Any]:
        """The chain id and each contract's address and ABI, for clients in any language."""
        return {"chainId": self.chain_id,
                "contracts": {name: {"address": address, "abi": compilation.abi_of(name)}
                              for name, address in self.addresses.items()}}

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            return cls.from_json(Path(path).read_text())
        except FileNotFoundError:
            raise ManifestError(f"no deployment manifest at {path}; run `govshare deploy` first") from None

    @classmethod
    def for_chain(cls, chain_id: int, directory: Path = DEFAULT_MANIFEST_DIR) -> Deployment:
        return cls.load(directory / f"{chain_id}.json")


class Consortium:
    """Typed clients for one deployment on one chain."""

    def __init__(self, chain: Chain, deployment: Deployment, compilation: CompilationResult) -> None:
        if chain.chain_id != deployment.chain_id:
            raise ManifestError(f"manifest is for chain {deployment.chain_id}, the node is chain {chain.chain_id}")
        self.chain = chain
        self.deployment = deployment
        self.compilation = compilation
        chain.use_errors_of(compilation.all_abis())
        decoder = EventDecoder(compilation.all_abis())
        self.events = decoder
        start = deployment.deployment_block

        def client(cls: type, name: str) -> Any:
            return cls(chain, deployment.addresses[name], compilation.abi_of(name), decoder, from_block=start)

        self.registry: ConsortiumRegistryClient = client(ConsortiumRegistryClient, "ConsortiumRegistry")
        self.catalog: DataCatalogClient = client(DataCatalogClient, "DataCatalog")
        self.grants: AccessGrantsClient = client(AccessGrantsClient, "AccessGrants")
        self.audit_log: AuditLogClient = client(AuditLogClient, "AuditLog")
        self.queries: QueryRequestsClient = client(QueryRequestsClient, "QueryRequests")

    @classmethod
    def connect(cls, rpc_url: str, manifest: Path | None = None, *, verify_code: bool = True,
                tls: ClientTls | None = None, timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
                receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT_SECONDS) -> Consortium:
        """Connect to ``rpc_url`` using its manifest (default ``deployments/<chain-id>.json``);
        ``tls``: the CAs trusted for an https node and the client certificate; ``timeout``,
        ``receipt_timeout``: seconds a JSON-RPC call, and a transaction's mining, may take
        (:class:`ledger.chain.Chain`)."""
        chain = Chain(rpc_url, tls=tls, timeout=timeout, receipt_timeout=receipt_timeout)
        deployment = Deployment.load(manifest) if manifest else Deployment.for_chain(chain.chain_id)
        consortium = cls(chain, deployment, compile_contracts())
        if verify_code:
            consortium.verify_code()
        return consortium

    def verify_code(self) -> None:
        """Check that the code at each address is the code the manifest names."""
        for name, address in self.deployment.addresses.items():
            if _code_sha256(self.chain, address) != self.deployment.runtime_code_sha256.get(name):
                raise ManifestError(f"{name} at {address} does not run the code the manifest names")


def deploy_consortium(
    chain: Chain,
    deployer: Signer,
    committee: Sequence[str],
    threshold: int,
    compilation: CompilationResult | None = None,
    *,
    max_decision_age_blocks: int = DEFAULT_MAX_DECISION_AGE_BLOCKS,
) -> Deployment:
    """Deploy registry, catalog, grants, audit log and query requests; bind the audit log to the grants.
    ``max_decision_age_blocks`` is the registry's first ``maxDecisionAgeBlocks`` (see
    :data:`ledger.contracts.registry.DEFAULT_MAX_DECISION_AGE_BLOCKS`)."""
    compilation = compilation or compile_contracts()
    chain.use_errors_of(compilation.all_abis())
    w3 = chain.w3

    def factory(name: str) -> Any:
        art = compilation[name]
        return w3.eth.contract(abi=art.abi, bytecode=art.bytecode)

    registry, first = chain.deploy(deployer, factory("ConsortiumRegistry"), [to_checksum_address(a) for a in committee], threshold,
                                   max_decision_age_blocks)
    catalog, _ = chain.deploy(deployer, factory("DataCatalog"), registry)
    grants, _ = chain.deploy(deployer, factory("AccessGrants"), registry, catalog)
    audit_log, _ = chain.deploy(deployer, factory("AuditLog"), registry, catalog, grants)
    queries, _ = chain.deploy(deployer, factory("QueryRequests"), registry, grants)
    grants_contract = w3.eth.contract(address=grants, abi=compilation.abi_of("AccessGrants"))
    chain.transact(deployer, grants_contract.functions.bindAuditLog(audit_log))
    addresses = {
        "ConsortiumRegistry": registry,
        "DataCatalog": catalog,
        "AccessGrants": grants,
        "AuditLog": audit_log,
        "QueryRequests": queries,
    }
    return Deployment(
        chain_id=chain.chain_id,
        addresses=addresses,
        deployment_block=first.block_number,
        deployer=to_checksum_address(deployer.address),
        compiler={"kind": compilation.compiler, "version": compilation.version},
        creation_bytecode_sha256={name: "0x" + hashlib.sha256(compilation[name].bytecode).hexdigest() for name in addresses},
        runtime_code_sha256={name: _code_sha256(chain, address) for name, address in addresses.items()},
        deployed_at=int(time.time()),
    )


#: Each contract's immutable references to the others: (contract, getter, the contract it must name).
WIRING = (
    ("DataCatalog", "i_registry", "ConsortiumRegistry"),
    ("AccessGrants", "i_registry", "ConsortiumRegistry"),
    ("AccessGrants", "i_catalog", "DataCatalog"),
    ("AccessGrants", "auditLog", "AuditLog"),
    ("AuditLog", "i_registry", "ConsortiumRegistry"),
    ("AuditLog", "i_catalog", "DataCatalog"),
    ("AuditLog", "i_grants", "AccessGrants"),
    ("QueryRequests", "i_registry", "ConsortiumRegistry"),
    ("QueryRequests", "i_grants", "AccessGrants"),
)


def verify_deployment(
    chain: Chain,
    deployment: Deployment,
    compilation: CompilationResult,
    *,
    committee: Sequence[str] | None = None,
    threshold: int | None = None,
    max_decision_age_blocks: int | None = None,
) -> list[str]:
    """What does not match between the chain and ``deployment`` (empty: it matches). Sends nothing.

    Checked: the manifest is for this chain; it was compiled by this checkout's compiler version
    and its creation bytecode is what this checkout compiles (the contracts did not change since);
    the code at every address is the code the manifest names; the contracts name each other as the
    manifest does (:data:`WIRING`); and, when given, the committee (as a set) and the threshold on
    chain are these. (The committee and threshold may since have changed by vote: asking for the
    founding ones after such a vote reports a mismatch, as it should.)"""
    if deployment.chain_id != chain.chain_id:
        return [f"the manifest is for chain {deployment.chain_id}, the node is chain {chain.chain_id}"]
    problems = []
    version = deployment.compiler.get("version")
    if version != compilation.version:
        problems.append(f"the manifest's contracts were compiled by solc {version}, this checkout compiles with "
                        f"solc {compilation.version}")
    for name in DEPLOYABLE:
        compiled = "0x" + hashlib.sha256(compilation[name].bytecode).hexdigest()
        named = deployment.creation_bytecode_sha256.get(name)
        if named != compiled:
            problems.append(f"{name}: the manifest's creation bytecode (sha256 {named}) is not what this checkout "
                            f"compiles ({compiled}): the contract changed since it was deployed")
    code_ok = True
    for name in DEPLOYABLE:
        address = deployment.addresses[name]
        code = chain.code_at(address)
        named = deployment.runtime_code_sha256.get(name)
        if not code:
            problems.append(f"{name}: there is no code at {address} (the manifest names {named})")
            code_ok = False
        elif (actual := "0x" + hashlib.sha256(code).hexdigest()) != named:
            problems.append(f"{name}: the code at {address} (sha256 {actual}) is not the code the manifest names ({named})")
            code_ok = False
    if not code_ok:
        return problems  # calling into code that is not ours would tell nothing
    chain.use_errors_of(compilation.all_abis())
    for name, getter, target in WIRING:
        contract = chain.w3.eth.contract(address=deployment.addresses[name], abi=compilation.abi_of(name))
        try:
            named = to_checksum_address(chain.call(contract.functions[getter]()))
        except ContractRevert as exc:
            problems.append(f"{name}.{getter}() reverted: {exc}")
            continue
        if named != deployment.addresses[target]:
            problems.append(f"{name} at {deployment.addresses[name]} is bound to {target} {named}, "
                            f"not the manifest's {deployment.addresses[target]}")
    registry = ConsortiumRegistryClient(chain, deployment.addresses["ConsortiumRegistry"],
                                        compilation.abi_of("ConsortiumRegistry"), EventDecoder(compilation.all_abis()))
    if committee is not None:
        on_chain = registry.committee()
        asked = [to_checksum_address(a) for a in committee]
        if set(on_chain) != set(asked):
            problems.append(f"the committee on chain is {', '.join(on_chain) or 'empty'}; asked for {', '.join(asked)}")
    if threshold is not None and (on_chain_threshold := registry.threshold()) != threshold:
        problems.append(f"the threshold on chain is {on_chain_threshold}; asked for {threshold}")
    if max_decision_age_blocks is not None and (on_chain_age := registry.max_decision_age_blocks()) != max_decision_age_blocks:
        problems.append(f"maxDecisionAgeBlocks on chain is {on_chain_age}; asked for {max_decision_age_blocks}")
    return problems


@dataclass(frozen=True)
class DeployResult:
    """What :func:`deploy_or_verify` did: ``deployed``, ``verified`` (nothing sent), or ``mismatch``
    (nothing sent; ``reasons`` lists every difference)."""

    status: Literal["deployed", "verified", "mismatch"]
    manifest: Path
    deployment: Deployment | None  # None when the manifest could not be read
    reasons: tuple[str, ...]
    superseded: Path | None = None  # --force-new: where the previous manifest was moved
    export_written: bool = False  # the contracts export was (re)written

    @property
    def ok(self) -> bool:
        return self.status != "mismatch"


def deploy_or_verify(
    chain: Chain,
    deployer: Signer,
    manifest_dir: Path = DEFAULT_MANIFEST_DIR,
    *,
    committee: Sequence[str] | None = None,
    threshold: int | None = None,
    max_decision_age_blocks: int | None = None,
    force_new: bool = False,
    compilation: CompilationResult | None = None,
) -> DeployResult:
    """Deploy unless ``manifest_dir`` already has a manifest for the chain; then verify it instead.

    * No manifest ``<chain-id>.json`` in ``manifest_dir`` (or ``force_new``): deploy with the
      ``committee`` (default: the deployer alone) and ``threshold`` (default 1), then write the
      manifest and the contracts export (``max_decision_age_blocks``, default
      :data:`~ledger.contracts.registry.DEFAULT_MAX_DECISION_AGE_BLOCKS`, is the registry's first bound). With ``force_new`` an existing manifest and export are
      first moved aside to ``<chain-id>.superseded-block-<N>[.contracts].json`` (N: the new
      deployment's first block), never lost.
    * A manifest: :func:`verify_deployment`, comparing the committee, threshold and decision-age
      bound only when given.
      No transaction is sent either way; ``verified`` rewrites the contracts export only if it is
      missing or differs (it is derived from the manifest and the compilation), ``mismatch``
      writes nothing. An unreadable manifest is a mismatch too.
    """
    compilation = compilation or compile_contracts()
    manifest_dir = Path(manifest_dir)
    path = manifest_dir / f"{chain.chain_id}.json"
    export_path = manifest_dir / f"{chain.chain_id}.contracts.json"
    if path.exists() and not force_new:
        try:
            existing = Deployment.load(path)
        except ManifestError as exc:
            return DeployResult("mismatch", path, None, (str(exc),))
        problems = verify_deployment(chain, existing, compilation, committee=committee, threshold=threshold,
                                     max_decision_age_blocks=max_decision_age_blocks)
        if problems:
            return DeployResult("mismatch", path, existing, tuple(problems))
        export = json.dumps(existing.contracts_export(compilation), indent=2, sort_keys=True) + "\n"
        written = not export_path.is_file() or export_path.read_text() != export
        if written:
            _write_atomically(export_path, export)
        checked = ["the manifest is for this chain", f"compiled by solc {compilation.version} from the same creation "
                   "bytecode as this checkout", f"the code at all {len(existing.addresses)} addresses is the code it names",
                   "the contracts are bound to each other as it says"]
        if committee is not None:
            checked.append(f"the committee is the {len(committee)} member(s) asked for")
        if threshold is not None:
            checked.append(f"the threshold is {threshold}")
        if max_decision_age_blocks is not None:
            checked.append(f"maxDecisionAgeBlocks is {max_decision_age_blocks}")
        return DeployResult("verified", path, existing, tuple(checked), export_written=written)
    reason = ("deployed anew as asked (--force-new)" if path.exists()
              else f"no manifest for chain {chain.chain_id} in {manifest_dir}")
    deployment = deploy_consortium(chain, deployer, committee or [deployer.address], threshold or 1, compilation,
                                   max_decision_age_blocks=max_decision_age_blocks or DEFAULT_MAX_DECISION_AGE_BLOCKS)
    superseded = None
    if path.exists():
        superseded = manifest_dir / f"{chain.chain_id}.superseded-block-{deployment.deployment_block}.json"
        path.replace(superseded)
        if export_path.exists():
            export_path.replace(superseded.with_name(superseded.name.replace(".json", ".contracts.json")))
    deployment.save(manifest_dir, compilation)
    return DeployResult("deployed", path, deployment, (reason,), superseded=superseded, export_written=True)


def _code_sha256(chain: Chain, address: str) -> str:
    code = chain.code_at(address)
    return "0x" + hashlib.sha256(code).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
