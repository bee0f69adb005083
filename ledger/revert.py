"""Decode a contract's revert data into its custom error, by name, with its arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from ledger.abi import canonical_type
from ledger.errors import ContractRevert

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


@dataclass(frozen=True)
class _ErrorAbi:
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]


class ErrorDecoder:
    """Maps 4-byte selectors of every custom error in the given ABIs to a decoder."""

    def __init__(self, abi_entries: Iterable[dict[str, Any]]) -> None:
        self._errors: dict[bytes, _ErrorAbi] = {}
        for entry in abi_entries:
            if entry.get("type") != "error":
                continue
            types = tuple(canonical_type(p) for p in entry["inputs"])
            selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
            names = tuple(p["name"] or f"arg{i}" for i, p in enumerate(entry["inputs"]))
            self._errors[selector] = _ErrorAbi(entry["name"], names, types)

    def decode(self, data: bytes) -> ContractRevert:
        """The :class:`ContractRevert` for raw revert ``data`` (unknown selectors keep their raw bytes)."""
        selector, body = data[:4], data[4:]
        if not data:
            return ContractRevert("EmptyRevert", {}, "", data)
        if selector == _ERROR_STRING:
            (reason,) = abi_decode(["string"], body)
            return ContractRevert("Error", {"reason": reason}, selector.hex(), data)
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], body)
            return ContractRevert("Panic", {"code": code}, selector.hex(), data)
        known = self._errors.get(selector)
        if known is None:
            return ContractRevert("UnknownError", {"data": data}, selector.hex(), data)
        values = [
            to_checksum_address(v) if kind == "address" else v
            for kind, v in zip(known.types, abi_decode(list(known.types), body))
        ]
        return ContractRevert(known.name, dict(zip(known.names, values)), selector.hex(), data)


def revert_data_from(exc: BaseException) -> bytes | None:
    """The raw revert bytes carried by a web3 or JSON-RPC error, if any."""
    data: Any = getattr(exc, "data", None)
    if data is None and exc.args:
        first = exc.args[0]
        if isinstance(first, dict):
            data = first.get("data")
    if isinstance(data, dict):  # ganache and some nodes nest it
        data = data.get("data") or data.get("result") or next(iter(data.values()), None)
        if isinstance(data, dict):
            data = data.get("return") or data.get("result")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        text = data.split()[-1] if " " in data else data
        if text.startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                return None
    return None
