"""``govshare deploy`` (and ``scripts/deploy.py``, which runs the same options and handler): deploy the
consortium contracts from a keystore and write the manifest, or, when the chain already has the
deployment the manifest directory describes, verify it and send nothing
(:func:`ledger.deployment.deploy_or_verify`).

Exit codes: 0 deployed or verified; 1 the chain does not match the manifest (every difference is
printed; nothing sent), or a refusal (a wrong password, a contract's custom error); 2 a usage error
(a missing argument or keystore password, a malformed address); 3 the chain cannot be reached.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.args import address, positive_int
from cli.context import EXIT_OK, EXIT_REFUSED, add_output_options, add_rpc_client_cert_options, add_timeout_options

HELP = "deploy the consortium contracts and write deployments/<chain-id>.json (or verify an existing deployment)"
DESCRIPTION = (
    "Deploy the consortium contracts from an encrypted keystore and write the manifest <chain-id>.json and "
    "<chain-id>.contracts.json (addresses and ABIs). If the manifest directory already has a manifest for the "
    "chain, nothing is deployed: the chain is checked against it (the code at every address, the compiler and "
    "creation bytecode, the contracts' bindings, and the committee and threshold if given) and the command "
    "exits 0 (verified) or 1 (every mismatch printed). Nothing is sent in either case; --force-new deploys anew."
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``deploy`` to the ``govshare`` parser."""
    add_options(commands.add_parser("deploy", help=HELP, description=DESCRIPTION))


def add_options(p: argparse.ArgumentParser) -> None:
    """The options of ``govshare deploy`` and ``scripts/deploy.py``; sets the handler."""
    p.add_argument("--rpc", required=True, help="JSON-RPC URL of the chain")
    p.add_argument("--rpc-ca-file", metavar="FILE",
                   help="PEM certificate authorities trusted for an https node (default: $GOVSHARE_RPC_CA_FILE, else the system's)")
    add_rpc_client_cert_options(p)
    add_timeout_options(p)
    p.add_argument("--key-file", required=True, help="encrypted keystore of the deploying account")
    p.add_argument("--password-file", help="file holding the keystore password (default: $GOVSHARE_KEY_PASSWORD)")
    p.add_argument("--committee", nargs="+", type=address, metavar="ADDRESS",
                   help="founding committee (default: the deployer); verified against the chain if it is already deployed")
    p.add_argument("--threshold", type=positive_int, default=None,
                   help="approvals a proposal needs (default 1); verified against the chain if it is already deployed")
    p.add_argument("--max-decision-age-blocks", type=positive_int, default=None, metavar="BLOCKS",
                   help="how many blocks a served audit record's decision may lie before its anchoring block "
                        "(default 150: the oracle's default batching on 2 s blocks, with room; see docs/PROTOCOL.md); "
                        "verified against the chain if it is already deployed")
    p.add_argument("--manifest-dir", default=None,
                   help="where to write (or find) the manifest (default: the deployments/ folder every command reads it from)")
    p.add_argument("--force-new", action="store_true",
                   help="deploy anew even if the manifest directory has a manifest for this chain (it is kept, renamed "
                        "<chain-id>.superseded-block-N.json)")
    add_output_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cli.context import rpc_tls, timeout_options
    from cli.output import emit
    from ledger.chain import Chain
    from ledger.compiler import DEPLOYABLE
    from ledger.deployment import DEFAULT_MANIFEST_DIR, deploy_or_verify
    from ledger.keys import load_keystore, read_password

    tls = rpc_tls(args, args.rpc)  # before the password
    signer = load_keystore(Path(args.key_file), read_password(args.password_file))
    chain = Chain(args.rpc, tls=tls, **timeout_options(args))
    result = deploy_or_verify(chain, signer, Path(args.manifest_dir) if args.manifest_dir else DEFAULT_MANIFEST_DIR,
                              committee=args.committee, threshold=args.threshold,
                              max_decision_age_blocks=args.max_decision_age_blocks, force_new=args.force_new)
    data: dict[str, Any] = {
        "status": result.status, "manifest": str(result.manifest), "reasons": list(result.reasons),
        "superseded": str(result.superseded) if result.superseded else None, "export_written": result.export_written,
        **(result.deployment.to_dict() if result.deployment else {}),
    }
    if result.status == "mismatch":
        import sys

        if getattr(args, "json", False):
            emit(args, data, lambda out: None)
        print(f"error: the chain does not match the manifest {result.manifest}; nothing was sent:", file=sys.stderr)
        for reason in result.reasons:
            print(f"  - {reason}", file=sys.stderr)
        print("  (to deploy anew deliberately, pass --force-new: the current manifest is kept under another name)",
              file=sys.stderr)
        return EXIT_REFUSED

    deployment = result.deployment
    assert deployment is not None

    def human(out: Any) -> None:
        if result.status == "deployed":
            out.print(f"deployed on chain {deployment.chain_id} at block {deployment.deployment_block}; manifest "
                      f"{result.manifest} ({result.reasons[0]})")
            if result.superseded:
                out.print(f"the previous manifest is kept as {result.superseded}")
        else:
            out.print(f"verified: chain {deployment.chain_id} already has the deployment of {result.manifest} "
                      f"(block {deployment.deployment_block}); nothing was sent")
            for reason in result.reasons:
                out.print(f"  ok: {reason}")
            if result.export_written:
                out.print(f"  wrote {result.manifest.with_name(f'{deployment.chain_id}.contracts.json')}")
        for name in DEPLOYABLE:
            out.print(f"  {name:<20} {deployment.addresses[name]}")

    emit(args, data, human)
    return EXIT_OK
