"""``govshare grant ...``: the life of an access grant from the command line.

The requesting department's operator ``request``s fields of a dataset (and may ``cancel``); the
owner's operator ``approve``s (possibly narrowing fields, duration, quota), ``reject``s or
``revoke``s; for a secret dataset an auditor of an independent audit office ``co-approve``s.
``list`` shows the acting department's incoming and outgoing grants with state, expiry and quota used.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.args import (
    duration,
    field_list,
    format_duration,
    identifier,
    positive_int,
)
from cli.context import (
    EXIT_OK,
    add_connection_options,
    add_output_options,
    add_signer_options,
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``grant ...`` to the ``govshare`` parser."""
    group = commands.add_parser(
        "grant", help="access grants: request, approve, reject, revoke, co-approve, cancel, list, show",
        description="Grants of access to fields of a dataset, between departments. States: requested -> active "
                    "(or awaiting-co-approval for secret datasets) -> revoked / expired; or rejected, cancelled.",
    ).add_subparsers(dest="grant_command", required=True, metavar="ACTION")

    def command(name: str, help_text: str, description: str, *, signs: bool = True) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help_text, description=description)
        add_connection_options(p)
        if signs:
            add_signer_options(p)
        add_output_options(p)
        return p

    p = command("request", "ask a dataset's owner for fields of it (requester's operator)",
                "Request access to fields of another department's dataset, for a purpose, a duration and a quota of queries.")
    p.add_argument("dataset", type=identifier, metavar="DATASET", help="dataset id")
    p.add_argument("--fields", required=True, type=field_list, metavar="A,B,...", help="the fields wanted")
    p.add_argument("--purpose", required=True, help="why (recorded on chain in the request event)")
    p.add_argument("--duration", required=True, type=duration, metavar="DURATION", help="how long once approved: 30d, 12h, 3600s")
    p.add_argument("--quota", required=True, type=positive_int, metavar="N", help="how many served queries at most")
    p.add_argument("--version", type=identifier, metavar="V", help="pin one published version (default: follow the latest)")
    p.add_argument("--unmasked", type=field_list, metavar="A,...", help="fields (of --fields) asked to be shown unmasked")
    p.set_defaults(handler=_cmd_request)

    p = command("approve", "approve a requested grant, possibly narrower (owner's operator)",
                "Approve a requested grant. Without options it is approved as requested; --fields/--duration/--quota/"
                "--unmasked may only narrow it.")
    p.add_argument("grant", type=identifier, metavar="GRANT", help="grant id")
    p.add_argument("--fields", type=field_list, metavar="A,B,...", help="grant only these of the requested fields")
    p.add_argument("--duration", type=duration, metavar="DURATION", help="a shorter duration")
    p.add_argument("--quota", type=positive_int, metavar="N", help="a smaller quota")
    p.add_argument("--unmasked", type=field_list, metavar="A,...", help="unmask only these of the requested unmasked fields")
    p.set_defaults(handler=_cmd_approve)

    for name, help_text, description in (
        ("reject", "reject a grant before it is active (owner's operator, or an independent auditor)",
         "Reject a requested grant (the owner's operator) or one awaiting co-approval (also an independent auditor)."),
        ("revoke", "revoke an approved grant (owner's operator)",
         "Revoke an active (or awaiting co-approval) grant; oracles refuse it from the next block on."),
    ):
        p = command(name, help_text, description)
        p.add_argument("grant", type=identifier, metavar="GRANT", help="grant id")
        p.add_argument("--reason", required=True, help="why (recorded on chain in the event)")
        p.set_defaults(handler=_cmd_reject if name == "reject" else _cmd_revoke)

    p = command("co-approve", "co-approve a grant on a secret dataset (auditor of an independent audit office)",
                "The second approval a grant on a secret dataset needs, from an auditor of an audit office that is "
                "neither its owner nor its requester.")
    p.add_argument("grant", type=identifier, metavar="GRANT", help="grant id")
    p.set_defaults(handler=_cmd_co_approve)

    p = command("cancel", "withdraw your request before it is decided (requester's operator)", "Cancel a requested grant.")
    p.add_argument("grant", type=identifier, metavar="GRANT", help="grant id")
    p.set_defaults(handler=_cmd_cancel)

    p = command("list", "grants of a department: incoming and outgoing, state, expiry, quota used",
                "List the grants of a department (--dept, else the acting account's; all grants if neither is given).")
    p.add_argument("--dept", metavar="DEPT", help="department code or id (default: the acting account's)")
    direction = p.add_mutually_exclusive_group()
    direction.add_argument("--incoming", action="store_true", help="only grants on the department's datasets")
    direction.add_argument("--outgoing", action="store_true", help="only grants the department requested")
    p.set_defaults(handler=_cmd_list)

    p = command("show", "one grant in full", "Show a grant.", signs=False)
    p.add_argument("grant", type=identifier, metavar="GRANT", help="grant id")
    p.set_defaults(handler=_cmd_show)


