"""protocol.ecies: results encrypted to a requester's Ethereum key, readable only with its private key."""

from __future__ import annotations

import pytest
from eth_keys import keys

from ledger.keys import generate_signer
from protocol.ecies import DecryptionError, decrypt, encrypt, public_key_bytes


def _keypair() -> tuple[bytes, bytes]:
    signer = generate_signer()
    private = bytes(signer.account.key)
    return private, keys.PrivateKey(private).public_key.to_bytes()  # 64 raw bytes, as Ethereum gives it


def test_round_trip_with_ethereum_key_and_associated_data() -> None:
    private, public = _keypair()
    blob = encrypt(public, "纳税人 data".encode(), b"request-7")
    assert decrypt(private, blob, b"request-7") == "纳税人 data".encode()
    assert blob[0] == 1 and len(blob) == 1 + 65 + 12 + len("纳税人 data".encode()) + 16


def test_each_encryption_is_fresh() -> None:
    _, public = _keypair()
    assert encrypt(public, b"same") != encrypt(public, b"same")


def test_wrong_key_altered_blob_or_wrong_context_fail() -> None:
    private, public = _keypair()
    other, _ = _keypair()
    blob = encrypt(public, b"secret", b"ctx")
    with pytest.raises(DecryptionError):
        decrypt(other, blob, b"ctx")
    with pytest.raises(DecryptionError):
        decrypt(private, blob, b"another request")
    tampered = bytearray(blob)
    tampered[-20] ^= 1
    with pytest.raises(DecryptionError):
        decrypt(private, bytes(tampered), b"ctx")
    with pytest.raises(DecryptionError):
        decrypt(private, b"\x02" + blob[1:], b"ctx")
    with pytest.raises(DecryptionError):
        decrypt(private, b"\x01short", b"ctx")


def test_public_key_forms() -> None:
    _, public = _keypair()
    assert public_key_bytes(public) == b"\x04" + public
    assert public_key_bytes(b"\x04" + public) == b"\x04" + public
    with pytest.raises(ValueError):
        public_key_bytes(b"\x04" + b"\x01" * 64)
