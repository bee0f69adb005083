"""Issue 15's hostile inputs to the ``govshare`` command line, run as a real subprocess: a data file and a
keystore nested 100,000 levels deep (``dataset publish`` died with SIGSEGV, exit -11), a ``--param``
whose bytes are not UTF-8. Each is a clear message and a usual exit code, with nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import CliWorld
from tests.cli.test_sharing import FIELDS, publish_companies
from tests.support.cli import govshare_all

DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_files_and_non_utf8_parameters_are_refused_cleanly(cli_world: CliWorld, tmp_path: Path) -> None:
    w, chain = cli_world, cli_world.consortium.chain
    dataset_id = publish_companies(w)
    deep_file = tmp_path / "deep.jsonl"
    deep_file.write_text(json.dumps(dict.fromkeys(FIELDS, "x")) + "\n" + '{"company_id": ' + DEEP + "}\n")
    deep_key = tmp_path / "deep-key.json"
    deep_key.write_text("[" * 20_000 + "]" * 20_000)
    deep_key.chmod(0o600)  # a key file others may read is refused before it is parsed
    not_utf8 = b"\xed\xa0\x80".decode("utf-8", "surrogateescape")  # U+D800 written as bytes: what argv gets
    block = chain.block_number()

    publish, keystore, param = govshare_all([
        w.args("dataset", "publish", str(dataset_id), "--file", str(deep_file), key="samr"),
        ["dataset", "publish", str(dataset_id), "--file", str(tmp_path / "absent.jsonl"), "--key-file", str(deep_key)],
        w.args("query", "1", "--param", f"company_id={not_utf8}", key="tax"),
    ], w.env)

    assert publish.returncode == 1, (publish.returncode, publish.stderr[-2000:])
    assert "line 2: the record nests 100001 levels deep; at most 64 are accepted" in publish.stderr
    assert keystore.returncode == 1, (keystore.returncode, keystore.stderr[-2000:])
    assert "nests 20000 levels deep; at most 8 are accepted: not a keystore" in keystore.stderr
    assert param.returncode == 2, (param.returncode, param.stderr[-2000:])
    assert "parameter company_id: not UTF-8 text" in param.stderr
    for run in (publish, keystore, param):
        assert "Traceback" not in run.stderr
    assert chain.block_number() == block  # nothing was sent
