"""Pydantic models at the HTTP edge, one family per resource (``…Create`` in, ``…Public`` out).

Inside the service the ledger's dataclasses (``Dataset``, ``AccessGrant``...) are used; these models
only say what crosses HTTP. Field sets travel as field *names*, never as bitmasks; hashes as 0x hex;
enums as lower-case names (``sensitive``, ``awaiting_co_approval``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from ledger.contracts.catalog import Classification, Dataset, DatasetVersion, UpdateFrequency
from ledger.contracts.grants import AccessGrant, GrantStatus
from ledger.contracts.registry import Department

__all__ = [
    "DatasetCreate",
    "DatasetPublic",
    "DatasetsPublic",
    "DepartmentRef",
    "Frequency",
    "GrantApprove",
    "GrantChange",
    "GrantCreate",
    "GrantPublic",
    "GrantReason",
    "GrantsPublic",
    "HealthPublic",
    "Level",
    "Problem",
    "QueryCreate",
    "QueryPublic",
    "State",
    "TransactionRef",
    "VersionCreate",
    "VersionPublic",
    "problem_responses",
]

MAX_DURATION_SECONDS = 3650 * 86_400  # AccessGrants.MAX_DURATION
_FIELD_NAME = Field(min_length=1, max_length=200)


class Level(str, Enum):
    """A dataset's classification (``ledger.contracts.catalog.Classification``)."""

    public = "public"
    internal = "internal"
    sensitive = "sensitive"
    secret = "secret"

    def classification(self) -> Classification:
        return Classification[self.name.upper()]


class Frequency(str, Enum):
    """How often a dataset is updated (``ledger.contracts.catalog.UpdateFrequency``)."""

    irregular = "irregular"
    realtime = "realtime"
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"

    def update_frequency(self) -> UpdateFrequency:
        return UpdateFrequency[self.name.upper()]


class State(str, Enum):
    """A grant's state (``ledger.contracts.grants.GrantStatus``)."""

    requested = "requested"
    awaiting_co_approval = "awaiting_co_approval"
    active = "active"
    rejected = "rejected"
    revoked = "revoked"
    cancelled = "cancelled"

    def status(self) -> GrantStatus:
        return GrantStatus[self.name.upper()]


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class _In(BaseModel):
    """What a client sends: no unknown members, and text that is Unicode (a lone surrogate such as
    ``"\\ud800"`` is valid JSON but no text: UTF-8 cannot encode it, so nothing downstream could sign,
    hash or send it). Refused as an ``invalid_unicode`` error naming the member (``api.errors``: 400)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _unicode_text(cls, value: Any, info: ValidationInfo) -> Any:
        where = _lone_surrogate(value, info.field_name or "body")
        if where is not None:
            raise PydanticCustomError("invalid_unicode", "{where} holds a lone surrogate (U+D800 to U+DFFF): "
                                      "it is not Unicode text", {"where": where})
        return value


def _lone_surrogate(value: Any, where: str) -> str | None:
    """Where in ``value`` (a path from ``where``) a string UTF-8 cannot encode is, if anywhere."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            shown = key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace") \
                if isinstance(key, str) else str(key)
            found = _lone_surrogate(key, f"{where} (the name '{shown}')") or _lone_surrogate(item, f"{where}['{shown}']")
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


class DepartmentRef(BaseModel):
    """A department as other resources name it."""

    id: int
    code: str
    name: str
    active: bool

    @classmethod
    def of(cls, department: Department) -> DepartmentRef:
        return cls(id=department.id, code=department.code, name=department.name, active=department.active)


# ---------------------------------------------------------------- catalog

class DatasetCreate(_In):
    """Register a dataset for the caller's department."""

    name: str = Field(min_length=1, max_length=200)
    fields: list[str] = Field(min_length=1, max_length=256, description="the schema: distinct field names, in order")
    level: Level = Field(description="classification: public, internal, sensitive or secret")
    frequency: Frequency = Field(default=Frequency.irregular, description="how often versions are published")


class VersionCreate(_In):
    """Publish a version from the records' text (JSON alternative to a multipart file upload)."""

    format: Literal["csv", "jsonl"]
    text: str = Field(description="the whole CSV (with a header row) or JSON Lines file")


class VersionPublic(BaseModel):
    dataset_id: int
    version: int
    content_hash: str
    merkle_root: str
    record_count: int
    published_at: int
    published_block: int

    @classmethod
    def of(cls, version: DatasetVersion) -> VersionPublic:
        return cls(dataset_id=version.dataset_id, version=version.version, content_hash=_hex(version.content_hash),
                   merkle_root=_hex(version.merkle_root), record_count=version.record_count,
                   published_at=version.published_at, published_block=version.published_block)


class DatasetPublic(BaseModel):
    id: int
    name: str
    owner: DepartmentRef
    level: str
    frequency: str
    fields: list[str]
    retired: bool
    version_count: int
    registered_at: int
    schema_hash: str
    versions: list[VersionPublic] | None = Field(default=None, description="present when one dataset is asked for")

    @classmethod
    def of(cls, dataset: Dataset, owner: Department, versions: list[DatasetVersion] | None = None) -> DatasetPublic:
        return cls(id=dataset.id, name=dataset.name, owner=DepartmentRef.of(owner),
                   level=dataset.classification.name.lower(), frequency=dataset.update_frequency.name.lower(),
                   fields=list(dataset.fields), retired=dataset.retired, version_count=dataset.version_count,
                   registered_at=dataset.registered_at, schema_hash=_hex(dataset.schema_hash),
                   versions=None if versions is None else [VersionPublic.of(v) for v in versions])


