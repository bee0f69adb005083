"""The shared base of the typed contract clients."""

from __future__ import annotations

from typing import Any

from eth_typing import ChecksumAddress

from ledger.chain import Chain, TxResult
from ledger.events import ChainEvent, EventDecoder
from ledger.keys import Signer


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

    def _call(self, name: str, *args: Any, block: int | str = "latest") -> Any:
        return self.chain.call(self.contract.functions[name](*args), block=block)

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
