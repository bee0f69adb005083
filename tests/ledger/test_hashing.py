"""ledger.hashing: canonical JSON bytes, keccak, salted/record/content/schema hashes.

Expected values are built by a second route (hand-written bytes, pycryptodome's keccak, a
hand-built ABI encoding) rather than by calling the function under test twice.
"""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from typing import Any, Iterator

import pytest
from Crypto.Hash import keccak as crypto_keccak
from eth_abi import encode as abi_encode

from ledger.errors import CanonicalizationError, HashLengthError, LedgerError
from ledger.hashing import (
    canonical_hash,
    canonical_json,
    content_hash,
    keccak,
    new_salt,
    record_hash,
    salted_hash,
    schema_hash,
    to_hex,
)


def ref_keccak(data: bytes) -> bytes:
    return crypto_keccak.new(data=data, digest_bits=256).digest()


# --- keccak / to_hex --------------------------------------------------------------------------


def test_keccak_known_values() -> None:
    # Well-known Ethereum constants (keccak256("") and keccak256("abc")), not NIST SHA3-256.
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    assert len(keccak(b"x" * 1000)) == 32


def test_keccak_backends_agree_for_every_length_and_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """safe-pysha3 (used when installed) and the reused pycryptodome state give pycryptodome's
    reference digest for every length across the 136-byte rate boundary, for every bytes-like type."""
    import ledger.hashing as hashing

    assert hashing.SHA3_KECCAK, "safe-pysha3 is a dependency: keccak should use it"
    samples = [bytes((i * 7 + n) % 256 for i in range(n)) for n in range(0, 300)]
    with_sha3 = [keccak(data) for data in samples]
    monkeypatch.setattr(hashing, "SHA3_KECCAK", False)
    with_pycryptodome = [keccak(data) for data in samples]
    assert with_sha3 == with_pycryptodome == [ref_keccak(data) for data in samples]
    monkeypatch.setattr(hashing, "SHA3_KECCAK", True)
    for data in (samples[200], bytearray(samples[200]), memoryview(samples[200])):
        assert keccak(data) == ref_keccak(samples[200])


def test_keccak_refuses_str() -> None:
    with pytest.raises(TypeError):
        keccak("abc")  # type: ignore[arg-type]


def test_to_hex() -> None:
    assert to_hex(b"\x00\xab") == "0x00ab"
    assert to_hex(b"") == "0x"


# --- canonical_json ---------------------------------------------------------------------------


def test_keys_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": 2, "c": [3, 2, 1]}) == b'{"a":2,"b":1,"c":[3,2,1]}'


def test_keys_sorted_by_code_point() -> None:
    value = {"中": 1, "b": 2, "é": 3, "B": 4, "a": 5}
    assert canonical_json(value) == '{"B":4,"a":5,"b":2,"é":3,"中":1}'.encode("utf-8")


def test_astral_keys_sort_by_code_point_not_utf16() -> None:
    # U+FF5E < U+1F600 by code point; in UTF-16 the surrogate 0xD83D would sort first.
    value = {"\U0001f600": 1, "\uff5e": 2}
    assert canonical_json(value) == '{"\uff5e":2,"\U0001f600":1}'.encode("utf-8")


def test_insertion_order_does_not_matter() -> None:
    first = {"dept": "税务局", "id": 7, "tags": ["a", "b"]}
    second = {"tags": ["a", "b"], "id": 7, "dept": "税务局"}
    assert canonical_json(first) == canonical_json(second)
    assert canonical_hash(first) == canonical_hash(second)


def test_unicode_stays_utf8() -> None:
    out = canonical_json({"dept": "市场监督管理局"})
    assert out == b'{"dept":"' + "市场监督管理局".encode("utf-8") + b'"}'
    assert b"\\u" not in out
    assert out.decode("utf-8") == '{"dept":"市场监督管理局"}'


def test_json_escapes_only_what_json_requires() -> None:
    assert canonical_json('a"b\\c\nd\te\x01/') == b'"a\\"b\\\\c\\nd\\te\\u0001/"'


def test_nested_structures() -> None:
    value = {
        "z": {"y": [{"b": None, "a": True}, (1, "二")], "x": {}},
        "a": [[], [False, -5, 10**30]],
    }
    expected = '{"a":[[],[false,-5,1000000000000000000000000000000]],"z":{"x":{},"y":[{"a":true,"b":null},[1,"二"]]}}'
    assert canonical_json(value) == expected.encode("utf-8")


def test_tuple_is_array_and_bool_is_not_int() -> None:
    assert canonical_json((1, 2)) == canonical_json([1, 2]) == b"[1,2]"
    assert canonical_json({"a": True}) == b'{"a":true}'
    assert canonical_hash({"a": True}) != canonical_hash({"a": 1})


def test_int_enum_is_its_value() -> None:
    class Level(enum.IntEnum):
        SECRET = 3

    assert canonical_json({"level": Level.SECRET}) == b'{"level":3}'


def test_scalars() -> None:
    assert canonical_json(None) == b"null"
    assert canonical_json("") == b'""'
    assert canonical_json(0) == b"0"


