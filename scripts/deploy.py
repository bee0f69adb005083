#!/usr/bin/env python3
"""Deploy the consortium contracts to any JSON-RPC chain (ganache, anvil, Hyperledger Besu) from an
encrypted keystore, and write the deployment manifest; re-run against a deployed chain, verify it.

Usage (from the project root, with the project's virtualenv):

    python scripts/deploy.py --rpc URL --key-file KEYSTORE [--password-file FILE] \\
        [--committee ADDRESS ...] [--threshold N] [--max-decision-age-blocks N] [--manifest-dir DIR] \\
        [--rpc-ca-file PEM] [--rpc-client-cert PEM --rpc-client-key PEM] [--force-new] [--json]

* No manifest ``<chain-id>.json`` in ``--manifest-dir`` (default: ``deployments/``): deploys the five
  contracts with the founding committee (default: the deployer), threshold (default 1) and
  ``maxDecisionAgeBlocks`` (default 150; docs/PROTOCOL.md §10.2), and
  writes ``<chain-id>.json`` (addresses, block, compiler, code hashes) and ``<chain-id>.contracts.json``
  (addresses and ABIs, for integrators in any language).
* A manifest for the chain's id is there: deploys nothing and sends nothing. It checks that the code
  at every address is the code the manifest names, that this checkout compiles the same contracts
  with the same compiler, that the contracts are bound to each other as the manifest says, and that
  the committee, threshold and decision-age bound on chain are those given (if given); then reports ``verified``
  (exit 0) or every mismatch (exit 1). ``--force-new`` deploys anew deliberately (the old manifest
  is kept as ``<chain-id>.superseded-block-N.json``).

The keystore's password comes from ``--password-file`` or ``$GOVSHARE_KEY_PASSWORD``, never from
the command line. Exit codes: 0 deployed or verified, 1 a mismatch or a refusal (wrong password, a
contract's custom error), 2 a usage error (a missing argument or password), 3 the chain is
unreachable. The same command is ``govshare deploy`` (:mod:`cli.commands.deploy`,
:func:`ledger.deployment.deploy_or_verify`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from cli.commands import deploy  # noqa: E402
from cli.main import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/deploy.py", description=deploy.DESCRIPTION)
    deploy.add_options(parser)
    return run(parser, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
