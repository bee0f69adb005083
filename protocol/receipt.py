"""The oracle's receipt: what it promises about one access, signed with its ORACLE key.

A receipt is a flat JSON object with snake_case keys (:data:`RECEIPT_FIELDS`). The signature
covers every other field: ``signature = EIP-191 personal_sign(keccak256(canonical_json(body)))``,
i.e. the signer signs ``"\\x19Ethereum Signed Message:\\n32" ‖ digest`` where ``body`` is the receipt
without ``signature``; 65 bytes ``r ‖ s ‖ v`` (v 27/28, low s), 0x-hex. :func:`receipt_signer` refuses
any other form (v 0/1, a high ``s``, the malleable twin of a valid signature), as OpenZeppelin's
``ECDSA`` and the oracle's check of query signatures do, so one receipt has one signature. A requester checks the signer is an
account holding ORACLE for the provider department on chain.

The receipt binds what the oracle will anchor at its sequence: ``record_hash`` is ``keccak256`` of the
128-byte packed record (``AuditLog.appendRecords``'s layout, :meth:`AuditEntry.packed`) made of the
receipt's own fields, and ``chain_head`` the oracle's hash-chain head after that record,
``chain_step(previous_head, record_id, record)``. Anyone holding the receipt checks both locally
(:meth:`Receipt.check_binding`); an auditor then checks the chain holds exactly that record hash and
head at that oracle and sequence (``govshare audit verify --receipts DIR``): a record altered, dropped
or replaced before anchoring is then proven by the oracle's own signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature, ValidationError

from ledger.contracts.audit_log import AuditEntry, Outcome, chain_step, record_id, split_record_id
from ledger.errors import LedgerError
from ledger.hashing import canonical_hash
from ledger.keys import Signer
from protocol.query import SECP256K1_HALF_N, SECP256K1_N

__all__ = ["RECEIPT_FIELDS", "InvalidReceipt", "Receipt", "receipt_signer"]


class InvalidReceipt(LedgerError, ValueError):
    """A receipt is not an object of the receipt's fields, or its signature recovers no address."""