@pytest.mark.parametrize("bad", [1.0, 0.5, -0.0, math.nan, math.inf, -math.inf])
def test_floats_rejected(bad: float) -> None:
    with pytest.raises(CanonicalizationError, match=r"float at \$\.rows\[1\]\.amount"):
        canonical_json({"rows": [{"amount": "1.50"}, {"amount": bad}]})


def test_float_error_is_in_the_one_hierarchy() -> None:
    with pytest.raises(LedgerError):
        canonical_json(1.5)
    with pytest.raises(ValueError):
        canonical_json(1.5)


@pytest.mark.parametrize(
    "bad, hint",
    [
        (Decimal("1.50"), "decimals as strings"),
        (b"\x01", "to_hex"),
        ({1, 2}, "set"),
        (object(), "object"),
    ],
)
def test_other_types_rejected(bad: Any, hint: str) -> None:
    with pytest.raises(CanonicalizationError, match=hint):
        canonical_json({"v": bad})


@pytest.mark.parametrize("key", [1, None, True, (1, 2), b"k"])
def test_non_str_keys_rejected(key: Any) -> None:
    with pytest.raises(CanonicalizationError, match="key at \\$.outer must be str"):
        canonical_json({"outer": {key: "v"}})


def test_cycles_rejected() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(CanonicalizationError, match="cycle"):
        canonical_json(loop)
    shared = [1]
    assert canonical_json([shared, shared]) == b"[[1],[1]]"  # shared, not cyclic: fine


def test_lone_surrogate_rejected() -> None:
    with pytest.raises(CanonicalizationError, match="surrogate"):
        canonical_json({"name": "\ud800"})


# --- canonical_hash / record_hash -------------------------------------------------------------


def test_canonical_hash_is_keccak_of_the_bytes() -> None:
    value = {"部门": "公安局", "n": 1}
    assert canonical_hash(value) == ref_keccak('{"n":1,"部门":"公安局"}'.encode("utf-8"))


def test_record_hash() -> None:
    record = {"id": 42, "name": "某某有限公司", "capital": "1000000.00"}
    expected = ref_keccak('{"capital":"1000000.00","id":42,"name":"某某有限公司"}'.encode("utf-8"))
    assert record_hash(record) == expected
    assert record_hash({**record, "capital": "1000000.01"}) != expected


def test_record_hash_requires_a_mapping() -> None:
    with pytest.raises(CanonicalizationError, match="mapping"):
        record_hash([("id", 1)])  # type: ignore[arg-type]


# --- salted_hash ------------------------------------------------------------------------------


def test_salted_hash_same_salt_same_hash_different_salt_different_hash() -> None:
    query = {"id_number": "110101199003070000"}
    salt_a, salt_b = b"\x01" * 32, b"\x02" * 32
    assert salted_hash(query, salt_a) == salted_hash(dict(query), salt_a)
    assert salted_hash(query, salt_a) != salted_hash(query, salt_b)
    assert salted_hash(query, salt_a) != canonical_hash(query)


def test_salted_hash_layout() -> None:
    salt = bytes(range(32))
    expected = ref_keccak(b'{"body":{"q":"x"},"salt":"0x' + salt.hex().encode() + b'"}')
    assert salted_hash({"q": "x"}, salt) == expected


def test_new_salt() -> None:
    salts = {new_salt() for _ in range(8)}
    assert len(salts) == 8
    assert all(len(s) == 32 for s in salts)


def test_salt_preconditions() -> None:
    with pytest.raises(HashLengthError, match="at least 16 bytes, found 8"):
        salted_hash({"q": 1}, b"\x00" * 8)
    with pytest.raises(TypeError):
        salted_hash({"q": 1}, "00" * 32)  # type: ignore[arg-type]
    with pytest.raises(CanonicalizationError):
        salted_hash({"q": 1.5}, new_salt())


# --- content_hash -----------------------------------------------------------------------------


RECORDS = [
    {"id": 1, "name": "甲公司", "capital": "10.00"},
    {"id": 2, "name": "乙公司", "capital": "20.00"},
    {"name": "丙公司", "id": 3, "capital": "30.00"},
]


def test_content_hash_is_keccak_of_jsonl() -> None:
    jsonl = (
        '{"capital":"10.00","id":1,"name":"甲公司"}\n'
        '{"capital":"20.00","id":2,"name":"乙公司"}\n'
        '{"capital":"30.00","id":3,"name":"丙公司"}\n'
    ).encode("utf-8")
    assert content_hash(RECORDS) == ref_keccak(jsonl)


def test_content_hash_streams_a_generator() -> None:
    def gen() -> Iterator[dict[str, Any]]:
        yield from RECORDS

    assert content_hash(gen()) == content_hash(RECORDS)


def test_content_hash_large_stream_matches_join() -> None:
    records = [{"i": i, "pad": "x" * (i % 300)} for i in range(2000)]
    joined = b"".join(canonical_json(r) + b"\n" for r in records)
    assert content_hash(iter(records)) == ref_keccak(joined)


