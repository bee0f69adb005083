"""Compile the consortium contracts, offline, into the same bytecode as ``npx hardhat compile``.

The compiler version and settings live in ``contracts/compiler.json``, read by this module and by
``hardhat.config.js`` alike. The standard-JSON input carries every source inline under the same
source unit names Hardhat uses (``contracts/...``, ``@openzeppelin/contracts/...``), so the metadata
hash, and hence the bytecode, is identical.

Compiler choice: a native ``solc`` of the pinned version (installed by py-solc-x, or on ``PATH``)
when there is one; otherwise the npm package ``solc`` (solcjs) from ``node_modules``, which runs offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import CompilationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
NODE_MODULES = PROJECT_ROOT / "node_modules"
BUILD_DIR = PROJECT_ROOT / "build" / "solc"

#: The contracts a deployment consists of, in deployment order.
DEPLOYABLE = ("ConsortiumRegistry", "DataCatalog", "AccessGrants", "AuditLog", "QueryRequests")

_IMPORT_RE = re.compile(r'^\s*import\s+(?:[^"\']*\s+from\s+)?["\']([^"\']+)["\']\s*;', re.MULTILINE)
_OUTPUT_SELECTION = {
    "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}
}


@dataclass(frozen=True)
class CompilerConfig:
    """The pinned compiler version and the settings that determine bytecode."""

    version: str
    long_version: str
    settings: dict[str, Any]

    @classmethod
    def load(cls, path: Path = CONTRACTS_DIR / "compiler.json") -> CompilerConfig:
        data = json.loads(path.read_text())
        return cls(version=data["version"], long_version=data["longVersion"], settings=data["settings"])


@dataclass(frozen=True)
class ContractArtifact:
    """The compiled form of one contract."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes

    @property
    def bytecode_hash(self) -> str:
        return "0x" + hashlib.sha256(self.deployed_bytecode).hexdigest()


@dataclass(frozen=True)
class CompilationResult:
    """Every contract of one compilation, and which compiler produced it."""

    compiler: str
    version: str
    artifacts: dict[str, ContractArtifact]

    def __getitem__(self, name: str) -> ContractArtifact:
        try:
            return self.artifacts[name]
        except KeyError:
            raise CompilationError(f"no contract named {name!r} was compiled") from None

    def abi_of(self, name: str) -> list[dict[str, Any]]:
        return self[name].abi

    def all_abis(self) -> list[dict[str, Any]]:
        """Every ABI entry of every compiled contract (to decode any custom error by selector)."""
        return [entry for art in self.artifacts.values() for entry in art.abi]


def collect_sources(contracts_dir: Path = CONTRACTS_DIR, node_modules: Path = NODE_MODULES) -> dict[str, str]:
    """The project's ``.sol`` files and everything they import, keyed by Hardhat's source unit names."""
    pending = sorted(
        str(p.relative_to(contracts_dir.parent)).replace(os.sep, "/") for p in contracts_dir.rglob("*.sol")
    )
    sources: dict[str, str] = {}
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        path = (contracts_dir.parent / name) if name.startswith("contracts/") else (node_modules / name)
        if not path.is_file():
            raise CompilationError(f"cannot resolve Solidity import {name!r} (looked at {path}); run `npm ci`")
        content = path.read_text()
        sources[name] = content
        for imported in _IMPORT_RE.findall(content):
            pending.append(_resolve_import(name, imported))
    return dict(sorted(sources.items()))


def _resolve_import(importer: str, imported: str) -> str:
    if not imported.startswith("."):
        return imported
    parts = importer.split("/")[:-1]
    for piece in imported.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


def standard_json_input(config: CompilerConfig, sources: dict[str, str]) -> dict[str, Any]:
    """The solc standard-JSON input, shaped as Hardhat shapes it."""
    return {
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in sources.items()},
        "settings": {**config.settings, "outputSelection": _OUTPUT_SELECTION},
    }