@dataclass(frozen=True)
class Receipt:
    """What the oracle promises about one access (the wire form's keys are the field names)."""

    record_id: str  # hex of oracle << 64 | sequence, "0x..."
    oracle: str  # the oracle's checksummed address
    sequence: int
    dataset_id: int
    dataset_version: int
    grant_id: int
    requester: str
    outcome: int  # ledger.contracts.audit_log.Outcome
    reason: int  # ledger.contracts.grants.AccessReason (0..63) or ledger.contracts.audit_log.OracleReason (64..255)
    checked_at_block: int
    request_hash: str
    response_hash: str
    request_salt: str
    response_salt: str  # "" when nothing was served
    record_hash: str  # keccak256 of the packed record anchored at this sequence
    previous_head: str  # the oracle's hash-chain head before this record (after sequence - 1)
    chain_head: str  # the head after it: chain_step(previous_head, record_id, record)
    signature: str = ""

    @classmethod
    def signed(cls, signer: Signer, **body: Any) -> Receipt:
        """The receipt of ``body`` (every field but the signature), signed by ``signer``."""
        signature = signer.sign_eip191_hash(canonical_hash(body))
        return cls(**body, signature="0x" + signature.hex())

    def body(self) -> dict[str, Any]:
        """Every field but the signature (what the signature covers)."""
        data = self.as_dict()
        del data["signature"]
        return data

    def as_dict(self) -> dict[str, Any]:
        """The wire form."""
        return dict(self.__dict__)  # flat, immutable values: no deep copy needed

    def digest(self) -> bytes:
        """``keccak256(canonical_json(body))``: the 32 bytes the oracle signs (EIP-191)."""
        return canonical_hash(self.body())

    def signer(self) -> str:
        """The checksummed address whose key made :attr:`signature` (:func:`receipt_signer`)."""
        return receipt_signer(self.as_dict())

    def entry(self) -> AuditEntry:
        """The audit record this receipt says will be anchored at its sequence."""
        try:
            return AuditEntry(self.grant_id, self.requester, self.dataset_id, self.dataset_version, Outcome(self.outcome),
                              self.reason, self.checked_at_block, _bytes32(self.request_hash, "request_hash"),
                              _bytes32(self.response_hash, "response_hash"))
        except (ValueError, TypeError) as exc:
            raise InvalidReceipt(f"the receipt does not describe an audit record: {exc}") from None

    def check_binding(self) -> None:
        """Check what the receipt commits to is consistent in itself: ``record_id`` names ``oracle``
        and ``sequence``, ``record_hash`` is the hash of the packed record of its fields, and
        ``chain_head`` follows from ``previous_head`` and that record. :class:`InvalidReceipt` if not
        (the signer's commitment is then self-contradictory)."""
        entry = self.entry()
        try:
            oracle, sequence = split_record_id(int(self.record_id, 16))
            if oracle.lower() != str(self.oracle).lower() or sequence != self.sequence:
                raise InvalidReceipt(f"record_id {self.record_id} does not name oracle {self.oracle} and sequence {self.sequence}")
            if _bytes32(self.record_hash, "record_hash") != entry.record_hash():
                raise InvalidReceipt("record_hash is not the hash of the packed record the receipt describes")
            step = chain_step(_bytes32(self.previous_head, "previous_head"), record_id(self.oracle, self.sequence), entry)
            if _bytes32(self.chain_head, "chain_head") != step:
                raise InvalidReceipt("chain_head does not follow from previous_head and the receipt's record")
        except InvalidReceipt:
            raise
        except (ValueError, TypeError) as exc:
            raise InvalidReceipt(f"the receipt's record binding cannot be checked: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        """A receipt from its wire form; :class:`InvalidReceipt` for missing or unknown keys."""
        if not isinstance(data, Mapping) or set(data) != set(RECEIPT_FIELDS):
            keys = set(data) if isinstance(data, Mapping) else set()
            raise InvalidReceipt(f"receipt keys: missing {sorted(set(RECEIPT_FIELDS) - keys)}, "
                                 f"unknown {sorted(map(str, keys - set(RECEIPT_FIELDS)))}")
        return cls(**data)


#: The receipt's keys on the wire, in declaration order.
RECEIPT_FIELDS = tuple(f.name for f in fields(Receipt))


def receipt_signer(receipt: Mapping[str, Any]) -> str:
    """The address that signed a receipt in its wire form (as a requester or an auditor checks it).
    Raises :class:`InvalidReceipt` when there is no signature, it is not 0x and 65 bytes ``r ‖ s ‖ v``
    with v 27/28 and a low ``s``, or it recovers no address."""
    body = {k: v for k, v in receipt.items() if k != "signature"}
    try:
        signature = receipt["signature"]
        _check_signature_form(signature)
        return Account.recover_message(encode_defunct(primitive=canonical_hash(body)), signature=signature)
    except (KeyError, ValueError, TypeError, BadSignature, ValidationError) as exc:
        raise InvalidReceipt(f"the receipt's signature recovers no address: {type(exc).__name__}: {exc}") from None


def _bytes32(value: Any, name: str) -> bytes:
    """The 32 bytes of a ``0x`` + 64 hex digits field; ``ValueError`` otherwise."""
    if not isinstance(value, str) or len(value) != 66 or value[:2] != "0x":
        raise ValueError(f"{name} is not 0x and 32 bytes of hex")
    return bytes.fromhex(value[2:])


def _check_signature_form(signature: Any) -> None:
    """``ValueError`` unless ``signature`` is ``0x`` + 130 hex digits of ``r ‖ s ‖ v`` with 0 < r < n,
    0 < s <= n/2 and v 27 or 28 (the one form the oracle signs in)."""
    if not isinstance(signature, str) or len(signature) != 132 or signature[:2] != "0x":
        raise ValueError("the signature is not 0x and 65 bytes of hex")
    raw = bytes.fromhex(signature[2:])
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (27, 28):
        raise ValueError(f"the signature's v is {v}, not 27 or 28")
    if not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_HALF_N:
        raise ValueError("the signature's r or s is out of range, or s is in the upper half of the curve order (malleable)")
