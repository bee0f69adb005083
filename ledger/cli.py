"""``govshare``: the command line: ``compile``, ``keys new``, ``deploy``, ``chain status``, ``oracle serve``, ``demo``.

Exit codes: 0 success, 1 a refusal or verification failure, 2 a usage error, 3 the chain is unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ledger.errors import ChainUnavailable, LedgerError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


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


def _cmd_deploy(args: argparse.Namespace) -> int:
    from ledger.chain import Chain
    from ledger.deployment import deploy_consortium
    from ledger.keys import load_keystore, read_password

    signer = load_keystore(Path(args.key_file), read_password(args.password_file))
    committee = args.committee or [signer.address]
    chain = Chain(args.rpc)
    deployment = deploy_consortium(chain, signer, committee, args.threshold)
    path = deployment.save(Path(args.manifest_dir))
    _emit(args, {"manifest": str(path), **json.loads(deployment.to_json())}, lambda: "\n".join(
        [f"deployed on chain {deployment.chain_id} at block {deployment.deployment_block}; manifest {path}"]
        + [f"  {name:<20} {address}" for name, address in deployment.addresses.items()]
    ))
    return EXIT_OK


def _cmd_chain_status(args: argparse.Namespace) -> int:
    from ledger.deployment import Consortium

    consortium = Consortium.connect(args.rpc, Path(args.manifest) if args.manifest else None)
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
    from oracle.demo import run_demo

    return EXIT_OK if run_demo(Path(args.data_dir)) else EXIT_REFUSED


def _cmd_oracle_serve(args: argparse.Namespace) -> int:
    from oracle.server import serve

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

    p = commands.add_parser("deploy", help="deploy the consortium contracts and write deployments/<chain-id>.json")
    p.add_argument("--rpc", required=True, help="JSON-RPC URL of the chain")
    p.add_argument("--key-file", required=True, help="encrypted keystore of the deploying account")
    p.add_argument("--password-file", help="file holding the keystore password (default: $GOVSHARE_KEY_PASSWORD)")
    p.add_argument("--committee", nargs="+", metavar="ADDRESS", help="founding committee (default: the deployer)")
    p.add_argument("--threshold", type=int, default=1, help="approvals a proposal needs (default 1)")
    p.add_argument("--manifest-dir", default=str(Path("deployments")), help="where to write the manifest")
    p.set_defaults(handler=_cmd_deploy)

    chain = commands.add_parser("chain", help="inspect a deployment").add_subparsers(dest="chain_command", required=True, metavar="ACTION")
    p = chain.add_parser("status", help="chain id, block, committee and departments")
    p.add_argument("--rpc", required=True, help="JSON-RPC URL of the chain")
    p.add_argument("--manifest", help="manifest file (default: deployments/<chain-id>.json)")
    p.set_defaults(handler=_cmd_chain_status)

    oracle = commands.add_parser("oracle", help="run a department's oracle").add_subparsers(dest="oracle_command", required=True, metavar="ACTION")
    p = oracle.add_parser("serve", help="serve signed queries for a department (see oracle/examples/*.toml)")
    p.add_argument("--config", required=True, help="the oracle's TOML configuration file")
    p.set_defaults(handler=_cmd_oracle_serve)

    p = commands.add_parser("demo", help="walk through the consortium's life on an embedded local chain")
    p.add_argument("--data-dir", default=str(Path(".devnet") / "demo"), help="where the demo chain keeps its state")
    p.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ChainUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
