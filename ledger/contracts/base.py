"""The shared base of the typed contract clients."""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_typing import ChecksumAddress
from eth_utils import keccak

from ledger.abi import canonical_type
from ledger.chain import Chain, TxResult
from ledger.events import ChainEvent, EventDecoder
from ledger.keys import Signer
from ledger.rpc import RpcErrorAnswer


class ContractClient:
    """A thin typed wrapper over one deployed contract. Subclasses expose named methods; callers
    never see ABI dictionaries. Transaction methods take the sending :class:`Signer` first."""

    def __init__(
        self,
        chain: Chain,
        address: ChecksumAddress,
        abi: list[dict[str, Any]],
        events: EventDecoder,
        *,
        from_block: int = 0,
    ) -> None:
        self.chain = chain
        self.from_block = from_block  # the deployment block: no event of this contract is older
        self.address = address
        self.contract = chain.w3.eth.contract(address=address, abi=abi)
        self.events = events
        self._plain: dict[str, tuple[bytes, list[str], list[str]]] = {}

    def _call(self, name: str, *args: Any, block: int | str = "latest") -> Any:
        return self.chain.call(self.contract.functions[name](*args), block=block)

    def _plain_call(self, name: str, *args: Any, block: int | str = "latest") -> Any:
        """:meth:`_call` over plain JSON-RPC, for views on a hot path: the arguments encoded and the
        result decoded with eth_abi from the contract's ABI, no web3 middleware. Addresses come
        back lowercase. A revert is asked again through :meth:`_call`, which decodes it by name."""
        selector, inputs, outputs = self._plain_abi(name)
        call = {"to": self.address, "data": "0x" + (selector + abi_encode(inputs, args)).hex()}
        try:
            result = self.chain.raw_rpc("eth_call", [call, hex(block) if isinstance(block, int) else block])
        except RpcErrorAnswer:
            return self._call(name, *args, block=block)
        values = abi_decode(outputs, bytes.fromhex(result[2:]))
        return values[0] if len(values) == 1 else values

    def _plain_abi(self, name: str) -> tuple[bytes, list[str], list[str]]:
        cached = self._plain.get(name)
        if cached is None:
            (entry,) = [e for e in self.contract.abi if e.get("type") == "function" and e["name"] == name]
            inputs = [canonical_type(p) for p in entry["inputs"]]
            cached = (keccak(text=f"{name}({','.join(inputs)})")[:4], inputs, [canonical_type(p) for p in entry["outputs"]])
            self._plain[name] = cached
        return cached

    def _transact(self, signer: Signer, name: str, *args: Any, gas: int | None = None) -> TxResult:
        result = self.chain.transact(signer, self.contract.functions[name](*args), gas=gas)
        return TxResult(
            tx_hash=result.tx_hash,
            block_number=result.block_number,
            gas_used=result.gas_used,
            logs=self.events.decode_all(result.logs),
        )

    @staticmethod
    def event(result: TxResult, name: str) -> ChainEvent:
        """The first event called ``name`` in a transaction's result (KeyError if none)."""
        for event in result.logs:
            if event.name == name:
                return event
        raise KeyError(f"transaction {result.tx_hash} emitted no {name}")

    @staticmethod
    def events_named(result: TxResult, name: str) -> list[ChainEvent]:
        return [e for e in result.logs if e.name == name]
