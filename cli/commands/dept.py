"""``govshare dept ...``: the consortium's departments, and the committee votes that change them.

Read: ``list``, ``show DEPT``, ``proposal ID``. The committee (a vote of ``threshold`` members):
``admit`` and ``remove`` propose, ``approve`` approves (and executes once the threshold is reached),
``execute`` executes. A department's operator: ``set-oracle-url``.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.args import address, http_url, identifier
from cli.context import (
    EXIT_OK,
    CliUsageError,
    add_connection_options,
    add_output_options,
    add_signer_options,
)

_ROLE_NAMES = ("committee", "operator", "oracle", "auditor")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``dept ...`` to the ``govshare`` parser."""
    group = commands.add_parser(
        "dept", help="departments: list, show; committee votes to admit or remove; oracle URL",
        description="The consortium's departments. Admitting or removing one is a committee vote: a member proposes "
                    "(`admit`, `remove`), others `approve`; the proposal executes once `threshold` members approved.",
    ).add_subparsers(dest="dept_command", required=True, metavar="ACTION")

    def reader(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help_text, description=description)
        add_connection_options(p)
        add_output_options(p)
        return p

    def writer(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = reader(name, help_text, description)
        add_signer_options(p)
        return p

    p = reader("list", "every department: id, code, state, oracle URL", "List the departments of the registry.")
    p.set_defaults(handler=_cmd_list)

    p = reader("show", "one department and its accounts with their roles", "Show a department and its accounts.")
    p.add_argument("dept", metavar="DEPT", help="department code (SAMR) or id")
    p.set_defaults(handler=_cmd_show)

    p = reader("proposal", "a committee proposal: what, state, approvals", "Show a committee proposal.")
    p.add_argument("proposal", type=identifier, metavar="ID", help="proposal id")
    p.set_defaults(handler=_cmd_proposal)

    p = writer("admit", "propose admitting a department (committee member)",
               "Propose that the committee admit a department with its operator (and oracle, auditor) accounts. The "
               "proposer's approval counts; the proposal executes at once if that reaches the threshold.")
    p.add_argument("--name", required=True, help="the department's full name")
    p.add_argument("--code", required=True, help="its short code (1..32 bytes, e.g. STATS); never reused")
    p.add_argument("--operator", required=True, type=address, metavar="ADDRESS", help="its first operator account")
    p.add_argument("--oracle", type=address, metavar="ADDRESS", help="its oracle account")
    p.add_argument("--auditor", type=address, metavar="ADDRESS", help="an auditor account (makes it an audit office)")
    p.add_argument("--audit-office", action="store_true", help="admit it as an audit office")
    p.set_defaults(handler=_cmd_admit)

    p = writer("remove", "propose removing a department (committee member)",
               "Propose that the committee remove a department: all its accounts lose every role at once.")
    p.add_argument("dept", metavar="DEPT", help="department code or id")
    p.set_defaults(handler=_cmd_remove)

    p = writer("approve", "approve a proposal (committee member); executes it at the threshold",
               "Approve an open proposal; if the approvals then reach the threshold, execute it too.")
    p.add_argument("proposal", type=identifier, metavar="ID", help="proposal id")
    p.add_argument("--no-execute", action="store_true", help="only approve, even at the threshold")
    p.set_defaults(handler=_cmd_approve)

    p = writer("execute", "execute a proposal that reached the threshold (committee member)", "Execute an approved proposal.")
    p.add_argument("proposal", type=identifier, metavar="ID", help="proposal id")
    p.set_defaults(handler=_cmd_execute)

    p = writer("set-oracle-url", "publish the URL of your department's oracle (operator)",
               "Publish where the acting operator's department's oracle answers queries; requesters find it here.")
    p.add_argument("url", type=http_url, metavar="URL", help="the oracle's base URL (http:// or https://)")
    p.set_defaults(handler=_cmd_set_oracle_url)


# ---------------------------------------------------------------------------- read


def _roles_of(consortium: Any, account: str) -> list[str]:
    from ledger.contracts.registry import Role

    return [name for name in _ROLE_NAMES if consortium.registry.has_role(Role.by_name(name), account)]


def _dept_json(dept: Any) -> dict[str, Any]:
    return {"id": dept.id, "code": dept.code, "name": dept.name, "active": dept.active,
            "audit_office": dept.audit_office, "oracle_url": dept.oracle_url}


def _cmd_list(args: argparse.Namespace) -> int:
    from cli.context import connect
    from cli.output import emit, table

    consortium = connect(args)
    registry = consortium.registry
    departments = registry.departments()
    data = {
        "threshold": registry.threshold(),
        "committee": registry.committee(),
        "departments": [{**_dept_json(d), "accounts": len(registry.department_accounts(d.id))} for d in departments],
    }

    def human(out) -> None:
        out.print(table(f"departments (committee of {len(data['committee'])}, threshold {data['threshold']})",
                        ["id", "code", "name", "state", "kind", "accounts", "oracle URL"],
                        [[d["id"], d["code"], d["name"], "active" if d["active"] else "removed",
                          "audit office" if d["audit_office"] else "department", d["accounts"], d["oracle_url"] or None]
                         for d in data["departments"]]))

    emit(args, data, human)
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from cli.context import connect
    from cli.output import emit, table
    from cli.preflight import find_department

    consortium = connect(args)
    dept = find_department(consortium, args.dept)
    accounts = [{"address": a, "roles": _roles_of(consortium, a)} for a in consortium.registry.department_accounts(dept.id)]
    data = {**_dept_json(dept), "accounts": accounts}

    def human(out) -> None:
        out.print(f"{dept.code} (id {dept.id}): {dept.name}; {'active' if dept.active else 'removed'}"
                  f"{', audit office' if dept.audit_office else ''}; oracle URL {dept.oracle_url or '-'}")
        out.print(table("accounts", ["address", "roles"], [[a["address"], ", ".join(a["roles"])] for a in accounts]))

    emit(args, data, human)
    return EXIT_OK


def _proposal_json(consortium: Any, proposal_id: int) -> dict[str, Any]:
    from cli.output import utc
    from cli.preflight import UnknownProposal
    from ledger.contracts.registry import ProposalState

    registry = consortium.registry
    state = registry.proposal_state(proposal_id)
    if state is ProposalState.NONE:
        raise UnknownProposal(f"unknown proposal {proposal_id}")
    proposal = registry.proposal(proposal_id)
    return {"id": proposal_id, "state": state.name.lower(), "description": proposal.description, "proposer": proposal.proposer,
            "approvals": registry.approvals(proposal_id), "threshold": registry.threshold(), "deadline": utc(proposal.deadline)}


def _print_proposal(out: Any, data: dict[str, Any]) -> None:
    out.print(f"proposal {data['id']} \"{data['description']}\": {data['state']}, {data['approvals']} of "
              f"{data['threshold']} approvals (proposed by {data['proposer']}, open until {data['deadline']})")


def _cmd_proposal(args: argparse.Namespace) -> int:
    from cli.context import connect
    from cli.output import emit

    data = _proposal_json(connect(args), args.proposal)
    emit(args, data, lambda out: _print_proposal(out, data))
    return EXIT_OK


# ---------------------------------------------------------------------------- committee votes


def _acting_member(args: argparse.Namespace) -> tuple[Any, Any]:
    from cli.context import connect, resolve_signer
    from cli.preflight import require_committee_member

    signer = resolve_signer(args)
    consortium = connect(args)
    require_committee_member(consortium, signer.address)
    return consortium, signer


def _after_vote(args: argparse.Namespace, consortium: Any, signer: Any, proposal_id: int, *, execute: bool) -> int:
    """Execute if ``execute`` and the threshold is reached; print the proposal and what happened."""
    from cli.output import emit

    registry = consortium.registry
    executed = None
    if execute and registry.approvals(proposal_id) >= registry.threshold():
        result = registry.execute(signer, proposal_id)
        executed = {"block": result.block_number, "events": sorted({e.name for e in result.logs})}
        admitted = registry.events_named(result, "DepartmentAdmitted")
        if admitted:
            executed["admitted_dept_id"] = int(admitted[0].args["deptId"])
    data = {**_proposal_json(consortium, proposal_id), "executed_now": executed}

    def human(out) -> None:
        _print_proposal(out, data)
        if executed:
            suffix = f": department {executed['admitted_dept_id']} admitted" if "admitted_dept_id" in executed else ""
            out.print(f"executed in block {executed['block']}{suffix}")
        elif data["state"] == "open":
            missing = data["threshold"] - data["approvals"]
            if missing > 0:
                out.print(f"needs {missing} more approval(s): govshare dept approve {proposal_id}")
            else:
                out.print(f"ready: govshare dept execute {proposal_id}")

    emit(args, data, human)
    return EXIT_OK


def _cmd_admit(args: argparse.Namespace) -> int:
    from ledger.contracts.registry import AccountRole, Role, encode_code

    try:
        encode_code(args.code)
    except ValueError as exc:
        raise CliUsageError(f"--code: {exc}") from None
    consortium, signer = _acting_member(args)
    roles = [AccountRole(args.operator, Role.OPERATOR)]
    if args.oracle:
        roles.append(AccountRole(args.oracle, Role.ORACLE))
    if args.auditor:
        roles.append(AccountRole(args.auditor, Role.AUDITOR))
    registry = consortium.registry
    call = registry.admit_department_call(args.name, args.code, roles, audit_office=args.audit_office or bool(args.auditor))
    proposal_id = registry.propose(signer, call, f"admit {args.code}: {args.name}")
    return _after_vote(args, consortium, signer, proposal_id, execute=True)


def _cmd_remove(args: argparse.Namespace) -> int:
    from cli.preflight import NotPermitted, find_department

    consortium, signer = _acting_member(args)
    dept = find_department(consortium, args.dept)
    if not dept.active:
        raise NotPermitted(f"{dept.code} is already removed")
    proposal_id = consortium.registry.propose(signer, consortium.registry.remove_department_call(dept.id), f"remove {dept.code}")
    return _after_vote(args, consortium, signer, proposal_id, execute=True)


def _cmd_approve(args: argparse.Namespace) -> int:
    from cli.preflight import NotPermitted, find_open_proposal

    consortium, signer = _acting_member(args)
    find_open_proposal(consortium, args.proposal)
    if consortium.registry.has_approved(args.proposal, signer.address):
        raise NotPermitted(f"account {signer.address} has already approved proposal {args.proposal}")
    consortium.registry.approve(signer, args.proposal)
    return _after_vote(args, consortium, signer, args.proposal, execute=not args.no_execute)


def _cmd_execute(args: argparse.Namespace) -> int:
    from cli.preflight import NotPermitted, find_open_proposal

    consortium, signer = _acting_member(args)
    find_open_proposal(consortium, args.proposal)
    approvals, threshold = consortium.registry.approvals(args.proposal), consortium.registry.threshold()
    if approvals < threshold:
        raise NotPermitted(f"proposal {args.proposal} has {approvals} of the {threshold} approvals it needs")
    return _after_vote(args, consortium, signer, args.proposal, execute=True)


# ---------------------------------------------------------------------------- department self-service


def _cmd_set_oracle_url(args: argparse.Namespace) -> int:
    from cli.context import connect, resolve_signer
    from cli.output import emit
    from cli.preflight import operator_department

    signer = resolve_signer(args)
    consortium = connect(args)
    dept = operator_department(consortium, signer.address)
    result = consortium.registry.set_oracle_url(signer, args.url)
    emit(args, {"dept_id": dept.id, "code": dept.code, "oracle_url": args.url, "block": result.block_number},
         lambda out: out.print(f"{dept.code}'s oracle URL is now {args.url} (block {result.block_number})"))
    return EXIT_OK