# ---------------------------------------------------------------------------- shared


class _Describer:
    """Renders grants with department codes and field names, reading each dataset and department once."""

    def __init__(self, consortium: Any) -> None:
        self.consortium = consortium
        self.now = consortium.chain.block_timestamp()
        self._datasets: dict[int, Any] = {}
        self._codes: dict[int, str] = {}

    def dataset(self, dataset_id: int) -> Any:
        if dataset_id not in self._datasets:
            self._datasets[dataset_id] = self.consortium.catalog.dataset(dataset_id)
        return self._datasets[dataset_id]

    def code(self, dept_id: int) -> str:
        if dept_id not in self._codes:
            self._codes[dept_id] = self.consortium.registry.department(dept_id).code
        return self._codes[dept_id]

    def json(self, grant: Any) -> dict[str, Any]:
        from cli.output import utc
        from cli.preflight import grant_state

        dataset = self.dataset(grant.dataset_id)
        return {
            "id": grant.id, "dataset_id": grant.dataset_id, "dataset": dataset.name,
            "requester_dept": grant.requester_dept, "requester": self.code(grant.requester_dept),
            "owner_dept": grant.owner_dept, "owner": self.code(grant.owner_dept),
            "status": grant.status.name.lower().replace("_", "-"), "state": grant_state(grant, self.now),
            "fields": dataset.field_names(grant.fields), "unmasked_fields": dataset.field_names(grant.unmasked_fields),
            "pinned_version": grant.pinned_version or None, "duration_seconds": grant.duration,
            "requested_at": utc(grant.requested_at), "activated_at": utc(grant.activated_at), "expires_at": utc(grant.expires_at),
            "quota": grant.quota, "used": grant.used, "purpose_hash": "0x" + grant.purpose_hash.hex(),
        }


def _acting(args: argparse.Namespace) -> tuple[Any, Any]:
    from cli.context import connect, resolve_signer

    signer = resolve_signer(args)
    return connect(args), signer


def _mask(dataset: Any, names: list[str] | None, what: str) -> int | None:
    from cli.preflight import NotPermitted
    from ledger.contracts.catalog import UnknownField

    if names is None:
        return None
    try:
        return dataset.field_mask(names)
    except UnknownField as exc:
        raise NotPermitted(f"{what}: {exc.args[0]}; its fields are {', '.join(dataset.fields)}") from None


def _report(args: argparse.Namespace, consortium: Any, grant_id: int, verb: str, block: int) -> int:
    from cli.output import emit

    data = {**_Describer(consortium).json(consortium.grants.grant(grant_id)), "block": block}
    expiry = f", expires {data['expires_at']}" if data["state"] == "active" else ""
    emit(args, data, lambda out: out.print(f"grant {grant_id} {verb}: {data['state']}{expiry} (block {block})"))
    return EXIT_OK


# ---------------------------------------------------------------------------- writes


def _cmd_request(args: argparse.Namespace) -> int:
    from cli.preflight import NotPermitted, find_dataset, operator_department
    from ledger.contracts.grants import AccessGrantsClient

    consortium, signer = _acting(args)
    dept = operator_department(consortium, signer.address)
    dataset = find_dataset(consortium, args.dataset)
    owner = consortium.registry.department(dataset.owner_dept)
    if dataset.retired:
        raise NotPermitted(f"dataset {dataset.id} is retired")
    if not owner.active:
        raise NotPermitted(f"{owner.code}, the owner of dataset {dataset.id}, is no longer a member")
    if owner.id == dept.id:
        raise NotPermitted(f"{dept.code} owns dataset {dataset.id}; a department does not request its own data")
    if args.version is not None and args.version > dataset.version_count:
        raise NotPermitted(f"dataset {dataset.id} has {dataset.version_count} version(s); cannot pin version {args.version}")
    fields = _mask(dataset, args.fields, "--fields")
    unmasked = _mask(dataset, args.unmasked, "--unmasked") or 0
    if unmasked & ~fields:
        raise NotPermitted("--unmasked names fields that --fields does not ask for")
    grants: AccessGrantsClient = consortium.grants
    grant_id = grants.request(signer, dataset.id, fields, args.purpose, args.duration, args.quota, args.version or 0,
                              unmasked_fields=unmasked)
    return _report(args, consortium, grant_id, f"requested by {dept.code} from {owner.code}", consortium.chain.block_number())


