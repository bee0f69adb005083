"""Bring a consortium to a plan's state with the keys at hand (:func:`apply_plan`).

Each committee vote is one proposal: an open proposal with the same effect is approved rather than
proposed again (so members who each run the plan with their own key converge on one proposal), the
keys of committee members approve it until the threshold, and one of them executes it. Each
department's own changes are sent by a key of that department's operator. What no key at hand can
do is reported as a to-do naming who can (a committee vote's missing approvers, a department's
operators), with the registry's own refusal for a key that was given but may not act (asked of the
chain by ``eth_call``, nothing sent).

Nothing is sent when the chain is already in the plan's state, nor when the plan conflicts with the
chain (:class:`PlanConflict`, raised before the first transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from web3.exceptions import ContractLogicError, Web3RPCError

from ledger.bootstrap.diff import diff
from ledger.bootstrap.plan import Plan
from ledger.bootstrap.state import (
    AdmitDepartment,
    BindAccount,
    ChainState,
    OperatorChange,
    SetOracleUrl,
    UnbindAccount,
    Vote,
    read_state,
)
from ledger.contracts.registry import ConsortiumRegistryClient, Role
from ledger.deployment import Consortium
from ledger.errors import LedgerError
from ledger.keys import Signer
from ledger.revert import revert_data_from

__all__ = ["ApplyReport", "Done", "PlanConflict", "Todo", "apply_plan"]


class PlanConflict(LedgerError):
    """The plan asks for what the chain cannot become; ``conflicts`` says each, naming the plan's key."""

    def __init__(self, conflicts: Sequence[str]) -> None:
        self.conflicts = list(conflicts)
        super().__init__("the plan conflicts with the chain: " + "; ".join(self.conflicts))


@dataclass(frozen=True)
class Done:
    """A change made by this run, and the transactions it took."""

    what: str
    detail: str
    transactions: int

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "detail": self.detail, "transactions": self.transactions}


@dataclass(frozen=True)
class Todo:
    """A change this run could not make, who can make it, and how."""

    what: str
    who: str
    how: str

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "who": self.who, "how": self.how}


