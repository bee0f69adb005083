// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {IAccessGrants} from "./IAccessGrants.sol";
import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";

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
interface IQueryRequests is IERC5267 {
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

    /// @notice The EIP-712 type hash of {Query}.
    /// @return keccak256 of the struct type `Query(...)` given in the interface's @dev.
    function QUERY_TYPEHASH() external view returns (bytes32);

    /// @notice Longest encrypted parameter blob, in bytes.
    /// @return The limit, in bytes.
    function MAX_PARAMS_LENGTH() external view returns (uint256);

    /// @notice Length of an uncompressed secp256k1 public key without its 0x04 prefix.
    /// @return The length, in bytes (64).
    function PUBLIC_KEY_LENGTH() external view returns (uint256);

    /// @notice Highest IAuditLog.Outcome (SourceFailure).
    /// @return The highest outcome value `fulfilQuery` accepts.
    function MAX_OUTCOME() external view returns (uint8);

    /// @notice The registry that says which department an operator or an oracle acts for.
    /// @return The registry's address.
    function i_registry() external view returns (IConsortiumRegistry);

    /// @notice The grants contract whose grants requests name.
    /// @return The grants contract's address.
    function i_grants() external view returns (IAccessGrants);

    /// @notice Posts a query for the oracle of the grant's owner department.
    /// @dev The provider is the grant's owner department. Whether the caller may read the data is
    /// the oracle's decision, not this contract's.
    /// Requirements: the caller is an operator of an active department; the grant exists;
    /// `requesterPublicKey` is the caller's own 64-byte uncompressed public key (its keccak-256
    /// names the caller), so the oracle can encrypt the result to it; `encryptedParams` is
    /// 1..MAX_PARAMS_LENGTH bytes. Emits {QueryRequested}.
    /// @param grantId The grant the query relies on.
    /// @param fields The fields asked for (bit i: field i of the dataset's schema).
    /// @param encryptedParams The query parameters, encrypted to the provider's oracle (only their hash is stored).
    /// @param requesterPublicKey The caller's public key, to which the oracle encrypts the result.
    /// @return requestId The new request's id (ids run from 1).
    function requestQuery(uint64 grantId, uint256 fields, bytes calldata encryptedParams, bytes calldata requesterPublicKey)
        external
        returns (uint256 requestId);

    /// @notice Marks a pending request answered, naming the audit record of the access.
    /// @dev Requirements: the request exists; the caller holds ORACLE_ROLE in the request's provider
    /// department; the request is Pending; `outcome` is an IAuditLog.Outcome (0..MAX_OUTCOME);
    /// `recordId` is one of the caller's own audit records (its top 160 bits are the caller).
    /// Emits {QueryFulfilled}.
    /// @param requestId The request.
    /// @param recordId The audit record of the access (`oracle << 64 | sequence`).
    /// @param outcome The access's outcome, an IAuditLog.Outcome.
    /// @param responseHash The salted canonical hash of the response, emitted in {QueryFulfilled}.
    function fulfilQuery(uint256 requestId, uint256 recordId, uint8 outcome, bytes32 responseHash) external;

    /// @notice A request by id (reverts {QueryRequestsUnknownRequest}).
    /// @param requestId The request.
    /// @return The request as stored.
    function request(uint256 requestId) external view returns (QueryRequest memory);

    /// @notice How many requests were ever posted (ids run from 1).
    /// @return The number of requests.
    function requestCount() external view returns (uint256);

    /// @notice The EIP-712 digest of `query` in this contract's domain (what the requester signs).
    /// @param query The query.
    /// @return The digest.
    function hashQuery(Query calldata query) external view returns (bytes32);

    /// @notice The account whose signature `signature` is over `query` (reverts with OpenZeppelin's
    /// ECDSA errors for a malformed, high-s or unrecoverable signature).
    /// @param query The signed query.
    /// @param signature The 65-byte signature (r, s, v) over the query's EIP-712 digest.
    /// @return The signer.
    function recoverQuerySigner(Query calldata query, bytes calldata signature) external view returns (address);

    /// @notice The EIP-712 domain separator of this contract (name "govshare", version "1").
    /// @return The domain separator.
    function domainSeparator() external view returns (bytes32);
}
