"""How a ``govshare`` command finds its chain, its deployment and the account it acts as.

First found wins:

* **RPC URL**: ``--rpc``, ``$GOVSHARE_RPC``, else the local devnet's (``govshare devnet start``; its
  data directory is ``$GOVSHARE_DEVNET_DIR`` or ``.devnet/chain``).
* **manifest**: ``--manifest``, ``$GOVSHARE_MANIFEST``, the devnet's own when the RPC URL is the
  devnet's, else ``deployments/<chain-id>.json``.
* **the CAs trusted for an https node**: ``--rpc-ca-file``, ``$GOVSHARE_RPC_CA_FILE``, else the system's;
  **the client certificate it is shown** (mutual TLS): ``--rpc-client-cert`` and ``--rpc-client-key``,
  ``$GOVSHARE_RPC_CLIENT_CERT`` and ``$GOVSHARE_RPC_CLIENT_KEY``.
* **TLS toward providers' https oracles** (``govshare query``): ``--oracle-ca-file``,
  ``--oracle-client-cert``, ``--oracle-client-key``, or ``$GOVSHARE_ORACLE_CA_FILE``,
  ``$GOVSHARE_ORACLE_CLIENT_CERT``, ``$GOVSHARE_ORACLE_CLIENT_KEY``.
* A private-key file (keystore, TLS key) that group or others may access is refused (``chmod 600``).
* **timeouts**: ``--rpc-timeout`` / ``$GOVSHARE_RPC_TIMEOUT`` (seconds one JSON-RPC call may take, 30 by
  default), ``--receipt-timeout`` / ``$GOVSHARE_RECEIPT_TIMEOUT`` (seconds a transaction may take to be
  mined, 120 by default: then the command fails with exit 1 naming the transaction, never hangs).
* **acting key**: ``--key-file``, ``--as NAME`` (a devnet dev key: ``samr``, ``tax``, ``audit-auditor``,
  ``committee-1`` …), ``$GOVSHARE_KEY_FILE``.
* **keystore password**: ``--password-file``; for a devnet dev key the devnet's dev password file;
  else ``$GOVSHARE_KEY_PASSWORD``. Never a password on the command line.

Also the exit codes every command uses, and the two errors that map to codes of their own.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.errors import LedgerError

if TYPE_CHECKING:
    import ssl

    from devtools.devnet import Devnet
    from ledger.deployment import Consortium
    from ledger.keys import Signer
    from ledger.tls import ClientTls

__all__ = [
    "ENV_KEY_FILE",
    "ENV_MANIFEST",
    "ENV_RPC",
    "ENV_RPC_CA_FILE",
    "ENV_RPC_CLIENT_CERT",
    "ENV_RPC_CLIENT_KEY",
    "ENV_RPC_TIMEOUT",
    "ENV_RECEIPT_TIMEOUT",
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CliUsageError",
    "Endpoint",
    "ServiceUnreachable",
    "add_connection_options",
    "add_oracle_tls_options",
    "add_rpc_client_cert_options",
    "add_output_options",
    "add_signer_options",
    "connect",
    "has_signer",
    "oracle_ssl_context",
    "resolve_endpoint",
    "resolve_signer",
    "timeout_options",
]

#: 0 success, 1 a refusal or failed verification, 2 a usage error, 3 the chain (or a department's oracle) is unreachable.
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
#: ``consortium apply``: what the keys given could do is done, but the chain is not yet in the plan's state.
EXIT_INCOMPLETE = 4

ENV_RPC = "GOVSHARE_RPC"
ENV_MANIFEST = "GOVSHARE_MANIFEST"
ENV_RPC_CA_FILE = "GOVSHARE_RPC_CA_FILE"
ENV_RPC_CLIENT_CERT = "GOVSHARE_RPC_CLIENT_CERT"
ENV_RPC_CLIENT_KEY = "GOVSHARE_RPC_CLIENT_KEY"
ENV_ORACLE_CA_FILE = "GOVSHARE_ORACLE_CA_FILE"
ENV_ORACLE_CLIENT_CERT = "GOVSHARE_ORACLE_CLIENT_CERT"
ENV_ORACLE_CLIENT_KEY = "GOVSHARE_ORACLE_CLIENT_KEY"
ENV_RPC_TIMEOUT = "GOVSHARE_RPC_TIMEOUT"
ENV_RECEIPT_TIMEOUT = "GOVSHARE_RECEIPT_TIMEOUT"
ENV_KEY_FILE = "GOVSHARE_KEY_FILE"

_DEV_KEY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class CliUsageError(LedgerError):
    """The command line and its environment do not say enough to run the command (exit code 2)."""


class ServiceUnreachable(LedgerError, ConnectionError):
    """A service the command needs, other than the chain, does not answer (exit code 3)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a command reads and writes: the node, and the manifest of the deployment on it."""

    rpc_url: str
    manifest: Path | None  # None: deployments/<chain-id>.json
    source: str  # where the RPC URL came from: "--rpc", "$GOVSHARE_RPC" or "devnet"
    tls: ClientTls | None = None  # the CAs trusted for an https node (None: the system's), the client certificate
    rpc_timeout: float | None = None  # seconds one JSON-RPC call may take (None: ledger's default)
    receipt_timeout: float | None = None  # seconds a transaction may take to be mined (None: ledger's default)

    def chain_options(self) -> dict[str, Any]:
        """The keyword arguments of ``ledger.chain.Chain`` (and ``Consortium.connect``) this endpoint sets."""
        options: dict[str, Any] = {"tls": self.tls}
        if self.rpc_timeout is not None:
            options["timeout"] = self.rpc_timeout
        if self.receipt_timeout is not None:
            options["receipt_timeout"] = self.receipt_timeout
        return options


# ---------------------------------------------------------------------------- options


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--rpc``, ``--manifest``, ``--rpc-ca-file`` and the timeouts."""
    group = parser.add_argument_group("chain")
    group.add_argument("--rpc", metavar="URL", help=f"JSON-RPC URL of the chain (default: ${ENV_RPC}, else the running devnet)")
    group.add_argument("--manifest", metavar="FILE",
                       help=f"deployment manifest (default: ${ENV_MANIFEST}, the devnet's, else deployments/<chain-id>.json)")
    group.add_argument("--rpc-ca-file", metavar="FILE",
                       help=f"PEM certificate authorities trusted for an https node (default: ${ENV_RPC_CA_FILE}, else the system's)")
    add_rpc_client_cert_options(group)
    add_timeout_options(group)


