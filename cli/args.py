"""Argument types of the ``govshare`` commands: a malformed value is a usage error (exit code 2)
with a message that says what was expected, before anything touches the chain."""

from __future__ import annotations

import argparse
import re

__all__ = ["address", "duration", "field_list", "format_duration", "http_url", "identifier", "param", "positive_int"]

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def positive_int(text: str) -> int:
    """An integer >= 1 (quotas, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def identifier(text: str) -> int:
    """An on-chain id (dataset, grant, proposal, version): a whole number >= 1."""
    return positive_int(text)


def duration(text: str) -> int:
    """Seconds, from ``3600``, ``3600s``, ``90m``, ``12h`` or ``30d``; at least one second."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30d, 12h, 90m, 3600s)")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise argparse.ArgumentTypeError("a duration must be at least one second")
    return seconds


def format_duration(seconds: int) -> str:
    """``30d``, ``12h``, ``90m`` or ``45s``: the largest unit that divides ``seconds``."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def field_list(text: str) -> list[str]:
    """Comma-separated field names (``company_id,name``): none empty, none twice."""
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of field names: {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a field is named twice in {text!r}")
    return names


def address(text: str) -> str:
    """An account address (0x and 40 hex digits; checksummed if mixed case)."""
    from eth_utils import is_address, to_checksum_address

    if not is_address(text):
        raise argparse.ArgumentTypeError(f"not an account address: {text!r}")
    return to_checksum_address(text)


def http_url(text: str) -> str:
    """An http:// or https:// URL."""
    if not re.match(r"^https?://[^\s/]+", text):
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r}")
    return text


def param(text: str) -> tuple[str, str]:
    """A query parameter ``name=value``."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"a parameter is name=value, not {text!r}")
    try:  # bytes that are not UTF-8 reach Python's argv as lone surrogates, which nothing can send
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise argparse.ArgumentTypeError(f"parameter {shown}: not UTF-8 text (a byte sequence that is no character)") from None
    return name, value
