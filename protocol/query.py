"""Signed queries: the EIP-712 form in which a requester asks a provider's oracle for data.

A :class:`Query` names who asks (``requester``, an operator of ``requester_dept``), under which grant,
for which fields of which dataset, a commitment to the parameters (``params_hash``, the salted
canonical hash :func:`protocol.commitments.params_hash` of them, so the audit log can name them
without showing them), a nonce (the oracle refuses replays) and a deadline (unix seconds). A
:class:`SignedQuery` is what a requester posts to the oracle (``POST /v1/query``): the query, its
signature, the parameters and their salt.

EIP-712 (identical to ``QueryRequests.hashQuery``; a test shows both agree):

* domain: ``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)`` with
  name ``"govshare"``, version ``"1"``, the chain id and the QueryRequests contract address;
* type: ``Query(address requester,uint32 requesterDept,uint64 datasetId,uint64 grantId,uint256 fields,
  bytes32 paramsHash,uint256 nonce,uint64 deadline)``;
* digest: ``keccak256("\\x19\\x01" ‖ domainSeparator ‖ keccak256(typeHash ‖ abi.encode(fields...)))``.

:func:`recover_query_signer` runs on the oracle's hot path for every request: the type hash is a
constant, the domain separator is cached per (chain id, contract), the struct is packed by hand
(every member is a static 32-byte word) and the key is recovered with libsecp256k1 (``coincurve``);
without coincurve it falls back to eth_account. Signatures are refused, as OpenZeppelin's ``ECDSA``
refuses them, when malformed, when ``s`` is in the upper half of the curve order (malleable) or when
``v`` is not 27/28.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from eth_utils import keccak, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field

from ledger.errors import LedgerError
from ledger.hashing import keccak as _keccak
from ledger.json_limits import loads
from ledger.keys import Signer
from protocol.commitments import params_hash

try:
    from coincurve import PublicKey as _PublicKey
except ImportError:  # pragma: no cover - coincurve is a declared dependency
    _PublicKey = None

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "InvalidQuery",
    "InvalidSignature",
    "MAX_PARAMS",
    "MAX_SALT_BYTES",
    "MIN_SALT_BYTES",
    "QUERY_TYPE",
    "QUERY_TYPEHASH",
    "Query",
    "SignedQuery",
    "domain_separator",
    "new_nonce",
    "query_digest",
    "recover_query_signer",
    "sign_query",
    "typed_data",
]

DOMAIN_NAME = "govshare"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
QUERY_TYPE = (
    "Query(address requester,uint32 requesterDept,uint64 datasetId,uint64 grantId,uint256 fields,"
    "bytes32 paramsHash,uint256 nonce,uint64 deadline)"
)
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)
QUERY_TYPEHASH = keccak(text=QUERY_TYPE)

#: EIP-712 member list of ``Query`` (for ``eth_signTypedData_v4`` wallets and eth_account).
QUERY_MEMBERS = [
    {"name": "requester", "type": "address"},
    {"name": "requesterDept", "type": "uint32"},
    {"name": "datasetId", "type": "uint64"},
    {"name": "grantId", "type": "uint64"},
    {"name": "fields", "type": "uint256"},
    {"name": "paramsHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]
DOMAIN_MEMBERS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

#: secp256k1 group order (a public curve constant, not a key), and the largest ``s`` OpenZeppelin's ECDSA accepts (n / 2).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX32_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ZERO12 = bytes(12)
_PREFIX = b"\x19\x01"

# (python attribute, EIP-712 / JSON name, bits) of the integer members.
_INT_MEMBERS = (
    ("requester_dept", "requesterDept", 32),
    ("dataset_id", "datasetId", 64),
    ("grant_id", "grantId", 64),
    ("fields", "fields", 256),
    ("nonce", "nonce", 256),
    ("deadline", "deadline", 64),
)
_JSON_KEYS = frozenset(["requester", "paramsHash"] + [name for _, name, _ in _INT_MEMBERS])


class InvalidSignature(LedgerError, ValueError):
    """A query signature is malformed (not 65 bytes), malleable (high ``s``), has ``v`` other than
    27/28, or names no public key."""


class InvalidQuery(LedgerError, ValueError):
    """A query member is missing, of the wrong type or out of its Solidity type's range."""


