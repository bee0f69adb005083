"""Canonical hashing: the one way every part of govshare turns data into a ``bytes32`` commitment.

Canonical JSON (``canonical_json``) is the byte form that is hashed:

* UTF-8, no BOM; non-ASCII characters are written as themselves (``"市场监督管理局"``), never ``\\uXXXX``;
  only the characters JSON requires to be escaped are escaped (``"``, ``\\`` and control characters,
  the latter as ``\\n``/``\\t``/... or ``\\u00XX``, exactly as Python's :mod:`json` writes them).
* Object keys sorted by Unicode code point (Python ``str`` ordering; note this differs from RFC 8785,
  which sorts by UTF-16 code unit, only for keys containing characters outside the BMP).
* Separators ``","`` and ``":"`` with no whitespace.
* Accepted values: ``None``, ``bool``, ``int``, ``str``, ``list``/``tuple`` (both become arrays) and
  mappings with ``str`` keys. Everything else is refused with :class:`CanonicalizationError`,
  **floats and Decimals included**: department data must carry exact decimal numbers as strings
  (``"1234.50"``), because a float's textual form is not a stable commitment. Bytes are refused too;
  write them with :func:`to_hex`.
* Strings are hashed as given: no Unicode normalisation (NFC/NFD) is applied, so producers must
  emit the same code points for the same text.

Hashes are Ethereum keccak-256 (not NIST SHA3-256), so they agree with Solidity's ``keccak256``.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak as _keccak256

from ledger.errors import CanonicalizationError, HashLengthError

__all__ = [
    "MIN_SALT_LENGTH",
    "canonical_hash",
    "canonical_json",
    "content_hash",
    "keccak",
    "new_salt",
    "record_hash",
    "salted_hash",
    "schema_hash",
    "to_hex",
]

#: Shortest salt :func:`salted_hash` accepts, in bytes; :func:`new_salt` makes 32.
MIN_SALT_LENGTH = 16
SALT_LENGTH = 32


def keccak(data: bytes) -> bytes:
    """Ethereum keccak-256 of ``data`` (32 bytes), equal to Solidity ``keccak256(data)``.

    Precondition: ``data`` is ``bytes``/``bytearray``/``memoryview``. Hashed by safe-pysha3's C
    keccak where installed (:data:`SHA3_KECCAK`: 1.9 us for 32 bytes on the benchmark machine),
    else through a reused pycryptodome state per thread (4.6 us; a new eth_hash hasher per call: 13 us).
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"keccak expects bytes, found {type(data).__name__}")
        data = bytes(data)
    if SHA3_KECCAK:
        return _sha3_keccak_256(data).digest()
    try:
        hasher = _per_thread.hasher
    except AttributeError:
        hasher = _per_thread.hasher = keccak_hasher()
    return hasher(data)


def keccak_hasher() -> Callable[[bytes], bytes]:
    """The cheapest keccak-256 of ``bytes`` this installation has, for a caller that hashes many
    inputs it has checked itself (a Merkle tree build; :func:`keccak` checks every input): safe-pysha3
    where it works (:data:`SHA3_KECCAK`), else a reused pycryptodome state (:data:`FAST_KECCAK`; not
    thread-safe: one per user), else eth_hash."""
    if SHA3_KECCAK:
        return _sha3_digest
    return ReusedStateKeccak() if FAST_KECCAK else _keccak256


def to_hex(data: bytes) -> str:
    """``"0x"`` followed by the lowercase hex of ``data``."""
    return "0x" + bytes(data).hex()


def canonical_json(value: Any) -> bytes:
    """The canonical JSON encoding of ``value`` as UTF-8 bytes (rules in the module docstring).

    Precondition: ``value`` is built only from ``None``, ``bool``, ``int``, ``str``, ``list``,
    ``tuple`` and ``Mapping`` objects with ``str`` keys, without cycles. Otherwise raises
    :class:`CanonicalizationError` naming the offending path (e.g. ``$.rows[3].amount``).
    """
    try:  # fast path: plain values only (exact types), serialised by orjson to the same bytes
        if _plain(value):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # a lone surrogate...: the reference path says why
        pass
    return _canonical_json_reference(value)


