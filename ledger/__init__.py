"""govshare's chain library: offline compilation, deployment and its manifest, typed contract
clients (``ledger.contracts``), canonical hashing, Merkle trees, keystores, and one JSON-RPC
provider over one HTTP client. It imports nothing else of govshare.

Importing it also keeps Python's recursion limit sane for every govshare process (each imports
``ledger``): ``py_ecc``, which ``eth_account`` imports, raises the limit to 100,000 when it is
first imported, and under that limit a deeply nested JSON document overflows the C stack in
``json.loads`` (SIGSEGV) instead of raising ``RecursionError``. ``py_ecc`` is imported here first
(it is cheap: its submodules load lazily, and it runs its ``__init__`` once), then the limit is
put back to what it was (:data:`RECURSION_LIMIT` at most). JSON from outside is bounded before it
is parsed anyway (``ledger.json_limits``).
"""

import sys as _sys

import py_ecc as _py_ecc  # noqa: F401  # raises the recursion limit as a side effect; undone below

#: The highest recursion limit a govshare process runs with (CPython's default).
RECURSION_LIMIT = 1000


def restore_recursion_limit() -> int:
    """Put the interpreter's recursion limit back to at most :data:`RECURSION_LIMIT`; the limit."""
    if _sys.getrecursionlimit() > RECURSION_LIMIT:
        _sys.setrecursionlimit(RECURSION_LIMIT)
    return _sys.getrecursionlimit()


restore_recursion_limit()
