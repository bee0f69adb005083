"""How ``govshare`` commands print: human tables (rich) by default, JSON with ``--json``.

Values are printed as plain text (no rich markup, emoji codes or highlighting), so a dataset named
``[red]x`` prints as written. When stdout is not a terminal, tables are laid out 200 columns wide
rather than rich's 80, so piped output keeps whole addresses and hashes on one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["console", "emit", "key_values", "short_hex", "table", "utc"]


def console() -> Console:
    """A console for stdout that prints values literally."""
    width = None if sys.stdout.isatty() else 200
    return Console(width=width, markup=False, highlight=False, emoji=False, soft_wrap=True)


def emit(args: argparse.Namespace, data: Any, human: Callable[[Console], None]) -> None:
    """Print ``data`` as JSON with ``--json``, else call ``human`` with a console."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        human(console())


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A table of literal values; ``None`` prints as ``-``."""
    out = Table(title=title, title_justify="left", show_edge=False)
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(Text("-" if value is None else str(value)) for value in row))
    return out


def key_values(title: str | None, items: dict[str, Any]) -> Table:
    """A two-column table of names and values (lists joined with commas)."""
    out = Table(title=title, title_justify="left", show_edge=False, show_header=False)
    out.add_column("name", style="bold")
    out.add_column("value", overflow="fold")
    for name, value in items.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else "-" if value is None else str(value)
        out.add_row(Text(name), Text(text))
    return out


def utc(timestamp: int) -> str | None:
    """A block timestamp as ``YYYY-MM-DD HH:MM UTC``; None for 0 (not yet)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp)) if timestamp else None


def short_hex(value: bytes, keep: int = 10) -> str:
    """``0x`` and the first ``keep`` hex digits, then an ellipsis (human tables only)."""
    text = "0x" + bytes(value).hex()
    return text if len(text) <= keep + 2 else text[: keep + 2] + "…"
