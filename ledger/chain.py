"""A connection to a JSON-RPC chain: fees, nonces, sending, receipts, reverts decoded by name.

Works unchanged on ganache and on a consortium chain such as Hyperledger Besu (QBFT) with zero gas
price: transactions are legacy with ``gasPrice`` 0 when the chain charges nothing, EIP-1559 when the
latest block has a base fee, and legacy at ``eth_gasPrice`` otherwise.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from ledger.errors import ChainUnavailable, ContractRevert, LedgerError, NonceGap, OutOfGas, TransactionFailed
from ledger.keys import Signer
from ledger.revert import ErrorDecoder, revert_data_from
from ledger.rpc import JsonRpc, RpcErrorAnswer, RpcUnanswered, Web3Provider
from ledger.tls import ClientTls

#: Defaults of a :class:`Chain`'s two timeouts (settings of every service: ``rpc_timeout_seconds`` and
#: ``rpc_receipt_timeout_seconds`` in the oracle's config and the API's settings, ``--rpc-timeout`` and
#: ``--receipt-timeout`` in the CLI): seconds one JSON-RPC call may take, and seconds a sent
#: transaction may take to be mined before it is reported as not mined (never a hang).
DEFAULT_RPC_TIMEOUT_SECONDS = 30.0
DEFAULT_RECEIPT_TIMEOUT_SECONDS = 120.0

#: Seconds between two receipt polls while waiting for a transaction.
RECEIPT_POLL_SECONDS = 0.05

#: Gas added on top of the node's estimate (estimates on some nodes are exact to the unit).
GAS_MARGIN_NUMERATOR, GAS_MARGIN_DENOMINATOR = 12, 10

#: A replacement transaction's fees: the stuck one's times 9/8, plus one (nodes ask for at least 10 %
#: more, geth and ganache alike), or the chain's current fees if they are higher.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 9, 8

#: Seconds the first ``eth_estimateGas`` is given to answer; an unanswered estimate is asked again
#: on a new connection, each time waiting twice as long, all within the chain's ``timeout``.
ESTIMATE_FIRST_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class SentTx:
    """A transaction sent and not yet known to be mined, with what it takes to send it again in its
    place (:meth:`Chain.replace`: same nonce, higher fees)."""

    tx_hash: str
    sender: str
    nonce: int
    to: str
    data: bytes = field(repr=False)
    gas: int
    fees: dict[str, int]


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction and the events it emitted (decoded, in log order)."""

    tx_hash: str
    block_number: int
    gas_used: int
    logs: list[Any] = field(repr=False)
    return_value: Any = None


