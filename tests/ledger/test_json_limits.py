"""JSON from outside is bounded before it is parsed (``ledger.json_limits``), and no govshare process
runs with the recursion limit ``py_ecc`` raises on import (``ledger.__init__``): issue 15's
"one unauthenticated request kills the API service". Every reader of outside JSON is fed the same
deeply nested document, in this process and as real subprocesses (a crash would be SIGSEGV, -11)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditing.evidence import RecordProofCheck
from auditing.report import VerificationInputError
from ledger.dataset_file import DataFileError, read_dataset_file
from ledger.deployment import Deployment
from ledger.errors import KeystoreError, ManifestError
from ledger.json_limits import MAX_DEPTH, JsonTooDeep, JsonTooLarge, check_json, json_depth, loads, read_json_file
from ledger.keys import load_keystore
from protocol.oracle_export import InvalidExport, OracleExport
from protocol.query import InvalidQuery, Query

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEEP = "[" * 100_000 + "]" * 100_000  # issue 15's body


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0), ('"[[["', 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["]]]]", ["\\"[[", "\\\\"], [[]]]', 3),
    ('{"a": "\\\\\\"{{{"}', 1), (b'[[["\xe4\xb8\xad"]]]', 3), ("[[],[],[[]]]", 3), (DEEP, 100_000),
])
def test_the_depth_is_counted_outside_strings(text: str | bytes, depth: int) -> None:
    assert json_depth(text) == depth
    if depth < 500:
        assert json_depth(text) == _parsed_depth(json.loads(text))  # the parser agrees


def _parsed_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_parsed_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_parsed_depth(v) for v in value), default=0)
    return 0


def test_too_deep_and_too_large_are_value_errors_that_say_what_was_wrong(tmp_path: Path) -> None:
    check_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # the limit itself is accepted
    with pytest.raises(JsonTooDeep, match=f"the body nests {MAX_DEPTH + 1} levels deep; at most {MAX_DEPTH} are accepted"):
        check_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), what="the body")
    with pytest.raises(JsonTooLarge, match="the body is 11 bytes; at most 10 are accepted"):
        check_json('"123456789"', what="the body", max_bytes=10)
    with pytest.raises(ValueError, match="100000 levels deep"):
        loads(DEEP)
    assert loads('{"a": [1]}') == {"a": [1]}
    big = tmp_path / "big.json"
    big.write_text(json.dumps(["x" * 100]))
    with pytest.raises(JsonTooLarge, match="is 104 bytes; at most 100 are accepted"):
        read_json_file(big, max_bytes=100)
    assert read_json_file(big, max_bytes=104) == ["x" * 100]


def test_every_reader_of_outside_json_refuses_deep_nesting_with_its_own_error(tmp_path: Path) -> None:
    deep_line = '{"a": ' + DEEP + "}"
    (tmp_path / "data.jsonl").write_text('{"a": "1"}\n' + deep_line + "\n")
    with pytest.raises(DataFileError, match="line 2: the record nests 100001 levels deep"):
        read_dataset_file(tmp_path / "data.jsonl")
    (tmp_path / "key.json").write_text("[" * 10_000 + "]" * 10_000)  # within the keystore's size limit
    (tmp_path / "key.json").chmod(0o600)  # a key file others may read is refused before it is parsed
    with pytest.raises(KeystoreError, match="nests 10000 levels deep"):
        load_keystore(tmp_path / "key.json", "password")
    (tmp_path / "big-key.json").write_text(json.dumps({"crypto": "x" * 70_000}))
    (tmp_path / "big-key.json").chmod(0o600)
    with pytest.raises(KeystoreError, match="at most 65536 are accepted"):
        load_keystore(tmp_path / "big-key.json", "password")
    with pytest.raises(ManifestError, match="nests 100001 levels deep"):
        Deployment.from_json(deep_line)
    (tmp_path / "proof.json").write_text(deep_line)
    with pytest.raises(VerificationInputError, match="nests 100001 levels deep"):
        RecordProofCheck.from_file(tmp_path / "proof.json")
    (tmp_path / "export.jsonl").write_text('{"type": "x"}\n' + deep_line + "\n")
    with pytest.raises(InvalidExport, match="line 2: the line nests 100001 levels deep"):
        OracleExport.read(tmp_path / "export.jsonl")
    with pytest.raises(InvalidQuery, match="nests 100000 levels deep"):
        Query.from_json(DEEP)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def test_processes_of_govshare_keep_a_sane_recursion_limit() -> None:
    """Every entry point (the CLI, the API and oracle services, the oracle's anchoring process)
    imports ledger, which undoes py_ecc's raise; importing eth_account afterwards changes nothing."""
    done = _python("import sys; import cli.main, api.app, oracle.main, oracle.anchoring, serving; import eth_account, py_ecc; "
                   "print(sys.getrecursionlimit())")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) <= 1000
    # without govshare's import the same interpreter has it raised: what this guards against
    raised = _python("import sys, eth_account; print(sys.getrecursionlimit())")
    assert int(raised.stdout) == 100_000


def test_the_standard_parser_fails_cleanly_once_ledger_is_imported() -> None:
    """The reproduction from issue 15 exits 139 (SIGSEGV); after importing ledger it is a RecursionError."""
    deep = "'[' * 100000 + ']' * 100000"
    done = _python(f"import ledger, eth_account, json\ntry:\n    json.loads({deep})\nexcept RecursionError:\n    print('refused')")
    assert done.returncode == 0 and done.stdout.strip() == "refused", (done.returncode, done.stderr[-500:])
