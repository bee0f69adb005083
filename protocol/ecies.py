"""ECIES over secp256k1: encrypt a result to a requester's Ethereum public key.

Scheme (version 1): an ephemeral secp256k1 key; ECDH with the recipient's public key; HKDF-SHA256
(info = ``b"govshare-ecies-v1"`` + the ephemeral public key) derives a 32-byte key; AES-256-GCM with
a random 96-bit nonce and optional associated data (e.g. the request id, binding the ciphertext to
its request). Wire format: ``0x01 ‖ ephemeral public key (65 bytes, uncompressed) ‖ nonce (12) ‖
ciphertext ‖ tag (16)``. Only the `cryptography` package is used.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.errors import LedgerError

VERSION = 1
_INFO = b"govshare-ecies-v1"
_PUBLIC_LEN, _NONCE_LEN, _TAG_LEN = 65, 12, 16


class DecryptionError(LedgerError, ValueError):
    """The ciphertext is malformed, for another key, or was altered."""


def public_key_bytes(public_key: bytes) -> bytes:
    """Normalise a secp256k1 public key to 65-byte uncompressed form (accepts 64 raw bytes as
    Ethereum tools give them, 65 uncompressed, or 33 compressed)."""
    if len(public_key) == 64:
        public_key = b"\x04" + public_key
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public_key)
    except ValueError as exc:
        raise ValueError(f"not a secp256k1 public key ({len(public_key)} bytes)") from exc
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _derive(shared: bytes, ephemeral_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + ephemeral_public).derive(shared)


def encrypt(recipient_public_key: bytes, plaintext: bytes, associated_data: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` so that only the holder of the matching private key can read it."""
    recipient = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public_key_bytes(recipient_public_key))
    ephemeral = ec.generate_private_key(ec.SECP256K1())
    ephemeral_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    key = _derive(ephemeral.exchange(ec.ECDH(), recipient), ephemeral_public)
    nonce = os.urandom(_NONCE_LEN)
    return bytes([VERSION]) + ephemeral_public + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def decrypt(private_key: bytes, blob: bytes, associated_data: bytes = b"") -> bytes:
    """Decrypt a blob made by :func:`encrypt` with the recipient's 32-byte private key."""
    if len(blob) < 1 + _PUBLIC_LEN + _NONCE_LEN + _TAG_LEN or blob[0] != VERSION:
        raise DecryptionError("not a govshare ECIES v1 ciphertext")
    ephemeral_public = blob[1 : 1 + _PUBLIC_LEN]
    nonce = blob[1 + _PUBLIC_LEN : 1 + _PUBLIC_LEN + _NONCE_LEN]
    try:
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), ephemeral_public)
        own = ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256K1())
        key = _derive(own.exchange(ec.ECDH(), ephemeral), ephemeral_public)
        return AESGCM(key).decrypt(nonce, blob[1 + _PUBLIC_LEN + _NONCE_LEN :], associated_data)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("the ciphertext was not made for this key, or it was altered") from exc
