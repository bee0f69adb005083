"""Property-based tests (hypothesis) of the catalog's Merkle trees, for random datasets.

For any list of record hashes: every record's proof leads to the root, a proof is at most
ceil(log2 n) long, a hash that is not a record's is not included, a changed proof element or a
changed record changes the answer, and the root is the one a straightforward recursive definition
gives; for random records, ``commit_records``'s proofs verify each record; and on a real chain,
DataCatalog.verifyRecord (OpenZeppelin MerkleProof) agrees with Python for every record of random
published versions. Profiles and example counts: tests/support/properties.py.
"""

from __future__ import annotations

import math

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ledger.contracts.catalog import Classification
from ledger.dataset_file import commit_records
from ledger.hashing import keccak, record_hash
from ledger.merkle import EMPTY_ROOT, MerkleTree, is_included, leaf_hash, merkle_root, root_from_proof
from tests.support.properties import examples

hashes32 = st.binary(min_size=32, max_size=32)
record_hash_lists = st.lists(hashes32, min_size=0, max_size=70)
field_values = st.one_of(st.text(max_size=12), st.integers(-10**20, 10**20), st.booleans(), st.none())
records = st.lists(st.fixed_dictionaries({"id": st.text(max_size=8), "name": field_values, "amount": field_values}),
                   min_size=1, max_size=40)


def reference_root(hashes: list[bytes]) -> bytes:
    """The root by the definition (ledger/merkle.py's docstring), recursively on halves of a power of
    two: the left subtree holds the largest power of two strictly below n leaves."""
    def node(leaves: list[bytes]) -> bytes:
        if len(leaves) == 1:
            return leaves[0]
        split = 1 << (len(leaves) - 1).bit_length() - 1
        a, b = node(leaves[:split]), node(leaves[split:])
        return keccak(min(a, b) + max(a, b))
    return node([keccak(h) for h in hashes]) if hashes else EMPTY_ROOT


@given(record_hash_lists)
@example([b"\x01" * 32])  # one record: the root is its leaf, the proof empty
@example([b"\x01" * 32, b"\x01" * 32, b"\x02" * 32])  # a duplicate record, an odd last node
def test_every_proof_leads_to_the_root(hashes: list[bytes]) -> None:
    tree = MerkleTree(hashes)
    assert tree.root == merkle_root(hashes) == reference_root(hashes)
    assert (tree.root == EMPTY_ROOT) == (not hashes)
    bound = math.ceil(math.log2(len(hashes))) if hashes else 0
    for i, h in enumerate(hashes):
        proof = tree.proof(i)
        assert len(proof) <= bound
        assert root_from_proof(leaf_hash(h), proof) == tree.root
        assert is_included(h, proof, tree.root)


@given(record_hash_lists.filter(bool), hashes32, st.data())
def test_a_foreign_hash_or_a_changed_proof_is_not_included(hashes: list[bytes], other: bytes, data: st.DataObject) -> None:
    tree = MerkleTree(hashes)
    i = data.draw(st.integers(0, len(hashes) - 1), label="record")
    proof = tree.proof(i)
    if other not in hashes:
        assert not is_included(other, proof, tree.root)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="proof element")
        bit = data.draw(st.integers(0, 255), label="bit")
        changed = list(proof)
        changed[j] = (int.from_bytes(proof[j], "big") ^ (1 << bit)).to_bytes(32, "big")
        assert not is_included(hashes[i], changed, tree.root)


@given(record_hash_lists.filter(bool), st.data())
def test_changing_any_record_changes_the_root(hashes: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(hashes) - 1), label="record")
    bit = data.draw(st.integers(0, 255), label="bit")
    changed = list(hashes)
    changed[i] = (int.from_bytes(hashes[i], "big") ^ (1 << bit)).to_bytes(32, "big")
    assert merkle_root(changed) != merkle_root(hashes)


@given(records)
def test_commit_records_proves_every_record(rows: list[dict]) -> None:
    data = commit_records(rows)
    assert data.record_count == len(rows)
    for i, row in enumerate(rows):
        assert data.record_hash(i) == record_hash(row)
        assert is_included(record_hash(row), data.proof(i), data.merkle_root)


def test_the_catalog_contract_agrees_for_random_datasets(consortium, members) -> None:
    """DataCatalog.verifyRecord (OpenZeppelin MerkleProof, on a real chain) says yes to every record's
    proof and no to a foreign hash, for random versions published on one dataset."""
    operator = members.samr.operator
    dataset = consortium.catalog.register(operator, "随机 random", ("id", "name", "amount"), Classification.INTERNAL)

    @settings(max_examples=examples(8))
    @given(records, hashes32)
    def published(rows: list[dict], foreign: bytes) -> None:
        assume(foreign not in {record_hash(r) for r in rows})
        data = commit_records(rows)
        version = consortium.catalog.publish_version(operator, dataset, data.content_hash, data.merkle_root, data.record_count)
        for i in range(data.record_count):
            assert consortium.catalog.verify_record(dataset, version, data.record_hash(i), data.proof(i))
        assert not consortium.catalog.verify_record(dataset, version, foreign, data.proof(0))

    published()
