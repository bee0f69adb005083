"""DataCatalog on a real chain, through ledger.contracts.catalog.DataCatalogClient.

Covers registration (owner, schema commitment agreeing with ledger.hashing.schema_hash, every
refusal), the client's read-back helpers, version publication, retirement, the views on unknown
ids, and Merkle inclusion proofs built in Python (ledger.merkle) and verified on chain by
OpenZeppelin MerkleProof. Every refusal is checked for its exact custom error and arguments and
for changing nothing (no block mined, state as before).
"""

from __future__ import annotations

import pytest

from ledger.contracts.catalog import Classification, Dataset, UnknownField, UpdateFrequency
from ledger.contracts.registry import AccountRole, Role
from ledger.errors import ContractRevert, LedgerError, MerkleProofError
from ledger.events import DEFAULT_BLOCK_STEP
from ledger.hashing import content_hash, keccak, record_hash, schema_hash
from ledger.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, verify_inclusion
from tests.conftest import admit
from tests.support.assertions import expect_revert

FIELDS = ["统一社会信用代码", "企业名称", "法定代表人", "注册资本", "成立日期", "经营状态"]
NAME = "企业登记信息 Company registrations"
ZERO = b"\x00" * 32
H1 = keccak(b"content v1")
H2 = keccak(b"content v2")
ROOT = keccak(b"some root")


# --------------------------------------------------------------------------- helpers




def register(consortium, member, name: str = NAME, fields=FIELDS, classification=Classification.SENSITIVE,
             frequency=UpdateFrequency.DAILY) -> int:
    return consortium.catalog.register(member.operator, name, fields, classification, frequency)


def catalog_state(consortium, *dataset_ids: int) -> tuple:
    """Everything a refused catalog call could have changed."""
    cat = consortium.catalog
    datasets = tuple(cat.dataset(d) for d in dataset_ids)
    versions = tuple(tuple(cat.version(d, v) for v in range(1, ds.version_count + 1)) for d, ds in zip(dataset_ids, datasets))
    return cat.dataset_count(), datasets, versions


def company_records(n: int) -> list[dict]:
    """``n`` company registrations, with Chinese names and exact decimals as strings."""
    return [
        {
            "统一社会信用代码": f"91110108{i:08d}X{i % 10}",
            "企业名称": f"北京示例第{i}科技有限公司",
            "法定代表人": ["张三", "李四", "王五", "赵六"][i % 4],
            "注册资本": f"{(i + 1) * 1000}.50",
            "成立日期": f"20{10 + i % 14:02d}-0{1 + i % 9}-1{i % 10}",
            "经营状态": "存续" if i % 5 else "注销",
            "序号": i,
        }
        for i in range(n)
    ]


def publish_records(consortium, member, dataset_id: int, records: list[dict]) -> tuple[int, MerkleTree]:
    tree = MerkleTree(record_hash(r) for r in records)
    version = consortium.catalog.publish_version(member.operator, dataset_id, content_hash(records), tree.root, len(records))
    return version, tree


# --------------------------------------------------------------------------- registerDataset


def test_register_owner_is_callers_department_and_state_is_stored(consortium, members):
    """A dataset belongs to the registering operator's department; every stored field is as given."""
    assert consortium.catalog.dataset_count() == 0
    result = consortium.catalog._transact(members.samr.operator, "registerDataset", NAME, FIELDS,
                                          int(Classification.SENSITIVE), int(UpdateFrequency.DAILY))
    ds = consortium.catalog.dataset(1)
    assert ds == Dataset(
        id=1,
        owner_dept=members.samr.id,
        field_count=len(FIELDS),
        classification=Classification.SENSITIVE,
        update_frequency=UpdateFrequency.DAILY,
        retired=False,
        version_count=0,
        registered_at=consortium.chain.block_timestamp(result.block_number),
        schema_hash=schema_hash(FIELDS),
        name=NAME,
        fields=tuple(FIELDS),
    )
    assert consortium.catalog.owner_of(1) == members.samr.id
    assert consortium.catalog.dataset_count() == 1
    assert consortium.catalog.latest_version(1) == 0