def _canonical_json_reference(value: Any) -> bytes:
    """:func:`canonical_json` through the standard library, with errors that name the offending path."""
    normalised = _normalise(value, "$", set())
    try:
        text = json.dumps(
            normalised, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError(
            "a string contains a lone surrogate code point; it cannot be encoded as UTF-8"
        ) from None
    except ValueError as exc:  # e.g. an int beyond Python's int->str digit limit
        raise CanonicalizationError(f"value cannot be encoded as JSON: {exc}") from None


def canonical_hash(value: Any) -> bytes:
    """``keccak(canonical_json(value))``. Same preconditions as :func:`canonical_json`."""
    return keccak(canonical_json(value))


def new_salt() -> bytes:
    """32 bytes from the operating system's CSPRNG, for :func:`salted_hash`."""
    return secrets.token_bytes(SALT_LENGTH)


def salted_hash(value: Any, salt: bytes) -> bytes:
    """``canonical_hash({"salt": to_hex(salt), "body": value})``.

    The salt is part of the hashed content, so a hash of a low-entropy request (one resident's id
    number) cannot be brute-forced by whoever sees only the hash. The salt must be kept with the
    request/response to let an auditor recompute the hash.

    Preconditions: ``value`` as for :func:`canonical_json`; ``salt`` is bytes of at least
    :data:`MIN_SALT_LENGTH` (16) bytes — use :func:`new_salt`. Otherwise raises
    :class:`HashLengthError` (or :class:`TypeError` for a non-bytes salt).
    """
    if not isinstance(salt, (bytes, bytearray)):
        raise TypeError(f"salt must be bytes, found {type(salt).__name__}")
    if len(salt) < MIN_SALT_LENGTH:
        raise HashLengthError(f"salt too short: expected at least {MIN_SALT_LENGTH} bytes, found {len(salt)}")
    return canonical_hash({"salt": to_hex(salt), "body": value})


def record_hash(record: Mapping[str, Any]) -> bytes:
    """The hash of one dataset record: ``canonical_hash(record)``; the Merkle leaf input.

    Precondition: ``record`` is a mapping with ``str`` keys and canonical-JSON values.
    """
    if not isinstance(record, Mapping):
        raise CanonicalizationError(f"a record must be a mapping, found {type(record).__name__}")
    return canonical_hash(record)


def content_hash(records: Iterable[Mapping[str, Any]]) -> bytes:
    """keccak over the canonical JSON Lines encoding of ``records``, in the order given.

    The encoding is, for each record, ``canonical_json(record) + b"\\n"``, concatenated (so an empty
    dataset hashes ``keccak(b"")``). The records are streamed through an incremental keccak
    (pycryptodome), so ``records`` may be a generator over a large file; the result equals
    ``keccak(b"".join(canonical_json(r) + b"\\n" for r in records))``.

    Precondition: every record is a mapping as for :func:`record_hash`.
    """
    if _crypto_keccak is None:  # pragma: no cover - fallback without pycryptodome
        return keccak(b"".join(_jsonl_line(record) for record in records))
    hasher = _crypto_keccak.new(digest_bits=256)
    for record in records:
        hasher.update(_jsonl_line(record))
    return hasher.digest()


def schema_hash(fields: Sequence[str]) -> bytes:
    """``keccak(abi.encode(string[] fields))``, equal to Solidity ``keccak256(abi.encode(fields))``.

    Precondition: ``fields`` is a sequence of ``str`` (a bare ``str`` is refused, not split).
    """
    if isinstance(fields, (str, bytes)) or not isinstance(fields, Sequence):
        raise TypeError(f"fields must be a sequence of str, found {type(fields).__name__}")
    for i, name in enumerate(fields):
        if not isinstance(name, str):
            raise TypeError(f"fields[{i}] must be str, found {type(name).__name__}")
    return keccak(abi_encode(["string[]"], [list(fields)]))


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` holds only exact ``dict``/``list``/``tuple``/``str``/``int``/``bool``/``None``
    values with ``str`` keys and 64-bit integers, nested at most :data:`_PLAIN_DEPTH` deep: what
    orjson writes exactly as ``json.dumps`` does (a test checks this on random values). Anything
    else (floats, subclasses such as IntEnum, huge integers, cycles) takes the reference path,
    which normalises it or refuses it with a clear error."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -(1 << 63) <= value < (1 << 64)
    if depth >= _PLAIN_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _plain(item, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            if not _plain(item, depth + 1):
                return False
        return True
    return False


#: Deeper values take the reference path (orjson itself stops at 255 levels).
_PLAIN_DEPTH = 64


def _jsonl_line(record: Mapping[str, Any]) -> bytes:
    if not isinstance(record, Mapping):
        raise CanonicalizationError(f"a record must be a mapping, found {type(record).__name__}")
    return canonical_json(record) + b"\n"


def _normalise(value: Any, path: str, active: set[int]) -> Any:
    """Copy ``value`` into plain ``dict``/``list``/``int``/``str``, refusing anything non-canonical."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum and other subclasses: their plain integer value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        raise CanonicalizationError(
            f"float at {path} is not allowed in canonical JSON; "
            "write exact decimals as strings (e.g. \"1234.50\")"
        )
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in active:
            raise CanonicalizationError(f"cycle detected at {path}")
        active.add(id(value))
        try:
            if isinstance(value, Mapping):
                out: dict[str, Any] = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise CanonicalizationError(
                            f"object key at {path} must be str, found {type(key).__name__}"
                        )
                    out[str(key)] = _normalise(item, f"{path}.{key}", active)
                return out
            return [_normalise(item, f"{path}[{i}]", active) for i, item in enumerate(value)]
        finally:
            active.discard(id(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        hint = "; write bytes with to_hex()"
    elif isinstance(value, Decimal):
        hint = "; write exact decimals as strings (e.g. \"1234.50\")"
    else:
        hint = ""
    raise CanonicalizationError(
        f"value at {path} of type {type(value).__name__} is not allowed in canonical JSON{hint}"
    )


class ReusedStateKeccak:
    """keccak-256 through one reused pycryptodome state: about 3x faster than eth_hash, which
    allocates a new hasher per call (200,000 hashes for a 100,000-record tree).

    It uses pycryptodome's raw C functions (the ones ``Crypto.Hash.keccak`` itself calls), so it is
    checked against eth_hash before use and the callers fall back to eth_hash when it is
    unavailable or disagrees. Not thread-safe: :func:`keccak` keeps one per thread; a tree build
    makes its own.
    """

    __slots__ = ("_out", "_state")

    def __init__(self) -> None:
        pointer = _ffi.new("void **")
        if _raw_lib.keccak_init(pointer, 64, 24) != 0:  # capacity 512 bits, 24 rounds: keccak-256
            raise RuntimeError("keccak_init failed")
        self._state = _ffi.gc(pointer[0], _raw_lib.keccak_destroy)
        self._out = _ffi.new("uint8_t[32]")

    def __call__(self, data: bytes) -> bytes:
        state = self._state
        if (
            _raw_lib.keccak_reset(state)
            or _raw_lib.keccak_absorb(state, data, len(data))
            or _raw_lib.keccak_digest(state, self._out, 32, 0x01)
        ):
            raise RuntimeError("pycryptodome keccak failed")
        return _ffi.buffer(self._out)[:]


#: Inputs a keccak backend must hash as eth_hash does before it is used (lengths on both sides of
#: the 136-byte rate).
_BACKEND_CHECKS = (b"", b"\x00" * 32, bytes(range(64)), b"govshare" * 40)


def _fast_keccak_works() -> bool:
    try:
        hasher = ReusedStateKeccak()
        return all(hasher(sample) == _keccak256(sample) for sample in _BACKEND_CHECKS)
    except (NameError, AttributeError, TypeError, RuntimeError, OSError):
        return False


try:
    from Crypto.Hash import keccak as _crypto_keccak
    from Crypto.Util import _raw_api

    _raw_lib = _crypto_keccak._raw_keccak_lib
    _ffi = _raw_api.ffi  # present only with pycryptodome's cffi backend
except (ImportError, AttributeError):  # pragma: no cover - pycryptodome is a dependency
    _crypto_keccak = None
    FAST_KECCAK = False
else:
    FAST_KECCAK = _fast_keccak_works()


def _sha3_digest(data: bytes) -> bytes:
    return _sha3_keccak_256(data).digest()


def _sha3_keccak_works() -> bool:
    return _sha3_keccak_256 is not None and all(_sha3_digest(s) == _keccak256(s) for s in _BACKEND_CHECKS)


try:  # safe-pysha3 (the keccak eth-hash's "pysha3" backend uses): the cheapest call per hash
    from sha3 import keccak_256 as _sha3_keccak_256
except ImportError:  # pragma: no cover - a dependency; other platforms may lack a wheel
    _sha3_keccak_256 = None

#: Whether :func:`keccak` hashes with safe-pysha3 (installed, and agreeing with eth_hash on known inputs).
SHA3_KECCAK = _sha3_keccak_works()

_per_thread = threading.local()
