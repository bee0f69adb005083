"""protocol.receipt: the signature covers every other field, and only its one canonical form counts."""

from __future__ import annotations

import pytest

from ledger.keys import generate_signer
from protocol.query import SECP256K1_N
from protocol.receipt import InvalidReceipt, Receipt, receipt_signer


def _receipt() -> tuple[dict, str]:
    oracle = generate_signer()
    receipt = Receipt.signed(oracle, record_id="0x1", oracle=oracle.address, sequence=1, dataset_id=1, dataset_version=1,
                             grant_id=1, requester=oracle.address, outcome=0, reason=0, checked_at_block=5,
                             request_hash="0x" + "11" * 32, response_hash="0x" + "22" * 32,
                             request_salt="0x" + "33" * 32, response_salt="0x" + "44" * 32)
    return receipt.as_dict(), oracle.address


def test_a_receipt_recovers_its_oracle_and_a_changed_field_does_not() -> None:
    receipt, oracle = _receipt()
    assert receipt_signer(receipt) == oracle
    assert receipt_signer({**receipt, "sequence": 2}) != oracle


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
