// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IQueryRequests
/// @notice The two ways a requester asks a provider's oracle for data under a grant.
/// (1) Off chain: an EIP-712 signed {Query} sent to the oracle over HTTP; this contract only shows
/// how it is hashed and whose signature it carries (`hashQuery`, `recoverQuerySigner`), so clients
/// and oracles can check they agree with the chain.
/// (2) On chain: `requestQuery` posts the parameters encrypted to the provider's oracle; the oracle
/// decides (deny by default, after `AccessGrants.checkAccess`), records the access in the audit log
/// and marks the request fulfilled with the audit record's id. This contract decides no access.
/// @dev EIP-712 domain: name "govshare", version "1", the chain id, this contract's address.
/// Struct type: `Query(address requester,uint32 requesterDept,uint64 datasetId,uint64 grantId,
/// uint256 fields,bytes32 paramsHash,uint256 nonce,uint64 deadline)`.
interface IQueryRequests {
    enum QueryStatus {
        None,
        Pending,
        Fulfilled
    }

    /// @notice A signed off-chain query (EIP-712 struct `Query`).
    struct Query {
        address requester; // the signing account, an operator of `requesterDept`
        uint32 requesterDept;
        uint64 datasetId;
        uint64 grantId;
        uint256 fields; // bit i: field i of the dataset's schema
        bytes32 paramsHash; // salted canonical hash of the query parameters
        uint256 nonce; // unique per requester; the oracle refuses replays
        uint64 deadline; // unix seconds after which the oracle refuses the query
    }

    /// @notice An on-chain request: who asked whom under which grant, and a commitment to the parameters.
    struct QueryRequest {
        address requester;
        uint32 requesterDept;
        uint32 providerDept; // the grant's owner department, whose oracle answers
        uint64 grantId;
        uint64 datasetId;
        uint64 requestedAt; // block time
        QueryStatus status;
        bytes32 commitment; // keccak256(encryptedParams)
    }

    /// @notice Emitted when a requester posts a query for the provider's oracle; the parameters travel
    /// encrypted to that oracle, the result will be encrypted to `requesterPublicKey`.
    event QueryRequested(
        uint256 indexed requestId,
        uint32 indexed providerDept,
        address indexed requester,
        uint64 grantId,
        uint64 datasetId,
        uint256 fields,
        bytes encryptedParams,
        bytes requesterPublicKey
    );
    /// @notice Emitted when the provider's oracle answers a request; `recordId` is the audit record
    /// (`oracle << 64 | sequence`) of the access, `outcome` an IAuditLog.Outcome.
    event QueryFulfilled(uint256 indexed requestId, uint256 indexed recordId, uint8 outcome, bytes32 responseHash);

    error QueryRequestsNotOperator(address caller);
    error QueryRequestsUnknownGrant(uint64 grantId);
    error QueryRequestsInvalidPublicKeyLength(uint256 length);
    error QueryRequestsPublicKeyMismatch(address caller, address keyAddress);
    error QueryRequestsInvalidParamsLength(uint256 length, uint256 max);
    error QueryRequestsUnknownRequest(uint256 requestId);
    error QueryRequestsNotProviderOracle(uint256 requestId, address caller, uint32 providerDept);
    error QueryRequestsInvalidStatus(uint256 requestId, QueryStatus status);
    error QueryRequestsInvalidOutcome(uint256 requestId, uint8 outcome);
    error QueryRequestsForeignRecord(uint256 requestId, uint256 recordId);

    /// @notice Posts a query for the oracle of the grant's owner department.
    function requestQuery(uint64 grantId, uint256 fields, bytes calldata encryptedParams, bytes calldata requesterPublicKey)
        external
        returns (uint256 requestId);

    /// @notice Marks a pending request answered, naming the audit record of the access.
    function fulfilQuery(uint256 requestId, uint256 recordId, uint8 outcome, bytes32 responseHash) external;

    /// @notice A request by id (reverts {QueryRequestsUnknownRequest}).
    function request(uint256 requestId) external view returns (QueryRequest memory);

    /// @notice How many requests were ever posted (ids run from 1).
    function requestCount() external view returns (uint256);

    /// @notice The EIP-712 digest of `query` in this contract's domain (what the requester signs).
    function hashQuery(Query calldata query) external view returns (bytes32);

    /// @notice The account whose signature `signature` is over `query` (reverts with OpenZeppelin's
    /// ECDSA errors for a malformed, high-s or unrecoverable signature).
    function recoverQuerySigner(Query calldata query, bytes calldata signature) external view returns (address);
}
