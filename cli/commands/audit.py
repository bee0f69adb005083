"""``govshare audit index|list|verify|prove``: the auditor's commands.

* ``index`` syncs the local audit index (``auditing.index``, a SQLite file) from the chain: every
  audit record, grant, catalog and membership event since the deployment block, in bounded block
  ranges, resuming where it stopped.
* ``list`` searches the index (no chain needed): by dataset, requesting or providing department,
  requester, oracle, grant, outcome and time; newest first, a page at a time.
* ``verify`` checks the trail (``auditing.verification``): sequences, hash chains against the
  contract's heads, every served decision replayed at its block, who wrote each record; optionally an
  oracle's exported log, requesters' receipts (``--receipts DIR``), data files and record proofs. Exit
  code 1 on any violation.
* ``prove`` writes the Merkle proof of one record of a data file, for ``verify --record-proof``.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cli.args import address, identifier, positive_int
from cli.context import (
    EXIT_OK,
    EXIT_REFUSED,
    CliUsageError,
    add_connection_options,
    add_output_options,
)

ENV_INDEX = "GOVSHARE_AUDIT_INDEX"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``audit ...`` to the ``govshare`` parser."""
    group = commands.add_parser(
        "audit", help="the audit trail: index it, search it, verify it",
        description="Auditors' tools: a local index of every audit record and grant, searches over it, and the "
                    "verification of the whole trail from the chain alone.",
    ).add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    def index_option(p: argparse.ArgumentParser, *, required: bool) -> None:
        default = os.environ.get(ENV_INDEX)
        p.add_argument("--index", metavar="FILE", default=default, required=required and default is None,
                       help=f"the audit index (SQLite; default ${ENV_INDEX})"
                       + ("" if required else "; without one, the chain is indexed in memory"))

    p = group.add_parser("index", help="sync the local audit index from the chain",
                         description="Read every event of the deployment from where the index stopped, in bounded "
                                     "block ranges, each committed with its cursor (a crash loses at most one range).")
    add_connection_options(p)
    add_output_options(p)
    index_option(p, required=True)
    p.add_argument("--to-block", type=int, metavar="N", help="stop at block N (default: the latest)")
    p.add_argument("--step", type=positive_int, metavar="BLOCKS", help="blocks per eth_getLogs and per commit (default 2000)")
    p.set_defaults(handler=_cmd_index)

    p = group.add_parser("list", help="search the audit index (newest first)",
                         description="Search the records of the local index; filters combine. Times are unix seconds "
                                     "or ISO 8601 dates/date-times (UTC).")
    add_output_options(p)
    index_option(p, required=True)
    p.add_argument("--dataset", type=identifier, metavar="ID", help="records about this dataset")
    p.add_argument("--requester-dept", metavar="DEPT", help="records of requests by this department (id or code)")
    p.add_argument("--provider-dept", metavar="DEPT", help="records about this department's data (id or code)")
    p.add_argument("--requester", type=address, metavar="ADDRESS", help="records of requests by this account")
    p.add_argument("--oracle", type=address, metavar="ADDRESS", help="records written by this oracle")
    p.add_argument("--grant", type=identifier, metavar="ID", help="records naming this grant")
    p.add_argument("--outcome", choices=["served", "denied", "source_failure"], help="records with this outcome")
    p.add_argument("--since", metavar="TIME", help="anchored at or after TIME")
    p.add_argument("--until", metavar="TIME", help="anchored before TIME")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="records per page (default 50, at most 1000)")
    page = p.add_mutually_exclusive_group()
    page.add_argument("--cursor", metavar="CURSOR", help="continue after the page that printed this cursor")
    page.add_argument("--offset", type=int, metavar="N", help="skip the N newest matches")
    p.set_defaults(handler=_cmd_list)

    p = group.add_parser("verify", help="verify the audit trail (exit code 1 on any violation)",
                         description="Verify every oracle's records from the chain alone: contiguous sequences, hash "
                                     "chains equal to the contract's heads, each served decision replayed at its block "
                                     "(grant active, requester's department, quota), and who wrote each record. The "
                                     "index is synced first unless --no-sync.")
    add_connection_options(p)
    add_output_options(p)
    index_option(p, required=False)
    p.add_argument("--no-sync", action="store_true", help="verify the index as it is, without the chain (needs --index)")
    p.add_argument("--oracle-export", action="append", default=[], metavar="FILE",
                   help="an oracle's exported log (govshare oracle export) to match record for record (repeatable)")
    p.add_argument("--receipts", action="append", default=[], metavar="DIR",
                   help="requesters' receipts (a directory of receipt JSON files, as `govshare query --save-receipt` "
                        "writes them, or one file) to match with the records and hash-chain heads on chain (repeatable)")
    p.add_argument("--data-file", action="append", default=[], metavar="DATASET:VERSION:FILE",
                   help="a data file to match against a published version (repeatable)")
    p.add_argument("--record-proof", action="append", default=[], metavar="FILE",
                   help="a record and its Merkle proof (JSON, see `govshare audit prove`) to check (repeatable)")
    p.add_argument("--max-decision-age", type=int, metavar="BLOCKS",
                   help="tighten the bound on a served record's decision age: flag records anchored more than BLOCKS "
                        "blocks after their decision (the consortium's maxDecisionAgeBlocks, which the contract "
                        "enforces, is always checked; a larger BLOCKS is refused)")
    p.add_argument("--report", metavar="FILE.html", help="also write the verification report as a standalone HTML page")
    p.set_defaults(handler=_cmd_verify)

    p = group.add_parser("prove", help="write the Merkle proof of one record of a data file",
                         description="Read a data file (JSON Lines or CSV), and write the proof that its record number "
                                     "RECORD (0-based) belongs to the file's Merkle root, as JSON for verify --record-proof.")
    add_output_options(p)
    p.add_argument("--data-file", required=True, metavar="DATASET:VERSION:FILE", help="the data file and the version it claims to be")
    p.add_argument("--record", required=True, type=int, metavar="N", help="the record's 0-based position in the file")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the proof (JSON)")
    p.set_defaults(handler=_cmd_prove)