def add_rpc_client_cert_options(group: argparse._ActionsContainer) -> None:
    """``--rpc-client-cert`` and ``--rpc-client-key``: the certificate shown to an https node (mutual TLS)."""
    group.add_argument("--rpc-client-cert", metavar="FILE",
                       help=f"PEM client certificate shown to an https node that asks for one (default: ${ENV_RPC_CLIENT_CERT})")
    group.add_argument("--rpc-client-key", metavar="FILE",
                       help=f"its PEM key, unencrypted, mode 0600 (default: ${ENV_RPC_CLIENT_KEY})")


def add_oracle_tls_options(parser: argparse.ArgumentParser) -> None:
    """``--oracle-ca-file``, ``--oracle-client-cert``, ``--oracle-client-key``: TLS toward an https oracle."""
    group = parser.add_argument_group("oracle TLS")
    group.add_argument("--oracle-ca-file", metavar="FILE",
                       help=f"PEM certificate authorities trusted for an https oracle (default: ${ENV_ORACLE_CA_FILE}, "
                            "else the system's)")
    group.add_argument("--oracle-client-cert", metavar="FILE",
                       help=f"PEM client certificate shown to an oracle that asks for one (default: ${ENV_ORACLE_CLIENT_CERT})")
    group.add_argument("--oracle-client-key", metavar="FILE",
                       help=f"its PEM key, unencrypted, mode 0600 (default: ${ENV_ORACLE_CLIENT_KEY})")


def add_timeout_options(group: Any) -> None:
    """``--rpc-timeout`` and ``--receipt-timeout`` (on a parser or an argument group)."""
    group.add_argument("--rpc-timeout", metavar="SECONDS",
                       help=f"seconds one JSON-RPC call may take (default: ${ENV_RPC_TIMEOUT}, else 30; raise it for a slow node)")
    group.add_argument("--receipt-timeout", metavar="SECONDS",
                       help=f"seconds a sent transaction may take to be mined before the command fails "
                            f"(default: ${ENV_RECEIPT_TIMEOUT}, else 120)")


