"""``govshare query GRANT --param name=value ...``: ask the provider's oracle under a grant.

The acting account (an operator of the grant's requesting department) signs an EIP-712 query; it
goes to the owner department's oracle (its URL from the registry, or ``--oracle-url``), and the
answer's receipt must be signed by one of that department's registered oracle accounts. Prints the
records and the receipt, whose record the oracle anchors in the audit log.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.args import field_list, http_url, identifier, param
from cli.context import (
    EXIT_OK,
    add_connection_options,
    add_oracle_tls_options,
    add_output_options,
    add_signer_options,
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``query`` to the ``govshare`` parser."""
    p = commands.add_parser(
        "query", help="query a dataset through its owner's oracle under a grant (requester's operator)",
        description="Sign a query under a grant and send it to the dataset owner's oracle; print the records and the "
                    "oracle's signed receipt. Exit 1 if the oracle refuses (the reason is printed), 3 if it is unreachable.",
    )
    p.add_argument("grant", type=identifier, metavar="GRANT", help="grant id")
    p.add_argument("--param", action="append", type=param, default=[], metavar="NAME=VALUE",
                   help="a lookup parameter the dataset's oracle accepts (repeatable), e.g. company_id=91310000...")
    p.add_argument("--fields", type=field_list, metavar="A,B,...", help="ask for these fields only (default: all granted)")
    p.add_argument("--oracle-url", type=http_url, metavar="URL", help="the oracle's URL (default: the owner's, from the registry)")
    p.add_argument("--save-receipt", metavar="DIR",
                   help="also keep the oracle's signed receipt (served or refused) in DIR as receipt-<oracle>-<sequence>.json, "
                        "for an auditor's `govshare audit verify --receipts DIR`")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="how long to wait for the oracle (default 30)")
    add_oracle_tls_options(p)
    add_connection_options(p)
    add_signer_options(p)
    add_output_options(p)
    p.set_defaults(handler=_cmd_query)


def _oracle_accounts(consortium: Any, dept_id: int) -> set[str]:
    from ledger.contracts.registry import Role

    registry = consortium.registry
    return {a for a in registry.department_accounts(dept_id) if registry.has_role(Role.ORACLE, a)}


def _check_receipt(receipt: dict[str, Any] | None, oracles: set[str], owner: str) -> str | None:
    """The receipt's signer, which must be one of the owner's registered oracles."""
    from cli.preflight import NotPermitted
    from protocol.receipt import InvalidReceipt, receipt_signer

    if receipt is None:
        return None
    try:
        signer = receipt_signer(receipt)
    except InvalidReceipt as exc:
        raise NotPermitted(f"the oracle's receipt cannot be verified: {exc}") from None
    if signer not in oracles:
        raise NotPermitted(f"the receipt is signed by {signer}, not by an oracle account of {owner}")
    return signer


def _cmd_query(args: argparse.Namespace) -> int:
    from cli.context import (
        CliUsageError,
        ServiceUnreachable,
        connect,
        oracle_ssl_context,
        resolve_signer,
    )
    from cli.output import emit, key_values, table
    from cli.preflight import NotPermitted, find_grant, require_operator_of
    from requester.client import (
        InconsistentReceipt,
        OracleBadAnswer,
        OracleClient,
        OracleUnreachable,
        QueryRefused,
        save_receipt,
    )

    params = dict(args.param)
    if len(params) != len(args.param):
        raise CliUsageError("a --param name is given twice")
    ssl_context = oracle_ssl_context(args)  # usage errors before the key is decrypted
    signer = resolve_signer(args)
    consortium = connect(args)
    grant = find_grant(consortium, args.grant)
    require_operator_of(consortium, signer.address, grant.requester_dept, f"the requester of grant {grant.id}")
    dataset = consortium.catalog.dataset(grant.dataset_id)
    owner = consortium.registry.department(grant.owner_dept)
    if args.fields:
        unknown = [name for name in args.fields if name not in dataset.fields]
        if unknown:
            raise NotPermitted(f"dataset {dataset.id} has no field {', '.join(unknown)}; its fields are {', '.join(dataset.fields)}")
        fields = dataset.field_mask(args.fields)
    else:
        fields = grant.fields
    url = args.oracle_url or owner.oracle_url
    if not url:
        raise CliUsageError(f"{owner.code} has published no oracle URL: pass --oracle-url")
    oracles = _oracle_accounts(consortium, owner.id)
    client = OracleClient(url, consortium.chain.chain_id, consortium.deployment.addresses["QueryRequests"], timeout=args.timeout,
                          ssl_context=ssl_context)
    try:
        result = client.query(signer, grant.requester_dept, dataset.id, grant.id, fields, params)
    except QueryRefused as refused:
        _check_receipt(refused.receipt, oracles, owner.code)
        if refused.receipt is not None and args.save_receipt:
            save_receipt(refused.receipt, args.save_receipt)
        record = f" (record {refused.receipt['record_id']}, on chain once anchored)" if refused.receipt else ""
        raise NotPermitted(f"{owner.code}'s oracle refused the query: {refused.reason or refused.status}: "
                           f"{refused.problem.get('detail') or refused.problem.get('title')}{record}") from None
    except OracleUnreachable as exc:
        raise ServiceUnreachable(f"cannot reach {owner.code}'s oracle at {url}: {exc}") from None
    except OracleBadAnswer as exc:  # a reply that is not the protocol's JSON
        raise NotPermitted(f"{owner.code}'s oracle at {url} did not answer with JSON: {exc}") from None
    except InconsistentReceipt as exc:
        raise NotPermitted(f"{owner.code}'s oracle at {url}: {exc}") from None
    finally:
        client.close()
    oracle = _check_receipt(result.receipt, oracles, owner.code)
    receipt = result.receipt
    saved = str(save_receipt(receipt, args.save_receipt)) if args.save_receipt else None
    data = {"grant_id": grant.id, "dataset_id": dataset.id, "oracle_url": url, "oracle": oracle,
            "records": result.records, "receipt": receipt,
            **({"receipt_file": saved} if saved else {})}

    def human(out) -> None:
        columns = list(result.records[0]) if result.records else dataset.field_names(fields)
        out.print(table(f"{len(result.records)} record(s) of dataset {dataset.id} \"{dataset.name}\" from {owner.code} under grant {grant.id}",
                        columns, [[r.get(c) for c in columns] for r in result.records]))
        out.print(key_values(f"receipt, signed by {owner.code}'s oracle {oracle}; its record goes on chain", {
            "record": receipt.get("record_id"), "sequence": receipt.get("sequence"),
            "checked at block": receipt.get("checked_at_block"), "dataset version": receipt.get("dataset_version"),
            "request hash": receipt.get("request_hash"), "response hash": receipt.get("response_hash"),
            "chain head after it": receipt.get("chain_head"), **({"saved to": saved} if saved else {}),
        }))

    emit(args, data, human)
    return EXIT_OK
