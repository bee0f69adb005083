"""The Merkle tree whose root ``DataCatalog`` stores for each dataset version.

It agrees with OpenZeppelin ``MerkleProof.verify`` / ``verifyCalldata`` as ``DataCatalog`` uses it:

* leaf = ``keccak(record_hash)`` — Solidity ``keccak256(bytes.concat(recordHash))``. Hashing the
  32-byte record hash once more keeps a leaf (a 32-byte preimage) from ever being confused with an
  inner node (a 64-byte preimage): the second-preimage guard.
* inner node = ``keccak(min(a, b) + max(a, b))`` (sorted pair, bytewise) — OpenZeppelin's
  commutative ``Hashes.commutativeKeccak256``; a proof is therefore just the list of siblings,
  without left/right flags.
* Leaves stay in record order (they are *not* sorted). Levels are built bottom-up, pairing
  neighbours; an odd node at the end of a level is promoted unchanged, and a proof skips the
  level at which its node was promoted. Because pairs are sorted, a proof shows that a record is
  *in* the version, not at which position; the version's ``contentHash`` commits the order.
* The empty tree's root is 32 zero bytes (the catalog requires ``merkleRoot == 0`` exactly when
  ``recordCount == 0``); a tree of one record has root ``leaf_hash(record_hash)`` and empty proofs.

Exported API: :class:`MerkleTree` (build, ``.root``, ``.proof(index)``), :func:`merkle_root`,
:func:`leaf_hash`, :func:`hash_pair`, :func:`root_from_proof`, :func:`verify_inclusion`,
:func:`is_included`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger.errors import HashLengthError, MerkleIndexError, MerkleProofError
from ledger.hashing import keccak as _keccak
from ledger.hashing import keccak_hasher

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "hash_pair",
    "is_included",
    "leaf_hash",
    "merkle_root",
    "root_from_proof",
    "verify_inclusion",
]

HASH_LENGTH = 32
#: The root of a tree with no records.
EMPTY_ROOT = b"\x00" * HASH_LENGTH


def leaf_hash(record_hash: bytes) -> bytes:
    """The leaf for a record: ``keccak(record_hash)``.

    Precondition: ``record_hash`` is exactly 32 bytes (else :class:`HashLengthError`).
    """
    return _keccak(_check_hash(record_hash, "record hash"))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """The inner node over ``a`` and ``b``: ``keccak(min(a, b) + max(a, b))``; commutative.

    Precondition: both are exactly 32 bytes (else :class:`HashLengthError`).
    """
    a = _check_hash(a, "node")
    b = _check_hash(b, "node")
    return _keccak(a + b if a <= b else b + a)


class MerkleTree:
    """A Merkle tree over record hashes, in record order.

    ``MerkleTree(record_hashes)`` builds every level at once (O(n) hashes); the tree is immutable.
    Precondition: every record hash is exactly 32 bytes (else :class:`HashLengthError` naming the
    index). An empty input gives the empty tree (root :data:`EMPTY_ROOT`, no proofs).
    """

    __slots__ = ("_levels",)

    def __init__(self, record_hashes: Iterable[bytes]) -> None:
        keccak = keccak_hasher()  # the inputs are checked here; one hasher per build (it may keep state)
        leaves: list[bytes] = []
        for i, record_hash in enumerate(record_hashes):
            leaves.append(keccak(_check_hash(record_hash, f"record hash [{i}]")))
        levels = [leaves]
        level = leaves
        while len(level) > 1:
            upper = [
                keccak(a + b if a <= b else b + a)
                for a, b in zip(level[0::2], level[1::2])
            ]
            if len(level) % 2:
                upper.append(level[-1])
            levels.append(upper)
            level = upper
        self._levels: tuple[tuple[bytes, ...], ...] = tuple(tuple(lv) for lv in levels)

    def __len__(self) -> int:
        """The number of records (leaves)."""
        return len(self._levels[0])

    def __repr__(self) -> str:
        return f"MerkleTree(records={len(self)}, root=0x{self.root.hex()})"

    @property
    def root(self) -> bytes:
        """The 32-byte root; :data:`EMPTY_ROOT` for an empty tree."""
        if not self._levels[0]:
            return EMPTY_ROOT
        return self._levels[-1][0]

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """The leaf hashes (``leaf_hash`` of each record hash), in record order."""
        return self._levels[0]

    def proof(self, index: int) -> list[bytes]:
        """The inclusion proof for the record at ``index``: siblings from the leaf up to the root.

        Levels at which the node is promoted (odd last node) contribute no sibling.
        Precondition: ``0 <= index < len(self)`` (else :class:`MerkleIndexError`; negative
        indices are refused, not counted from the end).
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"index must be int, found {type(index).__name__}")
        if not 0 <= index < len(self):
            raise MerkleIndexError(f"leaf index {index} out of range for a tree of {len(self)} records")
        siblings: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            index //= 2
        return siblings


def merkle_root(record_hashes: Iterable[bytes]) -> bytes:
    """``MerkleTree(record_hashes).root``: the value to publish as a version's ``merkleRoot``."""
    return MerkleTree(record_hashes).root


def root_from_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` (OpenZeppelin ``processProof``).

    Note that ``leaf`` is the *leaf hash* (``leaf_hash(record_hash)``), not the record hash.
    Precondition: ``leaf`` and every proof element are exactly 32 bytes (else :class:`HashLengthError`).
    """
    node = _check_hash(leaf, "leaf")
    for i, sibling in enumerate(proof):
        sibling = _check_hash(sibling, f"proof element [{i}]")
        node = _keccak(node + sibling if node <= sibling else sibling + node)
    return node


def verify_inclusion(record_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that the record with ``record_hash`` is in the tree with ``root``, as the catalog does.

    Returns ``None`` on success; raises :class:`MerkleProofError` (carrying ``expected`` = ``root``
    and ``computed``) when the proof leads elsewhere. Preconditions: ``record_hash``, ``root`` and
    every proof element are exactly 32 bytes (else :class:`HashLengthError`).
    """
    root = _check_hash(root, "root")
    computed = root_from_proof(leaf_hash(record_hash), proof)
    if computed != root:
        raise MerkleProofError(expected=root, computed=computed)


def is_included(record_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """``True`` when :func:`verify_inclusion` would succeed, ``False`` on a root mismatch.

    Malformed input (a hash that is not 32 bytes) still raises :class:`HashLengthError`.
    """
    try:
        verify_inclusion(record_hash, proof, root)
    except MerkleProofError:
        return False
    return True


def _check_hash(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be bytes, found {type(value).__name__}")
    if len(value) != HASH_LENGTH:
        raise HashLengthError(f"{what}: expected {HASH_LENGTH} bytes, found {len(value)}")
    return bytes(value)
