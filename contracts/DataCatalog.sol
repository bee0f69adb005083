// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";
import {IDataCatalog} from "./interfaces/IDataCatalog.sol";

/// @title DataCatalog
/// @notice Datasets, their owners, schemas, classification and the commitments of every published version.
/// @dev A version's `merkleRoot` is over leaves `keccak256(bytes.concat(recordHash))`, where `recordHash`
/// is the keccak-256 of the record's canonical JSON; inner nodes hash sorted pairs (OpenZeppelin
/// `MerkleProof`), so a single record can be proven part of a published version.
contract DataCatalog is IDataCatalog {
    /// @inheritdoc IDataCatalog
    uint256 public constant MAX_FIELDS = 256;
    /// @inheritdoc IDataCatalog
    uint256 public constant MAX_NAME_LENGTH = 200;

    /// @inheritdoc IDataCatalog
    IConsortiumRegistry public immutable i_registry;
    bytes32 private immutable i_operatorRole;

    uint64 private s_datasetCount;
    mapping(uint64 datasetId => Dataset) private s_datasets;
    mapping(uint64 datasetId => mapping(uint32 version => DatasetVersion)) private s_versions;

    /// @param registry The consortium registry (departments and roles).
    constructor(IConsortiumRegistry registry) {
        i_registry = registry;
        i_operatorRole = registry.OPERATOR_ROLE();
    }

    /// @inheritdoc IDataCatalog
    function registerDataset(
        string calldata name,
        string[] calldata fields,
        Classification classification,
        UpdateFrequency updateFrequency
    ) external returns (uint64 datasetId) {
        uint32 ownerDept = i_registry.departmentWithRole(i_operatorRole, msg.sender);
        if (ownerDept == 0) revert DataCatalogNotOperator(msg.sender);
        if (bytes(name).length == 0 || bytes(name).length > MAX_NAME_LENGTH) revert DataCatalogInvalidName();
        _checkFields(fields);
        bytes32 schemaHash = keccak256(abi.encode(fields));
        datasetId = ++s_datasetCount;
        s_datasets[datasetId] = Dataset({
            id: datasetId,
            ownerDept: ownerDept,
            fieldCount: uint16(fields.length),
            classification: classification,
            updateFrequency: updateFrequency,
            retired: false,
            versionCount: 0,
            registeredAt: uint64(block.timestamp),
            schemaHash: schemaHash,
            name: name
        });
        emit DatasetRegistered(datasetId, ownerDept, name, fields, schemaHash, classification, updateFrequency);
    }

    /// @inheritdoc IDataCatalog
    function publishVersion(uint64 datasetId, bytes32 contentHash, bytes32 merkleRoot, uint64 recordCount)
        external
        returns (uint32 version)
    {
        Dataset storage ds = _ownedLiveDataset(datasetId);
        if (contentHash == bytes32(0) || (merkleRoot == bytes32(0)) != (recordCount == 0)) {
            revert DataCatalogInvalidVersion(contentHash, merkleRoot, recordCount);
        }
        version = ++ds.versionCount;
        s_versions[datasetId][version] = DatasetVersion({
            contentHash: contentHash,
            merkleRoot: merkleRoot,
            recordCount: recordCount,
            publishedAt: uint64(block.timestamp),
            publishedBlock: uint64(block.number)
        });
        emit DatasetVersionPublished(datasetId, version, contentHash, merkleRoot, recordCount);
    }

    /// @inheritdoc IDataCatalog
    function retireDataset(uint64 datasetId) external {
        Dataset storage ds = _ownedLiveDataset(datasetId);
        ds.retired = true;
        emit DatasetRetired(datasetId);
    }

    /// @inheritdoc IDataCatalog
    function ownerOf(uint64 datasetId) external view returns (uint32) {
        return s_datasets[datasetId].ownerDept;
    }

    /// @inheritdoc IDataCatalog
    function dataset(uint64 datasetId) external view returns (Dataset memory) {
        return _dataset(datasetId);
    }

    /// @inheritdoc IDataCatalog
    function datasetVersion(uint64 datasetId, uint32 version) public view returns (DatasetVersion memory) {
        Dataset storage ds = _dataset(datasetId);
        if (version == 0 || version > ds.versionCount) revert DataCatalogUnknownVersion(datasetId, version);
        return s_versions[datasetId][version];
    }

    /// @inheritdoc IDataCatalog
    function latestVersion(uint64 datasetId) external view returns (uint32) {
        return _dataset(datasetId).versionCount;
    }

    /// @inheritdoc IDataCatalog
    function datasetCount() external view returns (uint64) {
        return s_datasetCount;
    }

    /// @inheritdoc IDataCatalog
    function verifyRecord(uint64 datasetId, uint32 version, bytes32 recordHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 root = datasetVersion(datasetId, version).merkleRoot;
        return MerkleProof.verifyCalldata(proof, root, keccak256(bytes.concat(recordHash)));
    }

    function _dataset(uint64 datasetId) private view returns (Dataset storage ds) {
        ds = s_datasets[datasetId];
        if (ds.id == 0) revert DataCatalogUnknownDataset(datasetId);
    }

    function _ownedLiveDataset(uint64 datasetId) private view returns (Dataset storage ds) {
        ds = _dataset(datasetId);
        uint32 callerDept = i_registry.departmentWithRole(i_operatorRole, msg.sender);
        if (callerDept == 0 || callerDept != ds.ownerDept) revert DataCatalogNotOwner(datasetId, msg.sender, ds.ownerDept);
        if (ds.retired) revert DataCatalogDatasetRetired(datasetId);
    }

    function _checkFields(string[] calldata fields) private pure {
        uint256 count = fields.length;
        if (count == 0 || count > MAX_FIELDS) revert DataCatalogInvalidFieldCount(count, MAX_FIELDS);
        bytes32[] memory hashes = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            if (bytes(fields[i]).length == 0) revert DataCatalogEmptyFieldName(i);
            hashes[i] = keccak256(bytes(fields[i]));
            for (uint256 j = 0; j < i; ++j) {
                if (hashes[j] == hashes[i]) revert DataCatalogDuplicateField(j, i);
            }
        }
    }
}
