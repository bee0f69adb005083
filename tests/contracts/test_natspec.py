"""The contracts' NatSpec and dependencies, read from the compiler's AST, devdoc and userdoc.

Every function an interface under ``contracts/interfaces/`` declares carries a ``@notice``, a
``@param`` per parameter and a ``@return`` per return value. The implementations depend on each
other only through those interfaces (immutables, constructor parameters, imports), and every
external function or public variable they define implements an interface function, whose NatSpec
they take with ``@inheritdoc``.

Compiled by ``ledger.compiler`` (the pinned solc, the project's own standard-JSON input), asking
for the outputs ``compile_contracts`` does not keep: the AST, devdoc and userdoc.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils import function_signature_to_4byte_selector

from ledger.compiler import (
    CONTRACTS_DIR,
    CompilerConfig,
    collect_sources,
    compile_standard_json,
    standard_json_input,
)

INTERFACES_PREFIX = "contracts/interfaces/"
INTERFACES = sorted(path.stem for path in (CONTRACTS_DIR / "interfaces").glob("*.sol"))


class Compiled:
    """The compiler output, with every AST node indexed by id."""

    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output
        self.asts = {source: data["ast"] for source, data in output["sources"].items()}
        self.nodes: dict[int, dict[str, Any]] = {}
        self.source_of: dict[int, str] = {}
        for source, ast in self.asts.items():
            for node in _walk(ast):
                self.nodes[node["id"]] = node
                self.source_of[node["id"]] = source

    def contracts_in(self, source: str) -> list[dict[str, Any]]:
        return [n for n in self.asts[source]["nodes"] if n["nodeType"] == "ContractDefinition"]

    def implementation_sources(self) -> list[str]:
        return sorted(s for s in self.asts if s.startswith("contracts/") and not s.startswith(INTERFACES_PREFIX))

    def docs(self, source: str, contract: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The userdoc and devdoc ``methods`` of ``contract``, keyed by signature."""
        data = self.output["contracts"][source][contract]
        return data["userdoc"].get("methods", {}), data["devdoc"].get("methods", {})


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "id" in node and "nodeType" in node:
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    config = CompilerConfig.load()
    compiler_input = standard_json_input(config, collect_sources())
    # No bytecode asked for: solc stops after analysis.
    compiler_input["settings"]["outputSelection"] = {"*": {"*": ["devdoc", "userdoc"], "": ["ast"]}}
    _kind, output = compile_standard_json(config, compiler_input)
    return Compiled(output)


def _selector_to_signature(methods: dict[str, Any]) -> dict[str, str]:
    return {function_signature_to_4byte_selector(sig).hex(): sig for sig in methods}


def _describe(node: dict[str, Any]) -> str:
    return node.get("name") or node.get("kind", "?")


@pytest.mark.parametrize("interface", INTERFACES)
def test_interface_functions_have_notice_params_and_returns(compiled: Compiled, interface: str) -> None:
    source = f"{INTERFACES_PREFIX}{interface}.sol"
    (definition,) = [c for c in compiled.contracts_in(source) if c["name"] == interface]
    assert definition["contractKind"] == "interface", f"{source} should declare interface {interface}"
    userdoc, devdoc = compiled.docs(source, interface)
    signatures = _selector_to_signature({**userdoc, **devdoc})
    functions = [n for n in definition["nodes"] if n["nodeType"] == "FunctionDefinition"]
    assert functions, f"{interface} declares no function"

    missing = []
    for fn in functions:
        sig = signatures.get(fn["functionSelector"], fn["name"])
        notice = userdoc.get(sig, {}).get("notice", "").strip()
        params = devdoc.get(sig, {}).get("params", {})
        returns = devdoc.get(sig, {}).get("returns", {})
        if not notice:
            missing.append(f"{interface}.{sig}: no @notice")
        for param in fn["parameters"]["parameters"]:
            if not param["name"]:
                missing.append(f"{interface}.{sig}: an unnamed parameter cannot be documented")
            elif not params.get(param["name"], "").strip():
                missing.append(f"{interface}.{sig}: no @param {param['name']}")
        for index, ret in enumerate(fn["returnParameters"]["parameters"]):
            key = ret["name"] or f"_{index}"
            if not returns.get(key, "").strip():
                missing.append(f"{interface}.{sig}: no @return for return value {key}")
    assert not missing, "NatSpec missing:\n" + "\n".join(missing)


