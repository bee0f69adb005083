// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

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

    /// @notice Appends the packed `records` as the records `firstSequence`, `firstSequence + 1`, ... of the caller.
    function appendRecords(uint64 firstSequence, bytes calldata records) external returns (bytes32 head);

    /// @notice The caller-independent state of `oracle`'s chain.
    function oracleState(address oracle) external view returns (OracleState memory);
}
