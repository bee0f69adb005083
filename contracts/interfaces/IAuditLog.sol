// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "./IAccessGrants.sol";
import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";
import {IDataCatalog} from "./IDataCatalog.sol";

/// @title IAuditLog
/// @notice The evidence: one record per access to a department's data, granted or denied, appended in
/// batches by that department's oracle, sequenced and hash-chained per oracle.
/// @dev Record id: `uint256(uint160(oracle)) << 64 | sequence` (unique, known to the oracle before anchoring).
/// `meta` packs the small fields: bits 0-63 checkedAtBlock, 64-95 datasetVersion, 96-103 outcome,
/// 104-111 reason. Hash chain, per oracle, from bytes32(0):
/// `head = keccak256(abi.encode(head, recordId, grantId, requester, datasetId, meta, requestHash, responseHash))`.
/// Batches travel packed, 128 bytes per record (calldata is most of the cost of a record):
/// word 0 = `requester << 96 | grantId << 32` (low 32 bits zero), word 1 = `datasetId << 192 | meta`
/// (bits 112-191 zero), word 2 = requestHash, word 3 = responseHash. `packRecords` builds it on chain.
interface IAuditLog {
    enum Outcome {
        Served,
        Denied,
        SourceFailure
    }

    /// @notice One access as the oracle submits it.
    struct AuditEntry {
        uint64 grantId; // 0: no grant (e.g. the request named none, or its signature was bad)
        address requester; // the requesting account (0 if unknown: bad signature)
        uint64 datasetId; // 0 only for a denied request about an unknown dataset
        uint32 datasetVersion; // the version served or that would have been (0: none)
        Outcome outcome;
        uint8 reason; // IAccessGrants.AccessReason (0..63) or an oracle reason (64..255)
        uint64 checkedAtBlock; // the block at which the oracle checked the grant
        bytes32 requestHash; // salted canonical hash of the request
        bytes32 responseHash; // salted canonical hash of the response (0 if none)
    }

    /// @notice An oracle's position: the last sequence number anchored and the hash-chain head.
    struct OracleState {
        uint64 lastSequence;
        uint32 deptId;
        bytes32 head;
    }

    event AuditRecordAppended(
        uint64 indexed datasetId,
        address indexed requester,
        uint64 indexed grantId,
        uint256 recordId,
        uint256 meta,
        bytes32 requestHash,
        bytes32 responseHash
    );
    event AuditBatchAppended(
        address indexed oracle, uint32 indexed deptId, uint64 firstSequence, uint64 count, bytes32 head
    );

    error AuditLogNotOracle(address caller);
    error AuditLogEmptyBatch();
    error AuditLogMalformedBatch(uint256 length);
    error AuditLogMalformedRecord(uint64 sequence);
    error AuditLogBatchTooLarge(uint256 size, uint256 max);
    error AuditLogSequenceMismatch(address oracle, uint64 expected, uint64 given);
    error AuditLogDatasetNotOwned(uint64 sequence, uint64 datasetId, uint32 oracleDept);
    error AuditLogDatasetRequired(uint64 sequence);
    error AuditLogGrantRequired(uint64 sequence);
    error AuditLogDecisionTooOld(uint64 sequence, uint64 decisionBlock, uint256 currentBlock, uint256 maxAgeBlocks);

    /// @notice Most records in one batch.
    /// @return The limit.
    function MAX_BATCH() external view returns (uint256);

    /// @notice Bytes per packed record.
    /// @return The size of one packed record, in bytes.
    function RECORD_SIZE() external view returns (uint256);

    /// @notice The registry that says which department an oracle acts for.
    /// @return The registry's address.
    function i_registry() external view returns (IConsortiumRegistry);

    /// @notice The catalog that says which department owns a dataset.
    /// @return The catalog's address.
    function i_catalog() external view returns (IDataCatalog);

    /// @notice The grants contract that counts served records against quotas.
    /// @return The grants contract's address.
    function i_grants() external view returns (IAccessGrants);

    /// @notice Appends the packed `records` as the records `firstSequence`, `firstSequence + 1`, ... of the caller.
    /// @dev Requirements: the caller holds ORACLE_ROLE in an active department; 1..MAX_BATCH records
    /// of RECORD_SIZE bytes with reserved bits zero and a known outcome; `firstSequence` is exactly
    /// one past the caller's last; every dataset named belongs to the caller's department (datasetId
    /// 0 only for denials); served records name a grant for their dataset and were decided at most
    /// `i_registry().maxDecisionAgeBlocks()` blocks before this one (`checkedAtBlock >= block.number - max`;
    /// else {AuditLogDecisionTooOld}: a back-dated decision, or a record that waited too long).
    /// Emits {AuditRecordAppended} per record, {GrantUsed} per run of served records of one grant,
    /// and {AuditBatchAppended}.
    /// @param firstSequence The sequence number of the first record.
    /// @param records The records, packed (see the interface's @dev and `packRecords`).
    /// @return head The caller's hash-chain head after the last record.
    function appendRecords(uint64 firstSequence, bytes calldata records) external returns (bytes32 head);

    /// @notice The caller-independent state of `oracle`'s chain.
    /// @param oracle The oracle account.
    /// @return Its last sequence number, department and chain head (all zero before its first batch).
    function oracleState(address oracle) external view returns (OracleState memory);

    /// @notice The record id of `oracle`'s record number `sequence`.
    /// @param oracle The oracle account.
    /// @param sequence The record's sequence number.
    /// @return `uint256(uint160(oracle)) << 64 | sequence`.
    function recordId(address oracle, uint64 sequence) external pure returns (uint256);

    /// @notice Packs entries into the calldata layout `appendRecords` expects (for clients and tests).
    /// @param entries The records.
    /// @return packed RECORD_SIZE bytes per entry, in order.
    function packRecords(AuditEntry[] calldata entries) external pure returns (bytes memory packed);

    /// @notice The hash-chain step, exposed so off-chain verifiers can be checked against it.
    /// @param head The chain head before the record.
    /// @param id The record's id (see `recordId`).
    /// @param e The record.
    /// @return The chain head after the record.
    function chainStep(bytes32 head, uint256 id, AuditEntry calldata e) external pure returns (bytes32);
}
