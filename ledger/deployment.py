"""Deploy the consortium contracts and describe the result in a manifest every component reads.

Manifest: ``deployments/<chain-id>.json`` with the addresses, the deployment block, the compiler,
the SHA-256 of each contract's creation bytecode as compiled, and the SHA-256 of the runtime code
the chain holds at each address (which embeds the constructor's immutables), checked on connect.

Beside it, for integrators in any language, ``deployments/<chain-id>.contracts.json``: the chain id
and, per contract, its address and ABI (``{"chainId": N, "contracts": {"AuditLog": {"address":
"0x…", "abi": [...]}, ...}}``, the shape of hardhat-deploy's export), written with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from ledger.contracts.audit_log import AuditLogClient
from ledger.contracts.catalog import DataCatalogClient
from ledger.chain import Chain
from ledger.compiler import DEPLOYABLE, PROJECT_ROOT, CompilationResult, compile_contracts
from ledger.errors import ManifestError
from ledger.events import EventDecoder
from ledger.contracts.grants import AccessGrantsClient
from ledger.keys import Signer
from ledger.contracts.query_requests import QueryRequestsClient
from ledger.contracts.registry import ConsortiumRegistryClient

DEFAULT_MANIFEST_DIR = PROJECT_ROOT / "deployments"
MANIFEST_FORMAT = 1


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
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        try:
            data = json.loads(text)
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
                ca_file: Path | None = None) -> Consortium:
        """Connect to ``rpc_url`` using its manifest (default ``deployments/<chain-id>.json``);
        ``ca_file``: the CAs trusted for an https node (:class:`ledger.chain.Chain`)."""
        chain = Chain(rpc_url, ca_file=ca_file)
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
) -> Deployment:
    """Deploy registry, catalog, grants, audit log and query requests; bind the audit log to the grants."""
    compilation = compilation or compile_contracts()
    chain.use_errors_of(compilation.all_abis())
    w3 = chain.w3

    def factory(name: str) -> Any:
        art = compilation[name]
        return w3.eth.contract(abi=art.abi, bytecode=art.bytecode)

    registry, first = chain.deploy(deployer, factory("ConsortiumRegistry"), [to_checksum_address(a) for a in committee], threshold)
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


def _code_sha256(chain: Chain, address: str) -> str:
    code = chain.code_at(address)
    return "0x" + hashlib.sha256(code).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
