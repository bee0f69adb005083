"""The consortium plan: a declarative TOML file that says what the committee and the departments
should be, read strictly (an unknown key, a malformed address, a code used twice: a
:class:`PlanError` naming the key, before anything touches the chain).

Format (``scripts/examples/consortium.toml`` is a complete example)::

    [committee]                      # optional: without it the committee is left as it is
    members = ["0x…", "0x…", "0x…"]  # optional: these must be members (added by vote if not)
    threshold = 2                    # optional: approvals a proposal needs
    exact = false                    # optional: true also removes (by vote) members not listed

    [[departments]]                  # one table per department, admitted in this order
    code = "SAMR"                    # short code: 1..32 bytes, never reused on chain
    name = "市场监督管理局 Market Supervision"   # required; a department's name never changes on chain
    audit_office = false             # optional (default false): an audit office may have auditors
    operators = ["0x…"]              # at least one
    oracles = ["0x…"]                # optional
    auditors = []                    # optional; only in an audit office
    oracle_url = "https://…"         # optional: published by the department's operator ("" clears it)
    exact_accounts = false           # optional: true also unbinds the roles on chain not listed here
    removed = false                  # optional: true removes the department (by vote); then only
                                     # code and name (checked against the chain) may be given

Nothing on chain is removed unless the plan says so explicitly: ``exact`` for committee members,
``exact_accounts`` for a department's accounts, ``removed = true`` for a department (a department
absent from the plan is left alone).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import is_address, is_checksum_address, to_checksum_address

from ledger.errors import LedgerError

__all__ = [
    "MAX_ACCOUNTS_PER_DEPARTMENT",
    "MAX_URL_LENGTH",
    "CommitteePlan",
    "DepartmentPlan",
    "Plan",
    "PlanError",
    "load_plan",
    "parse_plan",
]

#: As in ConsortiumRegistry.sol.
MAX_ACCOUNTS_PER_DEPARTMENT = 32
MAX_URL_LENGTH = 512

_ZERO = "0x" + "00" * 20
_TOP_KEYS = {"committee", "departments"}
_COMMITTEE_KEYS = {"members", "threshold", "exact"}
_DEPARTMENT_KEYS = {"code", "name", "audit_office", "operators", "oracles", "auditors", "oracle_url", "exact_accounts", "removed"}
_REMOVED_KEYS = {"code", "name", "removed"}
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


class PlanError(LedgerError, ValueError):
    """The plan file is not a valid plan; the message names the file and the key."""


@dataclass(frozen=True)
class CommitteePlan:
    members: tuple[ChecksumAddress, ...] | None  # None: not given
    threshold: int | None
    exact: bool = False


@dataclass(frozen=True)
class DepartmentPlan:
    code: str
    name: str
    audit_office: bool = False
    operators: tuple[ChecksumAddress, ...] = ()
    oracles: tuple[ChecksumAddress, ...] = ()
    auditors: tuple[ChecksumAddress, ...] = ()
    oracle_url: str | None = None  # None: leave it as it is
    exact_accounts: bool = False
    removed: bool = False

    def bindings(self) -> tuple[tuple[ChecksumAddress, str], ...]:
        """Every (account, role) the plan binds, roles named ``operator``, ``oracle``, ``auditor``,
        in the plan's order (operators, then oracles, then auditors)."""
        return (tuple((a, "operator") for a in self.operators) + tuple((a, "oracle") for a in self.oracles)
                + tuple((a, "auditor") for a in self.auditors))

    def accounts(self) -> tuple[ChecksumAddress, ...]:
        return tuple(dict.fromkeys(a for a, _ in self.bindings()))


@dataclass(frozen=True)
class Plan:
    committee: CommitteePlan | None
    departments: tuple[DepartmentPlan, ...]
    source: str = "<plan>"

    def department(self, code: str) -> DepartmentPlan:
        return next(d for d in self.departments if d.code == code)


