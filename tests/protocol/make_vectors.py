"""Build the protocol's test vectors (``tests/protocol/vectors/*.json``) with govshare's own code.

    .venv/bin/python -m tests.protocol.make_vectors          # rewrite the files
    .venv/bin/python -m tests.protocol.make_vectors --check  # exit 1 if a file differs

Everything is deterministic: the keys are ganache's deterministic accounts (PUBLIC TEST KEYS,
derived from a published mnemonic: never use them on a real chain), salts, nonces, deadlines and
ECIES ephemeral keys are fixed, and secp256k1 signatures use RFC 6979 nonces. ``test_vectors.py``
rebuilds every file in memory and fails on any difference, and checks each vector's meaning with
the product code (signatures recover, tampered ones are refused, ...). docs/PROTOCOL.md explains
every value; tests/js/ checks them from the spec alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys as eth_keys
from eth_utils import keccak as eth_keccak
from eth_utils import to_checksum_address

from devtools.devnet import DETERMINISTIC_MNEMONIC
from ledger.contracts.audit_log import (
    ZERO_ADDRESS,
    ZERO_HASH,
    AuditEntry,
    OracleReason,
    Outcome,
    chain_step,
    pack_meta,
    reason_name,
    record_id,
)
from ledger.contracts.grants import AccessReason
from ledger.errors import LedgerError
from ledger.hashing import canonical_json, content_hash, keccak, record_hash, salted_hash, schema_hash
from ledger.keys import Signer, signer_from_key
from ledger.merkle import MerkleTree, leaf_hash
from protocol import commitments, ecies
from protocol.oracle_export import ExportedRecord, OracleExport
from protocol.query import (
    DOMAIN_NAME,
    DOMAIN_TYPE,
    DOMAIN_VERSION,
    QUERY_TYPE,
    SECP256K1_N,
    InvalidSignature,
    Query,
    SignedQuery,
    domain_separator,
    query_digest,
    recover_query_signer,
)
from protocol.receipt import InvalidReceipt, Receipt, receipt_signer
from protocol.results import params_associated_data, result_associated_data, result_auth_message

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
FORMAT = 1
TEST_KEY_WARNING = (
    "PUBLIC TEST KEYS: ganache's deterministic accounts, derived from the published mnemonic below. "
    "Anyone can sign with them: never use them on a real chain."
)

CHAIN_ID = 1337
#: A fixed QueryRequests address for the vectors (any address works; a deployment has its own).
QUERY_REQUESTS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_CONTRACT = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
DEADLINE = 1_767_225_600  # 2026-01-01T00:00:00Z
RESULT_AUTH_TIME = 1_767_225_000


# ----------------------------------------------------------------------------------- helpers


def h(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def fixed(label: str, length: int) -> bytes:
    """``length`` bytes derived from ``label`` (keccak chained): fixed salts, nonces, keys."""
    out = b""
    counter = 0
    while len(out) < length:
        out += keccak(f"govshare-vectors/{label}/{counter}".encode())
        counter += 1
    return out[:length]


def public_test_account(index: int) -> tuple[Signer, bytes]:
    Account.enable_unaudited_hdwallet_features()
    key = bytes(Account.from_mnemonic(DETERMINISTIC_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key)
    return signer_from_key(key), key


def public_key_64(private_key: bytes) -> bytes:
    return eth_keys.PrivateKey(private_key).public_key.to_bytes()


def flip_bit(sig: bytes, byte: int, bit: int) -> bytes:
    out = bytearray(sig)
    out[byte] ^= 1 << bit
    return bytes(out)


def high_s(sig: bytes) -> bytes:
    """The other valid signature of the same message (s' = n - s, v flipped): malleable, refused."""
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])


def v_as_parity(sig: bytes) -> bytes:
    return sig[:64] + bytes([sig[64] - 27])


def eip191_hash(digest: bytes) -> bytes:
    return keccak(b"\x19Ethereum Signed Message:\n32" + digest)


def eip191_text_hash(text: str) -> bytes:
    data = text.encode("utf-8")
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


def recover_or_none(fn: Any) -> tuple[str | None, str | None]:
    """(recovered address, None) or (None, the refusal's class name)."""
    try:
        return fn(), None
    except (InvalidSignature, InvalidReceipt) as exc:
        return None, type(exc).__name__


def text(value: Any) -> str:
    return canonical_json(value).decode("utf-8")


# ----------------------------------------------------------------------------------- canonical JSON