def test_register_emits_dataset_registered_with_every_field(consortium, members):
    """DatasetRegistered carries id, owner, name, the full field list, schema hash and both enums."""
    result = consortium.catalog._transact(members.tax.operator, "registerDataset", "纳税信用等级", ["纳税人识别号", "信用等级"],
                                          int(Classification.INTERNAL), int(UpdateFrequency.YEARLY))
    assert [e.name for e in result.logs] == ["DatasetRegistered"]
    args = result.logs[0].args
    assert args["datasetId"] == 1
    assert args["ownerDept"] == members.tax.id
    assert args["name"] == "纳税信用等级"
    assert list(args["fields"]) == ["纳税人识别号", "信用等级"]
    assert bytes(args["schemaHash"]) == schema_hash(["纳税人识别号", "信用等级"])
    assert args["classification"] == Classification.INTERNAL
    assert args["updateFrequency"] == UpdateFrequency.YEARLY
    assert result.logs[0].address == consortium.catalog.address


def test_register_ids_run_from_one_per_catalog_and_owners_differ(consortium, members):
    """Ids are sequential across departments; each dataset records its own owner."""
    ids = [register(consortium, members.samr), register(consortium, members.tax, "税务登记", ["纳税人识别号"]),
           register(consortium, members.psb, "人口信息", ["身份证号", "姓名"], Classification.SECRET)]
    assert ids == [1, 2, 3]
    assert [consortium.catalog.owner_of(i) for i in ids] == [members.samr.id, members.tax.id, members.psb.id]
    assert consortium.catalog.dataset(3).classification is Classification.SECRET
    assert consortium.catalog.dataset_count() == 3


SCHEMAS = [
    ["id"],
    ["统一社会信用代码", "企业名称", "注册资本"],
    ["姓名", "name", "Name", "e\u0301", "\u00e9", "🏢 office", "a" * 300, "tab\tand\nnewline"],
    [f"字段{i}" for i in range(40)],
]


def test_schema_hash_python_equals_solidity(consortium, members):
    """Agreement: the stored schemaHash equals ledger.hashing.schema_hash, and the names read back intact
    (Chinese, case- and normalisation-distinct names, emoji, long and control-character names)."""
    for fields in SCHEMAS:
        dataset_id = register(consortium, members.samr, fields=fields)
        ds = consortium.catalog.dataset(dataset_id)
        assert ds.schema_hash == schema_hash(fields)
        assert ds.fields == tuple(fields)
        assert ds.field_count == len(fields)
    hashes = {consortium.catalog.dataset(i).schema_hash for i in range(1, len(SCHEMAS) + 1)}
    assert len(hashes) == len(SCHEMAS)


def test_register_stores_every_classification_and_frequency(consortium, members):
    """Every Classification and UpdateFrequency value round-trips."""
    pairs = [(c, f) for c in Classification for f in UpdateFrequency if (c + f) % 3 == 0 or f in (0, 6)]
    assert {c for c, _ in pairs} == set(Classification) and {f for _, f in pairs} == set(UpdateFrequency)
    for classification, frequency in pairs:
        ds = consortium.catalog.dataset(register(consortium, members.samr, classification=classification, frequency=frequency))
        assert (ds.classification, ds.update_frequency) == (classification, frequency)


def test_register_256_fields_accepted(consortium, members):
    """The largest schema (a uint256 field mask) registers and reads back in order."""
    fields = [f"字段_{i:03d}" for i in range(256)]
    # fixed gas: skips the estimate, which would run the quadratic duplicate check a second time
    result = consortium.catalog._transact(members.samr.operator, "registerDataset", NAME, fields, 0, 0, gas=29_000_000)
    dataset_id = int(result.logs[0].args["datasetId"])
    assert result.gas_used < 10_000_000
    ds = consortium.catalog.dataset(dataset_id)
    assert ds.field_count == 256
    assert ds.fields == tuple(fields)
    assert ds.schema_hash == schema_hash(fields)
    assert ds.field_mask(fields) == 2**256 - 1
    assert ds.field_mask(["字段_255"]) == 1 << 255