def _cmd_approve(args: argparse.Namespace) -> int:
    from cli.preflight import (
        NotPermitted,
        find_grant,
        require_grant_status,
        require_operator_of,
    )
    from ledger.contracts.grants import GrantStatus

    consortium, signer = _acting(args)
    grant = find_grant(consortium, args.grant)
    require_operator_of(consortium, signer.address, grant.owner_dept, f"the owner of dataset {grant.dataset_id} (grant {grant.id})")
    require_grant_status(grant, [GrantStatus.REQUESTED], "approve")
    dataset = consortium.catalog.dataset(grant.dataset_id)
    fields = _mask(dataset, args.fields, "--fields")
    fields = grant.fields if fields is None else fields
    if fields & ~grant.fields:
        raise NotPermitted(f"grant {grant.id} did not request {', '.join(dataset.field_names(fields & ~grant.fields))}: "
                           "an approval can only narrow")
    unmasked = _mask(dataset, args.unmasked, "--unmasked")
    if unmasked is not None and unmasked & ~(grant.unmasked_fields & fields):
        raise NotPermitted("--unmasked may only keep fields that were requested unmasked and are granted")
    period = args.duration or grant.duration
    quota = args.quota or grant.quota
    if period > grant.duration:
        raise NotPermitted(f"grant {grant.id} asked for {format_duration(grant.duration)}: an approval can only shorten it")
    if quota > grant.quota:
        raise NotPermitted(f"grant {grant.id} asked for a quota of {grant.quota}: an approval can only lower it")
    result = consortium.grants.approve(signer, grant.id, fields, period, quota, unmasked_fields=unmasked)
    return _report(args, consortium, grant.id, "approved", result.block_number)


def _cmd_reject(args: argparse.Namespace) -> int:
    from cli.preflight import (
        NotPermitted,
        find_grant,
        require_grant_status,
        require_independent_auditor,
        require_operator_of,
    )
    from ledger.contracts.grants import GrantStatus

    consortium, signer = _acting(args)
    grant = find_grant(consortium, args.grant)
    require_grant_status(grant, [GrantStatus.REQUESTED, GrantStatus.AWAITING_CO_APPROVAL], "reject")
    context = f"the owner of dataset {grant.dataset_id} (grant {grant.id})"
    if grant.status is GrantStatus.AWAITING_CO_APPROVAL:
        try:
            require_operator_of(consortium, signer.address, grant.owner_dept, context)
        except NotPermitted:
            require_independent_auditor(consortium, signer.address, grant)
    else:
        require_operator_of(consortium, signer.address, grant.owner_dept, context)
    result = consortium.grants.reject(signer, grant.id, args.reason)
    return _report(args, consortium, grant.id, "rejected", result.block_number)


def _cmd_revoke(args: argparse.Namespace) -> int:
    from cli.preflight import find_grant, require_grant_status, require_operator_of
    from ledger.contracts.grants import GrantStatus

    consortium, signer = _acting(args)
    grant = find_grant(consortium, args.grant)
    require_operator_of(consortium, signer.address, grant.owner_dept, f"the owner of dataset {grant.dataset_id} (grant {grant.id})")
    require_grant_status(grant, [GrantStatus.ACTIVE, GrantStatus.AWAITING_CO_APPROVAL], "revoke")
    result = consortium.grants.revoke(signer, grant.id, args.reason)
    return _report(args, consortium, grant.id, "revoked", result.block_number)