# (name, input JSON text). Inputs carry whitespace, unsorted keys and escapes on purpose: the
# canonical form is what a parser + canonicaliser must produce from them.
CANONICAL_CASES: list[tuple[str, str]] = [
    ("empty object", "{}"),
    ("empty array", "[ ]"),
    ("empty string", '""'),
    ("empty containers nested", '{"c": "", "b": [], "a": {}}'),
    ("literals", "[true, false, null]"),
    ("whitespace between tokens is dropped", ' \t\r\n{ "a" : [ 1 , 2 ] ,\n "b" : { } } \n'),
    ("ASCII keys sorted by code point (uppercase before lowercase, shorter prefix first)",
     '{"b": 1, "a": 2, "B": 3, "_": 4, "": 5, "aa": 6, "a b": 7, "A": 8, "0": 9}'),
    ("CJK text written as itself, CJK keys sorted by code point",
     '{"部门": "市场监督管理局", "name": "企业登记信息 Company registry", "状态": "存续"}'),
    ("\\u escapes in the input become the characters themselves", '"\\u00e9\\u4e2d\\u6587 caf\\u00E9"'),
    ("escaped solidus is written unescaped", '"a\\/b/c"'),
    ("emoji outside the BMP (from a surrogate-pair escape) written as its 4 UTF-8 bytes", '"\\ud83d\\ude00 and \U0001F680"'),
    ("CJK extension B (outside the BMP) written as itself", '"\U00020000\U0002A6D6"'),
    ("keys sorted by code point, not by UTF-16 code unit (U+E000 and U+FF5E before U+1F600)",
     '{"\\ud83d\\ude00": 1, "\\uff5e": 2, "\\ue000": 3, "z": 4}'),
    ("keys differing only in a character outside the BMP",
     '{"k\\ud83d\\ude01": 1, "k\\ud83d\\ude00": 2, "k\\ud840\\udc00": 3, "k\\uffff": 4}'),
    ("quote and backslash escaped with a backslash", '"say \\"hi\\" \\\\ bye"'),
    ("control characters: \\b \\t \\n \\f \\r short forms, the others \\u00XX lowercase",
     '"\\u0000\\u0001\\b\\t\\n\\u000B\\f\\r\\u000e\\u001F"'),
    ("DEL (U+007F) is not escaped", '"\\u007f"'),
    ("U+2028 and U+2029 are not escaped", '"\\u2028\\u2029"'),
    ("U+0080..U+009F (C1 controls) are not escaped", '"\\u0080\\u009f"'),
    ("a byte-order mark inside a string is kept", '"\\ufeffBOM"'),
    ("no Unicode normalisation: precomposed e-acute", '"\\u00e9"'),
    ("no Unicode normalisation: e + combining acute (a different hash)", '"e\\u0301"'),
    ("integers: minus zero becomes 0", "[0, -0, 1, -1]"),
    ("integers past 2^53 stay exact",
     "[9007199254740992, 9007199254740993, -9007199254740993, 18446744073709551615, 18446744073709551616]"),
    ("integers of 256 bits",
     "[115792089237316195423570985008687907853269984665640564039457584007913129639935, "
     "-57896044618658097711785492504343953926634992332820282019728792003956564819968]"),
    ("nested objects sorted at every level",
     '{"z": {"b": [{"y": 1, "x": 2}], "a": null}, "a": {"d": {"f": true, "e": false}}}'),
    ("arrays keep their order", '[3, 1, 2, "b", "a"]'),
    ("a department record",
     '{"status": "存续", "company_id": "91440304WTF2731A0R", "registered_capital": "1234.50", '
     '"employees": 120, "name": "深圳市洋芳科技有限公司", "listed": false, "notes": null}'),
]

# (name, input JSON text, why it is refused)
CANONICAL_REFUSED: list[tuple[str, str, str]] = [
    ("a fraction", "1.5", "floats are not canonical"),
    ("an integral value written as a float", "1.0", "any fraction or exponent makes a float"),
    ("an exponent", "1e2", "any fraction or exponent makes a float"),
    ("minus zero as a float", "-0.0", "any fraction or exponent makes a float"),
    ("a float inside a record", '{"amount": 12.5}', "floats are not canonical"),
    ("a lone high surrogate", '"\\ud800"', "a lone surrogate has no UTF-8 form"),
    ("a lone low surrogate", '"x\\udc00"', "a lone surrogate has no UTF-8 form"),
    ("surrogates in the wrong order", '"\\udc00\\ud800"', "a lone surrogate has no UTF-8 form"),
    ("a lone surrogate in a key", '{"\\udfff": 1}', "a lone surrogate has no UTF-8 form"),
]


def parse_for_vectors(text_in: str) -> Any:
    """The input as govshare's Python side reads JSON (the standard library; integers exact)."""
    return json.loads(text_in)


def build_canonical() -> dict[str, Any]:
    cases = []
    for name, source in CANONICAL_CASES:
        canonical = canonical_json(parse_for_vectors(source))
        cases.append({"name": name, "input": source, "canonical": canonical.decode("utf-8"),
                      "canonical_utf8_hex": h(canonical), "keccak256": h(keccak(canonical))})
    refused = []
    for name, source, why in CANONICAL_REFUSED:
        try:
            canonical_json(parse_for_vectors(source))
        except LedgerError:
            refused.append({"name": name, "input": source, "why": why})
        else:  # pragma: no cover - the generator's own guard
            raise AssertionError(f"canonical JSON accepted {name}")
    return {"about": "Canonical JSON (docs/PROTOCOL.md, 'Canonical JSON'): parse `input` exactly (integers of any size, "
                     "escapes decoded), write the canonical form; `canonical_utf8_hex` is the byte string that is hashed. "
                     "Every `refused` input must be refused.",
            "format": FORMAT, "cases": cases, "refused": refused}


# ----------------------------------------------------------------------------------- hashes


def build_hashes() -> dict[str, Any]:
    keccak_cases = [
        {"input_hex": "0x", "keccak256": h(keccak(b""))},
        {"input_hex": h(b"abc"), "keccak256": h(keccak(b"abc"))},
        {"input_hex": h("govshare 市场".encode()), "keccak256": h(keccak("govshare 市场".encode()))},
        {"input_hex": h(bytes(range(136))), "keccak256": h(keccak(bytes(range(136))))},  # one full rate block
        {"input_hex": h(bytes(range(200))), "keccak256": h(keccak(bytes(range(200))))},
    ]
    salted = []
    for name, value_text, salt in [
        ("a string, 16-byte salt (the shortest)", '"91440304WTF2731A0R"', fixed("salted/1", 16)),
        ("an object, 32-byte salt", '{"b": "二", "a": 1}', fixed("salted/2", 32)),
        ("null body, 64-byte salt", "null", fixed("salted/3", 64)),
        ("records list", '{"records": [{"name": "企业", "n": 18446744073709551615}]}', fixed("salted/4", 32)),
    ]:
        value = parse_for_vectors(value_text)
        preimage = canonical_json({"salt": h(salt), "body": value})
        salted.append({"name": name, "body": value_text, "salt": h(salt), "preimage": preimage.decode("utf-8"),
                       "hash": h(salted_hash(value, salt))})
        assert keccak(preimage) == salted_hash(value, salt)
    params = []
    for name, p, salt in [
        ("one company id", {"company_id": "91440304WTF2731A0R"}, fixed("params/1", 32)),
        ("no parameters", {}, fixed("params/2", 32)),
        ("CJK names and values", {"status": "存续", "name": "深圳市洋芳科技有限公司"}, fixed("params/3", 16)),
        ("values with escapes", {"q": 'a "quoted"\\path\n', "emoji": "😀"}, fixed("params/4", 64)),
        ("32 parameters (the most a query may carry)", {f"p{i:02d}": str(i) for i in range(32)}, fixed("params/5", 32)),
    ]:
        params.append({"name": name, "params": p, "paramsSalt": h(salt),
                       "preimage": text({"salt": h(salt), "body": p}), "paramsHash": h(commitments.params_hash(p, salt))})
    fields = ["company_id", "name", "registration_date", "status", "法定代表人"]
    return {
        "about": "keccak-256 (Ethereum's, not NIST SHA3-256), salted hashes keccak256(canonical_json({salt, body})) "
                 "and paramsHash (docs/PROTOCOL.md, 'Hashes and commitments').",
        "format": FORMAT,
        "keccak256": keccak_cases,
        "salted_hash": salted,
        "salted_hash_refused": [{"name": "a 15-byte salt", "salt": h(fixed("salted/short", 15)), "body": '"x"',
                                 "why": "salts are 16 bytes or more"}],
        "params_hash": params,
        "schema_hash": {"fields": fields, "abi_encoded": h(abi_encode(["string[]"], [fields])),
                        "schemaHash": h(schema_hash(fields))},
    }


