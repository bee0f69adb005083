// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessGrants} from "./AccessGrants.sol";
import {ConsortiumRegistry} from "./ConsortiumRegistry.sol";
import {DataCatalog} from "./DataCatalog.sol";
import {IAuditLog} from "./interfaces/IAuditLog.sol";

/// @title AuditLog
/// @notice Append-only, per-oracle sequenced and hash-chained log of every access. Records are
/// emitted as events (the log is the evidence); the contract stores per oracle only the last
/// sequence number and the chain head, which makes gaps, duplicates and reordering impossible to hide.
/// @dev A served record counts one use of its grant's quota. Records are never refused for being
/// over quota or under a revoked grant: they are evidence, and auditors replay the decision.
contract AuditLog is IAuditLog {
    /// @notice Most records in one batch.
    uint256 public constant MAX_BATCH = 500;

    ConsortiumRegistry public immutable i_registry;
    DataCatalog public immutable i_catalog;
    AccessGrants public immutable i_grants;
    bytes32 private immutable i_oracleRole;

    mapping(address oracle => OracleState) private s_oracles;

    constructor(ConsortiumRegistry registry, DataCatalog catalog, AccessGrants grants) {
        i_registry = registry;
        i_catalog = catalog;
        i_grants = grants;
        i_oracleRole = registry.ORACLE_ROLE();
    }

    /// @inheritdoc IAuditLog
    /// @dev Requirements: the caller holds ORACLE_ROLE in an active department; 1..MAX_BATCH entries;
    /// `firstSequence` is exactly one past the caller's last; every dataset named belongs to the
    /// caller's department (datasetId 0 only for denials); served entries name a grant for their dataset.
    /// Emits {AuditRecordAppended} per entry, {GrantUsed} per run of served entries of one grant,
    /// and {AuditBatchAppended}.
    function appendRecords(uint64 firstSequence, AuditEntry[] calldata entries) external returns (bytes32 head) {
        uint32 deptId = i_registry.departmentWithRole(i_oracleRole, msg.sender);
        if (deptId == 0) revert AuditLogNotOracle(msg.sender);
        uint256 count = entries.length;
        if (count == 0) revert AuditLogEmptyBatch();
        if (count > MAX_BATCH) revert AuditLogBatchTooLarge(count, MAX_BATCH);
        OracleState storage state = s_oracles[msg.sender];
        uint64 expected = state.lastSequence + 1;
        if (firstSequence != expected) revert AuditLogSequenceMismatch(msg.sender, expected, firstSequence);

        head = state.head;
        uint256 oracleBits = uint256(uint160(msg.sender)) << 64;
        uint64 checkedDataset; // last dataset whose ownership was checked in this batch
        QuotaRun memory run; // consecutive served entries of one grant, counted in one call
        for (uint256 i = 0; i < count; ++i) {
            AuditEntry calldata e = entries[i];
            uint64 sequence = firstSequence + uint64(i);
            checkedDataset = _checkDataset(e, sequence, deptId, checkedDataset);
            if (e.outcome == Outcome.Served) _countUse(run, e, sequence);
            head = _append(head, oracleBits | sequence, e);
        }
        if (run.count != 0) i_grants.recordUse(run.grantId, run.datasetId, run.count);
        uint64 last = firstSequence + uint64(count) - 1;
        state.lastSequence = last;
        state.deptId = deptId;
        state.head = head;
        emit AuditBatchAppended(msg.sender, deptId, firstSequence, uint64(count), head);
    }

    /// @inheritdoc IAuditLog
    function oracleState(address oracle) external view returns (OracleState memory) {
        return s_oracles[oracle];
    }

    /// @notice The record id of `oracle`'s record number `sequence`.
    function recordId(address oracle, uint64 sequence) external pure returns (uint256) {
        return (uint256(uint160(oracle)) << 64) | sequence;
    }

    /// @notice The hash-chain step, exposed so off-chain verifiers can be checked against it.
    function chainStep(bytes32 head, uint256 id, AuditEntry calldata e) external pure returns (bytes32) {
        return _chain(head, id, e, _meta(e));
    }

    struct QuotaRun {
        uint64 grantId;
        uint64 datasetId;
        uint64 count;
    }

    function _checkDataset(AuditEntry calldata e, uint64 sequence, uint32 deptId, uint64 checked)
        private
        view
        returns (uint64)
    {
        if (e.datasetId == 0) {
            if (e.outcome != Outcome.Denied) revert AuditLogDatasetRequired(sequence);
            return checked;
        }
        if (e.datasetId != checked && i_catalog.ownerOf(e.datasetId) != deptId) {
            revert AuditLogDatasetNotOwned(sequence, e.datasetId, deptId);
        }
        return e.datasetId;
    }

    function _countUse(QuotaRun memory run, AuditEntry calldata e, uint64 sequence) private {
        if (e.grantId == 0) revert AuditLogGrantRequired(sequence);
        if (e.grantId != run.grantId || e.datasetId != run.datasetId) {
            if (run.count != 0) i_grants.recordUse(run.grantId, run.datasetId, run.count);
            (run.grantId, run.datasetId, run.count) = (e.grantId, e.datasetId, 0);
        }
        ++run.count;
    }

    function _append(bytes32 head, uint256 id, AuditEntry calldata e) private returns (bytes32 next) {
        uint256 meta = _meta(e);
        next = _chain(head, id, e, meta);
        emit AuditRecordAppended(e.datasetId, e.requester, e.grantId, id, meta, e.requestHash, e.responseHash);
    }

    function _meta(AuditEntry calldata e) private pure returns (uint256) {
        return uint256(e.checkedAtBlock) | (uint256(e.datasetVersion) << 64) | (uint256(uint8(e.outcome)) << 96)
            | (uint256(e.reason) << 104);
    }

    /// @dev keccak256(abi.encode(head, id, grantId, requester, datasetId, meta, requestHash, responseHash)),
    /// computed in scratch memory so that a batch does not grow memory per record.
    function _chain(bytes32 head, uint256 id, AuditEntry calldata e, uint256 meta) private pure returns (bytes32 h) {
        uint64 grantId = e.grantId;
        address requester = e.requester;
        uint64 datasetId = e.datasetId;
        bytes32 requestHash = e.requestHash;
        bytes32 responseHash = e.responseHash;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, head)
            mstore(add(p, 0x20), id)
            mstore(add(p, 0x40), grantId)
            mstore(add(p, 0x60), requester)
            mstore(add(p, 0x80), datasetId)
            mstore(add(p, 0xa0), meta)
            mstore(add(p, 0xc0), requestHash)
            mstore(add(p, 0xe0), responseHash)
            h := keccak256(p, 0x100)
        }
    }
}
