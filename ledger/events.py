"""Read and decode contract events in bounded block ranges, sorted by (block, log index)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from ledger.abi import canonical_type
from ledger.chain import Chain

#: Largest block range asked of ``eth_getLogs`` at once (Besu and most providers cap ranges).
DEFAULT_BLOCK_STEP = 2_000


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log."""

    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    log_index: int
    tx_hash: str

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)


class EventDecoder:
    """Decodes logs of any event found in the given ABI entries, matched by topic 0."""

    def __init__(self, abi_entries: Iterable[dict[str, Any]]) -> None:
        self._events: dict[bytes, dict[str, Any]] = {}
        for entry in abi_entries:
            if entry.get("type") == "event" and not entry.get("anonymous"):
                signature = f"{entry['name']}({','.join(canonical_type(p) for p in entry['inputs'])})"
                self._events[keccak(text=signature)] = entry

    def topic(self, name: str) -> bytes:
        for topic, entry in self._events.items():
            if entry["name"] == name:
                return topic
        raise KeyError(name)

    def decode(self, log: Any) -> ChainEvent | None:
        """The decoded event, or None for a log this decoder does not know."""
        topics = [bytes(t) for t in log["topics"]]
        if not topics or topics[0] not in self._events:
            return None
        entry = self._events[topics[0]]
        indexed = [p for p in entry["inputs"] if p["indexed"]]
        plain = [p for p in entry["inputs"] if not p["indexed"]]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:]):
            kind = canonical_type(param)
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                args[param["name"]] = topic  # dynamic indexed values are stored as their hash
            else:
                (args[param["name"]],) = abi_decode([kind], topic)
        values = abi_decode([canonical_type(p) for p in plain], bytes(log["data"]))
        args.update({p["name"]: v for p, v in zip(plain, values)})
        for key, value in args.items():
            if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
                args[key] = to_checksum_address(value)
        return ChainEvent(
            name=entry["name"],
            args=args,
            address=to_checksum_address(log["address"]),
            block_number=int(log["blockNumber"]),
            log_index=int(log["logIndex"]),
            tx_hash="0x" + bytes(log["transactionHash"]).hex(),
        )

    def decode_all(self, logs: Iterable[Any]) -> list[ChainEvent]:
        events = [e for e in (self.decode(log) for log in logs) if e is not None]
        events.sort(key=lambda e: e.position)
        return events


def block_ranges(start: int, end: int, step: int = DEFAULT_BLOCK_STEP) -> Iterator[tuple[int, int]]:
    """Inclusive ranges ``[a, b]`` covering ``start..end`` with at most ``step`` blocks each."""
    if step < 1:
        raise ValueError("step must be at least 1")
    while start <= end:
        stop = min(end, start + step - 1)
        yield start, stop
        start = stop + 1


def read_events(
    chain: Chain,
    decoder: EventDecoder,
    addresses: Sequence[str],
    from_block: int,
    to_block: int | None = None,
    *,
    topics: Sequence[Any] | None = None,
    step: int = DEFAULT_BLOCK_STEP,
) -> Iterator[ChainEvent]:
    """Yield decoded events of ``addresses`` from ``from_block`` to ``to_block`` (default: latest),
    asking for at most ``step`` blocks per ``eth_getLogs`` call; ordered by (block, log index)."""
    last = chain.block_number() if to_block is None else to_block
    for a, b in block_ranges(from_block, last, step):
        query: dict[str, Any] = {"address": list(addresses), "fromBlock": a, "toBlock": b}
        if topics:
            query["topics"] = list(topics)
        logs = chain.get_logs(query)
        yield from decoder.decode_all(logs)