def _cmd_co_approve(args: argparse.Namespace) -> int:
    from cli.preflight import (
        find_grant,
        require_grant_status,
        require_independent_auditor,
    )
    from ledger.contracts.grants import GrantStatus

    consortium, signer = _acting(args)
    grant = find_grant(consortium, args.grant)
    require_independent_auditor(consortium, signer.address, grant)
    require_grant_status(grant, [GrantStatus.AWAITING_CO_APPROVAL], "co-approve")
    result = consortium.grants.co_approve(signer, grant.id)
    return _report(args, consortium, grant.id, "co-approved", result.block_number)


def _cmd_cancel(args: argparse.Namespace) -> int:
    from cli.preflight import find_grant, require_grant_status, require_operator_of
    from ledger.contracts.grants import GrantStatus

    consortium, signer = _acting(args)
    grant = find_grant(consortium, args.grant)
    require_operator_of(consortium, signer.address, grant.requester_dept, f"the requester of grant {grant.id}")
    require_grant_status(grant, [GrantStatus.REQUESTED], "cancel")
    result = consortium.grants.cancel(signer, grant.id)
    return _report(args, consortium, grant.id, "cancelled", result.block_number)


# ---------------------------------------------------------------------------- reads


def _cmd_list(args: argparse.Namespace) -> int:
    from cli.context import connect, has_signer, resolve_signer
    from cli.output import emit, table
    from cli.preflight import find_department, operator_department

    signer = resolve_signer(args) if not args.dept and has_signer(args) else None
    consortium = connect(args)
    if args.dept:
        dept = find_department(consortium, args.dept)
    elif signer is not None:
        dept = operator_department(consortium, signer.address)
    else:
        dept = None
    describe = _Describer(consortium)
    rows = []
    for grant_id in range(1, consortium.grants.grant_count() + 1):
        grant = consortium.grants.grant(grant_id)
        if dept is not None:
            incoming, outgoing = grant.owner_dept == dept.id, grant.requester_dept == dept.id
            if not (incoming and not args.outgoing or outgoing and not args.incoming):
                continue
            direction = "incoming" if incoming else "outgoing"
        else:
            direction = None
        rows.append({**describe.json(grant), "direction": direction})
    data = {"dept": dept.code if dept else None, "grants": rows}

    def human(out) -> None:
        title = f"grants of {dept.code}" if dept else "all grants"
        out.print(table(title, ["id", "direction", "dataset", "from", "to", "state", "fields", "expires", "used/quota"],
                        [[g["id"], g["direction"], f"{g['dataset_id']} {g['dataset']}", g["owner"], g["requester"], g["state"],
                          ", ".join(g["fields"]), g["expires_at"], f"{g['used']}/{g['quota']}"] for g in rows]))

    emit(args, data, human)
    return EXIT_OK


def _history(consortium: Any, grant_id: int) -> list[dict[str, Any]]:
    """The grant's events (requested with its purpose, approved, rejected or revoked with a reason, ...)."""
    from cli.output import utc
    from ledger.events import read_events

    grants = consortium.grants
    topics = [None, "0x" + grant_id.to_bytes(32, "big").hex()]
    history = []
    for event in read_events(consortium.chain, grants.events, [grants.address], grants.from_block, topics=topics):
        if not event.name.startswith("Grant"):
            continue
        detail = event.args.get("purpose") or event.args.get("reason") or ""
        who = event.args.get("approver") or event.args.get("auditor") or event.args.get("by") or ""
        history.append({"event": event.name, "block": event.block_number, "by": who or None, "detail": detail or None,
                        "at": utc(consortium.chain.block_timestamp(event.block_number))})
    return history


def _cmd_show(args: argparse.Namespace) -> int:
    from cli.context import connect
    from cli.output import emit, key_values, table
    from cli.preflight import find_grant

    consortium = connect(args)
    data = _Describer(consortium).json(find_grant(consortium, args.grant))
    data["history"] = _history(consortium, args.grant)
    purposes = [h["detail"] for h in data["history"] if h["event"] == "GrantRequested"]
    data["purpose"] = purposes[0] if purposes else None

    def human(out) -> None:
        out.print(key_values(f"grant {data['id']}", {k: v for k, v in data.items() if k != "history"}))
        out.print(table("history", ["event", "block", "at", "by", "purpose / reason"],
                        [[h["event"], h["block"], h["at"], h["by"], h["detail"]] for h in data["history"]]))

    emit(args, data, human)
    return EXIT_OK
