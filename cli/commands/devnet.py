"""``govshare devnet start|stop|status``: a persistent local chain with the sample consortium.

The chain is ganache, detached, its state in a data directory (:class:`devtools.devnet.Devnet`). The
first start deploys the contracts and admits the four sample departments by committee vote; every
start writes the dev keystores that are missing. Its accounts are TEST KEYS from ganache's public
mnemonic, and every command that shows them says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.context import EXIT_OK, EXIT_UNREACHABLE, add_output_options

_TEST_KEYS = "TEST KEYS from ganache's public mnemonic: anyone can derive them; never use them on a real chain"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, not {port}")
    return port


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``devnet start|stop|status`` to the ``govshare`` parser."""
    group = commands.add_parser(
        "devnet", help="a persistent local chain with the sample consortium (test keys)",
        description="A local ganache chain that keeps its state in a data directory, with the consortium deployed "
                    "and four sample departments (SAMR, TAX, PSB, AUDIT) admitted. Other commands use it when no "
                    "--rpc/$GOVSHARE_RPC is given.",
    ).add_subparsers(dest="devnet_command", required=True, metavar="ACTION")

    def data_dir_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", metavar="DIR", help="where the chain keeps its state (default: $GOVSHARE_DEVNET_DIR, else .devnet/chain)")
        add_output_options(p)

    p = group.add_parser("start", help="start the devnet (deploys the consortium on the first start)",
                         description="Start ganache detached (pid and log in the data directory). The first start deploys the "
                                     "contracts, admits the sample departments by committee vote and writes dev keystores; "
                                     "later starts continue from the saved state. Exit 1 if it is already running.")
    data_dir_option(p)
    p.add_argument("--port", type=_port, help="RPC port on 127.0.0.1 (default: the previous one, else 8545)")
    p.set_defaults(handler=_cmd_start)

    p = group.add_parser("stop", help="stop the devnet gracefully (its state stays)",
                         description="Stop the devnet's ganache (SIGTERM; it closes its database). Exit 1 if it is not running.")
    data_dir_option(p)
    p.set_defaults(handler=_cmd_stop)

    p = group.add_parser("status", help="running or not; RPC URL, chain id, block, departments",
                         description="Say whether the devnet runs, and where. Exit 0 if it runs, 3 if it does not.")
    data_dir_option(p)
    p.set_defaults(handler=_cmd_status)


def _devnet(args: argparse.Namespace):
    from devtools.devnet import Devnet, devnet_dir

    return Devnet(Path(args.data_dir) if args.data_dir else devnet_dir())


def _dir_hint(data_dir: Path) -> str | None:
    from devtools.devnet import DEVNET_DIR_ENV, devnet_dir

    if data_dir == devnet_dir():
        return None
    return f"other commands find this devnet with {DEVNET_DIR_ENV}={data_dir}"


def _cmd_start(args: argparse.Namespace) -> int:
    from cli.output import emit, table
    from devtools.devnet import dev_keys

    devnet = _devnet(args)
    state = devnet.start(args.port)
    try:
        consortium, deployed = devnet.provision()
    except BaseException:
        if devnet.pid() is not None:
            devnet.stop()  # a devnet without its contracts helps nobody; the next start provisions again
        raise
    block = consortium.chain.block_number()
    accounts = [
        {"name": key.name, "acts_for": key.acts_for, "address": key.signer.address, "keystore": str(devnet.key_path(key.name))}
        for key in dev_keys()
    ]
    data = {
        "running": True, "pid": state.pid, "rpc_url": state.rpc_url, "chain_id": state.chain_id, "block": block,
        "data_dir": str(devnet.data_dir), "manifest": str(devnet.manifest_path), "deployed_now": deployed,
        "departments": [{"id": d.id, "code": d.code, "name": d.name} for d in consortium.registry.departments()],
        "password_file": str(devnet.password_file), "test_keys": True, "accounts": accounts,
    }

    def human(out) -> None:
        out.print(f"devnet running at {state.rpc_url} (chain {state.chain_id}, block {block}, pid {state.pid})")
        out.print("deployed the consortium and admitted SAMR, TAX, PSB and AUDIT by committee vote" if deployed
                  else f"continuing from the saved state in {devnet.data_dir}")
        out.print(table(_TEST_KEYS, ["--as", "acts for", "address", "keystore"],
                        [[a["name"], a["acts_for"], a["address"], a["keystore"]] for a in accounts]))
        out.print(f"keystore password (test): {devnet.password_file}")
        hint = _dir_hint(devnet.data_dir)
        if hint:
            out.print(hint)
        out.print("try: govshare dept list;  govshare dataset register --as samr --name ... --fields a,b --classification internal")

    emit(args, data, human)
    return EXIT_OK


def _cmd_stop(args: argparse.Namespace) -> int:
    from cli.output import emit

    devnet = _devnet(args)
    pid = devnet.stop()
    emit(args, {"running": False, "stopped_pid": pid, "data_dir": str(devnet.data_dir)},
         lambda out: out.print(f"devnet stopped (pid {pid}); its state stays in {devnet.data_dir}"))
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from cli.output import emit, table

    devnet = _devnet(args)
    state = devnet.state()
    data: dict = {"running": state.running, "pid": state.pid, "rpc_url": state.rpc_url, "chain_id": state.chain_id,
                  "data_dir": str(state.data_dir), "manifest": str(state.manifest) if state.manifest else None}
    if not state.running:
        emit(args, data, lambda out: out.print(f"devnet not running (data dir {state.data_dir}); "
                                               "start it with `govshare devnet start`"))
        return EXIT_UNREACHABLE
    from ledger.chain import Chain
    from ledger.compiler import compile_contracts
    from ledger.deployment import Consortium, Deployment

    chain = Chain(state.rpc_url)
    data["block"] = chain.block_number()
    departments = []
    if state.manifest:
        consortium = Consortium(chain, Deployment.load(state.manifest), compile_contracts())
        departments = [{"id": d.id, "code": d.code, "name": d.name, "active": d.active, "oracle_url": d.oracle_url}
                       for d in consortium.registry.departments()]
    data["departments"] = departments

    def human(out) -> None:
        out.print(f"devnet running at {state.rpc_url} (chain {state.chain_id}, block {data['block']}, pid {state.pid})")
        out.print(f"data dir {state.data_dir}; manifest {state.manifest or 'not yet deployed'}")
        if departments:
            out.print(table("departments", ["id", "code", "name", "state", "oracle URL"],
                            [[d["id"], d["code"], d["name"], "active" if d["active"] else "removed", d["oracle_url"] or None]
                             for d in departments]))

    emit(args, data, human)
    return EXIT_OK
