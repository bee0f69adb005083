"""``govshare``: the command line: ``compile``, ``keys new``, ``chain status``, ``oracle serve``, ``oracle export``, ``api serve``, ``demo``.

Exit codes: 0 success, 1 a refusal or verification failure, 2 a usage error (a missing keystore
password included), 3 the chain (or a department's oracle) is unreachable; ``consortium apply``
also 4 (the plan is not fully applied: what is left needs others' keys).

Also ``deploy`` (``cli.commands.deploy``), ``devnet start|stop|status``, ``dept ...``,
``consortium apply``, ``dataset ...``, ``grant ...``, ``query`` and ``audit ...`` (``cli.commands.*``): each of those modules
registers its parser and keeps its handlers, importing the heavy parts only when a handler runs.
How they find the chain, the manifest and the acting key: ``cli.context``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cli.context import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliUsageError,
    ServiceUnreachable,
    add_connection_options,
)
from ledger.errors import ChainUnavailable, LedgerError, PasswordUnavailable


def _emit(args: argparse.Namespace, data: dict[str, Any], human: Callable[[], str]) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else human())


def _cmd_compile(args: argparse.Namespace) -> int:
    from ledger.compiler import DEPLOYABLE, compile_contracts

    result = compile_contracts(use_cache=not args.force, prefer=args.compiler)
    data = {
        "compiler": result.compiler,
        "version": result.version,
        "contracts": {n: {"runtime_bytes": len(result[n].deployed_bytecode), "sha256": result[n].bytecode_hash} for n in DEPLOYABLE},
    }
    _emit(args, data, lambda: "\n".join(
        [f"compiled with {result.compiler} {result.version}"]
        + [f"  {n:<20} {v['runtime_bytes']:>6} bytes  {v['sha256']}" for n, v in data["contracts"].items()]
    ))
    return EXIT_OK


def _cmd_keys_new(args: argparse.Namespace) -> int:
    from ledger.keys import generate_signer, read_password, save_keystore

    password = read_password(args.password_file)
    signer = generate_signer()
    path = save_keystore(signer, Path(args.out), password)
    _emit(args, {"address": signer.address, "keystore": str(path)}, lambda: f"new account {signer.address} in {path}")
    return EXIT_OK


def _cmd_chain_status(args: argparse.Namespace) -> int:
    from cli.context import resolve_endpoint
    from ledger.deployment import Consortium

    endpoint = resolve_endpoint(args)
    consortium = Consortium.connect(endpoint.rpc_url, endpoint.manifest, **endpoint.chain_options())
    depts = consortium.registry.departments()
    data = {
        "chain_id": consortium.chain.chain_id,
        "block": consortium.chain.block_number(),
        "threshold": consortium.registry.threshold(),
        "committee": consortium.registry.committee(),
        "departments": [{"id": d.id, "code": d.code, "name": d.name, "active": d.active, "oracle_url": d.oracle_url} for d in depts],
    }
    _emit(args, data, lambda: "\n".join(
        [f"chain {data['chain_id']} at block {data['block']}; committee of {len(data['committee'])}, threshold {data['threshold']}"]
        + [f"  {d['id']:>3} {d['code']:<8} {'active' if d['active'] else 'removed':<8} {d['name']}" for d in data["departments"]]
    ))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from devtools.demo import run_demo

    return EXIT_OK if run_demo(Path(args.data_dir)) else EXIT_REFUSED


def _cmd_oracle_serve(args: argparse.Namespace) -> int:
    from oracle.main import serve

    serve(Path(args.config))
    return EXIT_OK


def _cmd_oracle_export(args: argparse.Namespace) -> int:
    from cli.output import emit
    from oracle.export import export_outbox

    if args.config:
        from oracle.config import OracleConfig

        outbox = OracleConfig.load(args.config).outbox
    else:
        outbox = Path(args.outbox)
    summary = export_outbox(outbox, Path(args.out))
    emit(args, summary.to_dict(), lambda out: out.print(
        f"exported {summary.records} record(s) of oracle {summary.oracle} ({summary.anchored} anchored, "
        f"{summary.records - summary.anchored} pending) from {outbox} to {summary.path}"))
    return EXIT_OK


def _cmd_api_serve(args: argparse.Namespace) -> int:
    from api.app import serve

    serve(Path(args.config))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govshare", description="govshare: government data sharing on a consortium chain.")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("compile", help="compile the contracts (offline; native solc if installed, else solcjs)")
    p.add_argument("--force", action="store_true", help="ignore the compilation cache")
    p.add_argument("--compiler", choices=["native", "solcjs"], help="force a compiler")
    p.set_defaults(handler=_cmd_compile)

    keys = commands.add_parser("keys", help="manage encrypted keystore files").add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = keys.add_parser("new", help="create a new account in an encrypted keystore file")
    p.add_argument("--out", required=True, help="keystore file to write (mode 0600)")
    p.add_argument("--password-file", help="file holding the password (default: $GOVSHARE_KEY_PASSWORD)")
    p.set_defaults(handler=_cmd_keys_new)

    from cli.commands import deploy

    deploy.register(commands)

    chain = commands.add_parser("chain", help="inspect a deployment").add_subparsers(dest="chain_command", required=True, metavar="ACTION")
    p = chain.add_parser("status", help="chain id, block, committee and departments")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_chain_status)

    oracle = commands.add_parser("oracle", help="run a department's oracle").add_subparsers(dest="oracle_command", required=True, metavar="ACTION")
    p = oracle.add_parser("serve", help="serve signed queries for a department (see oracle/examples/*.toml)")
    p.add_argument("--config", required=True, help="the oracle's TOML configuration file")
    p.set_defaults(handler=_cmd_oracle_serve)
    p = oracle.add_parser("export", help="export an oracle's local log (its outbox) as JSON Lines, for auditors",
                          description="Read the outbox read-only (the oracle may be running) and write every record with "
                                      "its hashes, salts and anchoring, for `govshare audit verify --oracle-export`. The "
                                      "salts open the hashes: the file is written with mode 0600.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="the oracle's TOML configuration file (its outbox is exported)")
    source.add_argument("--outbox", help="an outbox file to export directly")
    p.add_argument("--out", required=True, help="the JSON Lines file to write")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    p.set_defaults(handler=_cmd_oracle_export)

    api = commands.add_parser("api", help="run the API service").add_subparsers(dest="api_command", required=True, metavar="ACTION")
    p = api.add_parser("serve", help="serve the catalog, grants and queries API (see api/examples/*.toml)")
    p.add_argument("--config", required=True, help="the API's TOML configuration file (GOVSHARE_API_* variables override it)")
    p.set_defaults(handler=_cmd_api_serve)

    p = commands.add_parser("demo", help="walk through the consortium's life on an embedded local chain")
    p.add_argument("--data-dir", default=str(Path(".devnet") / "demo"), help="where the demo chain keeps its state")
    p.set_defaults(handler=_cmd_demo)

    from cli.commands import audit, consortium, dataset, dept, devnet, grant, query

    for group in (devnet, dept, consortium, dataset, grant, query, audit):
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run(parser, parser.parse_args(argv))


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the parsed command's handler and map what it raises to the exit codes (also for the
    scripts in ``scripts/`` that run a command's handler under a parser of their own)."""
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_REFUSED
    except (CliUsageError, PasswordUnavailable) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ChainUnavailable, ServiceUnreachable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except LedgerError as exc:
        # KeyError-derived errors would print their message quoted; print it as written
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