def _contract_types(compiled: Compiled, type_name: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The contract definitions a type name refers to (the value type of a mapping, an array's base...)."""
    for node in _walk(type_name):
        if node["nodeType"] == "UserDefinedTypeName":
            target = compiled.nodes[node["referencedDeclaration"]]
            if target["nodeType"] == "ContractDefinition":
                yield target


def test_immutables_and_constructor_parameters_are_typed_as_interfaces(compiled: Compiled) -> None:
    """A contract holds another contract as its interface, not as that contract's implementation."""
    wrong, immutables = [], 0
    for source in compiled.implementation_sources():
        for contract in compiled.contracts_in(source):
            held = [
                (f"immutable {n['name']}", n)
                for n in contract["nodes"]
                if n["nodeType"] == "VariableDeclaration" and n["mutability"] == "immutable"
            ]
            for fn in contract["nodes"]:
                if fn["nodeType"] == "FunctionDefinition" and fn["kind"] == "constructor":
                    held += [(f"constructor parameter {p['name']}", p) for p in fn["parameters"]["parameters"]]
            for what, variable in held:
                for target in _contract_types(compiled, variable["typeName"]):
                    immutables += what.startswith("immutable")
                    if target["contractKind"] != "interface":
                        wrong.append(
                            f"{contract['name']}: {what} is {target['contractKind']} {target['name']}, not an interface"
                        )
    assert immutables, "no immutable holds another contract: this test checked nothing"
    assert not wrong, "\n".join(wrong)


def test_contracts_import_only_interfaces_and_their_own_bases(compiled: Compiled) -> None:
    """Besides OpenZeppelin, a contract imports interfaces, or a contract it inherits from."""
    wrong = []
    for source in compiled.implementation_sources():
        bases = {b for c in compiled.contracts_in(source) for b in c["linearizedBaseContracts"]}
        for node in compiled.asts[source]["nodes"]:
            if node["nodeType"] != "ImportDirective":
                continue
            imported = node["absolutePath"]
            if not imported.startswith("contracts/") or imported.startswith(INTERFACES_PREFIX):
                continue
            defined = {c["id"] for c in compiled.contracts_in(imported)}
            if not defined <= bases:
                wrong.append(f"{source} imports {imported}, an implementation it does not inherit from")
    assert not wrong, "\n".join(wrong)


def test_implementations_take_their_natspec_from_interfaces(compiled: Compiled) -> None:
    """Every external function and public variable a contract defines implements an interface function
    (so the interface documents the whole surface) and says ``@inheritdoc`` instead of repeating it."""
    wrong = []
    for source in compiled.implementation_sources():
        for contract in compiled.contracts_in(source):
            for node in contract["nodes"]:
                if node["nodeType"] == "FunctionDefinition":
                    if node["kind"] != "function" or node["visibility"] not in ("external", "public"):
                        continue
                elif node["nodeType"] != "VariableDeclaration" or node["visibility"] != "public":
                    continue
                name = f"{contract['name']}.{_describe(node)}"
                declared_in = {compiled.source_of[b] for b in node.get("baseFunctions", [])}
                if not any(s.startswith(INTERFACES_PREFIX) for s in declared_in):
                    wrong.append(f"{name} is declared in no interface under {INTERFACES_PREFIX}")
                text = (node.get("documentation") or {}).get("text", "")
                if not text.lstrip().startswith("@inheritdoc"):
                    wrong.append(f"{name}: NatSpec should be `@inheritdoc` (has {text.splitlines()[:1]})")
    assert not wrong, "\n".join(wrong)
