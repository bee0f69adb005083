"""The package tree is the architecture: these tests hold it to what ARCHITECTURE.md says.

* imports flow one way, from the entry points down to the chain library: ``cli`` → ``api``,
  ``devtools`` → ``oracle``, ``auditing``, ``requester`` → ``protocol`` → ``ledger`` (``serving``,
  how HTTP services are served, beside ``ledger`` at the bottom); the three packages of one floor
  never import each other (a requester runs no oracle code, an auditor no requester code);
* no module imports another module's private names (``from x import _y``, ``x._y``);
* no product file grows past :data:`MAX_LINES` lines without saying at its top why it is one concern;
* every runtime dependency declared in ``pyproject.toml`` is imported by the product.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Each package and the packages it may import (besides itself and the standard library/third parties).
ALLOWED: dict[str, set[str]] = {
    "ledger": set(),
    "serving": set(),
    "protocol": {"ledger"},
    "requester": {"protocol", "ledger"},
    "oracle": {"serving", "protocol", "ledger"},
    "auditing": {"protocol", "ledger"},
    "devtools": {"oracle", "auditing", "requester", "serving", "protocol", "ledger"},
    "api": {"auditing", "requester", "serving", "protocol", "ledger"},
    "cli": {"api", "devtools", "oracle", "auditing", "requester", "serving", "protocol", "ledger"},
}
PACKAGES = set(ALLOWED)
MAX_LINES = 500
LONG_FILE_REASON = "Why this file is long:"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in sorted(PACKAGES):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


MODULES = _modules()


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) of every import, relative ones resolved."""
    out = []
    package = module.rsplit(".", 1)[0] if not module.endswith("__init__") else module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([target] if target else []))
            out.append((node.lineno, target, [alias.name for alias in node.names]))
    return out


def test_the_tree_has_every_package_and_nothing_stray() -> None:
    for package in PACKAGES:
        assert (PROJECT_ROOT / package / "__init__.py").is_file(), package
    top = {p.name for p in PROJECT_ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top - PACKAGES == {"tests"}, f"a package outside the architecture: {top - PACKAGES - {'tests'}}"


def wrong_imports(module: str, source: str) -> list[str]:
    """The imports of ``module`` (its ``source``) that go against :data:`ALLOWED`."""
    own = module.split(".")[0]
    return [f"line {line}: {target}" for line, target, _ in _imports(ast.parse(source), module)
            if target.split(".")[0] in PACKAGES and target.split(".")[0] not in ALLOWED[own] | {own}]


def private_reach_ins(module: str, source: str) -> list[str]:
    """Where ``module`` uses another govshare module's private names."""
    tree = ast.parse(source)
    wrong = []
    for line, target, names in _imports(tree, module):
        if target.split(".")[0] not in PACKAGES or target == module:
            continue
        wrong += [f"line {line}: from {target} import {n}" for n in names if n.startswith("_") and not n.startswith("__")]
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                        if alias.name.split(".")[0] in PACKAGES and alias.name != module}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES and node.module != module:
            aliases |= {alias.asname or alias.name for alias in node.names}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            wrong.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return wrong


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_flow_one_way(module: str, path: Path) -> None:
    wrong = wrong_imports(module, path.read_text(encoding="utf-8"))
    own = module.split(".")[0]
    assert not wrong, f"{module} ({own}) may import only {sorted(ALLOWED[own]) or 'nothing else of govshare'}: {wrong}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_no_module_reaches_into_anothers_private_names(module: str, path: Path) -> None:
    wrong = private_reach_ins(module, path.read_text(encoding="utf-8"))
    assert not wrong, f"{module} uses private names of other modules: {wrong}"


def test_the_checks_catch_what_they_forbid() -> None:
    """The checks above, on sources that break the rules (and on ones that do not)."""
    assert wrong_imports("ledger.chain", "from oracle.service import OracleService") == ["line 1: oracle.service"]
    assert wrong_imports("requester.client", "import oracle.app") == ["line 1: oracle.app"]
    assert wrong_imports("oracle.service", "from auditing.index import AuditIndex") == ["line 1: auditing.index"]
    assert wrong_imports("cli.main", "from oracle.main import serve\nfrom api.app import serve") == []
    assert wrong_imports("oracle.relay", "from . import errors\nfrom ..api import app") == ["line 2: api"]
    assert private_reach_ins("auditing.index.sync", "from ledger.chain import _rpc") == ["line 1: from ledger.chain import _rpc"]
    assert private_reach_ins("oracle.x", "from oracle import app\napp._problem(1)") == ["line 2: app._problem"]
    assert private_reach_ins("oracle.x", "import ledger.chain\nledger._x") == ["line 2: ledger._x"]
    assert private_reach_ins("oracle.x", "from oracle.x import _own") == []
    assert private_reach_ins("oracle.x", "import os\nos._exit(0)\nself._db") == []


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_a_long_file_says_why_it_is_one_concern(module: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    if lines <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert LONG_FILE_REASON in docstring, (
        f"{path.relative_to(PROJECT_ROOT)} has {lines} lines: split it by concern, or say at its top "
        f"({LONG_FILE_REASON!r}) why it is one")


#: Distribution name -> the import name, where they differ.
IMPORT_NAMES = {"py-solc-x": "solcx", "eth-account": "eth_account", "safe-pysha3": "sha3", "pycryptodome": "Crypto",
                "pydantic-settings": "pydantic_settings", "python-multipart": "multipart", "prometheus-client": "prometheus_client"}
#: Dependencies the product needs without importing them itself, and why.
LOADED_BY_NAME = {
    "uvloop": "uvicorn's event loop (loop='uvloop')",
    "httptools": "uvicorn's HTTP parser (http='httptools'); also imported by ledger.http_client",
    "python-multipart": "FastAPI's form and file uploads",
}


def test_every_declared_dependency_is_imported() -> None:
    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].strip() for spec in declared]
    imported: set[str] = set()
    for _, path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    unused = [n for n in names if n not in LOADED_BY_NAME
              and IMPORT_NAMES.get(n, n.replace("-", "_")) not in imported]
    assert not unused, f"declared in pyproject.toml but imported by nothing: {unused}"