# ---------------------------------------------------------------------------- handlers


def _open_index(path: str | None, *, must_exist: bool) -> Any:
    from auditing.index import AuditIndex

    if not path:
        raise CliUsageError(f"name the audit index with --index FILE (or ${ENV_INDEX})")
    if must_exist and not Path(path).is_file():
        raise CliUsageError(f"no audit index at {path}: create it with `govshare audit index --index {path}`")
    return AuditIndex(path)


def _cmd_index(args: argparse.Namespace) -> int:
    from auditing.index import DEFAULT_SYNC_STEP, AuditQueryError
    from cli.context import connect
    from cli.output import emit, key_values

    consortium = connect(args)
    with _open_index(args.index, must_exist=False) as index:
        try:
            result = index.sync(consortium, to_block=args.to_block, step=args.step or DEFAULT_SYNC_STEP)
        except AuditQueryError as exc:
            raise CliUsageError(str(exc)) from None
        status = index.status()
    data = {"index": args.index, **result.to_dict(), "total_records": status.records, "oracles": status.oracles,
            "grants": status.grants}
    emit(args, data, lambda out: out.print(key_values(f"audit index {args.index}", {
        "blocks read": (f"{result.from_block}..{result.to_block} ({result.ranges} range(s))" if result.ranges
                        else f"none: already up to date at block {result.to_block}"),
        "new records": result.records,
        "new grant events": result.grant_events,
        "new registry / catalog events": f"{result.registry_events} / {result.catalog_events}",
        "records indexed": f"{status.records} of {status.oracles} oracle(s)",
        "took": f"{result.seconds:.2f}s",
    })))
    return EXIT_OK


def parse_time(text: str | None, what: str) -> int | None:
    """Unix seconds from unix seconds or an ISO 8601 date (midnight UTC) or date-time (UTC unless it says)."""
    if text is None:
        return None
    value = text.strip()
    try:
        if value.isdigit():
            return int(value)
        if len(value) == 10:
            day = date.fromisoformat(value)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        moment = datetime.fromisoformat(value)
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    except ValueError:
        raise CliUsageError(f"{what}: not unix seconds or an ISO 8601 date/date-time: {text!r}") from None


