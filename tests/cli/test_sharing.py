"""``govshare dept|dataset|grant`` as real subprocesses against the session ganache: each user's path
and its refusals (wrong role, unknown dataset or grant, bad file, accounts and departments that are
not members), chain down (exit 3) and usage errors (exit 2)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cli.main import build_parser
from devtools.devnet import Devnet, free_port
from ledger.contracts.catalog import Classification, UpdateFrequency
from ledger.contracts.grants import GrantStatus
from ledger.contracts.registry import Role
from ledger.dataset_file import read_dataset_file
from ledger.hashing import content_hash, record_hash
from ledger.keys import Signer
from ledger.merkle import MerkleTree
from tests.cli.conftest import CLI_PASSWORD, CliWorld
from tests.support.cli import cli_env, finish, govshare, govshare_all, start

DAY = 86_400
FIELDS = ("company_id", "name", "status")
RECORDS = [
    {"company_id": "91310000MA1K000001", "name": "上海一号有限公司", "status": "active"},
    {"company_id": "91310000MA1K000002", "name": "上海二号有限公司", "status": "closed"},
    {"company_id": "91310000MA1K000003", "name": "上海三号有限公司", "status": "active"},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def publish_companies(w: CliWorld, level: Classification = Classification.INTERNAL) -> int:
    """A SAMR dataset with one version, set up through the library (not what these tests test)."""
    catalog, samr = w.consortium.catalog, w.members.samr.operator
    dataset_id = catalog.register(samr, "企业登记信息", FIELDS, level, UpdateFrequency.DAILY)
    tree = MerkleTree([record_hash(r) for r in RECORDS])
    catalog.publish_version(samr, dataset_id, content_hash(RECORDS), tree.root, len(RECORDS))
    return dataset_id


def test_owner_and_requester_path(cli_world: CliWorld, tmp_path: Path) -> None:
    """SAMR registers and publishes; TAX requests; SAMR approves (narrower); both list; SAMR revokes."""
    w, catalog, grants = cli_world, cli_world.consortium.catalog, cli_world.consortium.grants

    registered = w.run("dataset", "register", "--json", "--name", "企业登记信息", "--fields", ",".join(FIELDS),
                       "--classification", "internal", "--frequency", "daily", key="samr").json()
    dataset_id = registered["id"]
    assert (registered["owner"], registered["fields"], registered["versions"]) == ("SAMR", list(FIELDS), 0)
    assert catalog.dataset(dataset_id).fields == FIELDS

    data_file = write_jsonl(tmp_path / "companies.jsonl", RECORDS)
    published = w.run("dataset", "publish", str(dataset_id), "--file", str(data_file), "--json", key="samr").json()
    on_chain, from_file = catalog.version(dataset_id, 1), read_dataset_file(data_file, FIELDS)
    assert (published["version"], published["records"], on_chain.record_count) == (1, 3, 3)
    assert on_chain.content_hash == from_file.content_hash == content_hash(RECORDS)
    assert on_chain.merkle_root == from_file.merkle_root == MerkleTree([record_hash(r) for r in RECORDS]).root
    assert published["merkle_root"] == "0x" + on_chain.merkle_root.hex()

    # the global --json before the command works as well as after it
    requested = w.run("--json", "grant", "request", str(dataset_id), "--fields", "company_id,name,status",
                      "--purpose", "tax registration checks", "--duration", "30d", "--quota", "100", key="tax").json()
    grant_id = requested["id"]
    assert (requested["state"], requested["requester"], requested["owner"]) == ("requested", "TAX", "SAMR")

    approved = w.run("grant", "approve", str(grant_id), "--fields", "company_id,name", "--quota", "40", "--json", key="samr").json()
    grant = grants.grant(grant_id)
    assert approved["state"] == "active" and grant.status is GrantStatus.ACTIVE
    assert (grant.fields, grant.quota, grant.duration) == (0b011, 40, 30 * DAY)

    outgoing_run, incoming = govshare_all([w.args("grant", "list", "--json", key="tax"),
                                           ["grant", "list", "--dept", "SAMR", "--incoming"]], w.env)  # human table; no key with --dept
    outgoing = outgoing_run.json()
    assert outgoing["dept"] == "TAX"
    [listed] = outgoing["grants"]
    assert (listed["id"], listed["direction"], listed["state"], listed["used"], listed["quota"]) == (grant_id, "outgoing", "active", 0, 40)
    assert listed["fields"] == ["company_id", "name"] and listed["expires_at"].endswith("UTC")

    assert incoming.returncode == 0, incoming.stderr
    assert "grants of SAMR" in incoming.stdout
    row = next(line for line in incoming.stdout.splitlines() if line.split("│")[0].strip() == str(grant_id))
    assert "incoming" in row and "active" in row and "0/40" in row and "company_id, name" in row

    password_file = tmp_path / "password"
    password_file.write_text(CLI_PASSWORD + "\n")  # --password-file wins over $GOVSHARE_KEY_PASSWORD
    revoked = govshare(*w.args("grant", "revoke", str(grant_id), "--reason", "checks done", "--password-file", str(password_file),
                               key="samr"), env=w.env | {"GOVSHARE_KEY_PASSWORD": "not the password"})
    assert revoked.returncode == 0, revoked.stderr
    assert f"grant {grant_id} revoked" in revoked.stdout
    assert grants.grant(grant_id).status is GrantStatus.REVOKED


def test_refusals_say_why_and_send_nothing(cli_world: CliWorld, tmp_path: Path, accounts: list[Signer]) -> None:
    """Wrong role, unknown dataset and grant, bad files, an account of no department, a removed
    department: exit 1 with a message that says why, and no transaction (no block mined)."""
    w, chain = cli_world, cli_world.consortium.chain
    dataset_id = publish_companies(w)
    grant_id = w.consortium.grants.request(w.members.tax.operator, dataset_id, 0b111, "checks", DAY, 10)
    # PSB leaves the consortium by committee vote: its operator's account is no member's any more
    registry = w.consortium.registry
    registry.pass_proposal(accounts[0:2], registry.remove_department_call(w.members.psb.id), "remove PSB")
    good = write_jsonl(tmp_path / "good.jsonl", RECORDS)
    floats = tmp_path / "floats.jsonl"
    floats.write_text('{"company_id": "1", "name": "a", "status": "x"}\n{"company_id": "2", "name": "b", "status": 1.5}\n')
    block = chain.block_number()

    cases = [
        (["dataset", "publish", str(dataset_id), "--file", str(good)], "tax",
         f"is not an operator of SAMR, the owner of dataset {dataset_id}"),
        (["grant", "approve", str(grant_id)], "tax", f"is not an operator of SAMR, the owner of dataset {dataset_id} (grant {grant_id})"),
        (["dataset", "publish", "999", "--file", str(good)], "samr", "unknown dataset 999 (the catalog has 1)"),
        (["grant", "revoke", "999", "--reason", "x"], "samr", "unknown grant 999"),
        (["dataset", "publish", str(dataset_id), "--file", str(floats)], "samr", "line 2: the number 1.5 is not exact"),
        (["grant", "request", str(dataset_id), "--fields", "name", "--purpose", "p", "--duration", "1d", "--quota", "1"],
         "outsider", f"account {w.members.outsider.address} is not an account of any member department"),
        (["grant", "request", str(dataset_id), "--fields", "name", "--purpose", "p", "--duration", "1d", "--quota", "1"],
         "psb", f"account {w.members.psb.operator.address} is not an account of any member department"),
    ]
    runs = govshare_all([w.args(*args, key=key) for args, key, _ in cases], w.env)
    for (args, key, message), run in zip(cases, runs):
        assert run.returncode == 1, (args, key, run.stdout, run.stderr)
        assert message in run.stderr, (args, key, run.stderr)
        assert "Traceback" not in run.stderr
    assert chain.block_number() == block  # refused before anything was signed or sent


def test_committee_admits_by_vote_and_an_auditor_co_approves(cli_world: CliWorld) -> None:
    w, registry, grants = cli_world, cli_world.consortium.registry, cli_world.consortium.grants
    newcomer = w.members.spare[0].address
    proposed = w.run("dept", "admit", "--json", "--name", "统计局 Statistics", "--code", "STATS", "--operator", newcomer,
                     key="committee-1").json()
    assert (proposed["state"], proposed["approvals"], proposed["threshold"], proposed["executed_now"]) == ("open", 1, 2, None)
    assert registry.department_by_code("STATS") is None  # one approval is not enough

    approved = w.run("dept", "approve", str(proposed["id"]), "--json", key="committee-2").json()
    assert approved["state"] == "executed"
    stats = registry.department_by_code("STATS")
    assert stats is not None and approved["executed_now"]["admitted_dept_id"] == stats.id
    assert registry.department_with_role(Role.OPERATOR, newcomer) == stats.id
    shown = w.run("dept", "show", "stats", "--json").json()  # by code, any case
    assert (shown["id"], shown["active"], shown["accounts"]) == (stats.id, True, [{"address": newcomer, "roles": ["operator"]}])

    # a secret dataset: the owner's approval leaves the grant awaiting an independent auditor
    secret = publish_companies(w, Classification.SECRET)
    grant_id = grants.request(w.members.tax.operator, secret, 0b001, "fraud case", DAY, 5)
    grants.approve(w.members.samr.operator, grant_id, 0b001, DAY, 5)
    assert grants.grant(grant_id).status is GrantStatus.AWAITING_CO_APPROVAL
    co_approved = w.run("grant", "co-approve", str(grant_id), "--json", key="auditor").json()
    assert co_approved["state"] == "active" and grants.grant(grant_id).status is GrantStatus.ACTIVE


def test_chain_unreachable_exits_3(tmp_path: Path) -> None:
    stopped = Devnet(tmp_path / "devnet")
    stopped.data_dir.mkdir()
    stopped.settings_file.write_text(json.dumps({"port": free_port(), "chain_id": 1337}))  # a devnet that is not running
    down_env = cli_env(stopped.data_dir)
    explicit_args, devnet_args = ["dataset", "list", "--rpc", f"http://127.0.0.1:{free_port()}"], ["dept", "list"]
    running = [start(explicit_args, cli_env(tmp_path / "no-devnet")), start(devnet_args, down_env)]
    explicit, devnet = finish(running[0], explicit_args), finish(running[1], devnet_args)
    assert explicit.returncode == 3 and "cannot reach http://127.0.0.1:" in explicit.stderr, explicit.stderr
    assert devnet.returncode == 3, devnet.stderr
    assert f"the devnet in {stopped.data_dir} is not running" in devnet.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["grant", "request", "1", "--fields", "a", "--duration", "1d", "--quota", "1"], "the following arguments are required: --purpose"),
    (["grant", "request", "1", "--fields", "a", "--purpose", "p", "--duration", "1 week", "--quota", "1"], "not a duration: '1 week'"),
    (["dataset", "register", "--name", "n", "--fields", "a,a", "--classification", "internal"], "a field is named twice"),
    (["dept", "list"], "no chain given: pass --rpc URL, set GOVSHARE_RPC, or start a local devnet"),
    (["dataset", "register", "--rpc", "http://127.0.0.1:1", "--name", "n", "--fields", "a", "--classification", "internal"],
     "this command signs: pass --key-file FILE"),
    (["dataset", "register", "--as", "samr", "--rpc", "http://127.0.0.1:1", "--name", "n", "--fields", "a",
      "--classification", "internal"], "--as needs a devnet"),
    (["dept", "list", "--rpc", "http://127.0.0.1:1", "--rpc-ca-file", "/etc/hostname"], "--rpc-ca-file (or $GOVSHARE_RPC_CA_FILE) is for an https node"),
    (["dept", "list", "--rpc", "https://127.0.0.1:1", "--rpc-ca-file", "/nonexistent/ca.pem"], "the CA file /nonexistent/ca.pem does not exist"),
    (["dept", "list", "--rpc", "https://127.0.0.1:1", "--rpc-ca-file", "/etc/hostname"], "cannot be loaded as PEM certificates"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    run = govshare(*args, env=cli_env(tmp_path / "no-devnet"))
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_dev_keys_only_sign_for_the_devnet(tmp_path: Path) -> None:
    """``--as`` names a public test key: refused against any chain but the devnet's."""
    devnet = Devnet(tmp_path / "devnet")
    devnet.keys_dir.mkdir(parents=True)
    devnet.settings_file.write_text(json.dumps({"port": free_port(), "chain_id": 1337}))
    devnet.key_path("samr").write_text("{}")
    run = govshare("grant", "cancel", "1", "--as", "samr", "--rpc", f"http://127.0.0.1:{free_port()}",
                   env=cli_env(devnet.data_dir))
    assert run.returncode == 2, run.stderr
    assert "--as signs with the devnet's public test keys and works only against the devnet" in run.stderr


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str | None]:
    """Every command and subcommand with the one-line help ``govshare ... --help`` lists it with."""
    found: dict[tuple[str, ...], str | None] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found[(*path, name)] = helps.get(name)
                found.update(_commands(sub, (*path, name)))
    return found


