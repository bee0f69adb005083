"""The data catalog: datasets, schemas, classification and published versions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Sequence

from ledger.contracts.base import ContractClient
from ledger.errors import LedgerError
from ledger.events import read_events
from ledger.keys import Signer


class Classification(IntEnum):
    PUBLIC = 0
    INTERNAL = 1
    SENSITIVE = 2
    SECRET = 3


class UpdateFrequency(IntEnum):
    IRREGULAR = 0
    REALTIME = 1
    DAILY = 2
    WEEKLY = 3
    MONTHLY = 4
    QUARTERLY = 5
    YEARLY = 6


class UnknownField(LedgerError, KeyError):
    """A field name that is not in the dataset's schema."""


@dataclass(frozen=True)
class Dataset:
    id: int
    owner_dept: int
    field_count: int
    classification: Classification
    update_frequency: UpdateFrequency
    retired: bool
    version_count: int
    registered_at: int
    schema_hash: bytes
    name: str
    fields: tuple[str, ...]

    def field_mask(self, names: Sequence[str]) -> int:
        """The bitmask selecting ``names`` (bit i = field i of the schema)."""
        mask = 0
        for name in names:
            try:
                mask |= 1 << self.fields.index(name)
            except ValueError:
                raise UnknownField(f"dataset {self.id} has no field {name!r}") from None
        return mask

    def field_names(self, mask: int) -> list[str]:
        """The field names selected by ``mask``, in schema order."""
        return [name for i, name in enumerate(self.fields) if mask >> i & 1]


@dataclass(frozen=True)
class DatasetVersion:
    dataset_id: int
    version: int
    content_hash: bytes
    merkle_root: bytes
    record_count: int
    published_at: int
    published_block: int


class DataCatalogClient(ContractClient):
    """Typed access to DataCatalog."""

    def register(
        self,
        signer: Signer,
        name: str,
        fields: Sequence[str],
        classification: Classification,
        update_frequency: UpdateFrequency = UpdateFrequency.IRREGULAR,
    ) -> int:
        result = self._transact(signer, "registerDataset", name, list(fields), int(classification), int(update_frequency))
        return int(self.event(result, "DatasetRegistered").args["datasetId"])

    def publish_version(
        self, signer: Signer, dataset_id: int, content_hash: bytes, merkle_root: bytes, record_count: int
    ) -> int:
        result = self._transact(signer, "publishVersion", dataset_id, content_hash, merkle_root, record_count)
        return int(self.event(result, "DatasetVersionPublished").args["version"])

    def retire(self, signer: Signer, dataset_id: int) -> None:
        self._transact(signer, "retireDataset", dataset_id)

    def dataset(self, dataset_id: int, *, block: int | str = "latest") -> Dataset:
        raw = self._call("dataset", dataset_id, block=block)
        return Dataset(
            id=int(raw[0]),
            owner_dept=int(raw[1]),
            field_count=int(raw[2]),
            classification=Classification(raw[3]),
            update_frequency=UpdateFrequency(raw[4]),
            retired=bool(raw[5]),
            version_count=int(raw[6]),
            registered_at=int(raw[7]),
            schema_hash=bytes(raw[8]),
            name=raw[9],
            fields=self.fields(dataset_id),
        )

    def fields(self, dataset_id: int) -> tuple[str, ...]:
        """The schema's field names, read from the dataset's DatasetRegistered event.

        Logs are read in bounded block ranges (``ledger.events.read_events``): nodes such as Besu
        refuse an ``eth_getLogs`` range longer than their limit, and the deployment block soon lies
        further back than that. The scan stops at the (single) registration event."""
        topics = ["0x" + self.events.topic("DatasetRegistered").hex(), "0x" + dataset_id.to_bytes(32, "big").hex()]
        for event in read_events(self.chain, self.events, [self.address], self.from_block, topics=topics):
            return tuple(event.args["fields"])
        return ()

    def version(self, dataset_id: int, version: int) -> DatasetVersion:
        raw = self._call("datasetVersion", dataset_id, version)
        return DatasetVersion(
            dataset_id=dataset_id,
            version=version,
            content_hash=bytes(raw[0]),
            merkle_root=bytes(raw[1]),
            record_count=int(raw[2]),
            published_at=int(raw[3]),
            published_block=int(raw[4]),
        )

    def latest_version(self, dataset_id: int) -> int:
        return int(self._call("latestVersion", dataset_id))

    def owner_of(self, dataset_id: int) -> int:
        return int(self._call("ownerOf", dataset_id))

    def dataset_count(self) -> int:
        return int(self._call("datasetCount"))

    def verify_record(self, dataset_id: int, version: int, record_hash: bytes, proof: Sequence[bytes]) -> bool:
        """Ask the contract (OpenZeppelin MerkleProof) whether a record belongs to a published version."""
        return bool(self._call("verifyRecord", dataset_id, version, record_hash, list(proof)))