def _cmd_list(args: argparse.Namespace) -> int:
    from auditing.index import AuditQueryError
    from cli.output import emit, short_hex, table, utc

    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    with _open_index(args.index, must_exist=True) as index:
        try:
            page = index.search(
                dataset_id=args.dataset, requester_dept=args.requester_dept, provider_dept=args.provider_dept,
                requester=args.requester, oracle=args.oracle, grant_id=args.grant, outcome=args.outcome,
                since=since, until=until, limit=args.limit, cursor=args.cursor, offset=args.offset,
            )
        except AuditQueryError as exc:
            raise CliUsageError(str(exc)) from None
        codes = {d.id: d.code for d in index.departments()}

    def human(out: Any) -> None:
        rows = [[utc(r.block_time), short_hex(r.record_id.to_bytes(28, "big")[-28:], 12), r.sequence,
                 codes.get(r.provider_dept, r.provider_dept), codes.get(r.requester_dept, r.requester_dept or "-"),
                 r.dataset_id or "-", r.grant_id or "-", r.outcome.name.lower(), r.reason_name, r.block_number]
                for r in page.records]
        out.print(table(None, ["anchored", "record", "seq", "provider", "requester", "dataset", "grant", "outcome",
                               "reason", "block"], rows))
        more = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
        out.print(f"{len(page.records)} of {page.total} matching record(s){more}")

    emit(args, page.to_dict(), human)
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from auditing.evidence import DataFileCheck, RecordProofCheck
    from auditing.index import AuditIndex
    from auditing.report import VerificationInputError
    from auditing.verification import verify_audit_trail
    from cli.context import connect

    try:
        data_files = [DataFileCheck.parse(spec) for spec in args.data_file]
        proofs = [RecordProofCheck.from_file(path) for path in args.record_proof]
    except VerificationInputError as exc:
        raise CliUsageError(str(exc)) from None
    if args.max_decision_age is not None and args.max_decision_age < 0:
        raise CliUsageError("--max-decision-age must not be negative")
    if args.no_sync:
        index = _open_index(args.index, must_exist=True)
        consortium = None
    else:
        consortium = connect(args)
        index = AuditIndex(args.index) if args.index else AuditIndex(":memory:")
        index.sync(consortium)
    try:
        report = verify_audit_trail(index, consortium, oracle_exports=args.oracle_export, data_files=data_files,
                                    record_proofs=proofs, max_decision_age=args.max_decision_age, receipts=args.receipts)
    except VerificationInputError as exc:
        raise CliUsageError(str(exc)) from None
    finally:
        index.close()
    if args.report:
        from auditing.html_report import (
            write_verification_report,  # the HTML page lives with the service's templates
        )

        write_verification_report(report, args.report)
    if getattr(args, "json", False):
        print(report.to_json())
    else:
        print(report.summary())
        if args.report:
            print(f"report written to {args.report}")
    return EXIT_OK if report.ok else EXIT_REFUSED


def _cmd_prove(args: argparse.Namespace) -> int:
    from auditing.evidence import DataFileCheck, RecordProofCheck
    from auditing.report import VerificationInputError
    from cli.output import emit
    from ledger.dataset_file import DataFileError, read_dataset_file
    from ledger.errors import MerkleIndexError

    try:
        spec = DataFileCheck.parse(args.data_file)
        data = read_dataset_file(spec.path)
        if not 0 <= args.record < data.record_count:
            raise CliUsageError(f"{spec.path} has {data.record_count} records: --record must be 0..{data.record_count - 1}")
        proof = RecordProofCheck(spec.dataset_id, spec.version, data.record_hash(args.record), tuple(data.proof(args.record)))
    except (VerificationInputError, DataFileError, MerkleIndexError) as exc:
        raise CliUsageError(str(exc)) from None
    document = {**proof.to_dict(), "record": data.records[args.record], "merkle_root": "0x" + data.merkle_root.hex()}
    Path(args.out).write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    emit(args, {"out": args.out, **document},
         lambda out: out.print(f"proof of record {args.record} of {spec.path} ({len(proof.proof)} siblings, root "
                               f"{document['merkle_root']}) written to {args.out}"))
    return EXIT_OK
