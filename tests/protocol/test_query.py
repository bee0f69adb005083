"""protocol.query: EIP-712 signed queries, without a chain.

Shows the digest equals eth_account's ``encode_typed_data`` (an independent EIP-712 encoder) for
random queries, that signatures round-trip, that anything changed (a member, the chain id, the
verifying contract) recovers a different address, that malformed, malleable (high-s) and bad-v
signatures are refused, the coincurve and eth_account recoveries agree, and the JSON wire form
round-trips and refuses malformed input. The agreement with Solidity is in test_query_requests.py.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import keccak, to_checksum_address

import protocol.query as query_module
from ledger.errors import LedgerError
from ledger.hashing import salted_hash
from ledger.keys import generate_signer, signer_from_key
from protocol.query import (
    QUERY_TYPEHASH,
    SECP256K1_N,
    InvalidQuery,
    InvalidSignature,
    Query,
    domain_separator,
    query_digest,
    recover_query_signer,
    sign_query,
    typed_data,
)

CHAIN_ID = 1337
CONTRACT = to_checksum_address("0x" + "5a" * 20)
OTHER_CONTRACT = to_checksum_address("0x" + "a5" * 20)
# test key: a fixed throwaway key so failures are reproducible, not a secret
SIGNER = signer_from_key("0x" + "11" * 32)
U64, U256 = (1 << 64) - 1, (1 << 256) - 1


def make_query(requester: str = SIGNER.address, **overrides) -> Query:
    base = dict(
        requester=requester,
        requester_dept=2,
        dataset_id=7,
        grant_id=3,
        fields=0b1011,
        params_hash=salted_hash({"统一社会信用代码": "91110000100000000X"}, b"s" * 32),
        nonce=42,
        deadline=1_900_000_000,
    )
    return Query(**{**base, **overrides})


def random_query(rng: random.Random, requester: str | None = None) -> Query:
    return Query(
        requester=requester or to_checksum_address(rng.randbytes(20)),
        requester_dept=rng.choice([0, 1, rng.getrandbits(32)]),
        dataset_id=rng.choice([0, U64, rng.getrandbits(64)]),
        grant_id=rng.getrandbits(64),
        fields=rng.choice([1, U256, rng.getrandbits(256)]),
        params_hash=rng.randbytes(32),
        nonce=rng.choice([0, U256, rng.getrandbits(256)]),
        deadline=rng.getrandbits(64),
    )


def eth_account_digest(q: Query, chain_id: int = CHAIN_ID, contract: str = CONTRACT) -> bytes:
    return _hash_eip191_message(encode_typed_data(full_message=typed_data(q, chain_id, contract)))


# --------------------------------------------------------------------------- the digest


def test_type_hash_and_domain_separator_by_hand() -> None:
    assert QUERY_TYPEHASH == keccak(
        text="Query(address requester,uint32 requesterDept,uint64 datasetId,uint64 grantId,uint256 fields,"
        "bytes32 paramsHash,uint256 nonce,uint64 deadline)"
    )
    domain_type = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    expected = keccak(
        domain_type + keccak(text="govshare") + keccak(text="1") + CHAIN_ID.to_bytes(32, "big")
        + bytes(12) + bytes.fromhex(CONTRACT[2:])
    )
    assert domain_separator(CHAIN_ID, CONTRACT) == expected
    assert domain_separator(CHAIN_ID, CONTRACT.lower()) == expected  # case of the address is irrelevant


def test_digest_equals_eth_account_encode_typed_data_for_random_queries() -> None:
    rng = random.Random(712)
    for _ in range(200):
        q = random_query(rng)
        chain_id = rng.choice([1, CHAIN_ID, rng.getrandbits(64)])
        contract = to_checksum_address(rng.randbytes(20))
        assert query_digest(q, chain_id, contract) == eth_account_digest(q, chain_id, contract)


@pytest.mark.parametrize(
    "member, value",
    [
        ("requester", to_checksum_address("0x" + "22" * 20)),
        ("requester_dept", 3),
        ("dataset_id", 8),
        ("grant_id", 4),
        ("fields", 0b1111),
        ("params_hash", b"\x01" * 32),
        ("nonce", 43),
        ("deadline", 1_900_000_001),
    ],
)
def test_every_member_changes_the_digest(member: str, value) -> None:
    q = make_query()
    assert query_digest(replace(q, **{member: value}), CHAIN_ID, CONTRACT) != query_digest(q, CHAIN_ID, CONTRACT)


def test_domain_changes_the_digest() -> None:
    q = make_query()
    digest = query_digest(q, CHAIN_ID, CONTRACT)
    assert query_digest(q, CHAIN_ID + 1, CONTRACT) != digest
    assert query_digest(q, CHAIN_ID, OTHER_CONTRACT) != digest


# --------------------------------------------------------------------------- sign and recover


def test_sign_recover_round_trip_agrees_with_eth_account() -> None:
    rng = random.Random(1)
    for _ in range(20):
        signer = generate_signer()
        q = random_query(rng, signer.address)
        sig = sign_query(signer, q, CHAIN_ID, CONTRACT)
        assert len(sig) == 65 and sig[64] in (27, 28)
        assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2  # eth_account signs low-s
        assert recover_query_signer(q, sig, CHAIN_ID, CONTRACT) == signer.address
        signable = encode_typed_data(full_message=typed_data(q, CHAIN_ID, CONTRACT))
        assert Account.recover_message(signable, signature=sig) == signer.address
        # a signature made over our own digest by the raw-hash signer is the same signature (RFC 6979)
        assert bytes(signer.account.unsafe_sign_hash(query_digest(q, CHAIN_ID, CONTRACT)).signature) == sig


def test_recover_accepts_hex_and_bytearray() -> None:
    q = make_query()
    sig = sign_query(SIGNER, q, CHAIN_ID, CONTRACT)
    assert recover_query_signer(q, "0x" + sig.hex(), CHAIN_ID, CONTRACT) == SIGNER.address
    assert recover_query_signer(q, bytearray(sig), CHAIN_ID, CONTRACT) == SIGNER.address


@pytest.mark.parametrize(
    "change",
    [
        {"fields": 0b1111},  # asks for more fields than were signed
        {"grant_id": 4},
        {"nonce": 43},
        {"deadline": 1_900_000_001},
        {"params_hash": b"\x00" * 32},
        {"requester": to_checksum_address("0x" + "22" * 20)},
    ],
)
def test_tampered_query_recovers_another_address(change: dict) -> None:
    q = make_query()
    sig = sign_query(SIGNER, q, CHAIN_ID, CONTRACT)
    assert recover_query_signer(replace(q, **change), sig, CHAIN_ID, CONTRACT) != SIGNER.address


def test_other_domain_recovers_another_address() -> None:
    q = make_query()
    sig = sign_query(SIGNER, q, CHAIN_ID, CONTRACT)
    assert recover_query_signer(q, sig, CHAIN_ID + 1, CONTRACT) != SIGNER.address
    assert recover_query_signer(q, sig, CHAIN_ID, OTHER_CONTRACT) != SIGNER.address


def _parts(sig: bytes) -> tuple[int, int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


def _join(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def test_high_s_twin_is_refused() -> None:
    q = make_query()
    r, s, v = _parts(sign_query(SIGNER, q, CHAIN_ID, CONTRACT))
    twin = _join(r, SECP256K1_N - s, 55 - v)  # the other valid signature of the same digest
    # eth_account (without a malleability check) still recovers the signer from the twin...
    assert Account._recover_hash(query_digest(q, CHAIN_ID, CONTRACT), signature=twin) == SIGNER.address
    # ...but, as OpenZeppelin's ECDSA, we refuse it.
    with pytest.raises(InvalidSignature, match="upper half"):
        recover_query_signer(q, twin, CHAIN_ID, CONTRACT)


@pytest.mark.parametrize("v", [0, 1, 26, 29, 255])
def test_bad_v_is_refused(v: int) -> None:
    q = make_query()
    r, s, _ = _parts(sign_query(SIGNER, q, CHAIN_ID, CONTRACT))
    with pytest.raises(InvalidSignature, match="v must be 27 or 28"):
        recover_query_signer(q, _join(r, s, v), CHAIN_ID, CONTRACT)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda sig: sig[:64], "65 bytes"),
        (lambda sig: sig + b"\x00", "65 bytes"),
        (lambda sig: b"", "65 bytes"),
        (lambda sig: "0x" + "zz" * 65, "not hex"),
        (lambda sig: None, "must be bytes"),
        (lambda sig: 12345, "must be bytes"),
        (lambda sig: bytes(32) + sig[32:], "r is out of range"),  # r = 0
        (lambda sig: SECP256K1_N.to_bytes(32, "big") + sig[32:], "r is out of range"),
        (lambda sig: sig[:32] + bytes(32) + sig[64:], "s is zero"),
    ],
)
def test_malformed_signature_is_refused(mangle, message: str) -> None:
    q = make_query()
    sig = sign_query(SIGNER, q, CHAIN_ID, CONTRACT)
    with pytest.raises(InvalidSignature, match=message) as info:
        recover_query_signer(q, mangle(sig), CHAIN_ID, CONTRACT)
    assert isinstance(info.value, LedgerError) and isinstance(info.value, ValueError)


def test_r_not_on_the_curve_is_refused() -> None:
    q = make_query()
    sig = sign_query(SIGNER, q, CHAIN_ID, CONTRACT)
    r = 5  # x = 5: x^3 + 7 = 132 is not a square mod p, so no curve point has this x
    with pytest.raises(InvalidSignature, match="no public key"):
        recover_query_signer(q, r.to_bytes(32, "big") + sig[32:], CHAIN_ID, CONTRACT)


def test_eth_account_fallback_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(2)
    cases = []
    for _ in range(5):
        signer = generate_signer()
        q = random_query(rng, signer.address)
        cases.append((signer.address, q, sign_query(signer, q, CHAIN_ID, CONTRACT)))
    monkeypatch.setattr(query_module, "_PublicKey", None)  # as if coincurve were not installed
    for address, q, sig in cases:
        assert recover_query_signer(q, sig, CHAIN_ID, CONTRACT) == address
    r, s, v = _parts(cases[0][2])
    with pytest.raises(InvalidSignature):
        recover_query_signer(cases[0][1], _join(5, s, v), CHAIN_ID, CONTRACT)


# --------------------------------------------------------------------------- the dataclass and the wire form


def test_requester_is_checksummed_and_bytes_normalised() -> None:
    q = make_query(requester=SIGNER.address.lower(), params_hash=bytearray(32))
    assert q.requester == SIGNER.address
    assert type(q.params_hash) is bytes
    assert q == make_query(requester=SIGNER.address.upper().replace("0X", "0x"), params_hash=bytes(32))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"requester": "0x1234"}, "requester"),
        ({"requester": 5}, "requester"),
        ({"requester_dept": 1 << 32}, "uint32"),
        ({"requester_dept": -1}, "uint32"),
        ({"dataset_id": 1 << 64}, "uint64"),
        ({"grant_id": True}, "must be an int"),
        ({"fields": 1 << 256}, "uint256"),
        ({"nonce": 1.0}, "must be an int"),
        ({"deadline": "5"}, "must be an int"),
        ({"params_hash": b"\x00" * 31}, "32 bytes"),
        ({"params_hash": "0x" + "00" * 32}, "32 bytes"),
    ],
)
def test_query_refuses_out_of_range_members(change: dict, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        make_query(**change)


def test_for_params_commits_to_the_salted_params() -> None:
    params, salt = {"name": "某某科技有限公司"}, b"\x07" * 32
    q = Query.for_params(requester=SIGNER.address, requester_dept=2, dataset_id=7, grant_id=3, fields=1,
                         params=params, salt=salt, deadline=1_900_000_000)
    assert q.params_hash == salted_hash(params, salt)
    again = Query.for_params(requester=SIGNER.address, requester_dept=2, dataset_id=7, grant_id=3, fields=1,
                             params=params, salt=salt, deadline=1_900_000_000)
    assert again.nonce != q.nonce  # fresh random nonces


def test_json_round_trip() -> None:
    rng = random.Random(3)
    for _ in range(50):
        q = random_query(rng)
        wire = q.to_json()
        assert Query.from_json(wire) == q
        assert Query.from_json(json.dumps(wire)) == q
        assert Query.from_json(json.dumps(wire).encode()) == q
    wire = make_query(nonce=U256).to_json()
    assert wire == {
        "requester": SIGNER.address,
        "requesterDept": 2,
        "datasetId": "7",
        "grantId": "3",
        "fields": "11",
        "paramsHash": wire["paramsHash"],
        "nonce": str(U256),
        "deadline": "1900000000",
    }
    assert wire["paramsHash"].startswith("0x") and len(wire["paramsHash"]) == 66


def test_json_accepts_ints_or_decimal_strings() -> None:
    q = make_query()
    wire = q.to_json()
    as_ints = {**wire, "requesterDept": "2", "datasetId": 7, "grantId": 3, "fields": 11, "nonce": 42, "deadline": 1_900_000_000}
    assert Query.from_json(as_ints) == q


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fields": "0x0b"}, "fields must be"),
        ({"fields": "-1"}, "fields must be"),
        ({"fields": " 11"}, "fields must be"),
        ({"fields": "011"}, "fields must be"),
        ({"fields": "11\n"}, "fields must be"),  # a regex's $ would let a trailing newline through
        ({"fields": "١١"}, "fields must be"),  # digits, but not ASCII ones
        ({"fields": ""}, "fields must be"),
        ({"fields": "9" * 79}, "fields must be"),
        ({"fields": 1.5}, "fields must be"),
        ({"fields": True}, "fields must be"),
        ({"fields": str(1 << 256)}, "uint256"),
        ({"deadline": str(1 << 64)}, "uint64"),
        ({"paramsHash": "00" * 32}, "paramsHash"),
        ({"paramsHash": "0x" + "00" * 31}, "paramsHash"),
        ({"requester": "not an address"}, "requester"),
        ({"extra": 1}, "unknown \\['extra'\\]"),
    ],
)
def test_json_refuses_malformed_members(change: dict, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        Query.from_json({**make_query().to_json(), **change})


def test_json_refuses_missing_members_and_non_objects() -> None:
    wire = make_query().to_json()
    del wire["nonce"]
    with pytest.raises(InvalidQuery, match="missing \\['nonce'\\]"):
        Query.from_json(wire)
    for bad in ("[1, 2]", "{", b"\xff", 5):
        with pytest.raises(InvalidQuery):
            Query.from_json(bad)