@dataclass(frozen=True)
class Query:
    """A signed off-chain query (the EIP-712 struct ``Query`` of QueryRequests).

    ``requester`` is normalised to its checksummed form; ``params_hash`` to ``bytes``. Every integer
    must fit its Solidity type (``requester_dept`` uint32; ``dataset_id``, ``grant_id``, ``deadline``
    uint64; ``fields``, ``nonce`` uint256) and ``params_hash`` is 32 bytes; otherwise
    :class:`InvalidQuery`.
    """

    requester: str
    requester_dept: int
    dataset_id: int
    grant_id: int
    fields: int
    params_hash: bytes
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        if not isinstance(self.requester, str) or not _ADDRESS_RE.match(self.requester):
            raise InvalidQuery(f"requester must be a 0x-prefixed 20-byte hex address, got {self.requester!r:.60}")
        object.__setattr__(self, "requester", _checksum(self.requester))
        for attr, name, bits in _INT_MEMBERS:
            value = getattr(self, attr)
            if type(value) is not int:  # bool and floats are refused
                raise InvalidQuery(f"{name} must be an int, got {type(value).__name__}")
            if not 0 <= value < 1 << bits:
                raise InvalidQuery(f"{name} must fit in uint{bits}, got {value}")
        if not isinstance(self.params_hash, (bytes, bytearray)) or len(self.params_hash) != 32:
            raise InvalidQuery("paramsHash must be 32 bytes")
        object.__setattr__(self, "params_hash", bytes(self.params_hash))

    @classmethod
    def for_params(
        cls,
        *,
        requester: str,
        requester_dept: int,
        dataset_id: int,
        grant_id: int,
        fields: int,
        params: Any,
        salt: bytes,
        deadline: int,
        nonce: int | None = None,
    ) -> Query:
        """A query committing to ``params`` by ``params_hash(params, salt)``; a fresh random nonce
        unless one is given. Keep ``params`` and ``salt``: the oracle needs both to check the hash."""
        return cls(
            requester=requester,
            requester_dept=requester_dept,
            dataset_id=dataset_id,
            grant_id=grant_id,
            fields=fields,
            params_hash=params_hash(params, salt),
            nonce=new_nonce() if nonce is None else nonce,
            deadline=deadline,
        )

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (member names as in Solidity; values as eth_account takes them)."""
        return {
            "requester": self.requester,
            "requesterDept": self.requester_dept,
            "datasetId": self.dataset_id,
            "grantId": self.grant_id,
            "fields": self.fields,
            "paramsHash": self.params_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def as_abi(self) -> tuple:
        """The tuple web3 passes as a ``Query calldata`` argument."""
        return (
            self.requester,
            self.requester_dept,
            self.dataset_id,
            self.grant_id,
            self.fields,
            self.params_hash,
            self.nonce,
            self.deadline,
        )

    def to_json(self) -> dict[str, Any]:
        """The HTTP wire form: EIP-712 member names; ``requesterDept`` an int, the other integers
        decimal strings (uint64/uint256 exceed JavaScript's safe integers), ``paramsHash`` 0x-hex."""
        return {
            "requester": self.requester,
            "requesterDept": self.requester_dept,
            "datasetId": str(self.dataset_id),
            "grantId": str(self.grant_id),
            "fields": str(self.fields),
            "paramsHash": "0x" + self.params_hash.hex(),
            "nonce": str(self.nonce),
            "deadline": str(self.deadline),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> Query:
        """Parse the wire form (a mapping, or JSON text of one). Integers may be JSON ints or decimal
        strings (no sign, no leading zeros, no whitespace); ``paramsHash`` is 0x + 64 hex digits.
        Missing or unknown members, and anything else, raise :class:`InvalidQuery`."""
        if type(data) is not dict:  # a dict (what the oracle's HTTP edge passes) skips the ABC checks
            if isinstance(data, (str, bytes, bytearray)):
                try:
                    data = loads(data, what="the query", max_depth=1)  # a flat object
                except (ValueError, UnicodeDecodeError) as exc:
                    raise InvalidQuery(f"query is not JSON: {exc}") from None
            if not isinstance(data, Mapping):
                raise InvalidQuery(f"query must be a JSON object, got {type(data).__name__}")
        if data.keys() != _JSON_KEYS:
            keys = set(data)
            missing, unknown = sorted(_JSON_KEYS - keys), sorted(map(str, keys - _JSON_KEYS))
            raise InvalidQuery(f"query members: missing {missing}, unknown {unknown}")
        params_hash = data["paramsHash"]
        if not isinstance(params_hash, str) or not _HEX32_RE.match(params_hash):
            raise InvalidQuery("paramsHash must be 0x followed by 64 hex digits")
        ints = {attr: _parse_uint(name, data[name]) for attr, name, _ in _INT_MEMBERS}
        return cls(requester=data["requester"], params_hash=bytes.fromhex(params_hash[2:]), **ints)


#: Most parameters a query may carry; their names and values are strings.
MAX_PARAMS = 32
#: Length of ``paramsSalt`` in bytes (the requester makes 32).
MIN_SALT_BYTES, MAX_SALT_BYTES = 16, 64


class _QueryBody(BaseModel):
    """The JSON body of ``POST /v1/query`` (the query itself is checked by :meth:`Query.from_json`)."""

    model_config = ConfigDict(extra="forbid")
    query: dict[str, Any]
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")
    params: dict[str, str] = Field(max_length=MAX_PARAMS)
    paramsSalt: str = Field(pattern=rf"^0x[0-9a-fA-F]{{{2 * MIN_SALT_BYTES},{2 * MAX_SALT_BYTES}}}$")


@dataclass(frozen=True)
class SignedQuery:
    """A signed query and its parameters, as the requester posts them to the oracle."""

    query: Query
    signature: bytes
    params: dict[str, str]
    params_salt: bytes

    def canonical(self) -> dict[str, Any]:
        """What the record's ``requestHash`` commits to: the query's wire form, the signature and
        the parameters (not their salt, which the query's ``paramsHash`` already binds)."""
        return {"query": self.query.to_json(), "signature": "0x" + self.signature.hex(), "params": self.params}

    def to_json(self) -> dict[str, Any]:
        """The body of ``POST /v1/query``."""
        return {**self.canonical(), "paramsSalt": "0x" + self.params_salt.hex()}

    @classmethod
    def sign(cls, signer: Signer, *, requester_dept: int, dataset_id: int, grant_id: int, fields: int,
             params: Mapping[str, str], salt: bytes, deadline: int, chain_id: int, verifying_contract: str,
             nonce: int | None = None) -> SignedQuery:
        """A query for ``params`` from ``signer``, signed in the domain of ``verifying_contract``."""
        query = Query.for_params(requester=signer.address, requester_dept=requester_dept, dataset_id=dataset_id,
                                 grant_id=grant_id, fields=fields, params=dict(params), salt=salt, deadline=deadline,
                                 nonce=nonce)
        return cls(query, sign_query(signer, query, chain_id, verifying_contract), dict(params), salt)

    @classmethod
    def from_body(cls, body: bytes | bytearray | str) -> SignedQuery:
        """Parse a ``POST /v1/query`` body. Raises pydantic's ``ValidationError`` for a body of the
        wrong shape (not JSON, an unknown or missing member, a malformed signature or salt, more
        than :data:`MAX_PARAMS` parameters or one that is not a string) and :class:`InvalidQuery`
        for a malformed query; both are ``ValueError``."""
        parsed = _QueryBody.model_validate_json(body)
        return cls(
            query=Query.from_json(parsed.query),
            signature=bytes.fromhex(parsed.signature[2:]),
            params=parsed.params,
            params_salt=bytes.fromhex(parsed.paramsSalt[2:]),
        )


def _parse_uint(name: str, value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value
    # ASCII digits only, no sign, no whitespace, no leading zero; 2**256 has 78 digits
    if kind is str and 0 < len(value) <= 78 and value.isascii() and value.isdigit() and (value[0] != "0" or len(value) == 1):
        return int(value)
    raise InvalidQuery(f"{name} must be an unsigned integer or its decimal string, got {value!r:.60}")


def new_nonce() -> int:
    """A random 256-bit nonce from the operating system's CSPRNG."""
    return secrets.randbits(256)


@lru_cache(maxsize=64)
def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    """``keccak256(abi.encode(DOMAIN_TYPEHASH, keccak("govshare"), keccak("1"), chainId, contract))``,
    cached per (chain id, contract). Raises :class:`InvalidQuery` for a malformed address or chain id."""
    if type(chain_id) is not int or not 0 <= chain_id < 1 << 256:
        raise InvalidQuery(f"chain id must be a uint256, got {chain_id!r}")
    if not isinstance(verifying_contract, str) or not _ADDRESS_RE.match(verifying_contract):
        raise InvalidQuery(f"verifying contract must be a 0x-prefixed 20-byte hex address, got {verifying_contract!r:.60}")
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(text=DOMAIN_NAME)
        + keccak(text=DOMAIN_VERSION)
        + chain_id.to_bytes(32, "big")
        + _ZERO12
        + bytes.fromhex(verifying_contract[2:])
    )


def _struct_hash(q: Query) -> bytes:
    # Every member is static, so abi.encode is the concatenation of 32-byte big-endian words.
    return _keccak(
        b"".join(
            (
                QUERY_TYPEHASH,
                _ZERO12,
                bytes.fromhex(q.requester[2:]),
                q.requester_dept.to_bytes(32, "big"),
                q.dataset_id.to_bytes(32, "big"),
                q.grant_id.to_bytes(32, "big"),
                q.fields.to_bytes(32, "big"),
                q.params_hash,
                q.nonce.to_bytes(32, "big"),
                q.deadline.to_bytes(32, "big"),
            )
        )
    )


def query_digest(query: Query, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte EIP-712 digest of ``query`` (equal to ``QueryRequests.hashQuery``)."""
    return _keccak(_PREFIX + domain_separator(chain_id, verifying_contract) + _struct_hash(query))


def typed_data(query: Query, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The full EIP-712 typed data (as ``eth_signTypedData_v4`` and eth_account take it)."""
    return {
        "types": {"EIP712Domain": DOMAIN_MEMBERS, "Query": QUERY_MEMBERS},
        "primaryType": "Query",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(verifying_contract),
        },
        "message": query.message(),
    }


def sign_query(signer: Signer, query: Query, chain_id: int, verifying_contract: str) -> bytes:
    """The 65-byte signature ``r ‖ s ‖ v`` (v 27/28, low s) of ``signer`` over ``query``.

    Signs through eth_account's EIP-712 encoder (``Signer.sign_typed_data``), independent of
    :func:`query_digest`, so a signature that :func:`recover_query_signer` accepts is itself
    evidence that the two encoders agree.
    """
    signed = signer.sign_typed_data(full_message=typed_data(query, chain_id, verifying_contract))
    return bytes(signed.signature)


def recover_query_signer(query: Query, signature: bytes, chain_id: int, verifying_contract: str) -> str:
    """The checksummed address whose key signed ``query`` in the given domain.

    A valid signature over a *different* query or domain recovers a different address: compare the
    result with ``query.requester``. Raises :class:`InvalidSignature` when ``signature`` is not 65
    bytes (or its 0x-hex), ``r`` or ``s`` is 0 or out of range, ``s`` > n/2, ``v`` is not 27/28, or
    no public key can be recovered.
    """
    sig = _signature_bytes(signature)
    r = int.from_bytes(sig[0:32], "big")
    s = int.from_bytes(sig[32:64], "big")
    v = sig[64]
    if v != 27 and v != 28:
        raise InvalidSignature(f"signature v must be 27 or 28, got {v}")
    if not 0 < r < SECP256K1_N:
        raise InvalidSignature("signature r is out of range")
    if not 0 < s <= SECP256K1_HALF_N:
        raise InvalidSignature("signature s is zero or in the upper half of the curve order (malleable)")
    digest = query_digest(query, chain_id, verifying_contract)
    if _PublicKey is None:  # pragma: no cover - exercised by a test that hides coincurve
        return _recover_eth_account(digest, sig)
    try:
        public_key = _PublicKey.from_signature_and_message(sig[:64] + bytes((v - 27,)), digest, hasher=None)
    except Exception as exc:  # libsecp256k1 found no key (e.g. r is not an x coordinate on the curve)
        raise InvalidSignature(f"no public key recovers from the signature: {exc}") from None
    return _address_of(public_key.format(compressed=False)[1:])


# Requesters are few (operators of member departments): caching the checksummed address of a public
# key, and of an address string, saves two keccaks per request (to_checksum_address alone costs
# about as much as the recovery's two hashes). LRU-bounded, so a flood of new keys only evicts.
@lru_cache(maxsize=4096)
def _address_of(public_key: bytes) -> str:
    return to_checksum_address(keccak(public_key)[12:])


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    return to_checksum_address(address)


def _recover_eth_account(digest: bytes, sig: bytes) -> str:
    from eth_account import Account  # noqa: PLC0415 - the fallback only

    try:
        return to_checksum_address(Account._recover_hash(digest, signature=sig))
    except Exception as exc:  # eth_keys raises BadSignature / ValidationError
        raise InvalidSignature(f"no public key recovers from the signature: {exc}") from None


def _signature_bytes(signature: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(signature, str):
        text = signature[2:] if signature[:2] in ("0x", "0X") else signature
        try:
            signature = bytes.fromhex(text)
        except ValueError:
            raise InvalidSignature("signature is not hex") from None
    elif isinstance(signature, (bytes, bytearray, memoryview)):
        signature = bytes(signature)
    else:
        raise InvalidSignature(f"signature must be bytes or 0x-hex, got {type(signature).__name__}")
    if len(signature) != 65:
        raise InvalidSignature(f"signature must be 65 bytes (r, s, v), got {len(signature)}")
    return signature