# ----------------------------------------------------------------------------------- EIP-712 queries


def struct_hash(q: Query) -> tuple[bytes, bytes]:
    """(encodeData, hashStruct) of a query, by eth_abi (independent of protocol.query's hand packing)."""
    encoded = abi_encode(
        ["bytes32", "address", "uint32", "uint64", "uint64", "uint256", "bytes32", "uint256", "uint64"],
        [keccak(QUERY_TYPE.encode()), q.requester, q.requester_dept, q.dataset_id, q.grant_id, q.fields, q.params_hash,
         q.nonce, q.deadline],
    )
    return encoded, keccak(encoded)


def domain_vector(chain_id: int, contract: str) -> dict[str, Any]:
    encoded = abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                         [keccak(DOMAIN_TYPE.encode()), keccak(DOMAIN_NAME.encode()), keccak(DOMAIN_VERSION.encode()),
                          chain_id, contract])
    separator = domain_separator(chain_id, contract)
    assert keccak(encoded) == separator
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract,
            "encoded": h(encoded), "domainSeparator": h(separator)}


#: (name, requester account, dept, dataset, grant, fields, params, salt, nonce, wire form tweaks)
QUERY_CASES = [
    ("an ordinary query", 5, 2, 1, 1, 0b1011, {"company_id": "91440304WTF2731A0R"}, fixed("q1/salt", 32),
     0x2A, {}),
    ("the largest values each member can hold", 5, 2**32 - 1, 2**64 - 1, 2**64 - 1, 2**256 - 1,
     {"status": "存续"}, fixed("q2/salt", 32), 2**256 - 1, {}),
    ("CJK and escaped parameters, 16-byte salt sent in uppercase hex, integers sent as JSON numbers, "
     "requester in lowercase", 5, 2, 7, 3, 1 << 200, {"name": "深圳市洋芳科技有限公司", "q": 'say "hi"\n'},
     fixed("q3/salt", 16), int.from_bytes(fixed("q3/nonce", 32), "big"),
     {"uppercase_salt": True, "json_numbers": True, "lowercase_requester": True}),
    ("no parameters, 64-byte salt", 7, 3, 2, 4, 1, {}, fixed("q4/salt", 64), 1, {}),
]


def wire_query(q: Query, tweaks: dict[str, bool]) -> dict[str, Any]:
    wire = q.to_json()
    if tweaks.get("json_numbers"):
        wire.update({k: int(v) for k, v in wire.items() if k not in ("requester", "paramsHash", "requesterDept")})
    if tweaks.get("lowercase_requester"):
        wire["requester"] = wire["requester"].lower()
    return wire


