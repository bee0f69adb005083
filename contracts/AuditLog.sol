// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "./interfaces/IAccessGrants.sol";
import {IAuditLog} from "./interfaces/IAuditLog.sol";
import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";
import {IDataCatalog} from "./interfaces/IDataCatalog.sol";

/// @title AuditLog
/// @notice Append-only, per-oracle sequenced and hash-chained log of every access. Records are
/// emitted as events (the log is the evidence); the contract stores per oracle only the last
/// sequence number and the chain head, which makes gaps, duplicates and reordering impossible to hide.
/// @dev A served record counts one use of its grant's quota. Records are never refused for being
/// over quota or under a revoked grant: they are evidence, and auditors replay the decision. A served
/// record is refused if its decision block lies more than the consortium's `maxDecisionAgeBlocks`
/// before the anchoring block: an oracle cannot back-date a decision to before a revocation by more
/// than that bound.
/// Records arrive packed (see IAuditLog) and are decoded with plain calldata loads: at batch 100 a
/// record costs about the log it emits plus its calldata.
contract AuditLog is IAuditLog {
    /// @inheritdoc IAuditLog
    uint256 public constant MAX_BATCH = 500;
    /// @inheritdoc IAuditLog
    uint256 public constant RECORD_SIZE = 128;

    uint256 private constant META_MASK = 0xffffffffffffffffffffffffffff; // bits 0-111
    uint256 private constant WORD1_RESERVED = 0xffffffffffffffffffff0000000000000000000000000000; // bits 112-191
    uint256 private constant WORD0_RESERVED = 0xffffffff; // bits 0-31
    /// @dev The topic of {AuditRecordAppended}, keccak256 of its signature (a hash, not a key; a test
    /// checks it against the event), for the `log4` in `_appendAll`.
    bytes32 private constant RECORD_EVENT = 0xafe7a2371761341e508f4c6b2496256657bab9891722fb849b6283ad24ba3c9e;

    /// @inheritdoc IAuditLog
    IConsortiumRegistry public immutable i_registry;
    /// @inheritdoc IAuditLog
    IDataCatalog public immutable i_catalog;
    /// @inheritdoc IAuditLog
    IAccessGrants public immutable i_grants;
    bytes32 private immutable i_oracleRole;

    mapping(address oracle => OracleState) private s_oracles;

    /// @param registry The consortium registry (departments and roles).
    /// @param catalog The data catalog (datasets and their owners).
    /// @param grants The grants contract (quota use is counted there).
    constructor(IConsortiumRegistry registry, IDataCatalog catalog, IAccessGrants grants) {
        i_registry = registry;
        i_catalog = catalog;
        i_grants = grants;
        i_oracleRole = registry.ORACLE_ROLE();
    }

    /// @inheritdoc IAuditLog
    function appendRecords(uint64 firstSequence, bytes calldata records) external returns (bytes32 head) {
        uint32 deptId = i_registry.departmentWithRole(i_oracleRole, msg.sender);
        if (deptId == 0) revert AuditLogNotOracle(msg.sender);
        if (records.length % RECORD_SIZE != 0) revert AuditLogMalformedBatch(records.length);
        uint256 count = records.length / RECORD_SIZE;
        if (count == 0) revert AuditLogEmptyBatch();
        if (count > MAX_BATCH) revert AuditLogBatchTooLarge(count, MAX_BATCH);
        OracleState storage state = s_oracles[msg.sender];
        uint64 expected = state.lastSequence + 1;
        if (firstSequence != expected) revert AuditLogSequenceMismatch(msg.sender, expected, firstSequence);

        uint256 offset;
        assembly ("memory-safe") {
            offset := records.offset
        }
        uint256 maxAge = i_registry.maxDecisionAgeBlocks();
        uint256 oldest = block.number > maxAge ? block.number - maxAge : 0;
        head = _appendAll(state.head, (uint256(uint160(msg.sender)) << 64) | firstSequence, offset, count, deptId, oldest);
        state.lastSequence = firstSequence + uint64(count) - 1;
        state.deptId = deptId;
        state.head = head;
        emit AuditBatchAppended(msg.sender, deptId, firstSequence, uint64(count), head);
    }

    /// @inheritdoc IAuditLog
    function oracleState(address oracle) external view returns (OracleState memory) {
        return s_oracles[oracle];
    }

    /// @inheritdoc IAuditLog
    function recordId(address oracle, uint64 sequence) external pure returns (uint256) {
        return (uint256(uint160(oracle)) << 64) | sequence;
    }

    /// @inheritdoc IAuditLog
    function packRecords(AuditEntry[] calldata entries) external pure returns (bytes memory packed) {
        packed = new bytes(entries.length * RECORD_SIZE);
        for (uint256 i = 0; i < entries.length; ++i) {
            AuditEntry calldata e = entries[i];
            uint256 w0 = (uint256(uint160(e.requester)) << 96) | (uint256(e.grantId) << 32);
            uint256 w1 = (uint256(e.datasetId) << 192) | _meta(e);
            bytes32 requestHash = e.requestHash;
            bytes32 responseHash = e.responseHash;
            assembly ("memory-safe") {
                let p := add(add(packed, 0x20), mul(i, 128))
                mstore(p, w0)
                mstore(add(p, 0x20), w1)
                mstore(add(p, 0x40), requestHash)
                mstore(add(p, 0x60), responseHash)
            }
        }
    }

    /// @inheritdoc IAuditLog
    function chainStep(bytes32 head, uint256 id, AuditEntry calldata e) external pure returns (bytes32) {
        return keccak256(
            abi.encode(head, id, e.grantId, e.requester, e.datasetId, _meta(e), e.requestHash, e.responseHash)
        );
    }

    /// @dev What the record loop carries between records (in memory, to keep the stack shallow).
    struct Cursor {
        uint256 run; // consecutive served records of one grant: grantId << 128 | datasetId << 64 | count
        uint256 checkedDataset; // the last dataset whose ownership was checked
        uint256 vouched; // index of the record `_validate` just checked
        uint256 deptId; // the oracle's department
        uint256 oldestDecision; // the oldest decision block a served record may name
    }

    /// @dev Chains and emits every record. A tight assembly loop handles the common case (same
    /// dataset and grant as the record before, well formed); any record it cannot vouch for (first of
    /// a dataset or grant, a denial about no dataset, anything malformed) leaves the loop for
    /// `_validate`, which checks it in Solidity (reverting with the custom error) and hands it back.
    /// Per record: head' = keccak256(abi.encode(head, id, grantId, requester, datasetId, meta,
    /// requestHash, responseHash)), then {AuditRecordAppended}. `base` is `oracle << 64 | firstSequence`;
    /// `oldest` the oldest decision block a served record may name.
    function _appendAll(bytes32 head, uint256 base, uint256 offset, uint256 count, uint32 deptId, uint256 oldest)
        private
        returns (bytes32)
    {
        Cursor memory c = Cursor(0, 0, type(uint256).max, deptId, oldest);
        uint256 i;
        while (true) {
            assembly ("memory-safe") {
                for {} lt(i, count) { i := add(i, 1) } {
                    let at := add(offset, shl(7, i))
                    let w0 := calldataload(at)
                    let w1 := calldataload(add(at, 0x20))
                    if iszero(eq(i, mload(add(c, 0x40)))) {
                        let outcome := and(shr(96, w1), 0xff)
                        // reserved bits (word 0 bits 0-31, word 1 bits 112-191), outcome > SourceFailure
                        if or(or(and(w0, WORD0_RESERVED), and(w1, WORD1_RESERVED)), gt(outcome, 2)) { break }
                        if or(iszero(shr(192, w1)), iszero(eq(shr(192, w1), mload(add(c, 0x20))))) { break }
                        if iszero(outcome) {
                            // a decision older than the consortium allows: `_validate` reverts
                            if lt(and(w1, 0xffffffffffffffff), oldest) { break }
                            let run := mload(c)
                            // same grant and dataset as the current run: w0 bits 32-95 ++ w1 bits 192-255
                            if iszero(eq(shr(64, run), or(shl(64, and(shr(32, w0), 0xffffffffffffffff)), shr(192, w1)))) {
                                break
                            }
                            mstore(c, add(run, 1))
                        }
                    }
                    let p := mload(0x40)
                    mstore(p, head)
                    mstore(add(p, 0x20), add(base, i)) // record id: oracle << 64 | sequence
                    mstore(add(p, 0x40), and(shr(32, w0), 0xffffffffffffffff)) // grantId
                    mstore(add(p, 0x60), shr(96, w0)) // requester
                    mstore(add(p, 0x80), shr(192, w1)) // datasetId
                    mstore(add(p, 0xa0), and(w1, META_MASK))
                    calldatacopy(add(p, 0xc0), add(at, 0x40), 0x40) // requestHash, responseHash
                    head := keccak256(p, 0x100)
                    // event data: recordId, meta, requestHash, responseHash
                    mstore(add(p, 0xa0), add(base, i))
                    mstore(add(p, 0xc0), and(w1, META_MASK))
                    calldatacopy(add(p, 0xe0), add(at, 0x40), 0x40)
                    log4(add(p, 0xa0), 0x80, RECORD_EVENT, shr(192, w1), shr(96, w0), and(shr(32, w0), 0xffffffffffffffff))
                }
            }
            if (i == count) break;
            _validate(c, offset + (i << 7), uint64(base) + uint64(i));
            c.vouched = i;
        }
        if (uint64(c.run) != 0) _recordUse(c.run);
        return head;
    }

    /// @dev Checks one packed record (at calldata offset `at`) in Solidity, with custom errors;
    /// updates the cursor's checked dataset and quota run.
    function _validate(Cursor memory c, uint256 at, uint64 sequence) private {
        uint256 w0;
        uint256 w1;
        assembly ("memory-safe") {
            w0 := calldataload(at)
            w1 := calldataload(add(at, 0x20))
        }
        uint64 datasetId = uint64(w1 >> 192);
        uint8 outcome = uint8(w1 >> 96);
        if (w0 & WORD0_RESERVED != 0 || w1 & WORD1_RESERVED != 0 || outcome > uint8(Outcome.SourceFailure)) {
            revert AuditLogMalformedRecord(sequence);
        }
        if (datasetId == 0) {
            if (outcome != uint8(Outcome.Denied)) revert AuditLogDatasetRequired(sequence);
        } else if (datasetId != c.checkedDataset) {
            uint32 deptId = uint32(c.deptId);
            if (i_catalog.ownerOf(datasetId) != deptId) revert AuditLogDatasetNotOwned(sequence, datasetId, deptId);
            c.checkedDataset = datasetId;
        }
        if (outcome == uint8(Outcome.Served)) {
            uint64 decisionBlock = uint64(w1);
            if (decisionBlock < c.oldestDecision) {
                revert AuditLogDecisionTooOld(sequence, decisionBlock, block.number, block.number - c.oldestDecision);
            }
            c.run = _countUse(c.run, uint64(w0 >> 32), datasetId, sequence);
        }
    }

    /// @dev `run` is grantId << 128 | datasetId << 64 | count; a new grant or dataset flushes the run.
    function _countUse(uint256 run, uint64 grantId, uint64 datasetId, uint64 sequence) private returns (uint256) {
        if (grantId == 0) revert AuditLogGrantRequired(sequence);
        uint256 key = (uint256(grantId) << 128) | (uint256(datasetId) << 64);
        if (run >> 64 != key >> 64) {
            if (uint64(run) != 0) _recordUse(run);
            run = key;
        }
        return run + 1;
    }

    function _recordUse(uint256 run) private {
        i_grants.recordUse(uint64(run >> 128), uint64(run >> 64), uint64(run));
    }

    function _meta(AuditEntry calldata e) private pure returns (uint256) {
        return uint256(e.checkedAtBlock) | (uint256(e.datasetVersion) << 64) | (uint256(uint8(e.outcome)) << 96)
            | (uint256(e.reason) << 104);
    }
}
