"""Oracle fixtures: the sample department APIs as real HTTP servers, a dataset published on chain
with a grant to tax, and market supervision's oracle running over real HTTP in front of its API."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import pytest

from devtools.devnet import free_port
from devtools.sample_data import COMPANY_FIELDS, RESIDENT_FIELDS, companies, residents
from ledger.contracts.catalog import Classification, UpdateFrequency
from ledger.deployment import Consortium
from ledger.hashing import content_hash, record_hash
from ledger.merkle import MerkleTree
from oracle.config import DatasetConfig, OracleConfig
from oracle.main import Oracle, build_oracle
from oracle.masking import MaskRule
from requester.client import OracleClient
from serving import ServerThread
from tests.conftest import Member, Members

DAY = 86_400
TAX_FIELDS = ("company_id", "name", "registration_date", "status")


@dataclass
class Published:
    companies: int  # SAMR's dataset id
    residents: int  # PSB's dataset id (sensitive)
    tax_grant: int  # tax may read TAX_FIELDS of companies
    company_fields: int  # the bitmask of TAX_FIELDS


def publish(consortium: Consortium, owner: Member, name: str, fields: tuple[str, ...], records: list[dict],
            level: Classification) -> int:
    dataset = consortium.catalog.register(owner.operator, name, fields, level, UpdateFrequency.DAILY)
    tree = MerkleTree([record_hash(r) for r in records])
    consortium.catalog.publish_version(owner.operator, dataset, content_hash(records), tree.root, len(records))
    return dataset


@pytest.fixture
def published(consortium: Consortium, members: Members) -> Published:
    company_id = publish(consortium, members.samr, "企业登记信息", COMPANY_FIELDS, companies(), Classification.INTERNAL)
    resident_id = publish(consortium, members.psb, "常住人口信息", RESIDENT_FIELDS, residents(), Classification.SENSITIVE)
    mask = consortium.catalog.dataset(company_id).field_mask(TAX_FIELDS)
    grant = consortium.grants.request(members.tax.operator, company_id, mask, "tax registration of new companies", 30 * DAY, 50)
    consortium.grants.approve(members.samr.operator, grant, mask, 30 * DAY, 50)
    return Published(company_id, resident_id, grant, mask)


def oracle_config(tmp_path: Path, consortium: Consortium, department: str, datasets: dict[int, DatasetConfig], **overrides: object) -> OracleConfig:
    config = OracleConfig(
        source=tmp_path / f"{department}.toml",
        rpc_url=consortium.chain.url,
        department=department,
        key_file=tmp_path / "unused-key.json",  # the fixture passes the signer directly
        outbox=tmp_path / f"{department}-outbox.sqlite",
        datasets=datasets,
        batch_max_records=100,
        batch_max_age_seconds=3600.0,  # tests anchor explicitly unless they say otherwise
        # ganache mines a block per transaction, not per period, and the tests' chain makes few: an hour's
        # batch age fits the consortium's default decision-age bound (150 blocks) at one block a minute
        chain_block_seconds=60.0,
        anchoring="thread",  # so that tests can drive the batcher by hand (test_anchoring.py runs the process)
        masking={Classification.SENSITIVE: {"id_number": MaskRule.parse("keep:6:4"), "address": MaskRule.parse("keep:3:0")}},
    )
    return replace(config, **overrides) if overrides else config


@dataclass
class RunningOracle:
    oracle: Oracle
    server: ServerThread
    client: OracleClient

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.client.close()
        self.server.stop()
        self.oracle.close(flush=False)


def start_oracle(config: OracleConfig, signer, consortium: Consortium) -> RunningOracle:
    oracle = build_oracle(config, signer=signer, consortium=consortium, follow_requests=False)  # tests poll explicitly
    server = ServerThread(oracle.app, free_port(),  # as `govshare oracle serve` serves it
                          tls=config.tls.uvicorn_options() if config.tls else None).start()
    client = OracleClient(server.url, consortium.chain.chain_id, consortium.deployment.addresses["QueryRequests"],
                          oracle_address=signer.address)
    return RunningOracle(oracle, server, client)


@pytest.fixture
def start(tmp_path: Path, consortium: Consortium, members: Members, published: Published,
          company_api: ServerThread) -> Iterator[Callable[..., RunningOracle]]:
    """Start market supervision's oracle in front of the company registry with these config
    overrides (``start(mode="strict", ...)``), as often as a test needs; all are stopped after it."""
    started: list[RunningOracle] = []

    def run(**overrides: object) -> RunningOracle:
        datasets = {published.companies: DatasetConfig(id=published.companies, base_url=company_api.url,
                                                       path="/companies", params=("company_id", "status"))}
        running = start_oracle(oracle_config(tmp_path, consortium, "SAMR", datasets, **overrides), members.samr.oracle,
                               consortium)
        started.append(running)
        return running

    yield run
    for running in started:
        running.stop()


@pytest.fixture
def samr_oracle(tmp_path: Path, consortium: Consortium, members: Members, published: Published, company_api: ServerThread) -> Iterator[RunningOracle]:
    datasets = {published.companies: DatasetConfig(id=published.companies, base_url=company_api.url, path="/companies",
                                                   params=("company_id", "status"), timeout_seconds=2.0)}
    running = start_oracle(oracle_config(tmp_path, consortium, "SAMR", datasets), members.samr.oracle, consortium)
    yield running
    running.stop()


@pytest.fixture
def psb_oracle(tmp_path: Path, consortium: Consortium, members: Members, published: Published, resident_api: ServerThread) -> Iterator[RunningOracle]:
    datasets = {published.residents: DatasetConfig(id=published.residents, base_url=resident_api.url, path="/residents",
                                                   params=("id_number",), timeout_seconds=2.0)}
    running = start_oracle(oracle_config(tmp_path, consortium, "PSB", datasets), members.psb.oracle, consortium)
    yield running
    running.stop()
