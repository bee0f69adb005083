"""The protocol's test vectors (``tests/protocol/vectors/``) against govshare's own code.

Two ways: the files are exactly what ``make_vectors.py`` computes now (so they can never drift from
the code: regenerate with ``python -m tests.protocol.make_vectors`` after a deliberate protocol
change), and each vector means what docs/PROTOCOL.md says, checked value by value with the product
functions (a signature recovers its signer, every tampered one is refused, a receipt's hashes open
with its salts, ...), independently of how the generator computed it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.contracts.audit_log import (
    AuditEntry,
    OracleReason,
    Outcome,
    chain_step,
    pack_meta,
    reason_name,
    recompute_head,
    record_id,
    split_record_id,
    unpack_meta,
)
from ledger.contracts.grants import AccessReason
from ledger.errors import CanonicalizationError, HashLengthError
from ledger.hashing import canonical_json, content_hash, keccak, record_hash, salted_hash, schema_hash
from ledger.merkle import MerkleTree, is_included, leaf_hash, root_from_proof
from protocol import commitments, ecies
from protocol.oracle_export import OracleExport
from protocol.query import (
    InvalidSignature,
    Query,
    SignedQuery,
    domain_separator,
    query_digest,
    recover_query_signer,
)
from protocol.receipt import InvalidReceipt, Receipt, receipt_signer
from protocol.results import params_associated_data, result_associated_data, result_requester
from tests.protocol.make_vectors import VECTORS_DIR, build_all

FILES = sorted(build_all())


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))


def b(hex_text: str) -> bytes:
    assert hex_text.startswith("0x")
    return bytes.fromhex(hex_text[2:])


@pytest.mark.parametrize("name", FILES)
def test_the_files_are_what_the_code_computes(name: str) -> None:
    built = build_all()[name]
    on_disk = (VECTORS_DIR / name).read_text(encoding="utf-8")
    assert on_disk == built, f"{name} differs from the code: run `.venv/bin/python -m tests.protocol.make_vectors`"


def test_every_vector_file_is_generated() -> None:
    assert sorted(p.name for p in VECTORS_DIR.glob("*.json")) == FILES


# ----------------------------------------------------------------------------------- canonical JSON and hashes


def test_canonical_json_cases() -> None:
    data = load("canonical_json.json")
    assert len(data["cases"]) >= 25
    for case in data["cases"]:
        encoded = canonical_json(json.loads(case["input"]))
        assert encoded == case["canonical"].encode("utf-8") == b(case["canonical_utf8_hex"]), case["name"]
        assert keccak(encoded) == b(case["keccak256"]), case["name"]
        assert json.loads(encoded) == json.loads(case["input"]), case["name"]  # canonical JSON is JSON
    for case in data["refused"]:
        with pytest.raises(CanonicalizationError):
            canonical_json(json.loads(case["input"]))


def test_hashes() -> None:
    data = load("hashes.json")
    for case in data["keccak256"]:
        assert keccak(b(case["input_hex"])) == b(case["keccak256"])
    for case in data["salted_hash"]:
        body = json.loads(case["body"])
        assert canonical_json({"salt": case["salt"], "body": body}) == case["preimage"].encode("utf-8")
        assert salted_hash(body, b(case["salt"])) == b(case["hash"]) == keccak(case["preimage"].encode("utf-8"))
    for case in data["salted_hash_refused"]:
        with pytest.raises(HashLengthError):
            salted_hash(json.loads(case["body"]), b(case["salt"]))
    for case in data["params_hash"]:
        assert commitments.params_hash(case["params"], b(case["paramsSalt"])) == b(case["paramsHash"])
        assert keccak(case["preimage"].encode("utf-8")) == b(case["paramsHash"])
    assert schema_hash(data["schema_hash"]["fields"]) == b(data["schema_hash"]["schemaHash"])


# ----------------------------------------------------------------------------------- queries


def test_queries_sign_and_recover() -> None:
    data = load("queries.json")
    domain = data["domain"]
    chain_id, contract = domain["chainId"], domain["verifyingContract"]
    assert domain_separator(chain_id, contract) == b(domain["domainSeparator"]) == keccak(b(domain["encoded"]))
    for other in data["other_domains"]:
        assert domain_separator(other["chainId"], other["verifyingContract"]) == b(other["domainSeparator"])
    for case in data["queries"]:
        signed = SignedQuery.from_body(json.dumps(case["body"], ensure_ascii=False))
        query = signed.query
        assert query == Query.from_json(case["message"])
        assert query_digest(query, chain_id, contract) == b(case["digest"])
        assert keccak(b"\x19\x01" + b(domain["domainSeparator"]) + b(case["structHash"])) == b(case["digest"])
        assert keccak(b(case["encodeData"])) == b(case["structHash"])
        assert recover_query_signer(query, signed.signature, chain_id, contract) == case["signer"] == query.requester
        assert commitments.params_hash(signed.params, signed.params_salt) == query.params_hash == b(case["paramsHash"])
        assert signed.canonical() == case["request_hash_body"]
        assert commitments.request_hash(signed.canonical(), b(case["request_salt"])) == b(case["requestHash"])
        assert keccak(case["request_hash_preimage"].encode("utf-8")) == b(case["requestHash"])


def test_tampered_queries_are_refused() -> None:
    data = load("queries.json")
    signer = data["queries"][0]["signer"]
    assert len(data["tampered"]) >= 6
    for case in data["tampered"]:
        query, domain = Query.from_json(case["message"]), case["domain"]
        assert query_digest(query, domain["chainId"], domain["verifyingContract"]) == b(case["digest"])
        try:
            recovered = recover_query_signer(query, b(case["signature"]), domain["chainId"], domain["verifyingContract"])
        except InvalidSignature:
            recovered = None
            assert case["refused_as"] == "InvalidSignature", case["name"]
        assert recovered == case["recovers"] and recovered != signer, case["name"]
    mismatch = data["params_mismatch"]
    signed = SignedQuery.from_body(json.dumps(mismatch["body"], ensure_ascii=False))
    assert commitments.params_hash(signed.params, signed.params_salt) == b(mismatch["paramsHash_of_params"])
    assert signed.query.params_hash == b(mismatch["signed_paramsHash"]) != b(mismatch["paramsHash_of_params"])
    for case in data["bodies_refused"]:
        with pytest.raises(ValueError):
            SignedQuery.from_body(case["body_text"])


# ----------------------------------------------------------------------------------- receipts and records


def test_receipts() -> None:
    data = load("receipts.json")
    queries = {q["name"]: q for q in load("queries.json")["queries"]}
    oracle = data["oracle"]
    sent = [x for x in data["exchanges"] if x["reply"] is not None]
    assert {x["status"] for x in sent} == {200, 401, 403, 503, 504}
    for exchange in data["exchanges"]:
        query = queries[exchange["query"]]
        receipt = exchange["reply"]["receipt"] if exchange["reply"] else None
        if receipt is None:  # the strict-mode record whose answer was withheld: its receipt is in audit_records.json
            continue
        parsed = Receipt.from_dict(receipt)
        assert receipt_signer(receipt) == oracle == exchange["signer"] == parsed.oracle
        parsed.check_binding()  # record hash and chain head follow from its fields
        assert canonical_json(parsed.body()) == exchange["receipt_body_canonical"].encode("utf-8")
        assert parsed.digest() == b(exchange["receipt_digest"])
        assert keccak(b"\x19Ethereum Signed Message:\n32" + parsed.digest()) == b(exchange["eip191_hash"])
        assert commitments.request_hash(query["request_hash_body"], b(receipt["request_salt"])) == b(receipt["request_hash"])
        if exchange["status"] == 200:
            records = exchange["reply"]["records"]
            assert commitments.response_hash(records, b(receipt["response_salt"])) == b(receipt["response_hash"])
        else:
            assert receipt["response_hash"] == "0x" + "00" * 32 and receipt["response_salt"] == ""
            problem = exchange["reply"]
            assert problem["status"] == exchange["status"] and problem["reason"] == reason_name(receipt["reason"])
    for case in data["tampered"]:
        try:
            recovered = receipt_signer(case["receipt"])
        except InvalidReceipt:
            recovered = None
            assert case["refused_as"] == "InvalidReceipt", case["name"]
        assert recovered == case["recovers"] and recovered != oracle, case["name"]
    assert len(data["inconsistent"]) >= 4
    for case in data["inconsistent"]:  # signed by the oracle, but the binding contradicts the fields
        assert receipt_signer(case["receipt"]) == oracle, case["name"]
        with pytest.raises(InvalidReceipt):
            Receipt.from_dict(case["receipt"]).check_binding()
        assert case["refused_as"] == "InvalidReceipt"


def test_audit_records_and_the_hash_chain() -> None:
    data = load("audit_records.json")
    oracle = data["oracle"]
    head = b"\x00" * 32
    entries = []
    for record in data["records"]:
        receipt, e = record["receipt"], record["entry"]
        assert receipt_signer(receipt) == oracle
        rid = record_id(oracle, record["sequence"])
        assert hex(rid) == record["record_id"] == receipt["record_id"] and str(rid) == record["record_id_decimal"]
        assert split_record_id(rid) == (oracle, record["sequence"])
        entry = AuditEntry(e["grantId"], e["requester"], e["datasetId"], e["datasetVersion"], Outcome(e["outcome"]),
                           e["reason"], e["checkedAtBlock"], b(e["requestHash"]), b(e["responseHash"]))
        # the receipt names the entry, field for field
        assert (receipt["grant_id"], receipt["requester"], receipt["dataset_id"], receipt["dataset_version"],
                receipt["outcome"], receipt["reason"], receipt["checked_at_block"], receipt["request_hash"],
                receipt["response_hash"]) == (e["grantId"], e["requester"], e["datasetId"], e["datasetVersion"],
                                              e["outcome"], e["reason"], e["checkedAtBlock"], e["requestHash"], e["responseHash"])
        assert hex(entry.meta) == record["meta"]
        assert unpack_meta(entry.meta) == (e["checkedAtBlock"], e["datasetVersion"], Outcome(e["outcome"]), e["reason"])
        assert entry.packed() == b"".join(b(w) for w in record["packed"])
        assert entry.record_hash() == keccak(entry.packed()) == b(record["record_hash"]) == b(receipt["record_hash"])
        assert b(record["head_before"]) == head == b(receipt["previous_head"])
        head = chain_step(head, rid, entry)
        assert head == b(record["head_after"]) == keccak(b(record["chain_step_preimage"])) == b(receipt["chain_head"])
        assert b(record["event"]["data"]) == rid.to_bytes(32, "big") + entry.meta.to_bytes(32, "big") + entry.request_hash + entry.response_hash
        entries.append(entry)
    assert recompute_head(oracle, entries) == head == b(data["final_head"])
    assert b(data["batch_event"]["data"])[64:] == head
    for case in data["record_ids"]:
        assert hex(record_id(case["oracle"], case["sequence"])) == case["record_id"]
    for case in data["record_ids_refused"]:
        with pytest.raises(ValueError):
            record_id(oracle, case["sequence"])
    for case in data["meta"]:
        assert hex(pack_meta(case["checkedAtBlock"], case["datasetVersion"], case["outcome"], case["reason"])) == case["meta"]
    for case in data["meta_refused"]:
        with pytest.raises(ValueError):
            pack_meta(case["checkedAtBlock"], case["datasetVersion"], case["outcome"], case["reason"])
    assert data["reasons"] == {"access": {r.name: int(r) for r in AccessReason}, "oracle": {r.name: int(r) for r in OracleReason},
                               "outcomes": {o.name: int(o) for o in Outcome}}


def test_the_oracle_export_lines_read_back(tmp_path: Path) -> None:
    data = load("audit_records.json")
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(data["oracle_export"]["lines"]) + "\n", encoding="utf-8")
    export = OracleExport.read(path)
    assert export.oracle == data["oracle"] and len(export.records) == len(data["records"])
    for exported, record in zip(export.records, data["records"]):
        assert exported.sequence == record["sequence"]
        assert "0x" + exported.entry.request_hash.hex() == record["entry"]["requestHash"]
        assert "0x" + exported.request_salt.hex() == record["receipt"]["request_salt"]
        assert (exported.response_salt is None) == (record["receipt"]["response_salt"] == "")


# ----------------------------------------------------------------------------------- Merkle, on-chain requests


def test_merkle() -> None:
    data = load("merkle.json")
    records = [r["record"] for r in data["records"]]
    assert content_hash(records) == b(data["contentHash"]) == keccak(data["jsonl"].encode("utf-8"))
    tree = MerkleTree([record_hash(r) for r in records])
    assert tree.root == b(data["merkleRoot"])
    for i, r in enumerate(data["records"]):
        assert record_hash(r["record"]) == b(r["record_hash"]) and leaf_hash(b(r["record_hash"])) == b(r["leaf"])
        assert [("0x" + p.hex()) for p in tree.proof(i)] == r["proof"]
        assert is_included(b(r["record_hash"]), [b(p) for p in r["proof"]], tree.root)
    assert MerkleTree([record_hash(data["single_record"]["record"])]).root == b(data["single_record"]["merkleRoot"])
    assert content_hash([]) == b(data["empty"]["contentHash"]) and MerkleTree([]).root == b(data["empty"]["merkleRoot"])
    for case in data["tampered"]:
        proof = [b(p) for p in case["proof"]]
        assert not is_included(record_hash(case["record"]), proof, tree.root)
        assert root_from_proof(leaf_hash(record_hash(case["record"])), proof) == b(case["computed_root"])


def test_onchain_requests() -> None:
    data = load("onchain.json")
    keys = data["test_keys"]["keys"]
    oracle_key = b(keys["oracle (account 4)"]["private_key"])
    requester_key = b(keys["requester (account 5)"]["private_key"])
    requester = keys["requester (account 5)"]["address"]
    enc = data["params_encryption"]
    assert params_associated_data(requester) == b(enc["associated_data"])
    assert ecies.decrypt(oracle_key, b(enc["ciphertext"]), b(enc["associated_data"])) == enc["plaintext"].encode("utf-8")
    assert enc["plaintext"].encode("utf-8") == canonical_json(enc["params"]) and keccak(b(enc["ciphertext"])) == b(enc["commitment"])
    result = data["result_encryption"]
    request_id = data["request_hash"]["requestId"]
    assert result_associated_data(request_id) == b(result["associated_data"])
    plain = ecies.decrypt(requester_key, b(result["ciphertext"]), b(result["associated_data"]))
    assert plain == result["plaintext"].encode("utf-8")
    assert receipt_signer(json.loads(plain)["receipt"]) == data["identity"]["oracle"]
    for case in data["tampered"]:
        with pytest.raises(ecies.DecryptionError):
            ecies.decrypt(oracle_key, b(case["ciphertext"]), b(case["associated_data"]))
    rh = data["request_hash"]
    assert commitments.onchain_request_body(request_id, rh["transaction"], enc["params"]) == rh["body"]
    assert commitments.request_hash(rh["body"], b(rh["request_salt"])) == b(rh["requestHash"])
    assert commitments.request_hash(rh["undecryptable_body"], b(rh["request_salt"])) == b(rh["undecryptable_requestHash"])
    auth = data["result_auth"]
    assert result_requester(auth["authorization"], request_id, now=auth["timestamp"]) == auth["signer"] == requester
    assert result_requester(auth["authorization"], request_id + 1, now=auth["timestamp"]) == auth["for_another_request"]["recovers"] != requester
    assert result_requester(auth["authorization"], request_id, now=auth["timestamp"] + 301) is None  # outside the window
