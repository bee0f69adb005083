"""Chain down: requests are refused and recorded, and anchored once the chain returns.

A real fault: the oracle's own ganache node is stopped (its process ends) and later started again
on the same port from the same database directory, so the chain state survives the outage."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from devtools.devnet import GanacheNode, dev_accounts, free_port
from devtools.sample_data import COMPANY_FIELDS, companies
from ledger.chain import Chain
from ledger.contracts.audit_log import OracleReason, Outcome, verify_hash_chain
from ledger.contracts.catalog import Classification
from ledger.deployment import Consortium, deploy_consortium
from ledger.errors import ChainUnavailable
from oracle.config import DatasetConfig
from requester.client import QueryRefused
from tests.conftest import Members, admit_members
from tests.oracle.conftest import DAY, TAX_FIELDS, RunningOracle, oracle_config, publish, start_oracle


@dataclass
class World:
    node: GanacheNode
    db_path: Path  # the node's database: a restarted node picks its state up from here
    node_args: tuple[str, ...]
    consortium: Consortium
    members: Members
    companies: int  # served once before the outage
    branches: int  # another dataset of SAMR, never served before the outage
    grant: int
    fields: int
    running: RunningOracle


#: ganache's default (EIP-1559 fees), and a free-gas chain like the reference Besu network (gas price 0,
#: a hardfork without a base fee): the oracle's fee handling takes a different path on each.
NODES = {"eip1559": (), "free-gas": ("--chain.hardfork", "berlin", "--miner.defaultGasPrice", "0")}


@pytest.fixture(params=list(NODES))
def world(request, tmp_path, compilation, company_api) -> Iterator[World]:
    accounts = dev_accounts(30)
    db_path, port, node_args = tmp_path / "chain", free_port(), NODES[request.param]
    node = GanacheNode(db_path=db_path, port=port, extra=node_args)
    running = None
    try:
        chain = Chain(node.url)
        committee = [a.address for a in accounts[0:3]]
        consortium = Consortium(chain, deploy_consortium(chain, accounts[0], committee, 2, compilation), compilation)
        members = admit_members(consortium, accounts[0:3], accounts)
        records = companies()
        company_id = publish(consortium, members.samr, "企业登记信息", COMPANY_FIELDS, records, Classification.INTERNAL)
        branch_id = publish(consortium, members.samr, "分支机构信息", COMPANY_FIELDS, records[:50], Classification.INTERNAL)
        mask = consortium.catalog.dataset(company_id).field_mask(TAX_FIELDS)
        grant = consortium.grants.request(members.tax.operator, company_id, mask, "tax registration of new companies", 30 * DAY, 50)
        consortium.grants.approve(members.samr.operator, grant, mask, 30 * DAY, 50)
        datasets = {
            ds: DatasetConfig(id=ds, base_url=company_api.url, path="/companies", params=("company_id", "status"))
            for ds in (company_id, branch_id)
        }
        config = oracle_config(tmp_path, consortium, "SAMR", datasets, head_poll_interval_seconds=0.0,
                               batch_max_age_seconds=0.2)
        running = start_oracle(config, members.samr.oracle, consortium)
        running.oracle.batcher.retry_delay = 0.5
        world = World(node, db_path, node_args, consortium, members, company_id, branch_id, grant, mask, running)
        yield world
        node = world.node  # the test restarts it
    finally:
        if running is not None:
            running.stop()
        node.stop()


def _wait(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def test_chain_down_refuses_records_and_anchors_when_back(world: World):
    consortium, members, running = world.consortium, world.members, world.running
    oracle = members.samr.oracle.address
    tax = members.tax

    def ask(dataset: int, index: int):
        return running.client.query(tax.operator, tax.id, dataset, world.grant, world.fields,
                                    {"company_id": companies()[index]["company_id"]})

    def last_sequence() -> int:
        return consortium.audit_log.oracle_state(oracle).last_sequence

    first = ask(world.companies, 1)  # served; the dataset is now cached by the oracle
    assert first.receipt["outcome"] == Outcome.SERVED
    _wait(lambda: last_sequence() == 1, "the first record on chain")
    # and confirmed by its receipt: the chain holds it a moment before the batcher has read the receipt
    _wait(lambda: running.oracle.outbox.pending_count() == 0, "the first record confirmed in the outbox")
    block_before = consortium.chain.block_number()

    # ---- the chain goes away
    world.node.stop()
    with pytest.raises(ChainUnavailable):
        consortium.chain.block_number()

    refused = []
    for index, dataset in [(2, world.companies), (3, world.companies), (4, world.branches)]:
        with pytest.raises(QueryRefused) as err:
            ask(dataset, index)
        assert err.value.status == 503, err.value.problem
        assert err.value.reason == "CHAIN_UNAVAILABLE", err.value.problem
        assert "records" not in err.value.problem
        receipt = err.value.receipt
        assert (receipt["outcome"], receipt["reason"]) == (Outcome.DENIED, OracleReason.CHAIN_UNAVAILABLE)
        refused.append(receipt)
    assert [r["sequence"] for r in refused] == [2, 3, 4]
    # the dataset the oracle had never looked up cannot be vouched for: recorded as dataset 0
    assert [r["dataset_id"] for r in refused] == [world.companies, world.companies, 0]
    assert running.oracle.outbox.pending_count() == 3

    health = _wait(lambda: (h := httpx.get(f"{running.url}/v1/health").json())["last_anchoring_error"] and h,
                   "the batcher to report the outage")
    assert health["head"] is None and health["pending"] == 3

    # ---- the chain comes back, same port, same database
    world.node = GanacheNode(db_path=world.db_path, port=world.node.port, extra=world.node_args)
    assert consortium.chain.block_number() >= block_before  # the state survived the restart
    consortium.verify_code()  # every contract's code is still at its address
    assert consortium.grants.grant(world.grant).used == 1

    _wait(lambda: last_sequence() == 4, "the refusals to be anchored")
    _wait(lambda: running.oracle.outbox.pending_count() == 0, "the outbox to be marked")

    again = ask(world.companies, 5)  # served again
    assert again.receipt["outcome"] == Outcome.SERVED and again.receipt["sequence"] == 5
    _wait(lambda: last_sequence() == 5, "the new record on chain")

    records = [r for r in consortium.audit_log.records() if r.oracle == oracle]
    assert [r.sequence for r in records] == [1, 2, 3, 4, 5]
    verify_hash_chain(records, consortium.audit_log.oracle_state(oracle).head)
    for receipt, record in zip([first.receipt, *refused, again.receipt], records):
        assert hex(record.record_id) == receipt["record_id"]
        assert "0x" + record.entry.request_hash.hex() == receipt["request_hash"]
        assert record.entry.dataset_id == receipt["dataset_id"]
    assert [(r.entry.outcome, r.entry.reason) for r in records[1:4]] == [(Outcome.DENIED, OracleReason.CHAIN_UNAVAILABLE)] * 3
    assert [r.entry.dataset_id for r in records[1:4]] == [world.companies, world.companies, 0]
    assert consortium.grants.grant(world.grant).used == 2  # the refusals used no quota
    assert httpx.get(f"{running.url}/v1/health").json()["last_anchoring_error"] is None