def test_content_hash_commits_order_and_empty() -> None:
    assert content_hash(RECORDS) != content_hash(list(reversed(RECORDS)))
    assert content_hash([]) == ref_keccak(b"")


def test_content_hash_refuses_non_mappings() -> None:
    with pytest.raises(CanonicalizationError, match="mapping"):
        content_hash([RECORDS[0], ["not", "a", "record"]])  # type: ignore[list-item]


# --- schema_hash ------------------------------------------------------------------------------


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def hand_abi_encode_string_array(fields: list[str]) -> bytes:
    """abi.encode(string[]) by the spec: head offset, length, per-element offsets, then tails."""
    tails = []
    for f in fields:
        raw = f.encode("utf-8")
        padded = raw + b"\x00" * (-len(raw) % 32)
        tails.append(_word(len(raw)) + padded)
    offsets = []
    position = 32 * len(fields)
    for tail in tails:
        offsets.append(_word(position))
        position += len(tail)
    return _word(32) + _word(len(fields)) + b"".join(offsets) + b"".join(tails)


@pytest.mark.parametrize(
    "fields",
    [
        ["name"],
        ["unified_social_credit_code", "name", "legal_representative", "registered_capital"],
        ["企业名称", "统一社会信用代码", "x" * 32, "y" * 33, ""],
        [],
    ],
)
def test_schema_hash_equals_hand_built_abi_encoding(fields: list[str]) -> None:
    encoded = hand_abi_encode_string_array(fields)
    assert abi_encode(["string[]"], [fields]) == encoded  # the two routes agree on the bytes
    assert schema_hash(fields) == ref_keccak(encoded)
    assert schema_hash(tuple(fields)) == ref_keccak(encoded)


# keccak256(abi.encode(string[])) computed independently with ethers.js v5 (@ethersproject/abi
# defaultAbiCoder + @ethersproject/keccak256 from node_modules), not with this package.
PINNED_SCHEMA_HASHES = [
    (["id", "name"], "0x8d7e15cb20adbe5a44a938bf46f765dacbeff81d6feae507037c20a227414e2c"),
    (["企业名称", "统一社会信用代码"], "0x95399d5b943c84272897de6277c7a912651a30a8fb4a12c9d6e4167727e38b90"),
]


@pytest.mark.parametrize("fields, expected", PINNED_SCHEMA_HASHES)
def test_schema_hash_pinned_values(fields: list[str], expected: str) -> None:
    assert to_hex(schema_hash(fields)) == expected
    assert to_hex(ref_keccak(hand_abi_encode_string_array(fields))) == expected


def test_schema_hash_is_order_sensitive() -> None:
    assert schema_hash(["a", "b"]) != schema_hash(["b", "a"])


def test_schema_hash_preconditions() -> None:
    with pytest.raises(TypeError):
        schema_hash("name")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        schema_hash(["name", 1])  # type: ignore[list-item]


def test_the_fast_path_writes_exactly_what_the_reference_path_writes() -> None:
    """canonical_json serialises plain values with orjson; on 20,000 random values (control
    characters, U+2028, non-BMP keys, 64-bit limits, nesting) the bytes equal the standard library's."""
    import random

    from ledger.hashing import _canonical_json_reference, _plain

    rng = random.Random(20261123)
    alphabet = [chr(i) for i in range(0x80)] + ["\u2028", "\u2029", "\u00e9", "市", "\U0001f600", "\ufeff", "\uffff",
                                                 "\U00010000", "\ue000", "\ud7ff"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))

    def value(depth: int = 0) -> object:
        kind = rng.randrange(7 if depth < 3 else 4)
        if kind == 0:
            return rng.choice([None, True, False])
        if kind in (1, 2):
            return rng.choice([0, -1, (1 << 63) - 1, -(1 << 63), (1 << 64) - 1, 1 << 64, -(1 << 63) - 1,
                               rng.randrange(-10**9, 10**9)]) if kind == 1 else text()
        if kind == 3:
            return text()
        if kind in (4, 5):
            items = [value(depth + 1) for _ in range(rng.randrange(4))]
            return items if kind == 4 else tuple(items)
        return {text(): value(depth + 1) for _ in range(rng.randrange(5))}

    plain = 0
    for _ in range(20_000):
        v = value()
        plain += _plain(v)
        assert canonical_json(v) == _canonical_json_reference(v), v
    assert plain > 15_000  # the fast path was really taken (integers beyond 64 bits are not plain)


def test_values_off_the_fast_path_are_still_normalised_or_refused() -> None:
    from enum import IntEnum

    class Level(IntEnum):
        SECRET = 3

    assert canonical_json({"level": Level.SECRET, "big": 1 << 70}) == b'{"big":1180591620717411303424,"level":3}'
    with pytest.raises(CanonicalizationError, match=r"float at \$\.a\[1\]"):
        canonical_json({"a": [1, 2.5]})
    with pytest.raises(CanonicalizationError, match="lone surrogate"):
        canonical_json({"a": "\ud800"})
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(CanonicalizationError, match="cycle"):
        canonical_json(cyclic)