def build_queries() -> dict[str, Any]:
    accounts = {i: public_test_account(i) for i in (5, 7, 9)}
    domain = domain_vector(CHAIN_ID, QUERY_REQUESTS)
    queries, signed_by_name = [], {}
    for name, acct, dept, dataset, grant, fields, params, salt, nonce, tweaks in QUERY_CASES:
        signer, _ = accounts[acct]
        signed = SignedQuery.sign(signer, requester_dept=dept, dataset_id=dataset, grant_id=grant, fields=fields,
                                  params=params, salt=salt, deadline=DEADLINE, chain_id=CHAIN_ID,
                                  verifying_contract=QUERY_REQUESTS, nonce=nonce)
        q = signed.query
        encoded, shash = struct_hash(q)
        digest = query_digest(q, CHAIN_ID, QUERY_REQUESTS)
        assert digest == keccak(b"\x19\x01" + domain_separator(CHAIN_ID, QUERY_REQUESTS) + shash)
        assert recover_query_signer(q, signed.signature, CHAIN_ID, QUERY_REQUESTS) == signer.address
        body = signed.to_json()
        body["query"] = wire_query(q, tweaks)
        if tweaks.get("uppercase_salt"):
            body["paramsSalt"] = "0x" + salt.hex().upper()
        parsed = SignedQuery.from_body(json.dumps(body, ensure_ascii=False))
        assert parsed.query == q and parsed.params_salt == salt
        request_salt = fixed(f"{name}/request_salt", 32)
        committed = parsed.canonical()
        queries.append({
            "name": name,
            "signer": signer.address,
            "params": params,
            "paramsSalt": h(salt),
            "paramsHash": h(q.params_hash),
            "message": {k: (str(v) if isinstance(v, int) else v) for k, v in q.to_json().items()},
            "encodeData": h(encoded),
            "structHash": h(shash),
            "digest": h(digest),
            "signature": h(signed.signature),
            "body": body,
            "request_salt": h(request_salt),
            "request_hash_body": committed,
            "request_hash_preimage": text({"salt": h(request_salt), "body": committed}),
            "requestHash": h(commitments.request_hash(committed, request_salt)),
        })
        signed_by_name[name] = (q, signed.signature, signer)
    q, sig, signer = signed_by_name[QUERY_CASES[0][0]]
    base = queries[0]

    def tampered(name: str, change: str, *, query: Query = q, signature: bytes = sig, chain_id: int = CHAIN_ID,
                 contract: str = QUERY_REQUESTS, refusal: str = "BAD_SIGNATURE") -> dict[str, Any]:
        recovered, error = recover_or_none(lambda: recover_query_signer(query, signature, chain_id, contract))
        assert recovered != signer.address
        return {"name": name, "change": change, "message": {k: str(v) if isinstance(v, int) else v
                                                             for k, v in query.to_json().items()},
                "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract},
                "signature": h(signature), "digest": h(query_digest(query, chain_id, contract)),
                "recovers": recovered, "refused_as": error, "oracle_reason": refusal}

    from dataclasses import replace
    tampered_list = [
        tampered("flipped bit in s", "bit 0 of signature byte 40 flipped", signature=flip_bit(sig, 40, 0)),
        tampered("flipped bit in r", "bit 7 of signature byte 3 flipped", signature=flip_bit(sig, 3, 7)),
        tampered("wrong chain id in the domain", "signed for chain 1337, checked on chain 1", chain_id=1),
        tampered("wrong verifying contract", "checked against another QueryRequests address", contract=OTHER_CONTRACT),
        tampered("a member changed after signing", "grantId 1 -> 2", query=replace(q, grant_id=2)),
        tampered("high-s signature", "s replaced by n - s and v flipped: recovers the same key, but malleable",
                 signature=high_s(sig)),
        tampered("v as 0/1", "v written as the recovery id (0/1) instead of 27/28", signature=v_as_parity(sig)),
        tampered("64-byte signature", "v dropped", signature=sig[:64]),
    ]
    # Signature valid, parameters not the ones signed: the oracle's MALFORMED_REQUEST.
    other_params = {"company_id": "913201025TH2HUCCPD"}
    params_mismatch = {"name": "parameters changed after signing", "body": {**base["body"], "params": other_params},
                       "paramsHash_of_params": h(commitments.params_hash(other_params, bytes.fromhex(base["paramsSalt"][2:]))),
                       "signed_paramsHash": base["paramsHash"], "oracle_reason": "MALFORMED_REQUEST", "status": 400}
    return {
        "about": "EIP-712 signed queries and the POST /v1/query body (docs/PROTOCOL.md, 'Signed queries'). "
                 "Signatures are RFC 6979 deterministic, so signing `digest` with the signer's key gives `signature` "
                 "byte for byte. `tampered` must all be refused.",
        "format": FORMAT,
        "test_keys": keys_note({f"account {i}": accounts[i] for i in accounts}),
        "types": {"EIP712Domain": DOMAIN_TYPE, "Query": QUERY_TYPE,
                  "domainTypeHash": h(keccak(DOMAIN_TYPE.encode())), "queryTypeHash": h(keccak(QUERY_TYPE.encode()))},
        "domain": domain,
        "other_domains": [domain_vector(1, QUERY_REQUESTS), domain_vector(CHAIN_ID, OTHER_CONTRACT)],
        "queries": queries,
        "tampered": tampered_list,
        "params_mismatch": params_mismatch,
        "bodies_refused": bodies_refused(base["body"]),
    }


