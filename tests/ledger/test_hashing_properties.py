"""Property-based tests (hypothesis) of canonical hashing (ledger/hashing.py, docs/PROTOCOL.md §5).

For any JSON value built from null, booleans, integers, strings (any code point but lone
surrogates), arrays and objects:

* the canonical bytes are the documented ones (Python's json with sorted keys, compact, UTF-8, no
  ASCII escapes), whichever path (orjson's fast path or the reference) produced them;
* the hash does not depend on the order in which object keys were inserted, at any depth;
* keys are ordered by code point, which is the order of their UTF-8 bytes (not UTF-16's);
* the value survives the wire: parsed back (from the canonical bytes, or from an ASCII-escaped
  encoding as another client may send it) it hashes the same;
* Unicode normalisation is never applied (the spec's choice): a string and its NFC / NFD / NFKC
  forms hash the same exactly when they are the same code points, so a commitment names exact text
  and a normalising layer between the two sides shows as a mismatch instead of passing unseen.

And any other Python value (floats, bytes, lone surrogates, non-string keys) is refused with
CanonicalizationError, never another exception. Profiles: tests/support/properties.py.
"""

from __future__ import annotations

import json
import random
import unicodedata
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.errors import CanonicalizationError
from ledger.hashing import canonical_hash, canonical_json, salted_hash

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**256), 2**256), text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(text, inner, max_size=5)), max_leaves=20)
NORMAL_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def documented(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def reinserted(value: Any, rng: random.Random) -> Any:
    """The same value with every object's keys inserted in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: reinserted(v, rng) for k, v in items}
    if isinstance(value, list):
        return [reinserted(v, rng) for v in value]
    return value


@given(values)
@example({"\U0001f600": 1, "\uff61": 2})  # above U+FFFF sorts after U+FF61 (UTF-16 would sort it first)
@example({"é": "e\u0301", "e\u0301": "é"})
@example("\u2028\u2029\ufeff\x7f/")
def test_canonical_bytes_are_the_documented_ones(value: Any) -> None:
    assert canonical_json(value) == documented(value)


@given(values, st.randoms(use_true_random=False))
def test_the_hash_does_not_depend_on_key_insertion_order(value: Any, rng: random.Random) -> None:
    assert canonical_hash(reinserted(value, rng)) == canonical_hash(value)
    assert canonical_json(reinserted(value, rng)) == canonical_json(value)


@given(st.dictionaries(text, st.integers(), min_size=2, max_size=8))
def test_keys_are_ordered_by_code_point_and_utf8_bytes(obj: dict) -> None:
    ordered = list(json.loads(canonical_json(obj)))
    assert ordered == sorted(obj) == sorted(obj, key=lambda k: k.encode("utf-8"))


@given(values)
def test_the_value_survives_the_wire(value: Any) -> None:
    wire = canonical_json(value)
    assert canonical_json(json.loads(wire)) == wire
    escaped = json.dumps(value, ensure_ascii=True)  # another client's encoding: \uXXXX escapes, spaces
    assert canonical_hash(json.loads(escaped)) == canonical_hash(value)


@given(text, st.sampled_from(NORMAL_FORMS), st.binary(min_size=16, max_size=16))
@example("é", "NFD", b"\x00" * 16)
@example("Å", "NFC", b"\x00" * 16)  # U+212B ANGSTROM SIGN becomes U+00C5
@example("ﬁ", "NFKC", b"\x00" * 16)
def test_no_unicode_normalisation_is_applied(s: str, form: str, salt: bytes) -> None:
    other = unicodedata.normalize(form, s)
    same_text = other == s
    assert (canonical_hash({"name": s}) == canonical_hash({"name": other})) is same_text
    assert (canonical_hash({s: 1}) == canonical_hash({other: 1})) is same_text
    assert (salted_hash({"id": s}, salt) == salted_hash({"id": other}, salt)) is same_text
    assert canonical_json(s) == documented(s)  # the hashed bytes are the code points as given


others = st.one_of(st.floats(allow_nan=True), st.binary(max_size=4), st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
                   st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2), st.sets(st.integers(), max_size=2))


@given(st.recursive(others, lambda inner: st.one_of(st.lists(inner, min_size=1, max_size=3),
                                                    st.dictionaries(text, inner, min_size=1, max_size=3)), max_leaves=6))
def test_anything_else_is_refused_with_a_clear_error(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(value)