def test_every_command_has_help_text() -> None:
    commands = _commands(build_parser())
    mine = [("devnet", "start"), ("devnet", "stop"), ("devnet", "status"), ("dept", "admit"), ("dept", "approve"),
            ("dept", "set-oracle-url"), ("dataset", "publish"), ("grant", "co-approve"), ("grant", "list"), ("query",)]
    assert set(mine) <= set(commands)
    assert [path for path, help_text in commands.items() if not help_text] == []


def test_help_runs_as_a_subprocess(tmp_path: Path) -> None:
    run = govshare("grant", "approve", "--help", env=cli_env(tmp_path))
    assert run.returncode == 0 and "usage: govshare grant approve" in run.stdout and "--duration" in run.stdout


def test_a_transaction_never_mined_fails_within_the_receipt_timeout_saying_why(cli_world: CliWorld, ganache) -> None:
    """The node takes the transaction and never mines it: the command ends (exit 1) once
    ``--receipt-timeout`` has passed, naming the transaction and what the node holds, never hangs."""
    ganache.rpc("miner_stop")
    try:
        out = cli_world.run("dataset", "register", "--name", "never mined", "--fields", "a,b", "--classification", "internal",
                            "--frequency", "daily", "--receipt-timeout", "2", key="samr")
    finally:
        ganache.rpc("miner_start")
    assert out.returncode == 1, out.stderr
    assert "not mined in 2 s" in out.stderr and "the node holds it unmined" in out.stderr, out.stderr
