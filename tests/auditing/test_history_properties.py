"""Property-based test (hypothesis): the auditors' Python replay of ``checkAccess``
(``auditing.history.AccessHistory.check_access``, from the indexed events alone) answers what the
real ``AccessGrants.checkAccess`` answered, at every block of random grant histories on a real chain.

A history is a random sequence of what the consortium's members do: request grants (pinned or
following the latest version, on an internal, a sensitive or a secret dataset, by either requesting
department), approve them (narrowing fields, duration and quota), co-approve, reject, revoke and
cancel them, publish versions, retire datasets, let time pass, bind and unbind an extra operator
account, and remove a department by committee vote. Steps the contracts refuse are refused (and
change nothing). After the history the auditor indexes the chain, and at every block of it, for every
grant (and an unknown one), with several requesting accounts and datasets, both answers must be the
same reason and version.

As ``check_access`` documents, the replay leaves the quota to the verifier (no records are appended
here, so no grant is ever over quota) and assumes the grant's requesting department and requested
fields within the grant's (the contract is asked with those). Every example starts from the same
chain state (ganache snapshot). Profiles and example counts: tests/support/properties.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from auditing.history import AccessHistory
from auditing.index import AuditIndex
from ledger.chain import Chain
from ledger.contracts.catalog import Classification
from ledger.contracts.grants import AccessReason
from ledger.contracts.registry import Role
from ledger.dataset_file import commit_records
from ledger.deployment import Consortium
from ledger.errors import ContractRevert
from tests.support.audit_trail import COMPANY_FIELDS, DAY, Trail, build_trail, company_rows, publish
from tests.support.properties import examples

HOUR = 3_600
UNKNOWN_GRANT = 10**6

datasets = st.sampled_from(["companies", "residents", "secret"])
steps = st.one_of(
    st.tuples(st.just("request"), st.sampled_from(["tax", "psb"]), datasets, st.sampled_from([0, 1, 2]),
              st.sampled_from([HOUR, DAY, 30 * DAY])),
    st.tuples(st.just("approve"), st.integers(0, 7), st.sampled_from([0b1, 0b11, 0b111]), st.sampled_from([HOUR, 3 * DAY])),
    st.tuples(st.sampled_from(["co_approve", "reject", "revoke", "cancel"]), st.integers(0, 7)),
    st.tuples(st.just("publish"), datasets),
    st.tuples(st.just("retire"), datasets),
    st.tuples(st.just("time"), st.sampled_from([10 * 60, 6 * HOUR, 2 * DAY])),
    st.tuples(st.sampled_from(["bind_spare", "unbind_spare", "remove_psb"])),
)


@pytest.fixture
def trail(consortium, members) -> Trail:
    return build_trail(consortium, members)


def test_the_replay_equals_check_access_for_random_grant_histories(trail: Trail, ganache, committee, tmp_path: Path) -> None:
    m = trail.members
    spare = m.spare[0]
    operators = {"tax": m.tax.operator, "psb": m.psb.operator}
    dept_of = {"tax": m.tax.id, "psb": m.psb.id}
    secret, _ = publish(trail.consortium, m.samr.operator, "机密 secret", COMPANY_FIELDS, company_rows(2), Classification.SECRET)
    owner_of = {"companies": m.samr.operator, "residents": m.psb.operator, "secret": m.samr.operator}
    ids = {"companies": trail.companies, "residents": trail.residents, "secret": secret}
    name_of = {v: k for k, v in ids.items()}
    requesters = [m.tax.operator.address, m.psb.operator.address, m.tax.oracle.address, spare.address]
    snapshot = [ganache.rpc("evm_snapshot")]
    runs = itertools.count()
    compared: set[AccessReason] = set()

    @settings(max_examples=examples(6))
    @given(st.lists(steps, min_size=1, max_size=12))
    @example([  # scripted: not approved, expired, awaiting co-approval, rejected, cancelled, revoked, requester and owner removed
        ("request", "psb", "companies", 0, DAY), ("request", "tax", "secret", 0, 30 * DAY),
        ("approve", 2, 0b1, HOUR), ("approve", 3, 0b1, 3 * DAY), ("request", "tax", "companies", 1, DAY), ("reject", 4),
        ("request", "tax", "companies", 0, DAY), ("cancel", 5),
        ("time", 2 * DAY), ("co_approve", 3), ("revoke", 0), ("remove_psb",),
    ])
    def history(plan: list[tuple]) -> None:
        assert ganache.rpc("evm_revert", [snapshot[0]]) is True
        snapshot[0] = ganache.rpc("evm_snapshot")
        # a new client after the revert: Chain keeps each sender's next nonce, which the revert took back
        c = Consortium(Chain(ganache.url), trail.consortium.deployment, trail.consortium.compilation)
        grants = {trail.grant: m.tax.id, trail.resident_grant: m.tax.id}  # grant -> its requesting department
        first_block = c.chain.block_number()

        def grant_at(k: int) -> int:
            return sorted(grants)[k % len(grants)]

        for step in plan:
            kind = step[0]
            try:
                if kind == "request":
                    _, who, name, pinned, duration = step
                    g = c.grants.request(operators[who], ids[name], 0b11 if name == "residents" else 0b111,
                                         "property test", duration, 5, pinned)
                    grants[g] = dept_of[who]
                elif kind == "approve":
                    g = grant_at(step[1])
                    owner = owner_of[name_of[c.grants.grant(g).dataset_id]]
                    requested = c.grants.grant(g).fields
                    c.grants.approve(owner, g, step[2] & requested | 1, step[3], 3)
                elif kind == "co_approve":
                    c.grants.co_approve(m.audit.auditor, grant_at(step[1]))
                elif kind in ("reject", "revoke"):
                    g = grant_at(step[1])
                    owner = owner_of[name_of[c.grants.grant(g).dataset_id]]
                    getattr(c.grants, kind)(owner, g, "property test")
                elif kind == "cancel":
                    g = grant_at(step[1])
                    who = "tax" if grants[g] == m.tax.id else "psb"
                    c.grants.cancel(operators[who], g)
                elif kind == "publish":
                    data = commit_records(company_rows(3))
                    c.catalog.publish_version(owner_of[step[1]], ids[step[1]], data.content_hash, data.merkle_root, data.record_count)
                elif kind == "retire":
                    c.catalog.retire(owner_of[step[1]], ids[step[1]])
                elif kind == "time":
                    ganache.rpc("evm_increaseTime", [step[1]])
                    ganache.rpc("evm_mine")
                elif kind == "bind_spare":
                    c.registry.add_account(m.tax.operator, spare.address, Role.OPERATOR)
                elif kind == "unbind_spare":
                    c.registry.remove_account(m.tax.operator, spare.address, Role.OPERATOR)
                elif kind == "remove_psb":
                    c.registry.pass_proposal(committee, c.registry.remove_department_call(m.psb.id), "remove PSB")
            except ContractRevert:
                pass  # refused by the contracts: nothing changed
        index = AuditIndex(tmp_path / f"index-{next(runs)}.sqlite")
        index.sync(c)
        replay = AccessHistory(index)
        for block in range(first_block, c.chain.block_number() + 1):
            block_time = c.chain.block_timestamp(block)
            cases = [(g, dataset, requester) for g in sorted(grants) for dataset in ids.values() for requester in requesters
                     if dataset == trail.companies or requester == m.tax.operator.address]
            cases.append((UNKNOWN_GRANT, trail.companies, m.tax.operator.address))
            for g, dataset, requester in cases:
                on_chain = c.grants.check_access(requester, grants.get(g, m.tax.id), dataset, 1, g, block=block)
                reason, version, _ = replay.check_access(requester, dataset, g, block, block_time)
                assert (AccessReason(reason), version) == (on_chain.reason, on_chain.version), (block, g, dataset, requester)
                compared.add(on_chain.reason)

    history()
    # every reason a history without audit records can reach was compared (the scripted example ensures it)
    assert compared >= set(AccessReason) - {AccessReason.QUOTA_EXHAUSTED, AccessReason.WRONG_DEPARTMENT, AccessReason.FIELDS_NOT_GRANTED,
                                            AccessReason.NO_FIELDS_REQUESTED, AccessReason.VERSION_UNAVAILABLE,
                                            AccessReason.UNKNOWN_DATASET}, sorted(r.name for r in compared)
