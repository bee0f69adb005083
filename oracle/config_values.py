"""Typed values read from a parsed TOML table, each refusal a :class:`oracle.errors.ConfigError`
naming the file and the dotted key (never the value: it may be a secret). The generic half of the
oracle's config loader (:mod:`oracle.config` holds what the oracle's settings are)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from oracle.errors import ConfigError
from serving.rate_limit import parse_rate

__all__ = ["TableReader", "kind_of"]


class TableReader:
    """Getters for a TOML table's values, one per kind; ``base_dir`` resolves relative paths."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    # ---- tables and keys -------------------------------------------------------------------
    def check_keys(self, table: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in table:
            dotted = f"{prefix}{key}"
            if "password" in key.lower() and key != "password_file":
                raise self.fail(
                    dotted, "a password must not be in the config file: set password_file, or $GOVSHARE_KEY_PASSWORD"
                )
            if key not in allowed:
                raise self.fail(dotted, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, found {kind_of(value)}")
        return value

    # ---- scalars -------------------------------------------------------------------------
    def string(self, table: Mapping[str, Any], key: str, dotted: str, default: str | None = None) -> str:
        if key not in table:
            if default is None:
                raise self.fail(dotted, "is required")
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(dotted, f"must be a string, found {kind_of(value)}")
        if not value.strip():
            raise self.fail(dotted, "must not be empty")
        return value

    def integer(self, table: Mapping[str, Any], key: str, dotted: str, default: int, low: int, high: int | None = None) -> int:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(dotted, f"must be an integer, found {kind_of(value)}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(dotted, f"must be {bound}, found {value}")
        return value

    def seconds(self, table: Mapping[str, Any], key: str, dotted: str, default: float, *, allow_zero: bool = False) -> float:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(dotted, f"must be a number of seconds, found {kind_of(value)}")
        value = float(value)
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise self.fail(dotted, f"must be {'at least 0' if allow_zero else 'more than 0'} seconds, found {value}")
        return value

    def rate(self, table: Mapping[str, Any], key: str, dotted: str) -> str | None:
        if key not in table:
            return None
        value = self.string(table, key, dotted)
        try:
            parse_rate(value)
        except ValueError as exc:
            raise self.fail(dotted, str(exc)) from None
        return value

    def path(self, table: Mapping[str, Any], key: str, dotted: str) -> Path | None:
        if key not in table:
            return None
        path = Path(self.string(table, key, dotted)).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def http_url(self, value: str, dotted: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise self.fail(dotted, f"not a valid URL: {exc}") from None
        if parts.scheme not in schemes or not parts.hostname:
            raise self.fail(dotted, f"must be an {' or '.join(schemes)} URL with a host, found {value!r}")
        if parts.query or parts.fragment:
            raise self.fail(dotted, "must not have a query or a fragment")
        if parts.username is not None or parts.password is not None:
            raise self.fail(dotted, "must not hold credentials")
        return value



def kind_of(value: Any) -> str:
    """A TOML-ish name of ``value``'s type for error messages (never the value: it may be a secret)."""
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a float"}.get(
        type(value), type(value).__name__
    )
