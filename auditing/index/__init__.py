"""The auditors' index: a local SQLite copy of one deployment's audit trail, fed from chain events.

``AuditIndex(path).sync(consortium)`` reads every event of the registry, the catalog, the grants and
the audit log from the deployment block on, ``step`` blocks per ``eth_getLogs`` call, and commits
each range in one SQLite transaction together with the cursor (the last block fully indexed): a
crash loses at most the range in flight, and the next ``sync`` resumes after the cursor. The index
refuses to resume on a chain that no longer has the indexed cursor block (a reorganised or reset
chain: rebuild it), and to mix deployments.

What it keeps (SQLite, WAL, so readers such as the API never block the syncing writer):

* ``records``: every ``AuditRecordAppended`` with its oracle, sequence, the oracle's department (from
  its ``AuditBatchAppended``), the requester and the requester's department at that moment, dataset,
  version, grant, the fields the grant allowed then, outcome, reason, decision block, hashes, and
  block, block time, transaction and log index; indexed by dataset, departments, requester, grant,
  outcome and time, so that searching 100,000+ records is instant.
* ``batches``: every ``AuditBatchAppended`` (the head the contract published after each batch).
* ``grant_events`` and ``grants``: every AccessGrants event (the history the verifier replays) and
  each grant's state as of the cursor.
* ``registry_events``, ``departments``, ``accounts``: membership and role history (admitted,
  removed, accounts bound/unbound, roles granted/revoked, the consortium's ``maxDecisionAgeBlocks``)
  and the current state.
* ``datasets``, ``dataset_versions``: the catalog, with every published version's commitments.
* ``blocks``: the timestamp (and hash) of every block an event is in, and of every decision block of
  a served record (the verifier needs it to replay expiry).
* ``daily``: accesses per UTC day per department, as requester and as provider, kept up to date by
  ``sync`` (the dashboard's counts).

Chain data comes in through raw JSON-RPC (``eth_getLogs``, batched ``eth_getBlockByNumber``), with a
hand decoder for the audit record event: web3's per-log formatting would cost more than the rest of
the sync together at 100,000 records.
"""

from auditing.index.models import (
    AUDITOR,
    BLOCK_BATCH,
    COMMITTEE,
    DEFAULT_SYNC_STEP,
    GRANT_STATES,
    GRANT_STATUS_NAMES,
    INDEX_FORMAT,
    MAX_PAGE,
    OPERATOR,
    ORACLE,
    ROLE_BITS,
    ROLE_NAMES,
    AuditIndexError,
    AuditQueryError,
    DailyCount,
    DatasetSummary,
    DatasetVersionSummary,
    DepartmentSummary,
    GrantEvent,
    GrantSummary,
    IndexedRecord,
    IndexStatus,
    RecordPage,
    SyncResult,
)
from auditing.index.search import IndexSearch, parse_outcome
from auditing.index.store import end_of_block, last_position, position
from auditing.index.sync import IndexSync

__all__ = [
    "AUDITOR", "BLOCK_BATCH", "COMMITTEE", "DEFAULT_SYNC_STEP", "GRANT_STATES", "GRANT_STATUS_NAMES", "INDEX_FORMAT",
    "MAX_PAGE", "OPERATOR", "ORACLE", "ROLE_BITS", "ROLE_NAMES", "AuditIndex", "AuditIndexError", "AuditQueryError",
    "DailyCount", "DatasetSummary", "DatasetVersionSummary", "DepartmentSummary", "GrantEvent", "GrantSummary",
    "IndexStatus", "IndexedRecord", "RecordPage", "SyncResult", "end_of_block", "last_position", "parse_outcome",
    "position",
]


class AuditIndex(IndexSync, IndexSearch):
    """An incremental SQLite (WAL) index of one deployment's audit trail: the file and its shared
    state (:class:`~auditing.index.store.IndexStore`), fed by :meth:`sync`
    (:class:`~auditing.index.sync.IndexSync`) and read by the searches
    (:class:`~auditing.index.search.IndexSearch`). Thread-safe: one connection guarded by a lock;
    other processes may read (or sync) the same file concurrently."""