def bodies_refused(body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST /v1/query bodies the oracle answers 400 without a record (the body is not a query)."""
    q = body["query"]
    cases = [
        ("`salt` instead of `paramsSalt`", {k if k != "paramsSalt" else "salt": v for k, v in body.items()}),
        ("paramsSalt of 15 bytes", {**body, "paramsSalt": "0x" + "ab" * 15}),
        ("paramsSalt of 65 bytes", {**body, "paramsSalt": "0x" + "ab" * 65}),
        ("paramsSalt without 0x", {**body, "paramsSalt": "ab" * 32}),
        ("a parameter value that is not a string", {**body, "params": {"company_id": 12}}),
        ("33 parameters", {**body, "params": {f"p{i}": "x" for i in range(33)}}),
        ("a 64-byte signature", {**body, "signature": body["signature"][:130]}),
        ("an unknown member in the body", {**body, "extra": 1}),
        ("an integer member with a leading zero", {**body, "query": {**q, "grantId": "01"}}),
        ("an integer member with a sign", {**body, "query": {**q, "grantId": "+1"}}),
        ("an integer member as a float", {**body, "query": {**q, "grantId": 1.0}}),
        ("requesterDept over uint32", {**body, "query": {**q, "requesterDept": 2**32}}),
        ("deadline over uint64", {**body, "query": {**q, "deadline": str(2**64)}}),
        ("a member missing from the query", {**body, "query": {k: v for k, v in q.items() if k != "nonce"}}),
        ("paramsHash of 31 bytes", {**body, "query": {**q, "paramsHash": q["paramsHash"][:64]}}),
        ("requester not an address", {**body, "query": {**q, "requester": q["requester"][:41]}}),
    ]
    out = []
    for name, b in cases:
        text_body = json.dumps(b, ensure_ascii=False)
        try:
            SignedQuery.from_body(text_body)
        except ValueError:
            out.append({"name": name, "body_text": text_body, "status": 400})
        else:  # pragma: no cover - the generator's own guard
            raise AssertionError(f"the oracle would accept the body: {name}")
    return out


def keys_note(accounts: dict[str, tuple[Signer, bytes]]) -> dict[str, Any]:
    return {"warning": TEST_KEY_WARNING, "mnemonic": DETERMINISTIC_MNEMONIC, "derivation": "m/44'/60'/0'/0/<index>",
            "keys": {label: {"address": s.address, "private_key": h(k)} for label, (s, k) in accounts.items()}}


# ----------------------------------------------------------------------------------- receipts and records


def receipt_of(oracle: Signer, sequence: int, entry: AuditEntry, request_salt: bytes, response_salt: bytes | None,
               previous_head: bytes) -> Receipt:
    """The receipt exactly as oracle.service builds it (``previous_head``: the oracle's head after sequence - 1)."""
    return Receipt.signed(
        oracle,
        record_id=hex(record_id(oracle.address, sequence)),
        oracle=oracle.address,
        sequence=sequence,
        dataset_id=entry.dataset_id,
        dataset_version=entry.dataset_version,
        grant_id=entry.grant_id,
        requester=entry.requester,
        outcome=int(entry.outcome),
        reason=entry.reason,
        checked_at_block=entry.checked_at_block,
        request_hash=h(entry.request_hash),
        response_hash=h(entry.response_hash),
        request_salt=h(request_salt),
        response_salt=h(response_salt) if response_salt else "",
        record_hash=h(keccak(entry.packed())),
        previous_head=h(previous_head),
        chain_head=h(chain_step(previous_head, record_id(oracle.address, sequence), entry)),
    )


SERVED_RECORDS = [
    {"company_id": "91440304WTF2731A0R", "name": "深圳市洋芳科技有限公司", "registration_date": "2019-03-18", "status": "存续"},
    {"company_id": "913201025TH2HUCCPD", "name": "南京洋芳建设工程有限公司 \"Yangfang\"", "registration_date": "2021-11-02",
     "status": "注销", "employees": 18446744073709551615},
]


def exchanges() -> tuple[Signer, bytes, list[dict[str, Any]], list[tuple[int, AuditEntry, bytes, bytes | None, Receipt]]]:
    """The oracle's answers to the queries of build_queries(), as sequences 1.. of its chain."""
    oracle, oracle_key = public_test_account(4)
    queries = build_queries()["queries"]
    q1, q2 = queries[0], queries[2]
    out, records = [], []
    heads = [ZERO_HASH]  # the oracle's head after each sequence so far

    def add(name: str, status: int, request: dict[str, Any], sequence: int, outcome: Outcome, reason: int, *,
            grant: int, requester: str, dataset: int, version: int, block: int, served: list | None, salt_label: str,
            request_salt: bytes | None = None, detail: str = "") -> Receipt:
        request_salt = request_salt or fixed(f"{salt_label}/request_salt", 32)
        request_hash = commitments.request_hash(request["request_hash_body"], request_salt)
        response_salt = fixed(f"{salt_label}/response_salt", 32) if served is not None else None
        response_hash = commitments.response_hash(served, response_salt) if served is not None else ZERO_HASH
        entry = AuditEntry(grant, requester, dataset, version, outcome, reason, block, request_hash, response_hash)
        receipt = receipt_of(oracle, sequence, entry, request_salt, response_salt, heads[-1])
        heads.append(bytes.fromhex(receipt.chain_head[2:]))
        body = receipt.body()
        reply: dict[str, Any]
        if status == 200:
            reply = {"records": served, "receipt": receipt.as_dict()}
        else:
            reply = {"type": "about:blank", "title": reason_name(reason), "status": status, "detail": detail,
                     "reason": reason_name(reason), "receipt": receipt.as_dict()}
        out.append({
            "name": name, "query": request["name"], "status": status, "reply": reply,
            "request_hash_preimage": text({"salt": h(request_salt), "body": request["request_hash_body"]}),
            "response_hash_preimage": None if served is None else text({"salt": h(response_salt), "body": {"records": served}}),
            "receipt_body_canonical": text(body), "receipt_digest": h(receipt.digest()),
            "eip191_hash": h(eip191_hash(receipt.digest())), "signer": receipt.signer(),
        })
        records.append((sequence, entry, request_salt, response_salt, receipt))
        return receipt

    requester = q1["signer"]
    add("served", 200, q1, 1, Outcome.SERVED, int(AccessReason.GRANTED), grant=1, requester=requester, dataset=1, version=1,
        block=1234, served=SERVED_RECORDS, salt_label="served")
    add("denied by the chain: fields not granted", 403, q2, 2, Outcome.DENIED, int(AccessReason.FIELDS_NOT_GRANTED),
        grant=3, requester=q2["signer"], dataset=7, version=2, block=1240, served=None, salt_label="fields",
        detail="the grant does not allow this: FIELDS_NOT_GRANTED")
    add("bad signature: requester, grant and dataset unknown", 401, q1, 3, Outcome.DENIED, int(OracleReason.BAD_SIGNATURE),
        grant=0, requester=ZERO_ADDRESS, dataset=0, version=0, block=1240, served=None, salt_label="badsig",
        detail="the signature is not the requester's")
    add("source timeout", 504, q1, 4, Outcome.SOURCE_FAILURE, int(OracleReason.SOURCE_TIMEOUT), grant=1,
        requester=requester, dataset=1, version=1, block=1241, served=None, salt_label="timeout",
        detail="dataset 1 source http://10.0.0.7:8101/companies timed out")
    strict_salt = fixed("strict/request_salt", 32)
    add("strict mode: served, recorded first", 0, q1, 5, Outcome.SERVED, int(AccessReason.GRANTED), grant=1,
        requester=requester, dataset=1, version=1, block=1242, served=SERVED_RECORDS[:1], salt_label="strict",
        request_salt=strict_salt)
    add("strict mode: then withheld", 503, q1, 6, Outcome.DENIED, int(OracleReason.WITHHELD), grant=1,
        requester=requester, dataset=1, version=1, block=1242, served=None, salt_label="strict", request_salt=strict_salt,
        detail="strict mode: the access (record 5) is recorded but not on chain within 30.0 s, so the data is withheld")
    out[4]["status"] = None  # never sent: the client gets the withheld answer (the next exchange) instead
    out[4]["reply"] = None
    return oracle, oracle_key, out, records


def build_receipts() -> dict[str, Any]:
    oracle, oracle_key, answers, records = exchanges()
    served = records[0][4]
    sig = bytes.fromhex(served.signature[2:])

    def tampered(name: str, change: str, receipt: dict[str, Any]) -> dict[str, Any]:
        recovered, error = recover_or_none(lambda: receipt_signer(receipt))
        assert recovered != oracle.address
        return {"name": name, "change": change, "receipt": receipt, "recovers": recovered, "refused_as": error}

    base = served.as_dict()
    tampered_list = [
        tampered("one field changed", "sequence 1 -> 2", {**base, "sequence": 2}),
        tampered("outcome changed", "outcome 0 (served) -> 1 (denied)", {**base, "outcome": 1}),
        tampered("response hash changed", "last hex digit of response_hash changed",
                 {**base, "response_hash": base["response_hash"][:-1] + ("0" if base["response_hash"][-1] != "0" else "1")}),
        tampered("integer sent as a string", "checked_at_block 1234 -> \"1234\" (a different canonical JSON)",
                 {**base, "checked_at_block": "1234"}),
        tampered("a field added", "an extra member \"note\" (the signature covers every member but `signature`)",
                 {**base, "note": "x"}),
        tampered("flipped bit in the signature", "bit 0 of signature byte 10 flipped", {**base, "signature": h(flip_bit(sig, 10, 0))}),
        tampered("high-s signature", "s replaced by n - s and v flipped: malleable", {**base, "signature": h(high_s(sig))}),
        tampered("v as 0/1", "v written as the recovery id", {**base, "signature": h(v_as_parity(sig))}),
    ]
    entry = records[0][1]
    inconsistent = []
    for name, change, changes in [
        ("record hash of another record", "record_hash of the same record with outcome 1 (denied)",
         {"record_hash": h(keccak(AuditEntry(*[getattr(entry, f) for f in ("grant_id", "requester", "dataset_id", "dataset_version")],
                                                Outcome.DENIED, entry.reason, entry.checked_at_block, entry.request_hash,
                                                entry.response_hash).packed()))}),
        ("chain head not following", "chain_head replaced by the previous head", {"chain_head": base["previous_head"]}),
        ("previous head changed", "previous_head 0x00..01, chain_head left as it was",
         {"previous_head": "0x" + "00" * 31 + "01"}),
        ("record id of another sequence", "record_id of sequence 2, sequence left at 1",
         {"record_id": hex(record_id(oracle.address, 2))}),
    ]:
        body = {**served.body(), **changes}
        resigned = Receipt.signed(oracle, **body)
        assert resigned.signer() == oracle.address
        error = recover_or_none(resigned.check_binding)[1]
        assert error, name
        inconsistent.append({"name": name, "change": change, "receipt": resigned.as_dict(), "refused_as": error})
    return {
        "about": "The oracle's answers and receipts (docs/PROTOCOL.md, 'Answers and receipts'): the receipt's signature "
                 "is EIP-191 personal_sign over keccak256(canonical_json(receipt without signature)). The exchanges are "
                 "sequences 1..6 of one oracle (audit_records.json anchors them); requestHash and responseHash open with "
                 "the receipt's salts; record_hash, previous_head and chain_head bind the record anchored at the "
                 "receipt's sequence (§9.4). `tampered` receipts must all be refused; `inconsistent` ones are signed by "
                 "the oracle but their binding contradicts their fields, and must be refused too.",
        "format": FORMAT,
        "test_keys": keys_note({"oracle (account 4)": (oracle, oracle_key)}),
        "oracle": oracle.address,
        "exchanges": answers,
        "tampered": tampered_list,
        "inconsistent": inconsistent,
    }


AUDIT_RECORD_EVENT = "AuditRecordAppended(uint64,address,uint64,uint256,uint256,bytes32,bytes32)"
AUDIT_BATCH_EVENT = "AuditBatchAppended(address,uint32,uint64,uint64,bytes32)"


def word(value: int) -> str:
    return h(value.to_bytes(32, "big"))


def build_audit_records() -> dict[str, Any]:
    oracle, _, _, records = exchanges()
    head = ZERO_HASH
    out, export_records = [], []
    for sequence, entry, request_salt, response_salt, receipt in records:
        rid = record_id(oracle.address, sequence)
        preimage = abi_encode(
            ["bytes32", "uint256", "uint64", "address", "uint64", "uint256", "bytes32", "bytes32"],
            [head, rid, entry.grant_id, entry.requester, entry.dataset_id, entry.meta, entry.request_hash, entry.response_hash])
        new_head = chain_step(head, rid, entry)
        assert keccak(preimage) == new_head
        packed = entry.packed()
        assert (receipt.previous_head, receipt.chain_head, receipt.record_hash) == (h(head), h(new_head), h(keccak(packed)))
        out.append({
            "sequence": sequence, "receipt": receipt.as_dict(),
            "record_id": hex(rid), "record_id_decimal": str(rid),
            "entry": {"grantId": entry.grant_id, "requester": entry.requester, "datasetId": entry.dataset_id,
                      "datasetVersion": entry.dataset_version, "outcome": int(entry.outcome), "reason": entry.reason,
                      "checkedAtBlock": entry.checked_at_block, "requestHash": h(entry.request_hash),
                      "responseHash": h(entry.response_hash)},
            "meta": hex(entry.meta), "meta_decimal": str(entry.meta),
            "packed": [h(packed[i:i + 32]) for i in range(0, 128, 32)], "record_hash": h(keccak(packed)),
            "event": {"topics": [h(keccak(AUDIT_RECORD_EVENT.encode())), word(entry.dataset_id),
                                 word(int(entry.requester, 16)), word(entry.grant_id)],
                      "data": h(rid.to_bytes(32, "big") + entry.meta.to_bytes(32, "big") + entry.request_hash
                                + entry.response_hash)},
            "head_before": h(head), "chain_step_preimage": h(preimage), "head_after": h(new_head),
        })
        export_records.append(ExportedRecord(sequence, entry, request_salt, response_salt, 1_767_225_000.25 + sequence,
                                             "0x" + fixed(f"tx/{sequence}", 32).hex(), 1300 + sequence))
        head = new_head
    batch = {"topics": [h(keccak(AUDIT_BATCH_EVENT.encode())), word(int(oracle.address, 16)), word(1)],
             "data": h((1).to_bytes(32, "big") + len(records).to_bytes(32, "big") + head),
             "note": "one batch of all the records above: firstSequence 1, count, the head after the last; deptId 1"}
    export = OracleExport(oracle.address, CHAIN_ID, OTHER_CONTRACT, "2026-01-01T00:00:00Z", export_records)
    meta_cases = []
    for checked, version, outcome, reason in [(0, 0, 0, 0), (1234, 1, 0, 0), (2**64 - 1, 2**32 - 1, 2, 255), (7, 3, 1, 74)]:
        meta_cases.append({"checkedAtBlock": checked, "datasetVersion": version, "outcome": outcome, "reason": reason,
                           "meta": hex(pack_meta(checked, version, outcome, reason))})
    rid_cases = [{"oracle": oracle.address, "sequence": s, "record_id": hex(record_id(oracle.address, s))}
                 for s in (1, 255, 2**64 - 1)]
    rid_cases.append({"oracle": "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF", "sequence": 2**64 - 1,
                      "record_id": hex(record_id("0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF", 2**64 - 1))})
    return {
        "about": "Audit records (docs/PROTOCOL.md, 'The audit record'): record ids, meta packing, the 128-byte packed "
                 "form, the AuditRecordAppended event each receipt becomes, and the oracle's hash chain from 32 zero "
                 "bytes. The records are the receipts of receipts.json, in sequence order.",
        "format": FORMAT,
        "oracle": oracle.address,
        "event_signatures": {"AuditRecordAppended": AUDIT_RECORD_EVENT, "AuditBatchAppended": AUDIT_BATCH_EVENT},
        "records": out,
        "final_head": h(head),
        "batch_event": batch,
        "record_ids": rid_cases,
        "record_ids_refused": [{"sequence": 0, "why": "sequences start at 1"},
                               {"sequence": 2**64, "why": "sequences are uint64"}],
        "meta": meta_cases,
        "meta_refused": [{"checkedAtBlock": 0, "datasetVersion": 2**32, "outcome": 0, "reason": 0,
                          "why": "datasetVersion is uint32"},
                         {"checkedAtBlock": 2**64, "datasetVersion": 0, "outcome": 0, "reason": 0,
                          "why": "checkedAtBlock is uint64"}],
        "reasons": {"access": {r.name: int(r) for r in AccessReason},
                    "oracle": {r.name: int(r) for r in OracleReason},
                    "outcomes": {o.name: int(o) for o in Outcome}},
        "oracle_export": {"lines": list(export.lines()),
                          "note": "audit_log here is a fixed example address; created_at, anchored_tx and anchored_block "
                                  "are example values"},
    }


# ----------------------------------------------------------------------------------- Merkle


MERKLE_RECORDS = [
    {"company_id": "91440304WTF2731A0R", "name": "深圳市洋芳科技有限公司", "status": "存续"},
    {"company_id": "913201025TH2HUCCPD", "name": "南京洋芳建设工程有限公司", "status": "注销"},
    {"company_id": "91110105MA01ABCDEF", "name": "北京😀文化传媒有限公司", "status": "存续"},
    {"company_id": "91310115MA1K4XYZ12", "name": "上海 \"浦东\" 贸易\\有限公司", "status": "吊销"},
    {"company_id": "91440101MA59GHIJ34", "name": "广州\t控制字符\u0001有限公司", "status": "存续"},
]


def build_merkle() -> dict[str, Any]:
    record_hashes = [record_hash(r) for r in MERKLE_RECORDS]
    tree = MerkleTree(record_hashes)
    jsonl = b"".join(canonical_json(r) + b"\n" for r in MERKLE_RECORDS)
    assert keccak(jsonl) == content_hash(MERKLE_RECORDS)
    levels = [[h(node) for node in tree.leaves]]
    level = list(tree.leaves)
    while len(level) > 1:
        upper = [keccak(min(a, b) + max(a, b)) for a, b in zip(level[0::2], level[1::2])]
        if len(level) % 2:
            upper.append(level[-1])
        levels.append([h(x) for x in upper])
        level = upper
    assert bytes.fromhex(levels[-1][0][2:]) == tree.root
    one = MerkleTree([record_hashes[0]])
    changed = dict(MERKLE_RECORDS[1], status="存续")
    return {
        "about": "A dataset version's commitments (docs/PROTOCOL.md, 'Dataset versions'): contentHash over the canonical "
                 "JSON Lines, record hash, leaf = keccak256(record hash), inner node = keccak256 of the sorted pair, an "
                 "odd last node promoted; proofs are sibling lists from the leaf up.",
        "format": FORMAT,
        "fields": ["company_id", "name", "status"],
        "records": [{"record": r, "canonical": canonical_json(r).decode("utf-8"), "record_hash": h(rh),
                     "leaf": h(leaf_hash(rh)), "proof": [h(p) for p in tree.proof(i)]}
                    for i, (r, rh) in enumerate(zip(MERKLE_RECORDS, record_hashes))],
        "jsonl": jsonl.decode("utf-8"),
        "contentHash": h(content_hash(MERKLE_RECORDS)),
        "levels": levels,
        "merkleRoot": h(tree.root),
        "single_record": {"record": MERKLE_RECORDS[0], "merkleRoot": h(one.root), "proof": []},
        "empty": {"contentHash": h(content_hash([])), "merkleRoot": h(MerkleTree([]).root)},
        "tampered": [{"name": "a record changed", "record": changed, "proof": [h(p) for p in tree.proof(1)],
                      "computed_root": h(_root_from(leaf_hash(record_hash(changed)), tree.proof(1)))},
                     {"name": "a proof element dropped", "record": MERKLE_RECORDS[1],
                      "proof": [h(p) for p in tree.proof(1)[:-1]],
                      "computed_root": h(_root_from(leaf_hash(record_hashes[1]), tree.proof(1)[:-1]))}],
    }


def _root_from(leaf: bytes, proof: list[bytes]) -> bytes:
    node = leaf
    for sibling in proof:
        node = keccak(min(node, sibling) + max(node, sibling))
    return node


# ----------------------------------------------------------------------------------- on-chain requests


def ecies_encrypt_fixed(recipient_public: bytes, plaintext: bytes, associated_data: bytes, ephemeral_key: bytes,
                        nonce: bytes) -> bytes:
    """protocol.ecies.encrypt with a given ephemeral key and nonce (the product draws both at random)."""
    recipient = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), ecies.public_key_bytes(recipient_public))
    ephemeral = ec.derive_private_key(int.from_bytes(ephemeral_key, "big"), ec.SECP256K1())
    ephemeral_public = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.UncompressedPoint)
    shared = ephemeral.exchange(ec.ECDH(), recipient)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"govshare-ecies-v1" + ephemeral_public).derive(shared)
    return bytes([1]) + ephemeral_public + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def build_onchain() -> dict[str, Any]:
    oracle, oracle_key, answers, records = exchanges()
    requester, requester_key = public_test_account(5)
    oracle_public = public_key_64(oracle_key)
    requester_public = public_key_64(requester_key)
    params = {"company_id": "91440304WTF2731A0R", "status": "存续"}
    params_plain = canonical_json(params)
    eph1, nonce1 = fixed("ecies/eph1", 32), fixed("ecies/nonce1", 12)
    blob = ecies_encrypt_fixed(oracle_public, params_plain, params_associated_data(requester.address), eph1, nonce1)
    assert ecies.decrypt(oracle_key, blob, params_associated_data(requester.address)) == params_plain
    request_id, tx = 7, "0x" + fixed("onchain/tx", 32).hex()
    body = commitments.onchain_request_body(request_id, tx, params)
    request_salt = fixed("onchain/request_salt", 32)
    undecryptable = commitments.onchain_request_body(request_id, tx, None)
    receipt = records[0][4].as_dict()
    result = {"status": 200, "records": SERVED_RECORDS[:1], "error": None, "reason": None, "receipt": receipt}
    result_plain = canonical_json(result)
    eph2, nonce2 = fixed("ecies/eph2", 32), fixed("ecies/nonce2", 12)
    result_blob = ecies_encrypt_fixed(requester_public, result_plain, result_associated_data(request_id), eph2, nonce2)
    assert ecies.decrypt(requester_key, result_blob, result_associated_data(request_id)) == result_plain
    message = result_auth_message(request_id, RESULT_AUTH_TIME)
    auth_sig = bytes(requester.sign_message(encode_defunct(text=message)).signature)
    assert Account._recover_hash(eip191_text_hash(message), signature=auth_sig) == requester.address
    other_message = result_auth_message(request_id + 1, RESULT_AUTH_TIME)
    return {
        "about": "The on-chain way to ask (docs/PROTOCOL.md, 'On-chain requests'): ECIES v1 (secp256k1 ECDH, "
                 "HKDF-SHA256, AES-256-GCM) with fixed ephemeral keys and nonces so the blobs are reproducible, the "
                 "requestHash body of an on-chain request, and the result-fetching Authorization header.",
        "format": FORMAT,
        "test_keys": keys_note({"requester (account 5)": (requester, requester_key),
                                     "oracle (account 4)": (oracle, oracle_key)}),
        "identity": {"oracle": oracle.address, "department": "SAMR", "public_key": h(oracle_public)},
        "requester_public_key": h(requester_public),
        "requester_public_key_address": to_checksum_address(eth_keccak(requester_public)[12:]),
        "params_encryption": {
            "params": params, "plaintext": params_plain.decode("utf-8"), "associated_data": h(params_associated_data(requester.address)),
            "ephemeral_private_key": h(eph1), "ephemeral_public_key": h(blob[1:66]), "nonce": h(nonce1),
            "shared_x": h(_shared_x(eph1, oracle_public)),
            "aes_key": h(_aes_key(eph1, oracle_public, blob[1:66])),
            "ciphertext": h(blob), "commitment": h(keccak(blob)),
        },
        "request_hash": {"requestId": request_id, "transaction": tx, "body": body, "request_salt": h(request_salt),
                         "preimage": text({"salt": h(request_salt), "body": body}),
                         "requestHash": h(commitments.request_hash(body, request_salt)),
                         "undecryptable_body": undecryptable,
                         "undecryptable_requestHash": h(commitments.request_hash(undecryptable, request_salt))},
        "result_encryption": {
            "plaintext": result_plain.decode("utf-8"), "associated_data": h(result_associated_data(request_id)),
            "ephemeral_private_key": h(eph2), "nonce": h(nonce2), "ciphertext": h(result_blob),
            "reply": {"requestId": request_id, "sequence": 1, "ciphertext": h(result_blob), "fulfilledTx": tx},
        },
        "result_auth": {"requestId": request_id, "timestamp": RESULT_AUTH_TIME, "message": message,
                        "eip191_hash": h(eip191_text_hash(message)), "signature": h(auth_sig),
                        "authorization": f"Govshare {RESULT_AUTH_TIME}:{h(auth_sig)}",
                        "signer": requester.address,
                        "for_another_request": {"message": other_message,
                                                "recovers": Account._recover_hash(eip191_text_hash(other_message), signature=auth_sig)}},
        "tampered": [{"name": "ciphertext bit flipped", "ciphertext": h(flip_bit(blob, 80, 0)), "associated_data": h(params_associated_data(requester.address))},
                     {"name": "wrong associated data (another requester)", "ciphertext": h(blob),
                      "associated_data": h(params_associated_data(oracle.address))},
                     {"name": "wrong version byte", "ciphertext": h(bytes([2]) + blob[1:]),
                      "associated_data": h(params_associated_data(requester.address))}],
    }