def test_register_name_length_limits_are_bytes(consortium, members):
    """1 and 200 bytes are accepted; 66 Chinese characters (198 bytes) too."""
    for name in ["x", "n" * 200, "名" * 66]:
        dataset_id = register(consortium, members.samr, name=name)
        assert consortium.catalog.dataset(dataset_id).name == name


def test_register_refuses_invalid_name(consortium, members):
    """An empty name or one over 200 UTF-8 bytes (201 ASCII, 67 Chinese = 201 bytes): DataCatalogInvalidName()."""
    register(consortium, members.samr)
    for name in ["", "n" * 201, "名" * 67]:
        expect_revert(consortium.chain, lambda: register(consortium, members.samr, name=name),
                      "DataCatalogInvalidName", {}, lambda: catalog_state(consortium, 1))


def test_register_refuses_non_operator(consortium, members, committee):
    """Only an operator may register: an outsider, an oracle, an auditor or a committee member may not."""
    for signer in (members.outsider, members.samr.oracle, members.audit.auditor, committee[0]):
        expect_revert(consortium.chain,
                      lambda: consortium.catalog.register(signer, NAME, FIELDS, Classification.PUBLIC),
                      "DataCatalogNotOperator", {"caller": signer.address}, lambda: catalog_state(consortium))


def test_register_refuses_operator_of_removed_department(consortium, members, committee):
    """Removing a department strips its operators: they can no longer register."""
    consortium.registry.pass_proposal(committee[:2], consortium.registry.remove_department_call(members.psb.id), "remove PSB")
    expect_revert(consortium.chain, lambda: register(consortium, members.psb),
                  "DataCatalogNotOperator", {"caller": members.psb.operator.address}, lambda: catalog_state(consortium))


def test_register_refuses_field_count(consortium, members):
    """0 or 257 fields: DataCatalogInvalidFieldCount(count, 256)."""
    for count in (0, 257):
        fields = [f"f{i}" for i in range(count)]
        expect_revert(consortium.chain, lambda: register(consortium, members.samr, fields=fields),
                      "DataCatalogInvalidFieldCount", {"count": count, "max": 256}, lambda: catalog_state(consortium))


def test_register_refuses_empty_field_name(consortium, members):
    """An empty field name: DataCatalogEmptyFieldName(index of the first empty one)."""
    for fields, index in [(["", "a"], 0), (["a", "b", "c", ""], 3), (["企业名称", "", ""], 1)]:
        expect_revert(consortium.chain, lambda: register(consortium, members.samr, fields=fields),
                      "DataCatalogEmptyFieldName", {"index": index}, lambda: catalog_state(consortium))


def test_register_refuses_duplicate_field(consortium, members):
    """A repeated name: DataCatalogDuplicateField(first, second) for the first repeat found."""
    cases = [
        (["a", "a"], 0, 1),
        (["a", "b", "c", "b"], 1, 3),
        (["企业名称", "注册资本", "法定代表人", "企业名称", "注册资本"], 0, 3),
        ([f"f{i}" for i in range(40)] + ["f7"], 7, 40),
    ]
    for fields, first, second in cases:
        expect_revert(consortium.chain, lambda: register(consortium, members.samr, fields=fields),
                      "DataCatalogDuplicateField", {"first": first, "second": second}, lambda: catalog_state(consortium))


