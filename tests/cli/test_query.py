"""``govshare query`` as a real subprocess against market supervision's oracle served over real HTTP
(the oracle fixtures of ``tests/oracle/conftest.py``): the records and the signed receipt, a field
outside the grant refused by the oracle (exit 1), an oracle that does not answer (exit 3); receipts
kept with ``--save-receipt DIR`` for an auditor."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from devtools.devnet import free_port
from devtools.sample_data import companies
from tests.cli.conftest import CliWorld
from tests.oracle.conftest import TAX_FIELDS, Published, RunningOracle
from tests.support.cli import govshare_all


def test_query_through_the_registered_oracle(cli_world: CliWorld, published: Published, samr_oracle: RunningOracle,
                                             tmp_path: Path) -> None:
    w = cli_world
    set_url = w.run("dept", "set-oracle-url", samr_oracle.url, key="samr")
    assert set_url.returncode == 0, set_url.stderr
    assert w.consortium.registry.department(w.members.samr.id).oracle_url == samr_oracle.url  # requesters find it here

    target, other = companies()[1234], companies()[7]
    grant = str(published.tax_grant)
    as_json, as_table, outside, unreachable = govshare_all([
        w.args("query", grant, "--param", f"company_id={target['company_id']}", "--json", "--save-receipt",
               str(tmp_path / "receipts"), key="tax"),
        w.args("query", grant, "--param", f"company_id={other['company_id']}", "--fields", "name,status", key="tax"),
        w.args("query", grant, "--param", f"company_id={target['company_id']}", "--fields", "legal_representative",
               "--save-receipt", str(tmp_path / "receipts"), key="tax"),
        w.args("query", grant, "--param", f"company_id={target['company_id']}", "--oracle-url",
               f"http://127.0.0.1:{free_port()}", key="tax"),
    ], w.env)

    answer = as_json.json()
    assert answer["records"] == [{k: target[k] for k in TAX_FIELDS}]  # exactly the granted fields
    assert answer["oracle"] == w.members.samr.oracle.address  # the receipt's signer, checked against the registry
    receipt = answer["receipt"]
    assert receipt["grant_id"] == published.tax_grant and int(receipt["checked_at_block"]) > 0
    assert receipt["record_id"].startswith("0x")
    saved = Path(answer["receipt_file"])
    assert json.loads(saved.read_text()) == receipt and stat.S_IMODE(saved.stat().st_mode) == 0o600

    assert as_table.returncode == 0, as_table.stderr
    assert other["name"] in as_table.stdout and other["status"] in as_table.stdout
    assert other["company_id"] not in as_table.stdout  # only the fields asked for
    assert f"signed by SAMR's oracle {w.members.samr.oracle.address}" in as_table.stdout

    assert outside.returncode == 1, outside.stderr
    assert "SAMR's oracle refused the query: FIELDS_NOT_GRANTED" in outside.stderr
    assert "Traceback" not in outside.stderr
    kept = sorted(json.loads(p.read_text())["outcome"] for p in (tmp_path / "receipts").glob("receipt-*.json"))
    assert kept == [0, 1]  # the served one and the refusal, each the oracle's signed evidence

    assert unreachable.returncode == 3, unreachable.stderr
    assert "cannot reach SAMR's oracle at http://127.0.0.1:" in unreachable.stderr

    # the oracle recorded all three queries it answered, the refusal included
    assert samr_oracle.oracle.outbox.pending_count() == 3
