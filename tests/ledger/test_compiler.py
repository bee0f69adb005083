"""ledger.compiler produces exactly the bytecode of ``npx hardhat compile``, offline and cached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import ledger.compiler as compiler
from ledger.compiler import DEPLOYABLE, PROJECT_ROOT, collect_sources, compile_contracts, find_native_solc
from ledger.errors import CompilationError

HARDHAT_TIMEOUT = 240  # seconds; a cold solcjs compile of the whole project takes ~10 s


def _no_compiler(*_args, **_kwargs):
    raise AssertionError("the compiler ran although the output was cached")


@pytest.fixture(scope="module")
def hardhat_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npx hardhat compile --force`` into a temporary build directory; returns that directory."""
    npx = shutil.which("npx")
    assert npx is not None, "npx not found: install Node.js 20 and run `make setup`"
    assert (PROJECT_ROOT / "node_modules" / "hardhat").is_dir(), "node_modules missing: run `make setup`"
    build_dir = tmp_path_factory.mktemp("hardhat")
    env = {
        **os.environ,
        "GOVSHARE_HARDHAT_BUILD_DIR": str(build_dir),
        "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true",
        "CI": "true",  # no telemetry prompt, no banner request
    }
    proc = subprocess.run(
        [npx, "--no-install", "hardhat", "compile", "--force"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HARDHAT_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"hardhat compile failed:\n{proc.stdout}\n{proc.stderr}"
    return build_dir


@pytest.fixture(scope="module")
def python_build(tmp_path_factory: pytest.TempPathFactory) -> compiler.CompilationResult:
    """ledger.compiler's output, compiled afresh (its cache pointed at a temporary directory)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compiler, "BUILD_DIR", tmp_path_factory.mktemp("solc"))
        return compile_contracts(use_cache=False)


def _hardhat_artifact(build_dir: Path, name: str) -> dict:
    return json.loads((build_dir / "artifacts" / "contracts" / f"{name}.sol" / f"{name}.json").read_text())


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_bytecode_identical_to_hardhat(hardhat_build: Path, python_build, name: str) -> None:
    artifact = _hardhat_artifact(hardhat_build, name)
    ours = python_build[name]
    assert artifact["linkReferences"] == {} and artifact["deployedLinkReferences"] == {}
    # Whole-bytes comparison, so the trailing CBOR metadata (IPFS hash + solc version) is included.
    assert ours.bytecode == _hex(artifact["bytecode"])
    assert ours.deployed_bytecode == _hex(artifact["deployedBytecode"])
    assert ours.abi == artifact["abi"]


def test_same_sources_and_settings_as_hardhat(hardhat_build: Path) -> None:
    """The standard-JSON input carries what Hardhat's does (names, contents, settings but outputs)."""
    (build_info,) = (hardhat_build / "artifacts" / "build-info").glob("*.json")
    hardhat = json.loads(build_info.read_text())
    config = compiler.CompilerConfig.load()
    ours = compiler.standard_json_input(config, collect_sources())
    assert hardhat["solcLongVersion"] == config.long_version
    assert ours["sources"] == hardhat["input"]["sources"]
    strip = lambda settings: {k: v for k, v in settings.items() if k != "outputSelection"}  # noqa: E731
    assert strip(ours["settings"]) == strip(hardhat["input"]["settings"])


def test_every_deployable_contract_compiled(python_build) -> None:
    for name in DEPLOYABLE:
        art = python_build[name]
        assert art.source == f"contracts/{name}.sol"
        assert art.bytecode and art.deployed_bytecode and art.abi
    with pytest.raises(CompilationError):
        python_build["NoSuchContract"]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_collect_sources_resolves_relative_and_package_imports(tmp_path: Path) -> None:
    contracts, node_modules = tmp_path / "contracts", tmp_path / "node_modules"
    _write(contracts / "Main.sol", 'import "./lib/Util.sol";\nimport {Base} from "./Base.sol";\ncontract Main {}\n')
    _write(contracts / "Base.sol", "contract Base {}\n")
    _write(
        contracts / "lib" / "Util.sol",
        'import "../Base.sol";\nimport { Thing } from "@acme/pkg/src/Thing.sol";\nlibrary Util {}\n',
    )
    _write(node_modules / "@acme" / "pkg" / "src" / "Thing.sol", 'import "./helpers/H.sol";\ncontract Thing {}\n')
    _write(node_modules / "@acme" / "pkg" / "src" / "helpers" / "H.sol", "library H {}\n")

    sources = collect_sources(contracts, node_modules)

    assert list(sources) == sorted(
        [
            "@acme/pkg/src/Thing.sol",
            "@acme/pkg/src/helpers/H.sol",
            "contracts/Base.sol",
            "contracts/Main.sol",
            "contracts/lib/Util.sol",
        ]
    )
    assert sources["@acme/pkg/src/helpers/H.sol"] == "library H {}\n"


@pytest.mark.parametrize("missing", ['"./Nope.sol"', '"@acme/absent/X.sol"'])
def test_collect_sources_missing_import_is_compilation_error(tmp_path: Path, missing: str) -> None:
    _write(tmp_path / "contracts" / "A.sol", f"import {missing};\ncontract A {{}}\n")
    (tmp_path / "node_modules").mkdir()
    with pytest.raises(CompilationError, match="cannot resolve Solidity import"):
        collect_sources(tmp_path / "contracts", tmp_path / "node_modules")


def test_compile_output_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "BUILD_DIR", tmp_path)
    first = compile_contracts()
    (cache_file,) = tmp_path.glob("*.json")
    stamp = cache_file.stat().st_mtime_ns

    # A second call must not run any compiler: it is answered from the cache file.
    monkeypatch.setattr(compiler, "_run_compiler", _no_compiler)
    monkeypatch.setattr(compiler, "_compile_native", _no_compiler)
    second = compile_contracts()

    assert list(tmp_path.glob("*.json")) == [cache_file]
    assert cache_file.stat().st_mtime_ns == stamp
    assert second.compiler == first.compiler
    for name in DEPLOYABLE:
        assert second[name].deployed_bytecode == first[name].deployed_bytecode
        assert second[name].bytecode == first[name].bytecode

    # use_cache=False bypasses the cache (and therefore reaches the, here forbidden, compiler).
    with pytest.raises(AssertionError, match="cached"):
        compile_contracts(use_cache=False)


def test_find_native_solc_returns_none_or_existing_path() -> None:
    config = compiler.CompilerConfig.load()
    found = find_native_solc(config.version)
    assert found is None or (isinstance(found, Path) and found.is_file())
    assert find_native_solc("0.4.99") is None  # a version that was never released


def test_prefer_native_without_native_solc_raises(hardhat_build: Path) -> None:
    config = compiler.CompilerConfig.load()
    native = find_native_solc(config.version)
    if native is None:
        with pytest.raises(CompilationError, match="no native solc"):
            compile_contracts(prefer="native")
    else:
        # A native solc of the pinned version is installed: it must agree with Hardhat too.
        result = compile_contracts(prefer="native", use_cache=False)
        assert result.compiler == "native"
        for name in DEPLOYABLE:
            assert result[name].deployed_bytecode == _hex(_hardhat_artifact(hardhat_build, name)["deployedBytecode"])


def test_unknown_compiler_kind_raises() -> None:
    with pytest.raises(CompilationError, match="unknown compiler kind"):
        compile_contracts(prefer="vyper")