def test_register_refused_transaction_mined_changes_nothing(consortium, members):
    """A refused registration that is mined anyway (fixed gas, no estimate) reverts on chain: nothing stored."""
    register(consortium, members.samr)
    before = catalog_state(consortium, 1)
    block = consortium.chain.block_number()
    with pytest.raises(ContractRevert) as info:
        consortium.catalog._transact(members.samr.operator, "registerDataset", "", FIELDS, 0, 0, gas=500_000)
    assert (info.value.name, info.value.args) == ("DataCatalogInvalidName", {})
    assert consortium.chain.block_number() == block + 1  # the failed transaction was mined
    assert catalog_state(consortium, 1) == before


# --------------------------------------------------------------------------- client read-back


def test_client_dataset_and_fields_read_back(consortium, members):
    """dataset() and fields() return the schema from the DatasetRegistered event of that id only."""
    first = register(consortium, members.samr)
    second = register(consortium, members.tax, "发票", ["发票号码", "金额"])
    assert consortium.catalog.fields(first) == tuple(FIELDS)
    assert consortium.catalog.fields(second) == ("发票号码", "金额")
    assert consortium.catalog.dataset(second).fields == ("发票号码", "金额")
    assert consortium.catalog.fields(99) == ()


def test_field_mask_and_field_names(consortium, members):
    """field_mask sets bit i for field i; field_names gives names back in schema order."""
    ds = consortium.catalog.dataset(register(consortium, members.samr))
    assert ds.field_mask([]) == 0
    assert ds.field_mask(["统一社会信用代码"]) == 0b1
    assert ds.field_mask(["注册资本", "企业名称"]) == 0b1010
    assert ds.field_mask(FIELDS) == 0b111111
    assert ds.field_names(0b1010) == ["企业名称", "注册资本"]
    assert ds.field_names(0) == []
    assert ds.field_names(ds.field_mask(["经营状态", "统一社会信用代码"])) == ["统一社会信用代码", "经营状态"]


def test_field_mask_unknown_name_raises(consortium, members):
    """An unknown field name raises UnknownField (a LedgerError and a KeyError) naming it."""
    ds = consortium.catalog.dataset(register(consortium, members.samr))
    with pytest.raises(UnknownField, match="身份证号"):
        ds.field_mask(["企业名称", "身份证号"])
    assert issubclass(UnknownField, LedgerError) and issubclass(UnknownField, KeyError)


# --------------------------------------------------------------------------- publishVersion


def test_publish_versions_are_numbered_and_stored(consortium, members):
    """Versions run 1, 2, 3; each stores its commitments, block and time; the event carries them."""
    dataset_id = register(consortium, members.samr)
    commitments = [(H1, ROOT, 10), (H2, keccak(b"root 2"), 20), (keccak(b"c3"), keccak(b"root 3"), 2**64 - 1)]
    for expected_version, (content, root, count) in enumerate(commitments, start=1):
        result = consortium.catalog._transact(members.samr.operator, "publishVersion", dataset_id, content, root, count)
        assert [e.name for e in result.logs] == ["DatasetVersionPublished"]
        assert result.logs[0].args == {"datasetId": dataset_id, "version": expected_version, "contentHash": content,
                                       "merkleRoot": root, "recordCount": count}
        stored = consortium.catalog.version(dataset_id, expected_version)
        assert (stored.content_hash, stored.merkle_root, stored.record_count) == (content, root, count)
        assert stored.published_block == result.block_number
        assert stored.published_at == consortium.chain.block_timestamp(result.block_number)
        assert consortium.catalog.latest_version(dataset_id) == expected_version
        assert consortium.catalog.dataset(dataset_id).version_count == expected_version
    # earlier versions are untouched by later ones
    assert consortium.catalog.version(dataset_id, 1).content_hash == H1


def test_publish_empty_version_accepted(consortium, members):
    """An empty version: root 0 with 0 records and content_hash([]) = keccak(b'')."""
    dataset_id = register(consortium, members.samr)
    version = consortium.catalog.publish_version(members.samr.operator, dataset_id, content_hash([]), EMPTY_ROOT, 0)
    assert version == 1
    stored = consortium.catalog.version(dataset_id, 1)
    assert (stored.content_hash, stored.merkle_root, stored.record_count) == (keccak(b""), ZERO, 0)


