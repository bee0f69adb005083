"""Assertions shared by the contract tests."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from ledger.errors import ContractRevert


def expect_revert(chain, action: Callable[[], Any], name: str, args: dict, state: Callable[[], Any] = lambda: None) -> ContractRevert:
    """Run ``action``; it must revert with ``name(args)``, mine no block and leave ``state()`` as it was."""
    before_state = state()
    before_block = chain.block_number()
    with pytest.raises(ContractRevert) as info:
        action()
    assert info.value.name == name, str(info.value)
    assert info.value.args == args, str(info.value)
    assert chain.block_number() == before_block
    assert state() == before_state
    return info.value