@dataclass
class ApplyReport:
    """What :func:`apply_plan` found and did. ``converged``: the chain is in the plan's state."""

    chain_id: int
    registry: str
    keys: dict[str, str]  # address -> what it may do here
    done: list[Done] = field(default_factory=list)
    todo: list[Todo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # dry run: the changes the plan needs
    dry_run: bool = False

    @property
    def sent(self) -> int:
        return sum(d.transactions for d in self.done)

    @property
    def converged(self) -> bool:
        return not self.todo and not self.planned

    def to_dict(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "registry": self.registry, "keys": self.keys, "dry_run": self.dry_run,
                "converged": self.converged, "transactions_sent": self.sent, "done": [d.to_dict() for d in self.done],
                "todo": [t.to_dict() for t in self.todo], "planned": self.planned, "notes": self.notes}


def apply_plan(
    consortium: Consortium,
    plan: Plan,
    signers: Sequence[Signer],
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ApplyReport:
    """Make the changes that bring the registry to ``plan`` that ``signers`` may make (none with
    ``dry_run``: then ``planned`` lists what the plan needs). ``progress`` is told what each key
    may do, then each change as it is made (one line each). Raises :class:`PlanConflict` before
    sending anything if the plan conflicts with the chain, and a contract's refusal
    (:class:`ledger.errors.ContractRevert`, by name) should the chain change under the run."""
    registry = consortium.registry
    state = read_state(registry, plan)
    changes = diff(plan, state)
    if changes.conflicts:
        raise PlanConflict(changes.conflicts)
    signers = list({s.address: s for s in signers}.values())
    report = ApplyReport(consortium.chain.chain_id, registry.address, _capacities(registry, state, plan, signers),
                         notes=list(changes.notes), dry_run=dry_run)
    progress = progress or (lambda _: None)
    for address, capacity in report.keys.items():
        progress(f"key {address}: {capacity}")
    if dry_run:
        report.planned = changes.describe()
        return report
    if changes.empty:
        return report
    run = _Run(registry, signers, state, report, progress)
    for vote in changes.votes:
        run.vote(vote)
    run.operator_changes(changes.changes)
    if report.done:
        left = diff(plan, read_state(registry, plan))
        if not left.empty and not report.todo:  # the chain moved under the run: say what still differs
            report.todo += [Todo(what, "anyone allowed to", "re-run this plan") for what in left.describe()]
        if left.empty:
            report.todo.clear()
    return report


def _capacities(registry: ConsortiumRegistryClient, state: ChainState, plan: Plan, signers: Sequence[Signer]) -> dict[str, str]:
    by_id = {d.id: d.code for d in state.departments.values()}
    planned = {d.code for d in plan.departments}
    out = {}
    for signer in signers:
        roles = []
        if signer.address in state.committee:
            roles.append("committee member")
        dept_id = registry.department_with_role(Role.OPERATOR, signer.address)
        if dept_id:
            roles.append(f"operator of {by_id.get(dept_id, dept_id)}")
        if not roles:
            # A plan's operator whose department is admitted by this run acts once it is admitted.
            future = [d.code for d in plan.departments if signer.address in d.operators and d.code not in state.departments]
            roles += [f"operator of {code} once admitted" for code in future if code in planned]
        out[signer.address] = ", ".join(roles) or "neither a committee member nor a department operator"
    return out


class _Run:
    def __init__(self, registry: ConsortiumRegistryClient, signers: list[Signer], state: ChainState,
                 report: ApplyReport, progress: Callable[[str], None]) -> None:
        self.registry = registry
        self.signers = signers
        # the open proposals by effect; of two with the same effect, the older (newest come first)
        self.open = {p.vote: p.id for p in state.open_proposals if p.vote is not None}
        self.report = report
        self.progress = progress
        self.pending: dict[str, int] = {}  # department code -> the open proposal admitting it
        self.refusals_told: set[str] = set()

    def done(self, what: str, detail: str, transactions: int) -> None:
        self.report.done.append(Done(what, detail, transactions))
        self.progress(f"done: {what}: {detail}")

    def todo(self, what: str, who: str, how: str) -> None:
        self.report.todo.append(Todo(what, who, how))

    # ------------------------------------------------------------------ committee votes

    def vote(self, vote: Vote) -> None:
        registry = self.registry
        what = vote.describe()
        if isinstance(vote, AdmitDepartment):
            busy = [a for a, _ in vote.order if registry.department_of(a)]
            if busy:
                self.todo(what, "the committee", f"once {', '.join(busy)} no longer belong to another department "
                          "(its removal is still to be voted): re-run this plan")
                return
        members = [s for s in self.signers if registry.has_role(Role.COMMITTEE, s.address)]
        threshold = registry.threshold()
        proposal_id = self.open.get(vote)
        sent = 0
        if proposal_id is None:
            if not members:
                self.todo(what, f"a committee member (of {', '.join(registry.committee())})",
                          "re-run this plan with committee members' keys" + self.refusal(vote))
                return
            description = f"admit {vote.code}: {vote.name}" if isinstance(vote, AdmitDepartment) else what
            proposal_id = registry.propose(members[0], vote.call_data(registry), description)
            self.open[vote] = proposal_id
            sent += 1
        approvals = registry.approvals(proposal_id)
        executor = members[0] if members else None
        for member in members:
            if approvals >= threshold:
                break
            if registry.has_approved(proposal_id, member.address):
                continue
            registry.approve(member, proposal_id)
            sent += 1
            approvals = registry.approvals(proposal_id)
        if approvals >= threshold and executor is not None:
            result = registry.execute(executor, proposal_id)
            sent += 1
            self.done(what, f"proposal {proposal_id} executed in block {result.block_number}", sent)
            return
        if sent:
            self.done(what, f"proposal {proposal_id}: {approvals} of {threshold} approvals so far", sent)
        if isinstance(vote, AdmitDepartment):
            self.pending[vote.code] = proposal_id
        if approvals >= threshold:
            self.todo(f"proposal {proposal_id}: {what}", f"a committee member (of {', '.join(registry.committee())})",
                      f"it has the approvals it needs: govshare dept execute {proposal_id}")
            return
        missing = [m for m in registry.committee() if not registry.has_approved(proposal_id, m)]
        self.todo(f"proposal {proposal_id}: {what}",
                  f"{threshold - approvals} more of the committee members {', '.join(missing)}",
                  f"govshare dept approve {proposal_id} (or re-run this plan with their keys)"
                  + ("" if members else self.refusal(vote)))

    def refusal(self, vote: Vote) -> str:
        """The registry's answer to each given key that is not on the committee, were it to propose
        ``vote`` (an ``eth_call``: nothing is sent); told once per key."""
        told = []
        for signer in self.signers:
            if signer.address in self.refusals_told:
                continue
            self.refusals_told.add(signer.address)
            function = self.registry.contract.functions.propose(vote.call_data(self.registry), vote.describe())
            try:
                function.call({"from": signer.address})
            except (ContractLogicError, Web3RPCError) as exc:
                data = revert_data_from(exc)
                reason = str(self.registry.chain.decoder.decode(data)) if data is not None else str(exc)
                told.append(f"the registry refuses a proposal from {signer.address}: {reason}")
        return "".join(f"; {t}" for t in told)

    # ------------------------------------------------------------------ department operators

    def operator_changes(self, changes: Sequence[OperatorChange]) -> None:
        by_code: dict[str, list[OperatorChange]] = {}
        for change in changes:
            by_code.setdefault(change.code, []).append(change)
        for code, todo in by_code.items():
            self.department_changes(code, todo)

    def department_changes(self, code: str, changes: list[OperatorChange]) -> None:
        registry = self.registry
        dept = registry.department_by_code(code)
        if dept is None or not dept.active:
            proposal = self.pending.get(code)
            after = f"once {code} is admitted (proposal {proposal})" if proposal else f"once {code} is admitted"
            for change in changes:
                self.todo(change.describe(), f"{code}'s operator", f"{after}: re-run this plan with its key")
            return
        actor = next((s for s in self.signers if registry.department_with_role(Role.OPERATOR, s.address) == dept.id), None)
        if actor is None:
            operators = [a for a in registry.department_accounts(dept.id) if registry.has_role(Role.OPERATOR, a)]
            for change in changes:
                self.todo(change.describe(), f"{code}'s operator ({', '.join(operators)})",
                          "re-run this plan with one of their keys")
            return
        # the acting operator's own operator role goes last, once its successors are bound
        ordered = sorted(changes, key=lambda c: (isinstance(c, UnbindAccount),
                                                 isinstance(c, UnbindAccount) and c.account == actor.address and c.role == "operator"))
        for change in ordered:
            self.operator_change(dept.id, actor, change)

    def operator_change(self, dept_id: int, actor: Signer, change: OperatorChange) -> None:
        registry = self.registry
        if isinstance(change, BindAccount):
            if not self.bindable(change, dept_id):
                return
            result = registry.add_account(actor, change.account, Role.by_name(change.role))
        elif isinstance(change, SetOracleUrl):
            result = registry.set_oracle_url(actor, change.url)
        else:
            result = registry.remove_account(actor, change.account, Role.by_name(change.role))
        self.done(change.describe(), f"sent by {actor.address} in block {result.block_number}", 1)

    def bindable(self, change: BindAccount, dept_id: int) -> bool:
        """Whether an operator may bind the account now; a to-do if it must wait for a vote first."""
        registry = self.registry
        other = registry.department_of(change.account)
        if other and other != dept_id:
            self.todo(change.describe(), f"{change.code}'s operator",
                      f"once the removal of department {other} (which {change.account} belongs to) is executed: "
                      "re-run this plan")
            return False
        if not other and registry.has_role(Role.COMMITTEE, change.account):
            self.todo(change.describe(), f"{change.code}'s operator",
                      f"once {change.account} has left the committee (its removal is still to be voted): re-run this plan")
            return False
        return True