def test_publish_by_another_operator_of_the_owner_department(consortium, members):
    """Ownership is the department's: a second operator added to SAMR may publish."""
    dataset_id = register(consortium, members.samr)
    extra = members.spare[0]
    consortium.registry.add_account(members.samr.operator, extra.address, Role.OPERATOR)
    assert consortium.catalog.publish_version(extra, dataset_id, H1, ROOT, 1) == 1


def test_version_numbers_are_per_dataset(consortium, members):
    """Publishing to one dataset does not advance another's version count."""
    a = register(consortium, members.samr)
    b = register(consortium, members.samr, "另一个", ["x"])
    assert consortium.catalog.publish_version(members.samr.operator, a, H1, ROOT, 1) == 1
    assert consortium.catalog.publish_version(members.samr.operator, a, H2, ROOT, 1) == 2
    assert consortium.catalog.publish_version(members.samr.operator, b, H1, ROOT, 1) == 1
    assert consortium.catalog.latest_version(a) == 2 and consortium.catalog.latest_version(b) == 1


def test_publish_refuses_non_owner(consortium, members):
    """Anyone but an operator of the owner department: DataCatalogNotOwner(datasetId, caller, ownerDept)."""
    dataset_id = register(consortium, members.samr)
    consortium.catalog.publish_version(members.samr.operator, dataset_id, H1, ROOT, 1)
    for signer in (members.tax.operator, members.samr.oracle, members.outsider, members.audit.auditor):
        expect_revert(consortium.chain, lambda: consortium.catalog.publish_version(signer, dataset_id, H2, ROOT, 1),
                      "DataCatalogNotOwner", {"datasetId": dataset_id, "caller": signer.address, "ownerDept": members.samr.id},
                      lambda: catalog_state(consortium, dataset_id))


def test_publish_refuses_unknown_dataset(consortium, members):
    """Publishing to a dataset that does not exist: DataCatalogUnknownDataset(datasetId)."""
    expect_revert(consortium.chain, lambda: consortium.catalog.publish_version(members.samr.operator, 7, H1, ROOT, 1),
                  "DataCatalogUnknownDataset", {"datasetId": 7}, lambda: catalog_state(consortium))


def test_publish_refuses_retired_dataset(consortium, members):
    """A retired dataset takes no new version: DataCatalogDatasetRetired(datasetId)."""
    dataset_id = register(consortium, members.samr)
    consortium.catalog.publish_version(members.samr.operator, dataset_id, H1, ROOT, 1)
    consortium.catalog.retire(members.samr.operator, dataset_id)
    expect_revert(consortium.chain, lambda: consortium.catalog.publish_version(members.samr.operator, dataset_id, H2, ROOT, 1),
                  "DataCatalogDatasetRetired", {"datasetId": dataset_id}, lambda: catalog_state(consortium, dataset_id))


def test_publish_refuses_invalid_commitments(consortium, members):
    """Zero content hash, or root zero exactly when records > 0 broken: DataCatalogInvalidVersion(args)."""
    dataset_id = register(consortium, members.samr)
    cases = [(ZERO, ROOT, 1), (ZERO, ZERO, 0), (H1, ZERO, 1), (H1, ZERO, 2**64 - 1), (H1, ROOT, 0)]
    for content, root, count in cases:
        expect_revert(consortium.chain,
                      lambda: consortium.catalog.publish_version(members.samr.operator, dataset_id, content, root, count),
                      "DataCatalogInvalidVersion", {"contentHash": content, "merkleRoot": root, "recordCount": count},
                      lambda: catalog_state(consortium, dataset_id))


# --------------------------------------------------------------------------- retireDataset


