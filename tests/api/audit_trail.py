"""A real audit trail for the audit API and dashboard tests, built once per test module.

Real queries answered by real oracles (market supervision's company registry and public security's
residents, over HTTP in front of the sample department APIs), denials among them, anchored on the
session's ganache. ``make_trail`` (tax asks):

* 3 company records served under ``published.tax_grant``;
* 1 company query for every field, more than the grant gives: denied (FIELDS_NOT_GRANTED);
* a residents grant from PSB, 2 resident records served under it;
* market supervision revokes the company grant; tax's next company query: denied (REVOKED).

Both oracles then anchor: 7 records, 2 denials, all asked by tax, 5 provided by SAMR and 2 by PSB.

Why once per module: building it (two datasets of 3,000 records committed on chain, two grants, two
oracles, seven queries, two batches) takes seconds, and the audit tests only read it. ``audit_world``
therefore starts the way the ``consortium`` fixture does (reverting ganache to the session's fresh
snapshot, so it starts from the same contracts and departments), and builds everything on it once.
The tests of such a module must not ask for ``consortium`` or ``members`` (they would revert the
chain under the trail): they use ``world.consortium`` and ``world.members``. A test that must change
the chain does it inside ``world.scratch()``, which reverts the chain afterwards, and with an API of
its own (``world.start_api``) so that no other test's index sees blocks that no longer exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings, TokenBinding, token_sha256
from devtools.devnet import free_port
from devtools.sample_data import COMPANY_FIELDS, RESIDENT_FIELDS, companies, residents
from ledger.chain import Chain
from ledger.contracts.catalog import Classification
from ledger.deployment import Consortium
from ledger.keys import Signer
from oracle.config import DatasetConfig
from requester.client import QueryRefused
from serving import ServerThread
from tests.api.conftest import RunningApi
from tests.conftest import Members, Template
from tests.oracle.conftest import (
    DAY,
    TAX_FIELDS,
    Published,
    RunningOracle,
    oracle_config,
    publish,
    start_oracle,
)


@dataclass
class Trail:
    """The records ``make_trail`` produced (ids as 0x hex, as receipts and the API show them)."""

    published: Published
    residents_grant: int
    served_companies: list[str] = field(default_factory=list)
    denied_companies: list[str] = field(default_factory=list)
    served_residents: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return self.served_companies + self.denied_companies + self.served_residents


def _denied(oracle: RunningOracle, members: Members, published: Published, fields: int, reason: str) -> str:
    with pytest.raises(QueryRefused) as refused:
        oracle.client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant, fields,
                            {"company_id": companies()[7]["company_id"]})
    assert refused.value.reason == reason, refused.value.problem
    return refused.value.receipt["record_id"]


def make_trail(consortium: Consortium, members: Members, published: Published, samr_oracle: RunningOracle,
               psb_oracle: RunningOracle) -> Trail:
    """Produce the trail described in the module docstring and anchor it."""
    tax = members.tax
    resident_mask = consortium.catalog.dataset(published.residents).field_mask(["id_number", "name"])
    residents_grant = consortium.grants.request(tax.operator, published.residents, resident_mask, "verify taxpayers", DAY, 10)
    consortium.grants.approve(members.psb.operator, residents_grant, resident_mask, DAY, 10)
    trail = Trail(published, residents_grant)
    for company in companies()[:3]:
        result = samr_oracle.client.query(tax.operator, tax.id, published.companies, published.tax_grant,
                                          published.company_fields, {"company_id": company["company_id"]})
        trail.served_companies.append(result.receipt["record_id"])
    every_field = (1 << len(COMPANY_FIELDS)) - 1
    trail.denied_companies.append(_denied(samr_oracle, members, published, every_field, "FIELDS_NOT_GRANTED"))
    for person in residents()[:2]:
        result = psb_oracle.client.query(tax.operator, tax.id, published.residents, residents_grant, resident_mask,
                                         {"id_number": person["id_number"]})
        trail.served_residents.append(result.receipt["record_id"])
    consortium.grants.revoke(members.samr.operator, published.tax_grant, "audit finding")
    trail.denied_companies.append(_denied(samr_oracle, members, published, published.company_fields, "REVOKED"))
    for oracle in (samr_oracle, psb_oracle):
        assert oracle.oracle.batcher.anchor_once(force=True)
    return trail


@dataclass
class AuditWorld:
    """One chain state with the trail on it, and API services over it."""

    ganache: Any
    consortium: Consortium
    members: Members
    trail: Trail
    directory: Path
    stack: ExitStack
    api: RunningApi | None = None  # the module's shared service (an audit office's), synced once

    def callers(self) -> list[Signer]:
        """Everyone the tests call as: the auditor, three operators, and SAMR's oracle account."""
        m = self.members
        return [m.audit.auditor, m.tax.operator, m.psb.operator, m.samr.operator, m.samr.oracle]

    def start_api(self, name: str, *, index: bool = True, **settings: Any) -> RunningApi:
        """A read-only service (it holds no key) with a fresh token per caller and its own index file."""
        tokens = {c.address: secrets.token_urlsafe(32) for c in self.callers()}  # test tokens, this module only
        bindings = [TokenBinding(sha256=token_sha256(t), account=a, label=f"test {a[:8]}") for a, t in tokens.items()]
        config = ApiSettings(rpc_url=self.consortium.chain.url, tokens=tuple(bindings),
                             index_path=self.directory / f"{name}.sqlite" if index else None, **settings)
        app = create_app(config, consortium=self.consortium, signers=[])
        server = ServerThread(app, free_port()).start()
        api = RunningApi(server, tokens, httpx.Client(base_url=server.url, timeout=60, trust_env=False))
        self.stack.callback(api.stop)
        return api

    @contextmanager
    def scratch(self) -> Iterator[None]:
        """Changes to the chain inside are undone at the end (ganache evm_snapshot / evm_revert)."""
        snapshot = self.ganache.rpc("evm_snapshot")
        try:
            yield
        finally:
            assert self.ganache.rpc("evm_revert", [snapshot]) is True
            m = self.members
            for member in (m.samr, m.tax, m.psb, m.audit):  # the reverted transactions' nonces are free again
                for signer in (member.operator, member.oracle, member.auditor):
                    if signer is not None:
                        self.consortium.chain.reset_nonce(signer.address)


