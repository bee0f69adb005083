// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";

/// @title IDataCatalog
/// @notice What data exists, who owns it, how it is classified, and the commitments of each version.
/// @dev Field names are emitted in {DatasetRegistered} and committed by `schemaHash`
/// (= keccak256(abi.encode(string[] fields))); only the commitment and the field count are stored.
interface IDataCatalog {
    enum Classification {
        Public,
        Internal,
        Sensitive,
        Secret
    }

    enum UpdateFrequency {
        Irregular,
        Realtime,
        Daily,
        Weekly,
        Monthly,
        Quarterly,
        Yearly
    }

    struct Dataset {
        uint64 id;
        uint32 ownerDept;
        uint16 fieldCount;
        Classification classification;
        UpdateFrequency updateFrequency;
        bool retired;
        uint32 versionCount;
        uint64 registeredAt;
        bytes32 schemaHash;
        string name;
    }

    /// @notice A published version: commitments to the data, never the data.
    struct DatasetVersion {
        bytes32 contentHash;
        bytes32 merkleRoot;
        uint64 recordCount;
        uint64 publishedAt;
        uint64 publishedBlock;
    }

    event DatasetRegistered(
        uint64 indexed datasetId,
        uint32 indexed ownerDept,
        string name,
        string[] fields,
        bytes32 schemaHash,
        Classification classification,
        UpdateFrequency updateFrequency
    );
    event DatasetVersionPublished(
        uint64 indexed datasetId,
        uint32 indexed version,
        bytes32 contentHash,
        bytes32 merkleRoot,
        uint64 recordCount
    );
    event DatasetRetired(uint64 indexed datasetId);

    error DataCatalogNotOperator(address caller);
    error DataCatalogNotOwner(uint64 datasetId, address caller, uint32 ownerDept);
    error DataCatalogUnknownDataset(uint64 datasetId);
    error DataCatalogDatasetRetired(uint64 datasetId);
    error DataCatalogInvalidName();
    error DataCatalogInvalidFieldCount(uint256 count, uint256 max);
    error DataCatalogEmptyFieldName(uint256 index);
    error DataCatalogDuplicateField(uint256 first, uint256 second);
    error DataCatalogInvalidVersion(bytes32 contentHash, bytes32 merkleRoot, uint64 recordCount);
    error DataCatalogUnknownVersion(uint64 datasetId, uint32 version);

    /// @notice Most fields in a schema: a grant's field set is a uint256 bitmask.
    /// @return The limit.
    function MAX_FIELDS() external view returns (uint256);

    /// @notice Longest dataset name, in bytes.
    /// @return The limit, in bytes.
    function MAX_NAME_LENGTH() external view returns (uint256);

    /// @notice The registry whose departments and roles this catalog checks.
    /// @return The registry's address.
    function i_registry() external view returns (IConsortiumRegistry);

    /// @notice Registers a dataset owned by the caller's department.
    /// Requirements: the caller is an operator of an active department; 1..200-byte name;
    /// 1..256 distinct, non-empty field names. Emits {DatasetRegistered}.
    /// @param name The dataset's name.
    /// @param fields The schema's field names, in order (field i is bit i of a grant's field set).
    /// @param classification How sensitive the data is (Secret: grants need an auditor's co-approval).
    /// @param updateFrequency How often the owner publishes a new version.
    /// @return datasetId The new dataset's id (ids run from 1).
    function registerDataset(
        string calldata name,
        string[] calldata fields,
        Classification classification,
        UpdateFrequency updateFrequency
    ) external returns (uint64 datasetId);

    /// @notice Publishes a new version of a dataset: the commitments to its content.
    /// Requirements: the caller is an operator of the owner department; the dataset is not retired;
    /// a non-zero content hash; a non-zero Merkle root exactly when `recordCount` > 0.
    /// Emits {DatasetVersionPublished}.
    /// @param datasetId The dataset.
    /// @param contentHash The hash of the version's content.
    /// @param merkleRoot The root of the Merkle tree over the version's record hashes (see `verifyRecord`).
    /// @param recordCount How many records the version has.
    /// @return version The new version's number (versions run from 1).
    function publishVersion(uint64 datasetId, bytes32 contentHash, bytes32 merkleRoot, uint64 recordCount)
        external
        returns (uint32 version);

    /// @notice Retires a dataset: no new versions, no new grants, and no access through existing ones.
    /// Requirements: the caller is an operator of the owner department; not already retired.
    /// Emits {DatasetRetired}.
    /// @param datasetId The dataset.
    function retireDataset(uint64 datasetId) external;

    /// @notice The owner department of `datasetId` (0 if it does not exist).
    /// @param datasetId The dataset.
    /// @return The owner department's id, or 0.
    function ownerOf(uint64 datasetId) external view returns (uint32);

    /// @notice The dataset (reverts {DataCatalogUnknownDataset} if it does not exist).
    /// @param datasetId The dataset.
    /// @return The dataset as stored.
    function dataset(uint64 datasetId) external view returns (Dataset memory);

    /// @notice A published version (1-based; reverts {DataCatalogUnknownVersion}).
    /// @param datasetId The dataset (reverts {DataCatalogUnknownDataset} if it does not exist).
    /// @param version The version number.
    /// @return The version's commitments.
    function datasetVersion(uint64 datasetId, uint32 version) external view returns (DatasetVersion memory);

    /// @notice The latest published version number (0 if none yet).
    /// @param datasetId The dataset (reverts {DataCatalogUnknownDataset} if it does not exist).
    /// @return The latest version number, or 0.
    function latestVersion(uint64 datasetId) external view returns (uint32);

    /// @notice How many datasets were ever registered (ids run from 1).
    /// @return The number of datasets, retired ones included.
    function datasetCount() external view returns (uint64);

    /// @notice Whether the record with hash `recordHash` is part of `version` of `datasetId`.
    /// @param datasetId The dataset (reverts {DataCatalogUnknownDataset} if it does not exist).
    /// @param version The version (reverts {DataCatalogUnknownVersion} if it is not published).
    /// @param recordHash keccak256 of the record's canonical JSON (the leaf is its hash once more).
    /// @param proof Sibling hashes from the leaf to the root.
    /// @return True if `proof` proves the record part of the version's Merkle root.
    function verifyRecord(uint64 datasetId, uint32 version, bytes32 recordHash, bytes32[] calldata proof)
        external
        view
        returns (bool);
}