def compile_contracts(*, use_cache: bool = True, prefer: str | None = None) -> CompilationResult:
    """Compile every contract under ``contracts/``.

    ``prefer`` forces ``"native"`` or ``"solcjs"`` (default: native if available). Results are cached
    under ``build/solc`` keyed by the SHA-256 of the compiler input, so unchanged sources never recompile.
    """
    config = CompilerConfig.load()
    compiler_input = standard_json_input(config, collect_sources())
    encoded = json.dumps(compiler_input, sort_keys=True).encode()
    key = hashlib.sha256(encoded).hexdigest()[:24]
    cache_file = BUILD_DIR / f"{key}.json"
    if use_cache and cache_file.is_file() and prefer is None:
        cached = json.loads(cache_file.read_text())
        return _result(cached["compiler"], config.version, cached["output"])

    kind, output = compile_standard_json(config, compiler_input, prefer=prefer)
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"compiler": kind, "output": output}))
    tmp.replace(cache_file)
    return _result(kind, config.version, output)


def compile_standard_json(
    config: CompilerConfig, compiler_input: dict[str, Any], *, prefer: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Run the pinned compiler on a standard-JSON input, uncached: ``(compiler kind, output)``.

    For outputs ``compile_contracts`` does not keep (the AST, NatSpec): pass ``standard_json_input(...)``
    with another ``outputSelection``. ``prefer`` as for ``compile_contracts``; an error in the output
    raises ``CompilationError``.
    """
    kind = prefer or ("native" if find_native_solc(config.version) else "solcjs")
    if kind == "native":
        binary = find_native_solc(config.version)
        if binary is None:
            raise CompilationError(f"no native solc {config.version} installed")
        output = _compile_native(binary, compiler_input)
    elif kind == "solcjs":
        output = _run_compiler(_solcjs_command(), json.dumps(compiler_input, sort_keys=True).encode())
    else:
        raise CompilationError(f"unknown compiler kind {kind!r}")
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompilationError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return kind, output


def find_native_solc(version: str) -> Path | None:
    """A native solc binary of exactly ``version``: py-solc-x's install, else ``solc`` on PATH."""
    try:
        from solcx.exceptions import SolcNotInstalled  # noqa: PLC0415 - optional at import time
        from solcx.install import get_executable  # noqa: PLC0415

        try:
            return Path(get_executable(version))
        except SolcNotInstalled:
            pass
    except ImportError:
        pass
    on_path = shutil.which("solc")
    if on_path:
        probe = subprocess.run([on_path, "--version"], capture_output=True, text=True, check=False)
        if f"Version: {version}+" in probe.stdout:
            return Path(on_path)
    return None


def _compile_native(binary: Path, compiler_input: dict[str, Any]) -> dict[str, Any]:
    import solcx  # noqa: PLC0415
    from solcx.exceptions import SolcError  # noqa: PLC0415

    try:
        return solcx.compile_standard(compiler_input, solc_binary=binary)
    except SolcError as exc:
        raise CompilationError(str(exc)) from exc


def _solcjs_command() -> list[str]:
    solc_package = NODE_MODULES / "solc"
    node = shutil.which("node")
    if node is None or not (solc_package / "soljson.js").is_file():
        raise CompilationError("neither a native solc nor node_modules/solc is available; run `npm ci`")
    return [node, str(Path(__file__).with_name("solcjs_standard_json.js")), str(solc_package)]


def _run_compiler(command: list[str], encoded_input: bytes) -> dict[str, Any]:
    proc = subprocess.run(command, input=encoded_input, capture_output=True, check=False)
    text = proc.stdout.decode()
    # solcjs prints a non-JSON line (about SMT solvers) before its JSON: start at the first "{" line.
    start = next((m.start() for m in re.finditer(r"^\{", text, re.MULTILINE)), -1)
    if start < 0:
        raise CompilationError(f"compiler {command[0]} produced no JSON: {proc.stderr.decode()[:2000]}")
    try:
        output, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise CompilationError(f"compiler output is not JSON: {exc}") from exc
    return output


def _result(kind: str, version: str, output: dict[str, Any]) -> CompilationResult:
    artifacts: dict[str, ContractArtifact] = {}
    for source, contracts in output.get("contracts", {}).items():
        for name, data in contracts.items():
            if not source.startswith("contracts/"):
                continue
            artifacts[name] = ContractArtifact(
                name=name,
                source=source,
                abi=data["abi"],
                bytecode=bytes.fromhex(data["evm"]["bytecode"]["object"]),
                deployed_bytecode=bytes.fromhex(data["evm"]["deployedBytecode"]["object"]),
            )
    return CompilationResult(compiler=kind, version=version, artifacts=artifacts)
