"""ledger.events: bounded block ranges and decoded, ordered events."""

from __future__ import annotations

import pytest

from ledger.contracts.catalog import Classification
from ledger.deployment import Consortium
from ledger.events import block_ranges, read_events
from tests.conftest import Members


def test_block_ranges_cover_exactly_once() -> None:
    assert list(block_ranges(0, 9, 4)) == [(0, 3), (4, 7), (8, 9)]
    assert list(block_ranges(5, 5, 100)) == [(5, 5)]
    assert list(block_ranges(6, 5, 3)) == []
    covered = [b for lo, hi in block_ranges(17, 1234, 100) for b in range(lo, hi + 1)]
    assert covered == list(range(17, 1235))
    with pytest.raises(ValueError):
        list(block_ranges(0, 10, 0))


def test_read_events_same_result_for_any_range_size(consortium: Consortium, members: Members) -> None:
    for i in range(3):
        consortium.catalog.register(members.samr.operator, f"set {i}", ["a", "b"], Classification.PUBLIC)
    address = [consortium.catalog.address]
    start = consortium.deployment.deployment_block
    small = list(read_events(consortium.chain, consortium.events, address, start, step=1))
    large = list(read_events(consortium.chain, consortium.events, address, start, step=10_000))
    assert small == large
    assert [e.name for e in small] == ["DatasetRegistered"] * 3
    assert [e.args["name"] for e in small] == ["set 0", "set 1", "set 2"]
    assert [e.position for e in small] == sorted(e.position for e in small)
    assert list(small[0].args["fields"]) == ["a", "b"]