def _shared_x(ephemeral_key: bytes, recipient_public: bytes) -> bytes:
    recipient = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), ecies.public_key_bytes(recipient_public))
    return ec.derive_private_key(int.from_bytes(ephemeral_key, "big"), ec.SECP256K1()).exchange(ec.ECDH(), recipient)


def _aes_key(ephemeral_key: bytes, recipient_public: bytes, ephemeral_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"govshare-ecies-v1" + ephemeral_public).derive(_shared_x(ephemeral_key, recipient_public))


# ----------------------------------------------------------------------------------- files

BUILDERS = {
    "canonical_json.json": build_canonical,
    "hashes.json": build_hashes,
    "queries.json": build_queries,
    "receipts.json": build_receipts,
    "audit_records.json": build_audit_records,
    "merkle.json": build_merkle,
    "onchain.json": build_onchain,
}


def render(data: dict[str, Any]) -> str:
    """The file text: JSON, UTF-8 as itself, two-space indent, keys in the builder's order."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def build_all() -> dict[str, str]:
    return {name: render(build()) for name, build in BUILDERS.items()}


def main(argv: list[str]) -> int:
    built = build_all()
    if "--check" in argv:
        stale = [name for name, content in built.items()
                 if not (VECTORS_DIR / name).exists() or (VECTORS_DIR / name).read_text(encoding="utf-8") != content]
        for name in stale:
            print(f"{name} differs from what the code computes")
        return 1 if stale else 0
    VECTORS_DIR.mkdir(exist_ok=True)
    for name, content in built.items():
        (VECTORS_DIR / name).write_text(content, encoding="utf-8")
        print(f"wrote {VECTORS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