def test_retire_by_owner(consortium, members):
    """The owner retires: DatasetRetired event, retired flag set, published versions still readable."""
    dataset_id = register(consortium, members.samr)
    consortium.catalog.publish_version(members.samr.operator, dataset_id, H1, ROOT, 1)
    result = consortium.catalog._transact(members.samr.operator, "retireDataset", dataset_id)
    assert [(e.name, e.args) for e in result.logs] == [("DatasetRetired", {"datasetId": dataset_id})]
    ds = consortium.catalog.dataset(dataset_id)
    assert ds.retired is True
    assert ds.version_count == 1
    assert consortium.catalog.version(dataset_id, 1).content_hash == H1
    assert consortium.catalog.owner_of(dataset_id) == members.samr.id


def test_retire_twice_refused(consortium, members):
    """Retiring a retired dataset: DataCatalogDatasetRetired(datasetId)."""
    dataset_id = register(consortium, members.samr)
    consortium.catalog.retire(members.samr.operator, dataset_id)
    expect_revert(consortium.chain, lambda: consortium.catalog.retire(members.samr.operator, dataset_id),
                  "DataCatalogDatasetRetired", {"datasetId": dataset_id}, lambda: catalog_state(consortium, dataset_id))


def test_retire_refuses_non_owner(consortium, members):
    """Only the owner's operators retire: DataCatalogNotOwner(datasetId, caller, ownerDept)."""
    dataset_id = register(consortium, members.samr)
    for signer in (members.tax.operator, members.samr.oracle, members.outsider):
        expect_revert(consortium.chain, lambda: consortium.catalog.retire(signer, dataset_id),
                      "DataCatalogNotOwner", {"datasetId": dataset_id, "caller": signer.address, "ownerDept": members.samr.id},
                      lambda: catalog_state(consortium, dataset_id))


def test_retire_refuses_unknown_dataset(consortium, members):
    """Retiring an unknown dataset: DataCatalogUnknownDataset(datasetId)."""
    expect_revert(consortium.chain, lambda: consortium.catalog.retire(members.samr.operator, 3),
                  "DataCatalogUnknownDataset", {"datasetId": 3}, lambda: catalog_state(consortium))


# --------------------------------------------------------------------------- views on unknown ids


def test_views_on_unknown_dataset(consortium, members):
    """dataset/datasetVersion/latestVersion/verifyRecord revert DataCatalogUnknownDataset; ownerOf is 0."""
    register(consortium, members.samr)
    cat = consortium.catalog
    for dataset_id in (0, 2, 2**64 - 1):
        for call in (lambda: cat.dataset(dataset_id), lambda: cat.version(dataset_id, 1),
                     lambda: cat.latest_version(dataset_id), lambda: cat.verify_record(dataset_id, 1, H1, [])):
            expect_revert(consortium.chain, call, "DataCatalogUnknownDataset", {"datasetId": dataset_id})
        assert cat.owner_of(dataset_id) == 0


def test_views_on_unknown_version(consortium, members):
    """Version 0 and versions beyond the count: DataCatalogUnknownVersion(datasetId, version)."""
    dataset_id = register(consortium, members.samr)
    expect_revert(consortium.chain, lambda: consortium.catalog.version(dataset_id, 1),
                  "DataCatalogUnknownVersion", {"datasetId": dataset_id, "version": 1})
    consortium.catalog.publish_version(members.samr.operator, dataset_id, H1, ROOT, 1)
    consortium.catalog.publish_version(members.samr.operator, dataset_id, H2, ROOT, 1)
    for version in (0, 3, 2**32 - 1):
        expect_revert(consortium.chain, lambda: consortium.catalog.version(dataset_id, version),
                      "DataCatalogUnknownVersion", {"datasetId": dataset_id, "version": version})
        expect_revert(consortium.chain, lambda: consortium.catalog.verify_record(dataset_id, version, H1, []),
                      "DataCatalogUnknownVersion", {"datasetId": dataset_id, "version": version})
    assert consortium.catalog.version(dataset_id, 2).content_hash == H2