class Chain:
    """One JSON-RPC endpoint and the per-account state needed to send transactions to it."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
                 receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT_SECONDS, tls: ClientTls | None = None,
                 replace_after: float | None = None) -> None:
        """``tls`` for an https node (:class:`ledger.tls.ClientTls`): the certificate authorities
        trusted instead of the system's (a consortium's own CA) and the client certificate presented
        (mutual TLS). Every call, web3's included, goes through one :class:`ledger.rpc.JsonRpc`
        (:attr:`rpc`). ``replace_after``: seconds after which :meth:`send_call_data` takes a
        transaction that is still not mined as stuck and replaces it (:meth:`replace`), again after as
        long, until ``receipt_timeout``; None never replaces."""
        self.url = url
        self.rpc = JsonRpc(url, timeout=timeout, tls=tls)
        # No silent retries inside web3: callers (the batcher, the oracle) decide how to retry,
        # and a node that is down is reported at once (deny by default).
        self.w3 = Web3(Web3Provider(self.rpc))
        self._timeout = timeout
        self.receipt_timeout = receipt_timeout
        self.replace_after = replace_after
        self._nonces: dict[str, int] = {}
        self._nonce_lock = threading.Lock()
        # Gas estimation and sending, one transaction at a time per connection: ganache 7 can leave
        # an eth_estimateGas unanswered when it arrives while another transaction is being mined.
        # This lock keeps one Chain's own transactions from doing that to each other; when another
        # connection's did (the oracle's batcher is a process of its own), estimate_gas asks again.
        # Sending is quick on real nodes (the receipt is waited for outside this lock).
        self._send_lock = threading.RLock()
        self._chain_id: int | None = None
        self._fee_mode: str | None = None
        self._priority_fee = 0
        self.decoder = ErrorDecoder([])

    # ---------------------------------------------------------------- basics

    @property
    def timeout(self) -> float:
        """Seconds a single JSON-RPC call may take."""
        return self._timeout

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._rpc(lambda: self.w3.eth.chain_id)
        return self._chain_id

    def block_number(self) -> int:
        return self._rpc(lambda: self.w3.eth.block_number)

    def head(self) -> int:
        """The latest block number through a plain keep-alive JSON-RPC call (a small fraction of
        web3's per-call cost): for hot paths that ask on every request."""
        try:
            return int(self.raw_rpc("eth_blockNumber", []), 16)
        except (RpcErrorAnswer, ValueError, TypeError) as exc:
            raise ChainUnavailable(f"cannot read the head of {self.url}: {exc}") from exc

    def raw_rpc(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call without web3's middleware and formatters: the ``result`` as the node
        sent it (hex strings), through :attr:`rpc`. A node that cannot be reached raises
        :class:`ChainUnavailable`; an error answer raises :class:`RpcErrorAnswer` (undecoded: callers
        that need a revert decoded by name repeat the call through web3)."""
        return self.rpc.call(method, params)

    def get_logs(self, query: dict[str, Any]) -> list[Any]:
        """``eth_getLogs`` through web3 (logs with bytes topics and data, ints for positions)."""
        return self._rpc(lambda: self.w3.eth.get_logs(query))

    def code_at(self, address: str, block: int | str = "latest") -> bytes:
        """The runtime code at ``address``."""
        return bytes(self._rpc(lambda: self.w3.eth.get_code(address, block)))

    def estimate_gas(self, call: dict[str, Any]) -> int:
        """The node's ``eth_estimateGas`` for ``call`` (JSON-RPC form: hex quantities). The question
        is only a question, so one left unanswered is asked again on a new connection, first after
        :data:`ESTIMATE_FIRST_WAIT_SECONDS`, then after twice as long each time, within the chain's
        ``timeout`` in all; then :class:`ChainUnavailable`. (ganache 7 drops an estimate now and
        then while transactions from other connections are being mined; a loaded real node that is
        merely slow gets its full ``timeout``.) A node that refuses the connection fails at once,
        and an error answer (a revert) raises :class:`RpcErrorAnswer`."""
        deadline = time.monotonic() + self._timeout
        wait = min(ESTIMATE_FIRST_WAIT_SECONDS, self._timeout)
        while True:
            try:
                return int(self.rpc.call("eth_estimateGas", [call], timeout=wait), 16)
            except RpcUnanswered as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0.05:
                    raise ChainUnavailable(f"{self.url} did not answer eth_estimateGas within {self._timeout:.0f}s") from exc
                wait = min(2 * wait, remaining)

    def send_call_data(self, signer: Signer, to: str, data: bytes, *, gas: int | None = None,
                       replace_after: float | None = None) -> TxResult:
        """Send ``data`` to ``to`` from ``signer`` and wait for success, entirely over plain JSON-RPC:
        the lean path for a sender that transacts all the time (the oracle's batcher spent most of
        its CPU in web3's formatters). The returned logs are the node's raw log objects (hex strings).

        Without ``gas`` the node estimates it (plus a margin). Any error answer (a revert at
        estimation, a refused send) raises :class:`RpcErrorAnswer` before anything is signed or
        after nothing was accepted, so the caller can repeat the call through :meth:`transact` to
        get the revert decoded by name; a transaction mined with status 0 is replayed through web3
        and raises the decoded revert, or :class:`OutOfGas` if it only lacked gas. A transaction
        still unmined after ``replace_after`` seconds (default: the chain's) is sent again in its
        own place (:meth:`replace`), and so on until ``receipt_timeout`` (then :meth:`not_mined`)."""
        replace_after = self.replace_after if replace_after is None else replace_after
        versions = [self.send_tx(signer, to, data, gas=gas)]
        started = last_sent = time.monotonic()
        while (result := self.mined_any([v.tx_hash for v in versions])) is None:
            now = time.monotonic()
            if now - started > self.receipt_timeout:
                raise self.not_mined(versions[-1].tx_hash, self.receipt_timeout)
            if replace_after is not None and now - last_sent > replace_after:
                if (gap := self.nonce_gap(versions[0])) is not None:
                    raise gap
                replacement = self.replace(signer, versions[-1])
                if replacement.tx_hash not in {v.tx_hash for v in versions}:
                    versions.append(replacement)
                last_sent = now
            time.sleep(RECEIPT_POLL_SECONDS)
        return result

    def mined_any(self, tx_hashes: list[str]) -> TxResult | None:
        """:meth:`mined` for the versions of one transaction (the first sent, its replacements):
        the result of the one mined successfully, None while none is mined; if only failed ones
        are, the newest one's failure is raised. (Only one version can be mined on a sound chain;
        ganache 7 was seen mining a transaction and its replacement, same nonce, in one block, the
        second failing: the success is what counts.)"""
        failure: LedgerError | None = None
        for tx_hash in reversed(tx_hashes):
            try:
                result = self.mined(tx_hash)
            except (ContractRevert, TransactionFailed) as exc:
                failure = failure or exc
                continue
            if result is not None:
                return result
        if failure is not None:
            raise failure
        return None

    def not_mined(self, tx_hash: str, waited: float) -> TransactionFailed:
        """The error for a transaction not mined within ``waited`` seconds, saying what the node
        knows of it (best effort): dropped, or held unmined behind a nonce gap, or held although it
        is next in line (ganache 7 can strand a transaction so: README.md, "A transaction that is never mined")."""
        detail = ""
        try:
            tx = self.raw_rpc("eth_getTransactionByHash", [tx_hash])
            if tx is None:
                detail = ": the node does not know it (dropped from its pool); send it again"
            elif tx.get("blockNumber") is None:
                nonce = int(tx["nonce"], 16)
                mined = int(self.raw_rpc("eth_getTransactionCount", [tx["from"], "latest"]), 16)
                detail = (f": the node holds it unmined (nonce {nonce} of {tx['from']}, whose next nonce on chain is "
                          f"{mined}{'; it is next in line, so the node is not mining it' if nonce == mined else ''}); "
                          "replace it (same nonce, higher fee) or restart the node")
        except (ChainUnavailable, RpcErrorAnswer, KeyError, TypeError, ValueError):
            pass  # the timeout is the error; what the node says is only a help
        return TransactionFailed(f"transaction {tx_hash} not mined in {waited:.0f} s{detail}")

    def nonce_gap(self, sent: SentTx) -> NonceGap | None:
        """The error for ``sent`` (not mined) if the node's next nonce for its sender, counting the
        transactions in its pool, is below ``sent``'s: the node will never mine it, since the
        transactions before it are gone (the chain rolled back past them, or a reorg dropped them).
        The sender's cached nonce is then forgotten (re-read on the next send). None otherwise (it
        may still be mined, or replaced: :meth:`replace`)."""
        pending = int(self.raw_rpc("eth_getTransactionCount", [sent.sender, "pending"]), 16)
        if pending >= sent.nonce:
            return None
        self.reset_nonce(sent.sender)
        return NonceGap(f"transaction {sent.tx_hash} (nonce {sent.nonce} of {sent.sender}) cannot be mined: the node's "
                        f"next nonce for its sender is {pending}, so the chain no longer holds the transactions before it "
                        "(a rollback or reorg)")

    def submit_call_data(self, signer: Signer, to: str, data: bytes, *, gas: int | None = None) -> str:
        """The sending half of :meth:`send_call_data`: sign with the next nonce, send, and return the
        transaction's hash without waiting for it to be mined (:meth:`mined` tells when it is). A
        sender may have several in flight: the node mines them in nonce order."""
        return self.send_tx(signer, to, data, gas=gas).tx_hash

    def send_tx(self, signer: Signer, to: str, data: bytes, *, gas: int | None = None) -> SentTx:
        """:meth:`submit_call_data`, returning what :meth:`replace` needs besides the hash."""
        with self._send_lock:  # estimate and send as one step per connection (see _send_lock)
            fees = {k: hex(v) for k, v in self._fees().items()}
            call = {"from": signer.address, "to": to, "data": "0x" + data.hex(), **fees}
            if gas is None:
                gas = _with_margin(self.estimate_gas(call))
            tx = {"to": to, "data": data, "value": 0, "chainId": self.chain_id,
                  **{k: int(v, 16) for k, v in fees.items()}}
            with self._nonce_lock:
                nonce = self._next_nonce(signer.address)
                raw = signer.sign_transaction({**tx, "gas": gas, "nonce": nonce}).raw_transaction
                try:
                    tx_hash = self.raw_rpc("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
                except RpcErrorAnswer:
                    self._nonces.pop(signer.address, None)  # resynchronise from the node
                    raise
                self._nonces[signer.address] = nonce + 1
        return SentTx(str(tx_hash), signer.address, nonce, to, data, gas, {k: int(v, 16) for k, v in fees.items()})

    def replace(self, signer: Signer, stuck: SentTx) -> SentTx:
        """Send ``stuck`` again in its own place: the same nonce, call and gas, with fees raised by
        an eighth (at least the chain's current ones) where the chain charges fees, and the very
        same transaction where gas is free (a node that dropped it gets it back). The replacement,
        or ``stuck`` itself if the node refuses it because the nonce is used (``stuck`` or an
        earlier replacement was mined meanwhile: :meth:`mined_any` tells which), already known, being
        mined, or not outbid (the next round bumps again).

        Why: a transaction a node leaves unmined holds every later one of its sender. ganache 7
        strands one for good when it arrives while the sender's previous transaction is being mined
        (it files it among future-nonce transactions and never looks at them again); a consortium
        node may drop one from a full pool. Other error answers raise :class:`RpcErrorAnswer`."""
        with self._send_lock:
            fees = _bumped(stuck.fees, self._fees())
            tx = {"to": stuck.to, "data": stuck.data, "value": 0, "chainId": self.chain_id, "gas": stuck.gas,
                  "nonce": stuck.nonce, **fees}
            raw = signer.sign_transaction(tx).raw_transaction
            try:
                tx_hash = self.raw_rpc("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
            except RpcErrorAnswer as exc:
                text = str(exc).lower()
                if _is_nonce_error(exc) or any(word in text for word in ("known", "already", "underpriced", "locked")):
                    return stuck  # mined, known, or being mined: the versions sent so far are what counts
                raise
        return SentTx(str(tx_hash), stuck.sender, stuck.nonce, stuck.to, stuck.data, stuck.gas, fees)

    def mined(self, tx_hash: str) -> TxResult | None:
        """The result of a transaction sent with :meth:`submit_call_data` if it is mined (one
        ``eth_getTransactionReceipt``), None if not yet; a transaction mined with status 0 raises its
        decoded failure, as :meth:`send_call_data` does."""
        receipt = self.raw_rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:
            return None
        if int(receipt["status"], 16) != 1:
            self.wait(tx_hash)  # raises the decoded failure
        return TxResult(tx_hash=tx_hash, block_number=int(receipt["blockNumber"], 16),
                        gas_used=int(receipt["gasUsed"], 16), logs=receipt["logs"])

    def block_timestamp(self, block: int | str = "latest") -> int:
        return int(self._rpc(lambda: self.w3.eth.get_block(block))["timestamp"])

    def use_errors_of(self, abi_entries: Iterable[dict[str, Any]]) -> None:
        """Decode reverts with the custom errors of these ABI entries."""
        self.decoder = ErrorDecoder(abi_entries)

    def _rpc(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ChainUnavailable:
            raise
        except OSError as exc:  # any other transport failure on web3's side
            raise ChainUnavailable(f"cannot reach {self.url}: {exc}") from exc

    # ---------------------------------------------------------------- calls

    def call(self, fn: Any, *, block: int | str = "latest") -> Any:
        """Run a contract view function, turning a revert into :class:`ContractRevert`."""
        try:
            return self._rpc(lambda: fn.call(block_identifier=block))
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._revert(exc) from exc

    # ---------------------------------------------------------------- transactions

    def transact(self, signer: Signer, fn: Any, *, gas: int | None = None) -> TxResult:
        """Send ``fn`` (a bound web3 contract function) from ``signer`` and wait for its receipt."""
        tx: dict[str, Any] = {"from": signer.address, "chainId": self.chain_id}
        return self._send(signer, tx, lambda t: fn.build_transaction(t), gas=gas)

    def deploy(self, signer: Signer, contract_factory: Any, *args: Any) -> tuple[ChecksumAddress, TxResult]:
        """Deploy a contract (a web3 contract factory) with constructor ``args``."""
        tx: dict[str, Any] = {"from": signer.address, "chainId": self.chain_id}
        result = self._send(signer, tx, lambda t: contract_factory.constructor(*args).build_transaction(t))
        receipt = self.w3.eth.get_transaction_receipt(result.tx_hash)
        return Web3.to_checksum_address(receipt["contractAddress"]), result

    def _send(self, signer: Signer, base: dict[str, Any], build: Callable[[dict], dict], *, gas: int | None = None) -> TxResult:
        with self._send_lock:  # estimate and send as one step per connection (see _send_lock)
            fees = self._fees()
            try:
                tx = self._rpc(lambda: build({**base, **fees, "gas": gas or 0}))  # with gas, web3 asks the node nothing
                if not gas:
                    try:
                        gas = _with_margin(self.estimate_gas(_as_call(tx)))
                    except RpcErrorAnswer:
                        # Refused (a revert, most often): asked again through web3, whose error carries
                        # the revert data to decode by name; should the state have changed meanwhile
                        # and the estimate succeed, that estimate is used.
                        tx = self._rpc(lambda: build({**base, **fees}))
                        gas = _with_margin(int(tx["gas"]))
            except (ContractLogicError, Web3RPCError) as exc:
                raise self._revert(exc) from exc
            tx_hash = self._submit(signer, tx, gas)
        return self.wait(tx_hash)

    def _submit(self, signer: Signer, tx: dict[str, Any], gas: int) -> Any:
        """Sign with the next nonce and send; a nonce the node rejects (another client sent from the
        same account) is re-read from the node and the send retried once."""
        for attempt in (1, 2):
            with self._nonce_lock:
                nonce = self._next_nonce(signer.address)
                raw = signer.sign_transaction({**tx, "gas": gas, "nonce": nonce}).raw_transaction
                try:
                    tx_hash = self._rpc(lambda: self.w3.eth.send_raw_transaction(raw))
                except (ContractLogicError, Web3RPCError) as exc:
                    self._nonces.pop(signer.address, None)  # resynchronise from the node
                    if attempt == 1 and _is_nonce_error(exc):
                        continue
                    revert = self._revert(exc)
                    if isinstance(revert, ContractRevert) and revert.raw:
                        raise revert from exc
                    raise TransactionFailed(str(exc)) from exc
                self._nonces[signer.address] = nonce + 1
                return tx_hash
        raise AssertionError("unreachable")

    def wait(self, tx_hash: bytes | str) -> TxResult:
        """Wait for a transaction's receipt; a failed one is replayed to decode why."""
        try:
            receipt = self._rpc(lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout,
                                                                                  poll_latency=RECEIPT_POLL_SECONDS))
        except TimeExhausted as exc:
            raise self.not_mined("0x" + HexBytes(tx_hash).hex().removeprefix("0x"), self.receipt_timeout) from exc
        result = TxResult(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            logs=list(receipt["logs"]),
        )
        if receipt["status"] != 1:
            raise self._replay_failure(receipt)
        return result

    def _replay_failure(self, receipt: Any) -> LedgerFailure:
        tx = self.w3.eth.get_transaction(receipt["transactionHash"])
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx and tx[k] is not None}
        call["data"] = tx.get("input", tx.get("data"))
        try:
            self.w3.eth.call(call, block_identifier=receipt["blockNumber"] - 1)
        except (ContractLogicError, Web3RPCError) as exc:
            return self._revert(exc)
        if receipt["gasUsed"] * 64 >= tx["gas"] * 63:  # all of it, or all but what a failed inner call leaves (EIP-150)
            return OutOfGas(f"transaction {receipt['transactionHash'].hex()} ran out of gas (limit {tx['gas']})")
        return TransactionFailed(f"transaction {receipt['transactionHash'].hex()} failed (status 0, gas used {receipt['gasUsed']})")

    def _next_nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = self._rpc(lambda: self.w3.eth.get_transaction_count(address, "pending"))
        return self._nonces[address]

    def reset_nonce(self, address: str) -> None:
        """Forget the cached nonce of ``address`` (re-read from the node on the next send)."""
        with self._nonce_lock:
            self._nonces.pop(address, None)

    def _fees(self) -> dict[str, int]:
        """Fee fields for the next transaction. The chain's fee mode is detected once per
        connection (a chain does not switch between free gas, legacy and EIP-1559 at run time);
        on an EIP-1559 chain the latest base fee is read for every transaction (over plain
        JSON-RPC: the anchoring path sends all the time)."""
        if self._fee_mode is None:
            gas_price = int(self._rpc(lambda: self.w3.eth.gas_price))
            base_fee = self._rpc(lambda: self.w3.eth.get_block("latest")).get("baseFeePerGas")
            if gas_price == 0:
                self._fee_mode = "free"  # free-gas consortium chain (Besu with min-gas-price 0)
            elif base_fee is None:
                self._fee_mode = "legacy"
            else:
                self._fee_mode = "eip1559"
                try:
                    self._priority_fee = int(self._rpc(lambda: self.w3.eth.max_priority_fee))
                except (Web3RPCError, ValueError):
                    self._priority_fee = 10**9
        if self._fee_mode == "free":
            return {"gasPrice": 0}
        if self._fee_mode == "legacy":
            return {"gasPrice": int(self.raw_rpc("eth_gasPrice", []), 16)}
        base_fee = int(self.raw_rpc("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
        return {"maxFeePerGas": 2 * base_fee + self._priority_fee, "maxPriorityFeePerGas": self._priority_fee}

    def _revert(self, exc: BaseException) -> ContractRevert | TransactionFailed:
        data = revert_data_from(exc)
        if data is None:
            return TransactionFailed(str(exc))
        return self.decoder.decode(data)


LedgerFailure = ContractRevert | TransactionFailed


def _bumped(old: dict[str, int], current: dict[str, int]) -> dict[str, int]:
    """The fees of a replacement: ``old``'s raised by :data:`FEE_BUMP_NUMERATOR` /
    :data:`FEE_BUMP_DENOMINATOR` plus one, or ``current`` where higher; free gas stays free."""
    if old.get("gasPrice") == 0 and current.get("gasPrice", 0) == 0:
        return dict(old)

    def bump(value: int) -> int:
        return value * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR + 1

    if "gasPrice" in old:
        return {"gasPrice": max(bump(old["gasPrice"]), current.get("gasPrice", 0))}
    priority = max(bump(old["maxPriorityFeePerGas"]), current.get("maxPriorityFeePerGas", 0))
    return {"maxFeePerGas": max(bump(old["maxFeePerGas"]), current.get("maxFeePerGas", 0), priority),
            "maxPriorityFeePerGas": priority}


def _with_margin(estimate: int) -> int:
    return estimate * GAS_MARGIN_NUMERATOR // GAS_MARGIN_DENOMINATOR + 10_000


def _as_call(tx: dict[str, Any]) -> dict[str, Any]:
    """A transaction web3 built (ints, checksum addresses) as an ``eth_call``/``eth_estimateGas``
    object: the sender, recipient (none for a deployment), data, value and fee fields."""
    call: dict[str, Any] = {"from": tx["from"], "data": tx.get("data", "0x")}
    if tx.get("to"):
        call["to"] = tx["to"]
    for key in ("value", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
        if key in tx:
            call[key] = hex(tx[key])
    return call


def _is_nonce_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    # geth/Besu: "nonce too low"; ganache: "the tx doesn't have the correct nonce"
    return "nonce" in text and any(word in text for word in ("too low", "already", "correct", "invalid", "used"))
