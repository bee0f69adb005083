"""Field filtering and masking of a department's records before the oracle returns them.

The policy is data (``oracle.config``): ``[masking.<classification>]`` rules apply to every dataset of
that on-chain classification, ``[datasets.<id>.masking]`` rules override them per field. Rules:

* ``keep:F:L`` - keep the first ``F`` and the last ``L`` characters, every other character becomes
  ``*`` (``keep:6:4``: ``440103195306086513`` -> ``440103********6513``). The length shows. A value
  of at most ``F + L`` characters would be shown whole, so it is masked whole instead (``"**"``).
  Characters are Unicode code points (``广州市人民路12号`` with ``keep:3:0`` -> ``广州市******``).
* ``redact`` - the value becomes ``***`` whatever it was (its length does not show).
* ``year`` - a date becomes its year: ``1953-06-08``, ``1953/06/08``, ``1953.06.08``, ``1953年6月8日``,
  ``19530608``, ``1953-06-08T10:00:00`` and ``1953`` all become ``1953``; a value that does not start with a 4-digit year becomes ``***``.
* ``none`` - shown as it is (in a dataset's table it lifts its classification's rule).

A field with no rule is shown as it is. A masked value is always a string: a non-string value
(number, boolean, null, list, object) is first written as its JSON text (``12`` -> ``"12"``,
``true`` -> ``"true"``, ``null`` -> ``"null"``, objects with sorted keys), then masked. Values shown
as they are keep their type. Fields the grant names as unmasked are shown as they are.

Rules are compiled once to small functions; :meth:`MaskingPolicy.apply` only looks them up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ledger.contracts.catalog import Classification
from oracle.errors import ConfigError

if TYPE_CHECKING:
    from oracle.config import OracleConfig

__all__ = ["MaskRule", "MaskingPolicy", "REDACTED"]

#: What ``redact`` (and ``year`` on a value that is not a date) shows.
REDACTED = "***"
#: The largest ``F`` or ``L`` a ``keep`` rule accepts.
MAX_KEEP = 1000

_KEEP = re.compile(r"keep:(\d{1,4}):(\d{1,4})")
_YEAR = re.compile(r"(\d{4})(?:[-/.年]|\d{4}$|$)")

Masker = Callable[[Any], str]


def _text(value: Any) -> str:
    """``value`` as text: a string as it is, anything else as its JSON text."""
    if type(value) is str:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


@dataclass(frozen=True)
class MaskRule:
    """One parsed masking rule: ``kind`` is ``keep``, ``redact``, ``year`` or ``none``."""

    kind: str
    first: int = 0
    last: int = 0

    @classmethod
    def parse(cls, text: object, *, source: str = "masking rule", key: str = "") -> MaskRule:
        """Parse ``keep:F:L`` / ``redact`` / ``year`` / ``none``; a bad rule raises :class:`ConfigError`
        naming ``key`` (the dotted config key) in ``source`` (the config file)."""
        if not isinstance(text, str):
            raise ConfigError(source, key, f"a masking rule must be a string, found {type(text).__name__}")
        if text in ("redact", "year", "none"):
            return cls(text)
        match = _KEEP.fullmatch(text)
        if match is None:
            raise ConfigError(
                source, key, f"unknown masking rule {text!r} (expected keep:F:L, redact, year or none)"
            )
        first, last = int(match[1]), int(match[2])
        if first > MAX_KEEP or last > MAX_KEEP:
            raise ConfigError(source, key, f"masking rule {text!r}: F and L must be at most {MAX_KEEP}")
        return cls("keep", first, last)

    def __str__(self) -> str:
        return f"keep:{self.first}:{self.last}" if self.kind == "keep" else self.kind

    def compile(self) -> Masker | None:
        """The function masking one value, or ``None`` for ``none`` (shown as it is)."""
        if self.kind == "none":
            return None
        if self.kind == "redact":
            return _redact
        if self.kind == "year":
            return _year
        return _keeper(self.first, self.last)


def _redact(value: Any) -> str:
    return REDACTED


def _year(value: Any) -> str:
    match = _YEAR.match(_text(value))
    return match[1] if match else REDACTED


def _keeper(first: int, last: int) -> Masker:
    shown = first + last

    def keep(value: Any) -> str:
        text = value if type(value) is str else _text(value)
        n = len(text)
        if n <= shown:
            return "*" * n
        return text[:first] + "*" * (n - shown) + text[n - last :]

    return keep


class MaskingPolicy:
    """The masking rules of one dataset (its classification's, overridden by its own), compiled."""

    __slots__ = ("_rules", "_maskers")

    def __init__(self, rules: Mapping[str, MaskRule]) -> None:
        self._rules: Mapping[str, MaskRule] = MappingProxyType(dict(rules))
        self._maskers: dict[str, Masker] = {}
        for field, rule in self._rules.items():
            masker = rule.compile()
            if masker is not None:
                self._maskers[field] = masker

    @classmethod
    def for_dataset(cls, config: OracleConfig, dataset_id: int, classification: Classification) -> MaskingPolicy:
        """The policy for ``dataset_id`` given its on-chain ``classification``."""
        return cls(config.masking_rules(dataset_id, classification))

    @property
    def rules(self) -> Mapping[str, MaskRule]:
        """Every field's rule (``none`` included), read-only."""
        return self._rules

    @property
    def masked_fields(self) -> frozenset[str]:
        """The fields this policy masks (rules other than ``none``)."""
        return frozenset(self._maskers)

    def unknown_fields(self, schema: Iterable[str]) -> list[str]:
        """Fields with a rule that are not in ``schema`` (a likely typo in the config), sorted."""
        return sorted(set(self._rules) - set(schema))

    def apply(
        self, records: Sequence[Mapping[str, Any]], granted_fields: Sequence[str], unmasked_fields: set[str] | frozenset[str]
    ) -> list[dict[str, Any]]:
        """New records holding only ``granted_fields`` (in that order), masked by rule except the
        fields in ``unmasked_fields``. ``records`` are not modified. A granted field missing from a
        source record is left out of that record (the oracle does not invent a value); a field not
        granted never appears."""
        maskers = self._maskers
        plan = [(f, None if f in unmasked_fields else maskers.get(f)) for f in dict.fromkeys(granted_fields)]
        out: list[dict[str, Any]] = []
        append = out.append
        if all(m is None for _, m in plan):
            order = [f for f, _ in plan]
            for record in records:
                append({f: record[f] for f in order if f in record})
            return out
        for record in records:
            new: dict[str, Any] = {}
            for f, m in plan:
                if f in record:
                    value = record[f]
                    new[f] = value if m is None else m(value)
            append(new)
        return out
