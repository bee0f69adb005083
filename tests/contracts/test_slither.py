"""Static analysis of the contracts with slither: no finding left unexplained.

slither (PyPI ``slither-analyzer``) runs for real, with every detector, on the Hardhat build of
``contracts/`` (compiled offline here by ``npx hardhat compile`` with the npm solc into a temporary
directory; crytic-compile is told not to compile, so neither it nor solc-select ever fetches a
compiler). OpenZeppelin under ``node_modules/`` is left out (``--filter-paths``): it is audited
upstream and pinned by ``package-lock.json``.

Every finding must match an entry of ``contracts/slither-triage.toml`` (detector + location, with
the reason it is accepted), and every location an entry names must still match a finding: a stale
entry fails too, so the file always says exactly what slither reports. A finding is located by its
first element, ``<file>:<parent>.<name>`` (``contracts/AccessGrants.sol:AccessGrants.checkAccess``,
``contracts/AccessGrants.sol:checkAccess.grant`` for a local), without line numbers, so that
unrelated edits do not make entries stale.

To see the findings by hand: ``npx hardhat compile`` then
``.venv/bin/slither . --hardhat-ignore-compile --hardhat-artifacts-directory build/hardhat/artifacts
--hardhat-cache-directory build/hardhat/cache --filter-paths node_modules``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.compiler import PROJECT_ROOT

TRIAGE_FILE = PROJECT_ROOT / "contracts" / "slither-triage.toml"
SLITHER = Path(sys.executable).parent / "slither"
TIMEOUT = 600


@dataclass(frozen=True)
class Finding:
    detector: str
    location: str
    impact: str
    description: str


@dataclass(frozen=True)
class Triage:
    detector: str
    locations: tuple[str, ...]
    why: str


def location(element: dict) -> str:
    """``<file>:<parent>.<name>`` of a slither result element (no line numbers)."""
    parent = element.get("type_specific_fields", {}).get("parent", {}).get("name")
    name = element["name"] if parent is None else f"{parent}.{element['name']}"
    return f"{element['source_mapping']['filename_relative']}:{name}"


def findings_of(output: dict) -> list[Finding]:
    assert output["success"], f"slither failed: {output.get('error')}"
    return [
        Finding(r["check"], location(r["elements"][0]), r["impact"], r["description"].strip())
        for r in output.get("results", {}).get("detectors", [])
    ]


def load_triage(text: str) -> list[Triage]:
    entries = []
    for i, raw in enumerate(tomllib.loads(text).get("accepted", [])):
        assert set(raw) == {"detector", "locations", "why"}, f"triage entry {i}: keys must be detector, locations, why"
        assert raw["why"].strip(), f"triage entry {i} ({raw['detector']}): no justification"
        assert raw["locations"], f"triage entry {i} ({raw['detector']}): no location"
        entries.append(Triage(raw["detector"], tuple(raw["locations"]), raw["why"]))
    return entries


def unexplained_and_stale(findings: Iterable[Finding], triage: Iterable[Triage]) -> tuple[list[Finding], list[str]]:
    """The findings no triage entry explains, and the ``detector @ location`` of entries matching nothing."""
    accepted = {(t.detector, loc) for t in triage for loc in t.locations}
    found = {(f.detector, f.location) for f in findings}
    unexplained = [f for f in findings if (f.detector, f.location) not in accepted]
    stale = sorted(f"{d} @ {loc}" for d, loc in accepted - found)
    return unexplained, stale


@pytest.fixture(scope="module")
def slither_output(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """slither's JSON report on the contracts, from a fresh offline Hardhat build."""
    npx = shutil.which("npx")
    assert npx is not None, "npx not found: install Node.js 20 and run `make setup`"
    assert SLITHER.exists(), "slither not installed: pip install -e '.[test]'"
    build = tmp_path_factory.mktemp("hardhat")
    env = {**os.environ, "GOVSHARE_HARDHAT_BUILD_DIR": str(build), "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
    compiled = subprocess.run([npx, "--no-install", "hardhat", "compile", "--force"], cwd=PROJECT_ROOT, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert compiled.returncode == 0, f"hardhat compile failed:\n{compiled.stdout}\n{compiled.stderr}"
    proc = subprocess.run(
        [str(SLITHER), ".", "--hardhat-ignore-compile",
         "--hardhat-artifacts-directory", str(build / "artifacts"), "--hardhat-cache-directory", str(build / "cache"),
         "--filter-paths", "node_modules", "--json", "-"],
        cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    # slither exits non-zero whenever it reports findings; success is in the JSON
    assert proc.stdout.strip(), f"slither printed no report (exit {proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_every_slither_finding_is_triaged_and_no_entry_is_stale(slither_output: dict) -> None:
    findings = findings_of(slither_output)
    assert findings, "slither reported nothing at all: the run analysed nothing"
    unexplained, stale = unexplained_and_stale(findings, load_triage(TRIAGE_FILE.read_text(encoding="utf-8")))
    assert not unexplained, "slither findings neither fixed nor justified in contracts/slither-triage.toml:\n" + "\n\n".join(
        f"[{f.impact}] {f.detector} @ {f.location}\n{f.description}" for f in unexplained)
    assert not stale, f"entries of contracts/slither-triage.toml that match no finding any more (remove them): {stale}"


def test_slither_analysed_every_contract(slither_output: dict) -> None:
    """The run saw the project's sources (not an empty or foreign build)."""
    files = {location(e).split(":")[0] for r in slither_output["results"]["detectors"] for e in r["elements"]
             if "source_mapping" in e}
    assert {"contracts/AuditLog.sol", "contracts/AccessGrants.sol", "contracts/ConsortiumRegistry.sol"} <= files
    assert not any(f.startswith("node_modules/") for f in files)


def test_the_check_fails_on_an_untriaged_finding_and_on_a_stale_entry(slither_output: dict) -> None:
    """The check can fail: without the first triage entry its findings are unexplained; an entry for a
    location slither does not report is stale."""
    findings = findings_of(slither_output)
    triage = load_triage(TRIAGE_FILE.read_text(encoding="utf-8"))
    unexplained, _ = unexplained_and_stale(findings, triage[1:])
    assert unexplained and {f.detector for f in unexplained} == {triage[0].detector}
    bogus = Triage("reentrancy-eth", ("contracts/AuditLog.sol:AuditLog.nothingHere",), "test")
    _, stale = unexplained_and_stale(findings, [*triage, bogus])
    assert stale == ["reentrancy-eth @ contracts/AuditLog.sol:AuditLog.nothingHere"]
