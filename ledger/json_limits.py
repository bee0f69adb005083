"""JSON from outside, bounded before it is parsed: its size and how deeply it nests.

Python's ``json`` module parses nested arrays and objects recursively on the C stack. A document
nested deeper than the interpreter's recursion limit raises ``RecursionError`` (not a ``ValueError``,
so the usual handlers miss it); and under a raised limit (``py_ecc``, which ``eth_account`` imports,
sets it to 100,000: :mod:`ledger` puts it back) it overflows the C stack and the process dies with
SIGSEGV. Every place JSON enters govshare from outside (HTTP bodies, data files, keystores,
manifests, exports, proofs, decrypted on-chain parameters) therefore checks it here first:

* :func:`check_json` refuses text over ``max_bytes`` (:class:`JsonTooLarge`) or nested deeper than
  ``max_depth`` (:class:`JsonTooDeep`), both ``ValueError`` with a message that says what was wrong;
* :func:`loads` checks, then parses with the standard library (keyword arguments such as
  ``parse_float`` pass through);
* :func:`read_json_file` checks a file's size before reading it.

The depth is measured without parsing: escapes are dropped, strings cut out (a bracket inside one
does not nest), then the brackets left are counted, all in C (``re``, ``bytes.split`` and
``translate``, ``itertools.accumulate``): a few times faster than ``json.loads`` itself.
For valid JSON the count is exact; for text that is not JSON it may err, and the text is refused
either way.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

__all__ = ["MAX_DEPTH", "JsonTooDeep", "JsonTooLarge", "check_json", "json_depth", "loads", "read_json_file"]

#: How deeply JSON from outside may nest (an array or object counts one level). govshare's own
#: documents nest at most 5 levels; department records a few more.
MAX_DEPTH = 64

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


class JsonTooLarge(ValueError):
    """JSON text over its size limit (refused before it is read or parsed)."""


class JsonTooDeep(ValueError):
    """JSON text nested deeper than its limit (refused before it is parsed)."""


def json_depth(text: str | bytes | bytearray | memoryview) -> int:
    """How deeply ``text`` nests: 0 for a scalar, 1 for ``[]`` or ``{"a": 1}``, 2 for ``[[]]``..."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"\\" in data:
        data = _ESCAPE.sub(b"", data)  # with escapes gone, quotes alternate: open, close, open...
    outside_strings = b"".join(data.split(b'"')[::2])
    brackets = outside_strings.translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(memoryview(brackets).cast("b")), default=0)


def check_json(text: str | bytes | bytearray | memoryview, *, what: str = "the JSON text",
               max_depth: int = MAX_DEPTH, max_bytes: int | None = None) -> None:
    """Refuse ``text`` if it is over ``max_bytes`` (:class:`JsonTooLarge`) or nests deeper than
    ``max_depth`` (:class:`JsonTooDeep`); ``what`` names it in the message."""
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) and max_bytes is not None else len(text)
    if max_bytes is not None and size > max_bytes:
        raise JsonTooLarge(f"{what} is {size} bytes; at most {max_bytes} are accepted")
    depth = json_depth(text)
    if depth > max_depth:
        raise JsonTooDeep(f"{what} nests {depth} levels deep; at most {max_depth} are accepted")


def loads(text: str | bytes | bytearray, *, what: str = "the JSON text", max_depth: int = MAX_DEPTH,
          max_bytes: int | None = None, **json_kwargs: Any) -> Any:
    """``json.loads(text, **json_kwargs)`` after :func:`check_json` (its errors are ``ValueError``
    too: :class:`JsonTooLarge`, :class:`JsonTooDeep`, ``json.JSONDecodeError``)."""
    check_json(text, what=what, max_depth=max_depth, max_bytes=max_bytes)
    return json.loads(text, **json_kwargs)


def read_json_file(path: str | Path, *, max_bytes: int, max_depth: int = MAX_DEPTH, what: str | None = None,
                   **json_kwargs: Any) -> Any:
    """The JSON document in the UTF-8 file ``path``: its size checked before it is read (``OSError``
    and ``UnicodeDecodeError`` as reading raises them; :class:`JsonTooLarge`, :class:`JsonTooDeep`,
    ``json.JSONDecodeError`` for its content)."""
    path = Path(path)
    name = what or str(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise JsonTooLarge(f"{name} is {size} bytes; at most {max_bytes} are accepted")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)  # the file may have grown since stat
    return loads(data.decode("utf-8"), what=name, max_depth=max_depth, max_bytes=max_bytes, **json_kwargs)