@contextmanager
def audit_world(ganache: Any, template: Template, compilation: Any, company_api: ServerThread,
                resident_api: ServerThread, directory: Path) -> Iterator[AuditWorld]:
    """Fresh contracts with the four departments (as the ``consortium`` fixture gives them), the two
    datasets published, oracles running, the trail made; the shared API started and synced."""
    assert ganache.rpc("evm_revert", [template.snapshot]) is True
    template.snapshot = str(ganache.rpc("evm_snapshot"))
    consortium = Consortium(Chain(ganache.url), template.populated, compilation)
    members = template.members
    company_id = publish(consortium, members.samr, "企业登记信息", COMPANY_FIELDS, companies(), Classification.INTERNAL)
    resident_id = publish(consortium, members.psb, "常住人口信息", RESIDENT_FIELDS, residents(), Classification.SENSITIVE)
    mask = consortium.catalog.dataset(company_id).field_mask(TAX_FIELDS)
    grant = consortium.grants.request(members.tax.operator, company_id, mask, "tax registration of new companies", 30 * DAY, 50)
    consortium.grants.approve(members.samr.operator, grant, mask, 30 * DAY, 50)
    published = Published(company_id, resident_id, grant, mask)
    with ExitStack() as stack:
        with ExitStack() as oracles:  # needed only to answer the trail's queries
            samr = start_oracle(oracle_config(directory, consortium, "SAMR", {company_id: DatasetConfig(
                id=company_id, base_url=company_api.url, path="/companies", params=("company_id", "status"),
                timeout_seconds=2.0)}), members.samr.oracle, consortium)
            oracles.callback(samr.stop)
            psb = start_oracle(oracle_config(directory, consortium, "PSB", {resident_id: DatasetConfig(
                id=resident_id, base_url=resident_api.url, path="/residents", params=("id_number",),
                timeout_seconds=2.0)}), members.psb.oracle, consortium)
            oracles.callback(psb.stop)
            trail = make_trail(consortium, members, published, samr, psb)
        world = AuditWorld(ganache, consortium, members, trail, directory, stack)
        world.api = world.start_api("shared")
        synced = world.api.post(members.audit.auditor, "/v1/audit/sync")
        assert synced.status_code == 200 and synced.json()["records"] == 7, synced.text
        yield world
