// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

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

    /// @notice The owner department of `datasetId` (0 if it does not exist).
    function ownerOf(uint64 datasetId) external view returns (uint32);

    /// @notice The dataset (reverts {DataCatalogUnknownDataset} if it does not exist).
    function dataset(uint64 datasetId) external view returns (Dataset memory);

    /// @notice A published version (1-based; reverts {DataCatalogUnknownVersion}).
    function datasetVersion(uint64 datasetId, uint32 version) external view returns (DatasetVersion memory);
}
