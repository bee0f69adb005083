"""ledger.revert: revert data decoded by selector into the contract's custom error by name."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

from ledger.compiler import CompilationResult
from ledger.revert import ErrorDecoder, revert_data_from


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def test_custom_error_decoded_with_named_arguments(compilation: CompilationResult) -> None:
    decoder = ErrorDecoder(compilation.all_abis())
    data = _selector("AuditLogSequenceMismatch(address,uint64,uint64)") + encode(
        ["address", "uint64", "uint64"], ["0x" + "11" * 20, 5, 9]
    )
    error = decoder.decode(data)
    assert error.name == "AuditLogSequenceMismatch"
    assert error.args == {"oracle": "0x" + "11" * 20, "expected": 5, "given": 9}
    assert error.selector == data[:4].hex()


def test_string_and_panic_reverts() -> None:
    decoder = ErrorDecoder([])
    reason = decoder.decode(bytes.fromhex("08c379a0") + encode(["string"], ["boom"]))
    assert (reason.name, reason.args) == ("Error", {"reason": "boom"})
    panic = decoder.decode(bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]))
    assert (panic.name, panic.args) == ("Panic", {"code": 0x11})


def test_unknown_selector_keeps_raw_bytes() -> None:
    error = ErrorDecoder([]).decode(b"\xde\xad\xbe\xef" + b"\x00" * 32)
    assert error.name == "UnknownError"
    assert error.raw == b"\xde\xad\xbe\xef" + b"\x00" * 32


def test_every_contract_error_has_a_distinct_selector(compilation: CompilationResult) -> None:
    """Errors are prefixed by their contract's name, so no two collide in the shared decoder."""
    names = {e["name"] for e in compilation.all_abis() if e.get("type") == "error"}
    selectors = {_selector(n) for n in names}  # names only: a collision would need equal names
    assert len(names) == len(selectors)
    decoder = ErrorDecoder(compilation.all_abis())
    assert len(decoder._errors) >= len([n for n in names if not n.startswith("AccessControl")])


def test_revert_data_extracted_from_node_error_shapes() -> None:
    class Err(Exception):
        def __init__(self, data: object) -> None:
            super().__init__("execution reverted")
            self.data = data

    assert revert_data_from(Err("0xdeadbeef")) == b"\xde\xad\xbe\xef"
    assert revert_data_from(Err({"data": "0x01"})) == b"\x01"
    assert revert_data_from(Exception({"code": 3, "data": "0x02"})) == b"\x02"
    assert revert_data_from(Err("not hex")) is None
    assert revert_data_from(Exception("plain")) is None
