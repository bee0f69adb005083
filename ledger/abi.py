"""ABI type names as the EVM signs them: tuples spelled out, for selectors and event topics."""

from __future__ import annotations

from typing import Any


def canonical_type(param: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter (``tuple`` expanded to ``(t1,t2,...)``, arrays kept)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(canonical_type(c) for c in param["components"]) + ")" + kind[len("tuple"):]
    return kind