class DatasetsPublic(BaseModel):
    datasets: list[DatasetPublic]
    count: int


# ---------------------------------------------------------------- grants

class GrantCreate(_In):
    """Ask another department for fields of one of its datasets."""

    dataset_id: int = Field(ge=1)
    fields: list[str] = Field(min_length=1, max_length=256)
    purpose: str = Field(min_length=1, max_length=2000, description="stated in full on chain (GrantRequested)")
    duration_seconds: int = Field(ge=1, le=MAX_DURATION_SECONDS, description="validity from activation")
    quota: int = Field(ge=1, lt=2**64, description="most served queries")
    pinned_version: int = Field(default=0, ge=0, lt=2**32, description="0: follow the latest version")
    unmasked_fields: list[str] = Field(default_factory=list, description="fields asked to be shown unmasked")


class GrantApprove(_In):
    """Approve a requested grant, optionally narrowing it (omitted values keep what was requested)."""

    fields: list[str] | None = Field(default=None, min_length=1, max_length=256)
    duration_seconds: int | None = Field(default=None, ge=1, le=MAX_DURATION_SECONDS)
    quota: int | None = Field(default=None, ge=1, lt=2**64)
    unmasked_fields: list[str] | None = None


class GrantReason(_In):
    """Why a grant is rejected or revoked (stated on chain)."""

    reason: str = Field(min_length=1, max_length=2000)


class GrantPublic(BaseModel):
    id: int
    dataset_id: int
    requester: DepartmentRef
    owner: DepartmentRef
    state: str
    fields: list[str]
    unmasked_fields: list[str]
    duration_seconds: int
    quota: int
    used: int
    pinned_version: int
    requested_at: int
    activated_at: int
    expires_at: int
    purpose_hash: str

    @classmethod
    def of(cls, grant: AccessGrant, schema: tuple[str, ...], departments: dict[int, Department]) -> GrantPublic:
        def names(mask: int) -> list[str]:
            return [name for i, name in enumerate(schema) if mask >> i & 1]

        return cls(id=grant.id, dataset_id=grant.dataset_id, requester=DepartmentRef.of(departments[grant.requester_dept]),
                   owner=DepartmentRef.of(departments[grant.owner_dept]), state=grant.status.name.lower(),
                   fields=names(grant.fields), unmasked_fields=names(grant.unmasked_fields),
                   duration_seconds=grant.duration, quota=grant.quota, used=grant.used,
                   pinned_version=grant.pinned_version, requested_at=grant.requested_at,
                   activated_at=grant.activated_at, expires_at=grant.expires_at, purpose_hash=_hex(grant.purpose_hash))


class GrantsPublic(BaseModel):
    grants: list[GrantPublic]
    count: int
    next_before: int | None = Field(description="pass as ?before= for the next (older) page; null on the last page")


class TransactionRef(BaseModel):
    tx_hash: str
    block_number: int


class GrantChange(BaseModel):
    """A grant after an action, and the transaction that made it."""

    grant: GrantPublic
    transaction: TransactionRef


# ---------------------------------------------------------------- queries

class QueryCreate(_In):
    """Query a provider's oracle under a grant (signed with the caller's key by the service)."""

    grant_id: int = Field(ge=1)
    fields: list[str] | None = Field(default=None, min_length=1, max_length=256,
                                     description="default: every field the grant gives")
    params: dict[str, str] = Field(default_factory=dict, max_length=32, description="the provider's query parameters")
    dataset_id: int | None = Field(default=None, ge=1, description="if given, must be the grant's dataset")


class QueryPublic(BaseModel):
    records: list[dict[str, Any]]
    receipt: dict[str, Any] = Field(description="the oracle's signed receipt; its record goes on chain")
    grant_id: int
    dataset_id: int
    fields: list[str]
    oracle: str = Field(description="the account that signed the receipt (a registered ORACLE of the provider)")
    oracle_url: str


# ---------------------------------------------------------------- health

class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    chain_reachable: bool
    chain_id: int | None
    block: int | None
    accounts: list[str] = Field(description="the accounts the service acts with")


# ---------------------------------------------------------------- problems

class Problem(BaseModel):
    """An RFC 9457 problem (``application/problem+json``); extension members vary by ``type``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


_PROBLEM_TITLES = {
    400: "malformed request", 401: "not authenticated", 403: "authenticated, but not allowed (membership, key, role)",
    404: "unknown dataset, grant or path", 409: "refused by the chain's current state", 413: "body too large",
    415: "unsupported media type", 422: "invalid request or data file", 502: "the chain or an oracle failed",
    503: "the chain is unreachable", 504: "an oracle did not answer in time",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem answers with these statuses."""
    return {status: {"model": Problem, "description": _PROBLEM_TITLES.get(status, "problem"),
                     "content": {"application/problem+json": {}}} for status in statuses}
