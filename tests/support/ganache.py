"""Test-side names for the dev chain (kept so tests and benchmarks import one place)."""

from devtools.devnet import DETERMINISTIC_MNEMONIC, GanacheNode, dev_accounts, free_port

__all__ = ["DETERMINISTIC_MNEMONIC", "GanacheNode", "dev_accounts", "free_port"]