def load_plan(path: str | Path) -> Plan:
    """Read and validate the TOML plan at ``path`` (:class:`PlanError` if it is not one)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read the plan {path}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise PlanError(f"the plan {path} is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path}: not valid TOML: {exc}") from None
    return parse_plan(data, str(path))


def parse_plan(data: dict[str, Any], source: str = "<plan>") -> Plan:
    """Validate a plan already read from TOML (a dict); ``source`` names it in errors."""
    checker = _Checker(source)
    checker.keys(data, _TOP_KEYS, "the top level")
    committee = None
    if "committee" in data:
        committee = checker.committee(data["committee"])
    departments_raw = data.get("departments", [])
    if not isinstance(departments_raw, list):
        checker.fail("departments", "must be an array of tables ([[departments]])")
    departments = tuple(checker.department(entry, f"departments[{i}]") for i, entry in enumerate(departments_raw))
    checker.across_departments(departments)
    if committee is None and not departments:
        checker.fail("the top level", "the plan says nothing: give [committee] and/or [[departments]]")
    return Plan(committee, departments, source)


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> None:
        raise PlanError(f"{self.source}: {key}: {message}")

    def keys(self, table: Any, allowed: set[str], where: str) -> None:
        if not isinstance(table, dict):
            self.fail(where, "must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            prefix = "" if where == "the top level" else f"{where}."
            self.fail(f"{prefix}{unknown[0]}", f"unknown key (allowed here: {', '.join(sorted(allowed))})")

    def boolean(self, table: dict[str, Any], key: str, where: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.fail(f"{where}.{key}", f"must be true or false, not {value!r}")
        return value

    def address(self, value: Any, key: str) -> ChecksumAddress:
        """0x and 40 hex digits; in mixed case, the EIP-55 checksum must hold (a typo is caught)."""
        if not isinstance(value, str) or not _HEX_ADDRESS.fullmatch(value) or not is_address(value):
            self.fail(key, f"not an account address: {value!r}")
        digits = value[2:]
        if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
            self.fail(key, f"{value} is in mixed case but its checksum is wrong (EIP-55): a typo? "
                           f"(write it all lowercase to skip the check)")
        if value.lower() == _ZERO:
            self.fail(key, "the zero address is not an account")
        return to_checksum_address(value)

    def addresses(self, table: dict[str, Any], key: str, where: str) -> tuple[ChecksumAddress, ...]:
        values = table.get(key, [])
        if not isinstance(values, list):
            self.fail(f"{where}.{key}", "must be a list of addresses")
        out: list[ChecksumAddress] = []
        for i, value in enumerate(values):
            address = self.address(value, f"{where}.{key}[{i}]")
            if address in out:
                self.fail(f"{where}.{key}[{i}]", f"{address} is listed twice")
            out.append(address)
        return tuple(out)

    def committee(self, table: Any) -> CommitteePlan:
        self.keys(table, _COMMITTEE_KEYS, "committee")
        members = self.addresses(table, "members", "committee") if "members" in table else None
        threshold = table.get("threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1):
            self.fail("committee.threshold", f"must be a whole number >= 1, not {threshold!r}")
        exact = self.boolean(table, "exact", "committee")
        if members is not None and not members:
            self.fail("committee.members", "an empty committee cannot vote: list at least one member, or leave the key out")
        if exact and members is None:
            self.fail("committee.exact", "exact = true needs committee.members (the members to keep)")
        if exact and threshold is not None and threshold > len(members or ()):
            self.fail("committee.threshold", f"{threshold} is more than the {len(members or ())} member(s) listed")
        if members is None and threshold is None:
            self.fail("committee", "give members and/or threshold, or leave [committee] out")
        return CommitteePlan(members, threshold, exact)

    def department(self, table: Any, where: str) -> DepartmentPlan:
        if not isinstance(table, dict):
            self.fail(where, "must be a table ([[departments]])")
        code = table.get("code")
        if not isinstance(code, str):
            self.fail(f"{where}.code", "required: the department's short code (a string)")
        raw = code.encode()
        if not 1 <= len(raw) <= 32:
            self.fail(f"{where}.code", f"a code is 1 to 32 bytes (UTF-8), {code!r} is {len(raw)}")
        if any(ch.isspace() or not ch.isprintable() for ch in code):
            self.fail(f"{where}.code", f"a code has no spaces or control characters: {code!r}")
        where = f"{where} ({code})"
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            self.fail(f"{where}.name", "required: the department's full name (a non-empty string)")
        if self.boolean(table, "removed", where):
            extra = sorted(set(table) & _DEPARTMENT_KEYS - _REMOVED_KEYS)
            if extra:
                self.fail(f"{where}.{extra[0]}", "a department to be removed takes only code, name and removed")
            self.keys(table, _REMOVED_KEYS, where)
            return DepartmentPlan(code=code, name=name, removed=True)
        self.keys(table, _DEPARTMENT_KEYS, where)
        audit_office = self.boolean(table, "audit_office", where)
        operators = self.addresses(table, "operators", where)
        oracles = self.addresses(table, "oracles", where)
        auditors = self.addresses(table, "auditors", where)
        if not operators:
            self.fail(f"{where}.operators", "a department needs at least one operator account")
        if auditors and not audit_office:
            self.fail(f"{where}.auditors", "only an audit office has auditors: set audit_office = true")
        accounts = set(operators) | set(oracles) | set(auditors)
        if len(accounts) > MAX_ACCOUNTS_PER_DEPARTMENT:
            self.fail(where, f"{len(accounts)} accounts; a department binds at most {MAX_ACCOUNTS_PER_DEPARTMENT}")
        url = table.get("oracle_url")
        if url is not None:
            if not isinstance(url, str):
                self.fail(f"{where}.oracle_url", f"must be a string, not {url!r}")
            if url and not _URL.match(url):
                self.fail(f"{where}.oracle_url", f"not an http:// or https:// URL: {url!r}")
            if len(url.encode()) > MAX_URL_LENGTH:
                self.fail(f"{where}.oracle_url", f"longer than the registry's {MAX_URL_LENGTH} bytes")
        return DepartmentPlan(code=code, name=name, audit_office=audit_office, operators=operators, oracles=oracles,
                              auditors=auditors, oracle_url=url, exact_accounts=self.boolean(table, "exact_accounts", where))

    def across_departments(self, departments: tuple[DepartmentPlan, ...]) -> None:
        codes: dict[str, int] = {}
        owner: dict[ChecksumAddress, str] = {}
        for i, dept in enumerate(departments):
            folded = dept.code.casefold()
            if folded in codes:
                first = departments[codes[folded]].code
                same = "is also" if first == dept.code else f"differs only in case from {first!r},"
                self.fail(f"departments[{i}].code", f"{dept.code!r} {same} the code of departments[{codes[folded]}]")
            codes[folded] = i
            for account in dept.accounts():
                if account in owner:
                    self.fail(f"departments[{i}] ({dept.code})",
                              f"account {account} is also listed in {owner[account]}: an account belongs to one department")
                owner[account] = f"departments[{codes[folded]}] ({dept.code})"
