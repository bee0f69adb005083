"""protocol.receipt: the signature covers every other field, and only its one canonical form counts."""

from __future__ import annotations

import pytest

from ledger.contracts.audit_log import AuditEntry, Outcome, chain_step, record_id
from ledger.keys import generate_signer
from protocol.query import SECP256K1_N
from protocol.receipt import InvalidReceipt, Receipt, receipt_signer

PREVIOUS_HEAD = b"\x55" * 32


def _body(oracle: str, **changes: object) -> dict:
    """A receipt's body whose record hash and chain head follow from its fields (as the oracle makes it)."""
    sequence = 2
    entry = AuditEntry(1, oracle, 1, 1, Outcome.SERVED, 0, 5, b"\x11" * 32, b"\x22" * 32)
    return {"record_id": hex(record_id(oracle, sequence)), "oracle": oracle, "sequence": sequence, "dataset_id": 1,
            "dataset_version": 1, "grant_id": 1, "requester": oracle, "outcome": 0, "reason": 0, "checked_at_block": 5,
            "request_hash": "0x" + "11" * 32, "response_hash": "0x" + "22" * 32, "request_salt": "0x" + "33" * 32,
            "response_salt": "0x" + "44" * 32, "record_hash": "0x" + entry.record_hash().hex(),
            "previous_head": "0x" + PREVIOUS_HEAD.hex(),
            "chain_head": "0x" + chain_step(PREVIOUS_HEAD, record_id(oracle, sequence), entry).hex(), **changes}


def _receipt() -> tuple[dict, str]:
    oracle = generate_signer()
    receipt = Receipt.signed(oracle, **_body(oracle.address))
    return receipt.as_dict(), oracle.address


def test_a_receipt_binds_the_record_and_the_head_it_commits_to() -> None:
    """record_hash is the packed record of the receipt's own fields and chain_head follows from
    previous_head: a receipt whose commitments disagree with its fields is refused, even signed."""
    oracle = generate_signer()
    Receipt.signed(oracle, **_body(oracle.address)).check_binding()
    for changes in ({"outcome": 1}, {"response_hash": "0x" + "00" * 32}, {"record_hash": "0x" + "66" * 32},
                    {"chain_head": "0x" + "66" * 32}, {"previous_head": "0x" + "00" * 32}, {"sequence": 3},
                    {"record_hash": "0x12"}):
        with pytest.raises(InvalidReceipt):
            Receipt.signed(oracle, **_body(oracle.address, **changes)).check_binding()


def test_a_receipt_recovers_its_oracle_and_a_changed_field_does_not() -> None:
    receipt, oracle = _receipt()
    assert receipt_signer(receipt) == oracle
    assert receipt_signer({**receipt, "sequence": 3}) != oracle


@pytest.mark.parametrize("form", ["high s", "v 0/1", "v 29", "short", "no 0x", "not hex", "missing"])
def test_only_the_canonical_signature_form_is_accepted(form: str) -> None:
    """The malleable twin (s' = n - s) and v 0/1 recover the same key, but a receipt has one
    signature: refused, as the oracle refuses them on queries (docs/PROTOCOL.md)."""
    receipt, _ = _receipt()
    sig = bytes.fromhex(receipt["signature"][2:])
    s = int.from_bytes(sig[32:64], "big")
    forged = {
        "high s": "0x" + (sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])).hex(),
        "v 0/1": "0x" + (sig[:64] + bytes([sig[64] - 27])).hex(),
        "v 29": "0x" + (sig[:64] + bytes([29])).hex(),
        "short": "0x" + sig[:64].hex(),
        "no 0x": sig.hex(),
        "not hex": "0x" + "zz" * 65,
    }
    bad = {k: v for k, v in receipt.items() if k != "signature"} if form == "missing" else {**receipt, "signature": forged[form]}
    with pytest.raises(InvalidReceipt):
        receipt_signer(bad)
