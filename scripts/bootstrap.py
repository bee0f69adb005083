#!/usr/bin/env python3
"""Bring a deployed consortium to the state a declarative plan describes: the committee's members
and threshold, the departments (name, short code, audit office or not), each department's operator,
oracle and auditor accounts and its oracle URL.

Usage (from the project root, with the project's virtualenv):

    python scripts/bootstrap.py --rpc URL --manifest deployments/<chain-id>.json --plan consortium.toml \\
        --key-file keys/committee-1.json --key-file keys/committee-2.json [--key-file keys/samr-operator.json ...] \\
        [--password-file FILE ...] [--dry-run] [--json]

The plan's format, with every key, is in ``scripts/examples/consortium.toml`` (the sample consortium,
TEST ONLY addresses) and :mod:`ledger.bootstrap.plan`. An invalid plan (an unknown key, a malformed
address, a code used twice, ...) is refused before anything is read from the chain, naming the key;
a plan that conflicts with the chain (a code held by a department of another name, an account of
another department, ...) is refused before anything is sent.

Committee votes are proposed, approved and executed with the keys of committee members among the
``--key-file``s (an open proposal with the same effect is approved rather than proposed again, so
members may each run the plan with their own key); each department's own changes (binding accounts,
the oracle URL) are sent with its operator's key when given. Whatever the keys given cannot do is
printed as a to-do naming who can. Re-running it against a consortium in the plan's state sends
nothing. Nothing on chain is removed unless the plan says so explicitly (``exact``,
``exact_accounts``, ``removed``).

Passwords: ``--password-file`` once for all keys or once per key, else ``$GOVSHARE_KEY_PASSWORD``;
never on the command line. Exit codes: 0 the consortium is in the plan's state; 1 refused (a
conflict, a wrong password, a contract's custom error, by name); 2 a usage error (an invalid plan, a
missing password); 3 the chain is unreachable; 4 not yet in the plan's state: the rest needs other
keys (the to-do list says whose). The same command is ``govshare consortium apply``
(:mod:`cli.commands.consortium`, :func:`ledger.bootstrap.apply_plan`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from cli.commands import consortium  # noqa: E402
from cli.main import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bootstrap.py", description=consortium.DESCRIPTION)
    consortium.add_options(parser)
    return run(parser, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