# --------------------------------------------------------------------------- Merkle proofs


def test_python_proofs_verify_on_chain(consortium, members):
    """Agreement: for record sets of 1, 2, 3, 7 and 100 (one version each), the Python proof of the first,
    middle and last records (all records for small sets) verifies in Python and on chain (OpenZeppelin)."""
    dataset_id = register(consortium, members.samr)
    for size in (1, 2, 3, 7, 100):
        records = company_records(size)
        version, tree = publish_records(consortium, members.samr, dataset_id, records)
        stored = consortium.catalog.version(dataset_id, version)
        assert stored.merkle_root == tree.root
        assert stored.content_hash == content_hash(records)
        assert stored.record_count == size
        indices = range(size) if size <= 7 else sorted({0, 1, size // 2, size - 2, size - 1, 37, 64})
        for i in indices:
            rh = record_hash(records[i])
            proof = tree.proof(i)
            verify_inclusion(rh, proof, tree.root)
            assert consortium.catalog.verify_record(dataset_id, version, rh, proof) is True, f"record {i} of {size}"
    assert consortium.catalog.latest_version(dataset_id) == 5


def test_single_record_tree_root_is_its_leaf(consortium, members):
    """One record: root = leaf_hash(record_hash) and the empty proof verifies on chain."""
    dataset_id = register(consortium, members.samr)
    records = company_records(1)
    version, tree = publish_records(consortium, members.samr, dataset_id, records)
    assert tree.root == leaf_hash(record_hash(records[0]))
    assert consortium.catalog.verify_record(dataset_id, version, record_hash(records[0]), []) is True


def test_tampered_record_refused_on_chain_and_in_python(consortium, members):
    """Changing one value of a record (capital, name, number) breaks its proof on chain and in Python."""
    dataset_id = register(consortium, members.samr)
    for size in (1, 2, 7, 100):
        records = company_records(size)
        version, tree = publish_records(consortium, members.samr, dataset_id, records)
        for i in {0, size // 2, size - 1}:
            for key, value in (("注册资本", "9999999.00"), ("企业名称", records[i]["企业名称"] + " "), ("序号", i + 1)):
                tampered = dict(records[i], **{key: value})
                rh = record_hash(tampered)
                proof = tree.proof(i)
                assert consortium.catalog.verify_record(dataset_id, version, rh, proof) is False
                with pytest.raises(MerkleProofError) as info:
                    verify_inclusion(rh, proof, tree.root)
                assert info.value.expected == tree.root and info.value.computed != tree.root


def test_tampered_proof_refused_on_chain_and_in_python(consortium, members):
    """A flipped bit, a dropped, extra or reordered sibling, or another record's proof: refused by both."""
    dataset_id = register(consortium, members.samr)
    records = company_records(7)
    version, tree = publish_records(consortium, members.samr, dataset_id, records)
    i = 2
    rh = record_hash(records[i])
    proof = tree.proof(i)
    assert len(proof) == 3
    flipped = list(proof)
    flipped[1] = bytes([proof[1][0] ^ 0x01]) + proof[1][1:]
    bad_proofs = {
        "flipped": flipped,
        "dropped": proof[:-1],
        "extra": proof + [keccak(b"x")],
        "reordered": [proof[1], proof[0], proof[2]],
        "other-record": tree.proof(3),
        "empty": [],
    }
    for label, bad in bad_proofs.items():
        assert consortium.catalog.verify_record(dataset_id, version, rh, bad) is False, label
        with pytest.raises(MerkleProofError):
            verify_inclusion(rh, bad, tree.root)
    # the leaf itself (instead of the record hash) is not accepted: leaves are hashed once more
    assert consortium.catalog.verify_record(dataset_id, version, leaf_hash(rh), proof) is False
    assert consortium.catalog.verify_record(dataset_id, version, rh, proof) is True


def test_proof_is_bound_to_its_version(consortium, members):
    """A record of version 1 is not in version 2 (changed content), and vice versa."""
    dataset_id = register(consortium, members.samr)
    v1_records = company_records(5)
    v2_records = [dict(r, 经营状态="吊销") for r in v1_records]
    v1, tree1 = publish_records(consortium, members.samr, dataset_id, v1_records)
    v2, tree2 = publish_records(consortium, members.samr, dataset_id, v2_records)
    assert (v1, v2) == (1, 2)
    rh1, rh2 = record_hash(v1_records[3]), record_hash(v2_records[3])
    assert consortium.catalog.verify_record(dataset_id, 1, rh1, tree1.proof(3)) is True
    assert consortium.catalog.verify_record(dataset_id, 2, rh2, tree2.proof(3)) is True
    assert consortium.catalog.verify_record(dataset_id, 2, rh1, tree1.proof(3)) is False
    assert consortium.catalog.verify_record(dataset_id, 1, rh2, tree2.proof(3)) is False


def test_proofs_still_verify_after_retirement(consortium, members):
    """Retiring stops new versions, not the evidence: published versions still verify."""
    dataset_id = register(consortium, members.samr)
    records = company_records(3)
    version, tree = publish_records(consortium, members.samr, dataset_id, records)
    consortium.catalog.retire(members.samr.operator, dataset_id)
    assert consortium.catalog.verify_record(dataset_id, version, record_hash(records[1]), tree.proof(1)) is True


def test_record_hash_is_key_order_independent_on_chain(consortium, members):
    """Canonical JSON sorts keys: the same record built in another key order proves on chain."""
    dataset_id = register(consortium, members.samr)
    records = company_records(4)
    version, tree = publish_records(consortium, members.samr, dataset_id, records)
    reordered = dict(reversed(list(records[2].items())))
    assert list(reordered) != list(records[2])
    assert consortium.catalog.verify_record(dataset_id, version, record_hash(reordered), tree.proof(2)) is True


def test_department_admitted_later_owns_its_datasets(consortium, members, committee):
    """A department admitted after deployment registers and owns datasets like the founders."""
    extra = members.spare[1]
    dept = admit(consortium, committee, "统计局 Statistics", "STATS", [AccountRole(extra.address, Role.OPERATOR)])
    dataset_id = consortium.catalog.register(extra, "人口统计", ["地区", "人口"], Classification.PUBLIC)
    assert consortium.catalog.owner_of(dataset_id) == dept


def test_fields_read_in_bounded_log_ranges(consortium, members, ganache, monkeypatch):
    """fields()/dataset() still work when the registration lies more than one eth_getLogs range back,
    and never ask the node for a longer range than DEFAULT_BLOCK_STEP (Besu refuses those).
    (Regression: the client used to ask for deployment..latest in one call.)"""
    first = register(consortium, members.samr)
    ganache.rpc("evm_mine", [{"blocks": 2 * DEFAULT_BLOCK_STEP + 10}])
    second = register(consortium, members.tax, "发票", ["发票号码", "金额"])
    ranges: list[tuple[int, int]] = []
    real_get_logs = consortium.chain.w3.eth.get_logs

    def recording_get_logs(query):  # pass-through: the real node answers, only the ranges are noted
        bounds = [consortium.chain.block_number() if query[k] == "latest" else int(query[k]) for k in ("fromBlock", "toBlock")]
        ranges.append((bounds[0], bounds[1]))
        return real_get_logs(query)

    monkeypatch.setattr(consortium.chain.w3.eth, "get_logs", recording_get_logs)
    assert consortium.catalog.fields(first) == tuple(FIELDS)
    assert consortium.catalog.dataset(second).fields == ("发票号码", "金额")
    assert consortium.catalog.fields(99) == ()
    assert ranges and all(b - a + 1 <= DEFAULT_BLOCK_STEP for a, b in ranges)
    assert max(b for _, b in ranges) >= consortium.chain.block_number() - 1
