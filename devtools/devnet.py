"""A local development chain: a real ganache node.

:class:`GanacheNode` is a node started through ``npx`` on a free port and owned by the process that
started it (the test suite, the demo). :class:`Devnet` is the persistent chain behind
``govshare devnet start|stop|status``: ganache detached in its own session, its state in a data
directory, the sample consortium deployed once and dev keystores beside it. Nothing else in govshare
depends on ganache: production talks to any JSON-RPC node (Hyperledger Besu with QBFT is the reference).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.compiler import PROJECT_ROOT
from ledger.errors import LedgerError, ManifestError
from ledger.rpc import JsonRpc

if TYPE_CHECKING:
    from ledger.deployment import Consortium
    from ledger.keys import Signer

# eth_account (and so ledger.keys) is imported where keys are made: `govshare devnet stop|status`
# and the CLI's settings resolution need only the paths here, and start in a fraction of the time.

# Ganache's --wallet.deterministic mnemonic. test key material: public, well known, never a secret.
DETERMINISTIC_MNEMONIC = "myth like bonus scare over problem client lizard pioneer submit female collect"


def dev_accounts(count: int = 30) -> list[Signer]:
    """Ganache's deterministic accounts. Test/dev keys derived from a public mnemonic: never use them
    on a real chain."""
    from eth_account import Account

    from ledger.keys import signer_from_key

    Account.enable_unaudited_hdwallet_features()
    return [
        signer_from_key(Account.from_mnemonic(DETERMINISTIC_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key)
        for i in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: How every ganache here mines: "strict" instamine answers eth_sendRawTransaction with the hash
#: and mines right after, as a real node answers before its block (clients wait for the receipt).
#: ganache's default, "eager", answers only once the block is mined, and with transactions arriving
#: from several connections at once (a department's while oracles' batchers anchor) it left an
#: eth_sendRawTransaction unanswered (tests/ledger/test_chain.py reproduced it in two runs of two).
#: "strict" has a flaw of its own: a transaction that arrives while its sender's previous one is being
#: mined is filed among future-nonce transactions and never mined (README.md, "A transaction that is
#: never mined"; 5 runs of 5 with three consecutive nonces in flight). The oracle's batcher sends such
#: a transaction again in its own place (``batch_stuck_after_seconds``), which frees it; a CLI command
#: fails after ``--receipt-timeout`` saying so; restarting the node empties its pool.
GANACHE_MINING = ("--miner.instamine", "strict")


class GanacheNode:
    """A ganache process: ``url`` while running; ``stop()`` ends it."""

    def __init__(
        self,
        *,
        accounts: int = 30,
        chain_id: int = 1337,
        extra: Sequence[str] = (),
        log_dir: Path | None = None,
        db_path: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_id = chain_id
        self._rpc = JsonRpc(self.url, timeout=10.0, max_idle=2)
        log_dir = log_dir or PROJECT_ROOT / "build" / "test-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(log_dir / f"ganache-{self.port}.log", "wb")  # noqa: SIM115 - open while the node runs
        command = [
            "npx", "--no-install", "ganache",
            "--server.host", "127.0.0.1",
            "--server.port", str(self.port),
            "--wallet.deterministic",
            "--wallet.totalAccounts", str(accounts),
            "--chain.chainId", str(chain_id),
            *GANACHE_MINING,
            "--logging.quiet",
            *(["--database.dbPath", str(db_path)] if db_path else []),
            *extra,
        ]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=os.environ | {"NODE_OPTIONS": ""}, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ganache exited with {self.process.returncode}; see {self._log.name}")
            try:
                self.rpc("eth_chainId")
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ganache did not answer on {self.url} within {timeout}s")

    def rpc(self, method: str, params: list | None = None) -> object:
        """One JSON-RPC call (ganache's own methods too: ``evm_snapshot``, ``evm_mine``...); an error
        answer raises :class:`ledger.rpc.RpcErrorAnswer`."""
        return self._rpc.call(method, params or [])

    def increase_time(self, seconds: int) -> None:
        """Move block time forward and mine a block at the new time."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self._log.close()


# ---------------------------------------------------------------------------- the persistent devnet

#: The devnet's fixed chain id, default port, account count and data directory (relative to the
#: working directory unless ``$GOVSHARE_DEVNET_DIR`` names another).
DEVNET_CHAIN_ID = 1337
DEVNET_PORT = 8545
DEVNET_ACCOUNTS = 20
DEVNET_DIR_ENV = "GOVSHARE_DEVNET_DIR"
DEFAULT_DEVNET_DIR = Path(".devnet") / "chain"
#: The password of the devnet's dev keystores. test password: the keystores hold ganache's public
#: test keys, so it protects nothing; it exists so that dev keys are loaded like real ones.
DEV_KEYSTORE_PASSWORD = "govshare-devnet-test-keys"
#: scrypt cost (n) of the dev keystores: low, as their keys are public anyway (real keystores keep
#: eth_account's 2**18, about a second per load).
DEV_KEYSTORE_SCRYPT_N = 2**12
GANACHE_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "ganache"

_TEST_KEYS_NOTICE = (
    "TEST KEYS. The keystores in this directory hold accounts derived from ganache's public\n"
    f"deterministic mnemonic ({DETERMINISTIC_MNEMONIC!r}); their password is in dev-password.\n"
    "Anyone can derive these keys: never use them, or anything they sign, on a real chain.\n"
)


class DevnetError(LedgerError):
    """The devnet cannot do what was asked: already running, not running, port taken, ganache failed."""


def devnet_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The devnet's data directory: ``$GOVSHARE_DEVNET_DIR``, else ``.devnet/chain``; absolute."""
    env = os.environ if environ is None else environ
    return Path(env.get(DEVNET_DIR_ENV) or DEFAULT_DEVNET_DIR).resolve()


@dataclass(frozen=True)
class DevKey:
    """A named dev account of the devnet (``govshare --as NAME``) and what it acts for."""

    name: str
    acts_for: str
    signer: Signer


def dev_keys(accounts: Sequence[Signer] | None = None) -> list[DevKey]:
    """The devnet's named dev accounts: the committee, each sample department's operator, oracle
    (and auditor), and an outsider. Test keys from the public mnemonic."""
    from devtools.sample_consortium import OUTSIDER, SAMPLE_COMMITTEE, SAMPLE_DEPARTMENTS

    accounts = accounts or dev_accounts(DEVNET_ACCOUNTS)
    keys = [DevKey(f"committee-{n}", "committee member", accounts[i]) for n, i in enumerate(SAMPLE_COMMITTEE, start=1)]
    for dept in SAMPLE_DEPARTMENTS:
        name = dept.code.lower()
        keys.append(DevKey(name, f"operator of {dept.code}", accounts[dept.operator]))
        keys.append(DevKey(f"{name}-oracle", f"oracle of {dept.code}", accounts[dept.oracle]))
        if dept.auditor is not None:
            keys.append(DevKey(f"{name}-auditor", f"auditor of {dept.code}", accounts[dept.auditor]))
    keys.append(DevKey("outsider", "no department", accounts[OUTSIDER]))
    return keys


@dataclass(frozen=True)
class DevnetState:
    """What ``govshare devnet status`` reports before asking the chain anything."""

    data_dir: Path
    running: bool
    pid: int | None
    port: int
    rpc_url: str
    chain_id: int
    manifest: Path | None  # None until the consortium is deployed


class Devnet:
    """A persistent local chain kept in ``data_dir``.

    Layout: ``db/`` (ganache's database, ``--database.dbPath``), ``devnet.json`` (port, chain id),
    ``ganache.pid``, ``ganache.log``, ``deployments/<chain-id>.json`` (the manifest), ``keys/`` (dev
    keystores, mode 0600, and ``dev-password``). Ganache runs detached in its own session, so it
    outlives the command that started it; ``stop`` ends it with SIGTERM, and ganache closes its
    database, so the next ``start`` continues from the same contracts and block height.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.db_path = self.data_dir / "db"
        self.pid_file = self.data_dir / "ganache.pid"
        self.log_file = self.data_dir / "ganache.log"
        self.settings_file = self.data_dir / "devnet.json"
        self.manifest_dir = self.data_dir / "deployments"
        self.keys_dir = self.data_dir / "keys"
        self.password_file = self.keys_dir / "dev-password"

    # ------------------------------------------------------------ where things are

    @property
    def manifest_path(self) -> Path:
        return self.manifest_dir / f"{DEVNET_CHAIN_ID}.json"

    def exists(self) -> bool:
        """Whether a devnet was ever started in this directory."""
        return self.settings_file.is_file()

    @property
    def port(self) -> int:
        """The port of the last start (``DEVNET_PORT`` if never started)."""
        try:
            return int(json.loads(self.settings_file.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return DEVNET_PORT

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def key_path(self, name: str) -> Path:
        """The keystore of the dev account ``name`` (see :func:`dev_keys`)."""
        return self.keys_dir / f"{name}.json"

    def is_dev_key(self, path: Path) -> bool:
        """Whether ``path`` is one of this devnet's dev keystores."""
        return Path(path).resolve().parent == self.keys_dir

    # ------------------------------------------------------------ process

    def pid(self) -> int | None:
        """The pid of this devnet's running ganache, or None (no pid file, or a stale one)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_ganache_of(pid, self.db_path) else None

    def state(self) -> DevnetState:
        pid = self.pid()
        return DevnetState(
            data_dir=self.data_dir, running=pid is not None, pid=pid, port=self.port, rpc_url=self.rpc_url,
            chain_id=DEVNET_CHAIN_ID, manifest=self.manifest_path if self.manifest_path.is_file() else None,
        )

    def start(self, port: int | None = None, *, timeout: float = 60.0) -> DevnetState:
        """Start ganache detached on ``port`` (default: the previous port, else 8545) and wait until
        it answers. Raises :class:`DevnetError` if it is already running, the port is taken, or
        ganache does not come up (the message quotes the end of its log)."""
        running = self.pid()
        if running is not None:
            raise DevnetError(f"the devnet in {self.data_dir} is already running (pid {running}, {self.rpc_url})")
        if not GANACHE_BIN.exists():
            raise DevnetError(f"ganache is not installed at {GANACHE_BIN}: run `make setup`")
        port = port or self.port
        if not _port_is_free(port):
            raise DevnetError(f"port {port} is in use on 127.0.0.1: pass --port to use another")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(json.dumps({"port": port, "chain_id": DEVNET_CHAIN_ID}, indent=2) + "\n")
        command = [
            str(GANACHE_BIN),
            "--server.host", "127.0.0.1",
            "--server.port", str(port),
            "--wallet.deterministic",
            "--wallet.totalAccounts", str(DEVNET_ACCOUNTS),
            "--chain.chainId", str(DEVNET_CHAIN_ID),
            "--database.dbPath", str(self.db_path),
            *GANACHE_MINING,
            "--logging.quiet",
        ]
        with open(self.log_file, "ab") as log:
            log.write(f"\n=== govshare devnet start {time.strftime('%Y-%m-%d %H:%M:%S')}: the private keys ganache "
                      "lists below are its public deterministic TEST KEYS ===\n".encode())
            log.flush()
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=os.environ | {"NODE_OPTIONS": ""}, start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self._wait_ready(process, f"http://127.0.0.1:{port}", timeout)
        return self.state()

    def _wait_ready(self, process: subprocess.Popen, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DevnetError(f"ganache exited with {process.returncode}:\n{self.log_tail()}")
            try:
                chain_id = int(str(_rpc(url, "eth_chainId")), 16)
            except (OSError, ValueError):
                time.sleep(0.2)
                continue
            if chain_id != DEVNET_CHAIN_ID:  # pragma: no cover - the port was free a moment ago
                raise DevnetError(f"{url} answers as chain {chain_id}, not the devnet's {DEVNET_CHAIN_ID}")
            return
        _end_group(process.pid, timeout=10.0, is_alive=lambda: process.poll() is None)
        self.pid_file.unlink(missing_ok=True)
        raise DevnetError(f"ganache did not answer on {url} within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, *, timeout: float = 30.0) -> int:
        """Stop the running ganache gracefully (SIGTERM; SIGKILL after ``timeout``); its pid.
        Raises :class:`DevnetError` if it is not running."""
        pid = self.pid()
        if pid is None:
            raise DevnetError(f"the devnet in {self.data_dir} is not running")
        _end_group(pid, timeout=timeout, is_alive=lambda: _is_ganache_of(pid, self.db_path))
        self.pid_file.unlink(missing_ok=True)
        return pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ------------------------------------------------------------ contracts and keys

    def provision(self) -> tuple[Consortium, bool]:
        """Deploy the sample consortium unless the manifest exists (the committee of three dev
        accounts, threshold 2, and the four sample departments admitted by vote), then write the dev
        keystores that are missing. Returns the consortium and whether it was deployed now.

        The manifest is written last, so an interrupted first provisioning is redone in full."""
        from devtools.sample_consortium import (
            SAMPLE_COMMITTEE,
            SAMPLE_THRESHOLD,
            admit_sample_departments,
        )
        from ledger.chain import Chain
        from ledger.compiler import compile_contracts
        from ledger.deployment import Consortium, Deployment, deploy_consortium

        chain = Chain(self.rpc_url)
        accounts = dev_accounts(DEVNET_ACCOUNTS)
        compilation = compile_contracts()
        if self.manifest_path.is_file():
            consortium = Consortium(chain, Deployment.load(self.manifest_path), compilation)
            try:
                consortium.verify_code()
            except ManifestError as exc:
                raise DevnetError(f"{exc}: the chain in {self.db_path} is not the one {self.manifest_path} describes; "
                                  f"stop the devnet and remove {self.data_dir} to start afresh") from None
            deployed = False
        else:
            committee = [accounts[i] for i in SAMPLE_COMMITTEE]
            deployment = deploy_consortium(chain, committee[0], [m.address for m in committee], SAMPLE_THRESHOLD, compilation)
            consortium = Consortium(chain, deployment, compilation)
            admit_sample_departments(consortium, committee, accounts)
            deployment.save(self.manifest_dir, compilation)
            deployed = True
        self.write_dev_keystores(accounts)
        return consortium, deployed

    def write_dev_keystores(self, accounts: Sequence[Signer] | None = None) -> list[DevKey]:
        """Write the keystores of :func:`dev_keys` that are missing (mode 0600), the dev password
        file and a notice that these are test keys."""
        from ledger.keys import save_keystore

        self.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)
        _write_private(self.password_file, DEV_KEYSTORE_PASSWORD + "\n")
        _write_private(self.keys_dir / "README-TEST-KEYS.txt", _TEST_KEYS_NOTICE)
        keys = dev_keys(accounts)
        for key in keys:
            path = self.key_path(key.name)
            if not path.exists():
                save_keystore(key.signer, path, DEV_KEYSTORE_PASSWORD, iterations=DEV_KEYSTORE_SCRYPT_N)
        return keys


def _rpc(url: str, method: str) -> object:
    rpc = JsonRpc(url, timeout=5.0, max_idle=0)
    try:
        return rpc.call(method, [])
    finally:
        rpc.close()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _is_ganache_of(pid: int, db_path: Path) -> bool:
    """Whether ``pid`` is a live (not zombie) ganache serving ``db_path``: a stale pid file may name
    a pid the system has since given to another process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and b"ganache" in cmdline and str(db_path).encode() in cmdline


def _end_group(pid: int, *, timeout: float, is_alive: Callable[[], bool]) -> None:
    """SIGTERM the process group ``pid`` leads, wait up to ``timeout`` for ``is_alive()`` to turn
    false, then SIGKILL the group."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive():
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (unless it already exists)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
