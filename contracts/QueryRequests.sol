// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IAccessGrants} from "./interfaces/IAccessGrants.sol";
import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";
import {IQueryRequests} from "./interfaces/IQueryRequests.sol";

/// @title QueryRequests
/// @notice How a requester asks a provider's oracle: the EIP-712 form of a signed off-chain query
/// (hashed and recovered here exactly as clients and oracles do it), and on-chain requests whose
/// parameters travel encrypted to the oracle. Stores per request only a commitment and a status.
/// @dev Decides no access: the oracle checks the grant (`AccessGrants.checkAccess`, deny by default),
/// records the access in the audit log, and fulfils the request with the record's id and outcome.
contract QueryRequests is EIP712, IQueryRequests {
    /// @inheritdoc IQueryRequests
    bytes32 public constant QUERY_TYPEHASH = keccak256(
        "Query(address requester,uint32 requesterDept,uint64 datasetId,uint64 grantId,uint256 fields,bytes32 paramsHash,uint256 nonce,uint64 deadline)"
    );
    /// @inheritdoc IQueryRequests
    uint256 public constant MAX_PARAMS_LENGTH = 4096;
    /// @inheritdoc IQueryRequests
    uint256 public constant PUBLIC_KEY_LENGTH = 64;
    /// @inheritdoc IQueryRequests
    uint8 public constant MAX_OUTCOME = 2;

    /// @inheritdoc IQueryRequests
    IConsortiumRegistry public immutable i_registry;
    /// @inheritdoc IQueryRequests
    IAccessGrants public immutable i_grants;
    bytes32 private immutable i_operatorRole;
    bytes32 private immutable i_oracleRole;

    uint256 private s_requestCount;
    mapping(uint256 requestId => QueryRequest) private s_requests;

    /// @param registry The consortium registry (departments and roles).
    /// @param grants The grants contract (requests name its grants).
    constructor(IConsortiumRegistry registry, IAccessGrants grants) EIP712("govshare", "1") {
        i_registry = registry;
        i_grants = grants;
        i_operatorRole = registry.OPERATOR_ROLE();
        i_oracleRole = registry.ORACLE_ROLE();
    }

    /// @inheritdoc IQueryRequests
    function requestQuery(uint64 grantId, uint256 fields, bytes calldata encryptedParams, bytes calldata requesterPublicKey)
        external
        returns (uint256 requestId)
    {
        uint32 requesterDept = i_registry.departmentWithRole(i_operatorRole, msg.sender);
        if (requesterDept == 0) revert QueryRequestsNotOperator(msg.sender);
        if (grantId == 0 || grantId > i_grants.grantCount()) revert QueryRequestsUnknownGrant(grantId);
        if (requesterPublicKey.length != PUBLIC_KEY_LENGTH) {
            revert QueryRequestsInvalidPublicKeyLength(requesterPublicKey.length);
        }
        address keyAddress = address(uint160(uint256(keccak256(requesterPublicKey))));
        if (keyAddress != msg.sender) revert QueryRequestsPublicKeyMismatch(msg.sender, keyAddress);
        if (encryptedParams.length == 0 || encryptedParams.length > MAX_PARAMS_LENGTH) {
            revert QueryRequestsInvalidParamsLength(encryptedParams.length, MAX_PARAMS_LENGTH);
        }
        IAccessGrants.Grant memory g = i_grants.grant(grantId);

        requestId = ++s_requestCount;
        QueryRequest storage r = s_requests[requestId];
        r.requester = msg.sender;
        r.requesterDept = requesterDept;
        r.providerDept = g.ownerDept;
        r.grantId = grantId;
        r.datasetId = g.datasetId;
        r.requestedAt = uint64(block.timestamp);
        r.status = QueryStatus.Pending;
        r.commitment = keccak256(encryptedParams);
        emit QueryRequested(
            requestId, g.ownerDept, msg.sender, grantId, g.datasetId, fields, encryptedParams, requesterPublicKey
        );
    }

    /// @inheritdoc IQueryRequests
    function fulfilQuery(uint256 requestId, uint256 recordId, uint8 outcome, bytes32 responseHash) external {
        QueryRequest storage r = _request(requestId);
        uint32 providerDept = r.providerDept;
        if (i_registry.departmentWithRole(i_oracleRole, msg.sender) != providerDept) {
            revert QueryRequestsNotProviderOracle(requestId, msg.sender, providerDept);
        }
        if (r.status != QueryStatus.Pending) revert QueryRequestsInvalidStatus(requestId, r.status);
        if (outcome > MAX_OUTCOME) revert QueryRequestsInvalidOutcome(requestId, outcome);
        if (recordId >> 64 != uint160(msg.sender)) revert QueryRequestsForeignRecord(requestId, recordId);
        r.status = QueryStatus.Fulfilled;
        emit QueryFulfilled(requestId, recordId, outcome, responseHash);
    }

    /// @inheritdoc IQueryRequests
    function request(uint256 requestId) external view returns (QueryRequest memory) {
        return _request(requestId);
    }

    /// @inheritdoc IQueryRequests
    function requestCount() external view returns (uint256) {
        return s_requestCount;
    }

    /// @inheritdoc IQueryRequests
    function hashQuery(Query calldata query) external view returns (bytes32) {
        return _hashQuery(query);
    }

    /// @inheritdoc IQueryRequests
    function recoverQuerySigner(Query calldata query, bytes calldata signature) external view returns (address) {
        return ECDSA.recover(_hashQuery(query), signature);
    }

    /// @inheritdoc IQueryRequests
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _hashQuery(Query calldata q) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    QUERY_TYPEHASH,
                    q.requester,
                    q.requesterDept,
                    q.datasetId,
                    q.grantId,
                    q.fields,
                    q.paramsHash,
                    q.nonce,
                    q.deadline
                )
            )
        );
    }

    function _request(uint256 requestId) private view returns (QueryRequest storage r) {
        r = s_requests[requestId];
        if (r.status == QueryStatus.None) revert QueryRequestsUnknownRequest(requestId);
    }
}
