"""Property-based tests (hypothesis): masking never reveals more characters than its rule.

For any value (any Unicode text, numbers, booleans, null, lists, objects) and any ``keep:F:L``: the
masked text has the value's length in code points, shows at most F + L of them and never the whole
value (a non-empty value shorter than F + L + 1 is masked whole), shows them only at the first F
and the last L positions, and masks every other position with ``*``. ``redact`` shows nothing
whatever the value; ``year`` shows four digits that begin the value, or nothing. Through
``MaskingPolicy.apply``: a field not granted never appears, and a masked field obeys its rule.
Profiles and example counts: tests/support/properties.py.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from oracle.masking import REDACTED, MaskingPolicy, MaskRule

json_scalars = st.one_of(st.text(), st.integers(), st.booleans(), st.none())
values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                      max_leaves=8)
keep_rules = st.builds(MaskRule, st.just("keep"), st.integers(0, 20), st.integers(0, 20))


def as_text(value: Any) -> str:
    """A value as masking sees it (oracle/masking.py's docstring): a string as it is, anything else
    its JSON text (no ASCII escapes, compact, sorted keys)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def shown(masked: str) -> int:
    """How many characters ``masked`` reveals (positions that are not the mask character)."""
    return sum(1 for c in masked if c != "*")


@given(keep_rules, values)
@example(MaskRule("keep", 6, 4), "440103195306086513")
@example(MaskRule("keep", 2, 2), "abcd")  # exactly F + L long: masked whole
@example(MaskRule("keep", 3, 0), "广州市人民路12号")
@example(MaskRule("keep", 1, 1), "a\U0001f600b")  # a character outside the BMP counts as one
def test_keep_reveals_at_most_its_characters(rule: MaskRule, value: Any) -> None:
    text = as_text(value)
    masked = rule.compile()(value)
    n, first, last = len(text), rule.first, rule.last
    assert isinstance(masked, str) and len(masked) == n
    if n <= first + last:
        assert masked == "*" * n
    else:
        assert masked[:first] == text[:first] and masked[n - last:] == text[n - last:]
        assert set(masked[first:n - last]) == {"*"}
    assert shown(masked) <= min(first + last, max(n - 1, 0))  # never the whole value


@given(values)
def test_redact_reveals_nothing(value: Any) -> None:
    assert MaskRule("redact").compile()(value) == REDACTED


@given(values)
@example("1953-06-08")
@example("1953年6月8日")
@example("19530608")
@example("195306081")  # nine digits: not a date, nothing shown
def test_year_reveals_at_most_a_leading_year(value: Any) -> None:
    text = as_text(value)
    masked = MaskRule("year").compile()(value)
    assert masked == REDACTED or (len(masked) == 4 and masked.isdigit() and text.startswith(masked))


field_names = st.sampled_from(["id_number", "name", "address", "phone", "birth_date"])
rules = st.one_of(keep_rules, st.sampled_from([MaskRule("redact"), MaskRule("year"), MaskRule("none")]))


@given(st.dictionaries(field_names, rules), st.lists(st.dictionaries(field_names, values), max_size=5),
       st.lists(field_names, unique=True), st.sets(field_names))
def test_apply_shows_only_granted_fields_each_within_its_rule(rule_map: dict, records: list, granted: list, unmasked: set) -> None:
    policy = MaskingPolicy(rule_map)
    out = policy.apply(records, granted, unmasked)
    assert len(out) == len(records)
    for source, masked in zip(records, out):
        assert list(masked) == [f for f in granted if f in source]
        for f, value in masked.items():
            rule = rule_map.get(f)
            if f in unmasked or rule is None or rule.kind == "none":
                assert value is source[f] or value == source[f]
            else:
                assert value == rule.compile()(source[f])
