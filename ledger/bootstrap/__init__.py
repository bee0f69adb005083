"""Bootstrap a deployed consortium from a declarative plan: the committee (members, threshold) and
the departments (name, code, audit office or not, their accounts and roles, the oracle URL).

* :mod:`ledger.bootstrap.plan`: the TOML plan and its strict validation (:func:`load_plan`);
* :mod:`ledger.bootstrap.state`: what the chain holds that a plan speaks of (:func:`read_state`),
  and the changes a plan can ask for (committee votes, a department operator's own changes);
* :mod:`ledger.bootstrap.diff`: what separates the chain from the plan, and what conflicts (pure);
* :mod:`ledger.bootstrap.apply`: making those changes with the keys at hand (:func:`apply_plan`).

Used by ``scripts/bootstrap.py``, ``govshare consortium apply`` and the sample consortium of the
devnet and the tests (:mod:`devtools.sample_consortium`).
"""

from ledger.bootstrap.apply import ApplyReport, Done, PlanConflict, Todo, apply_plan
from ledger.bootstrap.diff import Diff, diff
from ledger.bootstrap.plan import CommitteePlan, DepartmentPlan, Plan, PlanError, load_plan, parse_plan
from ledger.bootstrap.state import ChainState, DepartmentState, OpenProposal, read_state

__all__ = [
    "ApplyReport",
    "ChainState",
    "CommitteePlan",
    "DepartmentPlan",
    "DepartmentState",
    "Diff",
    "Done",
    "OpenProposal",
    "Plan",
    "PlanConflict",
    "PlanError",
    "Todo",
    "apply_plan",
    "diff",
    "load_plan",
    "parse_plan",
    "read_state",
]