def add_signer_options(parser: argparse.ArgumentParser) -> None:
    """``--key-file`` / ``--as`` and ``--password-file``: the account a command acts as."""
    group = parser.add_argument_group("acting account")
    who = group.add_mutually_exclusive_group()
    who.add_argument("--key-file", metavar="FILE", help=f"encrypted keystore of the acting account (default: ${ENV_KEY_FILE})")
    who.add_argument("--as", dest="as_name", metavar="NAME",
                     help="act as a devnet dev account (TEST KEYS): samr, tax, psb, audit, audit-auditor, committee-1, ...")
    group.add_argument("--password-file", metavar="FILE",
                       help="file holding the keystore password (default: the devnet's for a dev key, else $GOVSHARE_KEY_PASSWORD)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` after the subcommand too (``govshare --json ...`` works everywhere)."""
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")


# ---------------------------------------------------------------------------- resolution


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _devnet(environ: Mapping[str, str] | None) -> Devnet:
    from devtools.devnet import Devnet, devnet_dir

    return Devnet(devnet_dir(environ))


def resolve_endpoint(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The RPC URL and manifest a command uses (see the module docstring for the order)."""
    env = _env(environ)
    manifest = getattr(args, "manifest", None) or env.get(ENV_MANIFEST) or None
    rpc = getattr(args, "rpc", None)
    source = "--rpc"
    if not rpc and env.get(ENV_RPC):
        rpc, source = env[ENV_RPC], f"${ENV_RPC}"
    devnet = _devnet(environ)
    if not rpc:
        if not devnet.exists():
            raise CliUsageError(f"no chain given: pass --rpc URL, set {ENV_RPC}, or start a local devnet "
                                "with `govshare devnet start`")
        rpc, source = devnet.rpc_url, "devnet"
    if not rpc.startswith(("http://", "https://")):
        raise CliUsageError(f"the RPC URL must start with http:// or https://, not {rpc!r}")
    if manifest is None and devnet.exists() and rpc.rstrip("/") == devnet.rpc_url and devnet.manifest_path.is_file():
        manifest = devnet.manifest_path
    timeouts = timeout_options(args, environ)
    return Endpoint(rpc, Path(manifest) if manifest else None, source, rpc_tls(args, rpc, environ),
                    timeouts.get("timeout"), timeouts.get("receipt_timeout"))


def rpc_tls(args: argparse.Namespace, rpc: str, environ: Mapping[str, str] | None = None) -> ClientTls | None:
    """``--rpc-ca-file``, ``--rpc-client-cert`` and ``--rpc-client-key`` (or their variables), checked."""
    env = _env(environ)
    ca_file = rpc_ca_file(getattr(args, "rpc_ca_file", None) or env.get(ENV_RPC_CA_FILE) or None, rpc)
    cert = getattr(args, "rpc_client_cert", None) or env.get(ENV_RPC_CLIENT_CERT) or None
    key = getattr(args, "rpc_client_key", None) or env.get(ENV_RPC_CLIENT_KEY) or None
    if (cert or key) and not rpc.startswith("https://"):
        raise CliUsageError(f"--rpc-client-cert and --rpc-client-key are for an https node, not {rpc}")
    if ca_file is None and cert is None and key is None:
        return None
    return _client_tls(ca_file, cert, key, "--rpc-client-cert", "--rpc-client-key")


def oracle_ssl_context(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ssl.SSLContext | None:
    """The TLS client context toward an https oracle (``--oracle-*`` or their variables); None: the system's trust."""
    env = _env(environ)
    ca = getattr(args, "oracle_ca_file", None) or env.get(ENV_ORACLE_CA_FILE) or None
    cert = getattr(args, "oracle_client_cert", None) or env.get(ENV_ORACLE_CLIENT_CERT) or None
    key = getattr(args, "oracle_client_key", None) or env.get(ENV_ORACLE_CLIENT_KEY) or None
    if ca is None and cert is None and key is None:
        return None
    return _client_tls(Path(ca) if ca else None, cert, key, "--oracle-client-cert", "--oracle-client-key").context()


def _client_tls(ca_file: Path | None, cert: str | None, key: str | None, cert_option: str, key_option: str) -> ClientTls:
    from ledger.tls import ClientTls

    if (cert is None) != (key is None):
        raise CliUsageError(f"{cert_option} and {key_option} go together: a client certificate needs its key")
    tls = ClientTls(ca_file, Path(cert) if cert else None, Path(key) if key else None)
    try:
        tls.check()
    except ValueError as exc:
        raise CliUsageError(str(exc)) from None
    return tls


def timeout_options(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> dict[str, float]:
    """``--rpc-timeout`` and ``--receipt-timeout`` (else their environment variables), checked, as
    ``ledger.chain.Chain`` keyword arguments (for commands that take ``--rpc`` on their own)."""
    env = _env(environ)
    rpc = _seconds(getattr(args, "rpc_timeout", None), env.get(ENV_RPC_TIMEOUT), "--rpc-timeout", ENV_RPC_TIMEOUT)
    receipt = _seconds(getattr(args, "receipt_timeout", None), env.get(ENV_RECEIPT_TIMEOUT), "--receipt-timeout",
                       ENV_RECEIPT_TIMEOUT)
    return {k: v for k, v in (("timeout", rpc), ("receipt_timeout", receipt)) if v is not None}


def _seconds(option: str | None, env_value: str | None, flag: str, env_name: str) -> float | None:
    """A timeout option (else its environment variable) checked: a number of seconds, more than 0."""
    value, name = (option, flag) if option else (env_value, f"${env_name}") if env_value else (None, "")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise CliUsageError(f"{name} must be a number of seconds, not {value!r}") from None
    if not (0 < seconds <= 86_400):  # nan fails this too
        raise CliUsageError(f"{name} must be more than 0 and at most 86400 seconds, not {value}")
    return seconds


def rpc_ca_file(value: str | None, rpc: str) -> Path | None:
    """``--rpc-ca-file`` checked: for an https node, a file that loads as PEM certificates."""
    if value is None:
        return None
    if not rpc.startswith("https://"):
        raise CliUsageError(f"--rpc-ca-file (or ${ENV_RPC_CA_FILE}) is for an https node, not {rpc}")
    path = Path(value)
    if not path.is_file():
        raise CliUsageError(f"the CA file {value} does not exist")
    from ledger.tls import check_ca_file

    try:
        check_ca_file(path)
    except ValueError as exc:
        raise CliUsageError(f"the CA file {value} {exc}") from None
    return path


def connect(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Consortium:
    """The consortium the command works on; ``ChainUnavailable`` (exit 3) if the node does not answer."""
    endpoint = resolve_endpoint(args, environ)  # usage errors first, before the heavy imports
    from devtools.devnet import Devnet, devnet_dir
    from ledger.deployment import Consortium
    from ledger.errors import ChainUnavailable

    try:
        return Consortium.connect(endpoint.rpc_url, endpoint.manifest, **endpoint.chain_options())
    except ChainUnavailable:
        if endpoint.source == "devnet":
            raise ChainUnavailable(f"the devnet in {Devnet(devnet_dir(environ)).data_dir} is not running "
                                   f"({endpoint.rpc_url}): start it with `govshare devnet start`") from None
        raise


def has_signer(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the command line or the environment names an acting key."""
    return bool(getattr(args, "key_file", None) or getattr(args, "as_name", None) or _env(environ).get(ENV_KEY_FILE))


def resolve_signer(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Signer:
    """Load the acting account's keystore (see the module docstring for where it and its password come from)."""
    env = _env(environ)
    devnet = _devnet(environ)
    key_file = getattr(args, "key_file", None)
    as_name = getattr(args, "as_name", None)
    if as_name:
        key_path = _dev_key_path(devnet, as_name)
        rpc = resolve_endpoint(args, environ).rpc_url
        if rpc.rstrip("/") != devnet.rpc_url:
            raise CliUsageError(f"--as signs with the devnet's public test keys and works only against the devnet "
                                f"({devnet.rpc_url}), not {rpc}: use --key-file")
    elif key_file or env.get(ENV_KEY_FILE):
        key_path = Path(key_file or env[ENV_KEY_FILE])
    else:
        raise CliUsageError(f"this command signs: pass --key-file FILE (or set {ENV_KEY_FILE}), "
                            "or --as NAME for a devnet dev account")
    password_file = getattr(args, "password_file", None)
    if password_file is None and devnet.is_dev_key(key_path) and devnet.password_file.is_file():
        password_file = devnet.password_file  # test password of test keys
    from ledger.keys import load_keystore, read_password

    return load_keystore(key_path, read_password(password_file, environ=env))


def _dev_key_path(devnet: Devnet, name: str) -> Path:
    if not devnet.exists():
        raise CliUsageError(f"--as needs a devnet in {devnet.data_dir}: start one with `govshare devnet start`")
    path = devnet.key_path(name) if _DEV_KEY_NAME.match(name) else None
    if path is None or not path.is_file():
        known = sorted(p.stem for p in devnet.keys_dir.glob("*.json"))
        raise CliUsageError(f"no devnet dev key {name!r}; the devnet has {', '.join(known) or 'none yet'}")
    return path
