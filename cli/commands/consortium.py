"""``govshare consortium apply --plan FILE`` (and ``scripts/bootstrap.py``, which runs the same options
and handler): bring a deployed consortium to the state a declarative plan describes
(:mod:`ledger.bootstrap`: the plan's format is in :mod:`ledger.bootstrap.plan`).

Keys: ``--key-file`` any number of times (committee members' and departments' operators' keystores;
each is used for what it may do on chain); passwords from ``--password-file`` (once for every key,
or once per key in the same order) or ``$GOVSHARE_KEY_PASSWORD``, never from the command line.

Exit codes: 0 the chain is in the plan's state (nothing sent if it already was); 1 refused: the plan
conflicts with the chain (every conflict printed, nothing sent), a wrong password, a contract's
refusal; 2 a usage error: an invalid plan (the key is named), a missing password; 3 the chain cannot
be reached; 4 not there yet: what the keys given could do is done, and the to-do list says what
is left and who can do it (``--dry-run``: changes are needed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from cli.context import (
    ENV_KEY_FILE,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_REFUSED,
    CliUsageError,
    add_connection_options,
    add_output_options,
)

HELP = "bring the committee and departments to the state a plan file describes"
DESCRIPTION = (
    "Bring a deployed consortium to the state a TOML plan describes (see scripts/examples/consortium.toml): "
    "committee members and threshold, departments with their accounts, roles and oracle URL. Committee votes are "
    "proposed, approved and executed with the committee members' keys given (an open proposal with the same "
    "effect is approved, not proposed again); each department's own changes are made with its operator's key if "
    "given. What no key given can do is printed as a to-do naming who can. Re-running it against a consortium "
    "already in that state sends nothing. Nothing is removed unless the plan says so explicitly."
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``consortium apply`` to the ``govshare`` parser."""
    group = commands.add_parser("consortium", help="the consortium as a whole: apply a plan",
                                description="The consortium as a whole.").add_subparsers(
        dest="consortium_command", required=True, metavar="ACTION")
    add_options(group.add_parser("apply", help=HELP, description=DESCRIPTION))


def add_options(p: argparse.ArgumentParser) -> None:
    """The options of ``govshare consortium apply`` and ``scripts/bootstrap.py``; sets the handler."""
    add_connection_options(p)
    p.add_argument("--plan", required=True, metavar="FILE", help="the TOML plan (see scripts/examples/consortium.toml)")
    keys = p.add_argument_group("keys")
    keys.add_argument("--key-file", action="append", default=[], metavar="FILE",
                      help=f"a keystore of a committee member or a department operator; repeat for several "
                           f"(default: ${ENV_KEY_FILE} if set, else none: then nothing is sent)")
    keys.add_argument("--password-file", action="append", default=[], metavar="FILE",
                      help="the keystores' password: once for all, or once per --key-file in the same order "
                           "(default: $GOVSHARE_KEY_PASSWORD)")
    p.add_argument("--dry-run", action="store_true", help="only print the changes the plan needs; send nothing")
    add_output_options(p)
    p.set_defaults(handler=run)


def load_signers(key_files: list[str], password_files: list[str]) -> list[Any]:
    """Decrypt every keystore; usage errors (a missing password, a mismatched count) first."""
    from ledger.keys import load_keystore, read_password

    if password_files and len(password_files) not in (1, len(key_files)):
        raise CliUsageError(f"give --password-file once for all keys or once per --key-file: {len(key_files)} key "
                            f"file(s), {len(password_files)} password file(s)")
    if not key_files and password_files:
        raise CliUsageError("--password-file without --key-file")
    passwords = [read_password(password_files[min(i, len(password_files) - 1)] if password_files else None)
                 for i in range(len(key_files))]
    return [load_keystore(Path(path), password) for path, password in zip(key_files, passwords)]


def run(args: argparse.Namespace) -> int:
    from cli.context import connect, resolve_endpoint
    from cli.output import emit
    from ledger.bootstrap import PlanConflict, PlanError, apply_plan, load_plan

    try:
        plan = load_plan(args.plan)
    except PlanError as exc:
        raise CliUsageError(str(exc)) from None
    resolve_endpoint(args)  # usage errors before decrypting anything
    key_files = args.key_file or ([os.environ[ENV_KEY_FILE]] if os.environ.get(ENV_KEY_FILE) else [])
    signers = load_signers(key_files, args.password_file)
    consortium = connect(args)
    json_out = getattr(args, "json", False)
    progress = None if json_out else (lambda line: print(f"  {line}", flush=True))
    if progress:
        print(f"{'dry run of' if args.dry_run else 'applying'} {args.plan} on chain {consortium.chain.chain_id} "
              f"(registry {consortium.registry.address}){': nothing will be sent' if args.dry_run else ''}", flush=True)
    try:
        report = apply_plan(consortium, plan, signers, dry_run=args.dry_run, progress=progress)
    except PlanConflict as exc:
        if json_out:
            emit(args, {"converged": False, "conflicts": exc.conflicts, "transactions_sent": 0}, lambda out: None)
        print(f"error: the plan {args.plan} conflicts with the chain; nothing was sent:", file=sys.stderr)
        for conflict in exc.conflicts:
            print(f"  - {conflict}", file=sys.stderr)
        return EXIT_REFUSED

    def human(out: Any) -> None:
        for line in report.planned:
            out.print(f"  needed: {line}")
        for todo in report.todo:
            out.print(f"  to do: {todo.what}\n         by {todo.who}: {todo.how}")
        for note in report.notes:
            out.print(f"  note: {note}")
        if report.converged:
            out.print("the consortium is in the plan's state" + (f" ({report.sent} transaction(s) sent)" if report.sent
                                                                   else ": nothing to do, nothing sent"))
        elif report.dry_run:
            out.print(f"{len(report.planned)} change(s) needed")
        else:
            out.print(f"not yet in the plan's state: {report.sent} transaction(s) sent, {len(report.todo)} step(s) left "
                      "for others (above)")

    emit(args, {**report.to_dict(), "plan": args.plan}, human)
    return EXIT_OK if report.converged else EXIT_INCOMPLETE
