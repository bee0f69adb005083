"""``govshare dataset register|publish|list|show``: the data catalog.

An operator registers a dataset for its own department (name, ordered field names, classification,
update frequency) and publishes versions of it from a data file: the file's records are read by
``ledger.dataset_file`` (JSON Lines or CSV, every record exactly the dataset's fields) and only their
content hash, Merkle root and count go on chain.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.args import field_list, identifier
from cli.context import (
    EXIT_OK,
    add_connection_options,
    add_output_options,
    add_signer_options,
)

_CLASSIFICATIONS = ("public", "internal", "sensitive", "secret")
_FREQUENCIES = ("irregular", "realtime", "daily", "weekly", "monthly", "quarterly", "yearly")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``dataset ...`` to the ``govshare`` parser."""
    group = commands.add_parser(
        "dataset", help="the data catalog: register, publish a version from a file, list, show",
        description="Datasets of the catalog. The data stays with its department: a version on chain is the content "
                    "hash, Merkle root and record count of a data file.",
    ).add_subparsers(dest="dataset_command", required=True, metavar="ACTION")

    def reader(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help_text, description=description)
        add_connection_options(p)
        add_output_options(p)
        return p

    p = reader("register", "register a dataset of your department (operator)",
               "Register a dataset owned by the acting operator's department.")
    add_signer_options(p)
    p.add_argument("--name", required=True, help="the dataset's name")
    p.add_argument("--fields", required=True, type=field_list, metavar="A,B,...", help="its field names, in order (at most 256)")
    p.add_argument("--classification", required=True, choices=_CLASSIFICATIONS,
                   help="secret datasets need an audit office's co-approval for every grant")
    p.add_argument("--frequency", default="irregular", choices=_FREQUENCIES, help="how often it is updated (default irregular)")
    p.set_defaults(handler=_cmd_register)

    p = reader("publish", "publish a version from a data file (owner's operator)",
               "Read a data file (.jsonl/.ndjson: one JSON object per line; .csv: a header row), check every record "
               "has exactly the dataset's fields, and publish its content hash, Merkle root and record count.")
    add_signer_options(p)
    p.add_argument("dataset", type=identifier, metavar="DATASET", help="dataset id")
    p.add_argument("--file", required=True, metavar="FILE", help="the version's records (JSON Lines or CSV)")
    p.add_argument("--format", choices=("jsonl", "csv"), help="the file's format (default: from its suffix)")
    p.set_defaults(handler=_cmd_publish)

    p = reader("list", "every dataset: owner, classification, versions", "List the datasets of the catalog.")
    p.add_argument("--owner", metavar="DEPT", help="only the datasets of this department (code or id)")
    p.set_defaults(handler=_cmd_list)

    p = reader("show", "one dataset: its fields and the commitments of its versions", "Show a dataset and its versions.")
    p.add_argument("dataset", type=identifier, metavar="DATASET", help="dataset id")
    p.set_defaults(handler=_cmd_show)


def _dataset_json(consortium: Any, dataset: Any, owners: dict[int, str]) -> dict[str, Any]:
    if dataset.owner_dept not in owners:
        owners[dataset.owner_dept] = consortium.registry.department(dataset.owner_dept).code
    return {
        "id": dataset.id, "name": dataset.name, "owner_dept": dataset.owner_dept, "owner": owners[dataset.owner_dept],
        "classification": dataset.classification.name.lower(), "frequency": dataset.update_frequency.name.lower(),
        "fields": list(dataset.fields), "versions": dataset.version_count, "retired": dataset.retired,
        "schema_hash": "0x" + dataset.schema_hash.hex(),
    }


def _cmd_register(args: argparse.Namespace) -> int:
    from cli.context import connect, resolve_signer
    from cli.output import emit
    from cli.preflight import operator_department
    from ledger.contracts.catalog import Classification, UpdateFrequency

    signer = resolve_signer(args)
    consortium = connect(args)
    dept = operator_department(consortium, signer.address)
    dataset_id = consortium.catalog.register(
        signer, args.name, args.fields, Classification[args.classification.upper()], UpdateFrequency[args.frequency.upper()]
    )
    data = _dataset_json(consortium, consortium.catalog.dataset(dataset_id), {})
    emit(args, data, lambda out: out.print(
        f"registered dataset {dataset_id} \"{args.name}\" of {dept.code} ({args.classification}, {len(args.fields)} fields); "
        f"publish a version with: govshare dataset publish {dataset_id} --file FILE"))
    return EXIT_OK


def _cmd_publish(args: argparse.Namespace) -> int:
    from cli.context import connect, resolve_signer
    from cli.output import emit
    from cli.preflight import NotPermitted, find_dataset, require_operator_of
    from ledger.dataset_file import DataFileError, read_dataset_file

    signer = resolve_signer(args)
    consortium = connect(args)
    dataset = find_dataset(consortium, args.dataset)
    require_operator_of(consortium, signer.address, dataset.owner_dept, f"the owner of dataset {dataset.id}")
    if dataset.retired:
        raise NotPermitted(f"dataset {dataset.id} is retired: no new versions")
    try:
        version_file = read_dataset_file(Path(args.file), dataset.fields, fmt=args.format)
    except DataFileError as exc:
        raise DataFileError(f"{args.file}: {exc}") from None
    if version_file.record_count == 0:
        raise DataFileError(f"{args.file}: no records; a version needs at least one")
    version = consortium.catalog.publish_version(
        signer, dataset.id, version_file.content_hash, version_file.merkle_root, version_file.record_count
    )
    on_chain = consortium.catalog.version(dataset.id, version)
    data = {
        "dataset_id": dataset.id, "version": version, "records": on_chain.record_count, "block": on_chain.published_block,
        "content_hash": "0x" + on_chain.content_hash.hex(), "merkle_root": "0x" + on_chain.merkle_root.hex(),
    }
    emit(args, data, lambda out: out.print(
        f"published version {version} of dataset {dataset.id}: {data['records']} records, content hash {data['content_hash']}, "
        f"Merkle root {data['merkle_root']} (block {data['block']})"))
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from cli.context import connect
    from cli.output import emit, table
    from cli.preflight import find_department

    consortium = connect(args)
    owner = find_department(consortium, args.owner).id if args.owner else None
    owners: dict[int, str] = {}
    catalog = consortium.catalog
    datasets = []
    for dataset_id in range(1, catalog.dataset_count() + 1):
        if owner is not None and catalog.owner_of(dataset_id) != owner:
            continue
        datasets.append(_dataset_json(consortium, catalog.dataset(dataset_id), owners))
    emit(args, {"datasets": datasets}, lambda out: out.print(table(
        "datasets", ["id", "name", "owner", "classification", "frequency", "fields", "versions", "state"],
        [[d["id"], d["name"], d["owner"], d["classification"], d["frequency"], len(d["fields"]), d["versions"],
          "retired" if d["retired"] else "active"] for d in datasets])))
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from cli.context import connect
    from cli.output import emit, short_hex, table, utc
    from cli.preflight import find_dataset

    consortium = connect(args)
    dataset = find_dataset(consortium, args.dataset)
    data = _dataset_json(consortium, dataset, {})
    versions = [consortium.catalog.version(dataset.id, v) for v in range(1, dataset.version_count + 1)]
    data["version_list"] = [
        {"version": v.version, "records": v.record_count, "content_hash": "0x" + v.content_hash.hex(),
         "merkle_root": "0x" + v.merkle_root.hex(), "published_at": utc(v.published_at), "block": v.published_block}
        for v in versions
    ]

    def human(out) -> None:
        out.print(f"dataset {dataset.id} \"{dataset.name}\" of {data['owner']}: {data['classification']}, updated "
                  f"{data['frequency']}, {'retired' if dataset.retired else 'active'}")
        out.print(table("fields (bit: name)", ["bit", "field"], list(enumerate(dataset.fields))))
        out.print(table("versions", ["version", "records", "content hash", "merkle root", "published", "block"],
                        [[v.version, v.record_count, short_hex(v.content_hash, 16), short_hex(v.merkle_root, 16),
                          utc(v.published_at), v.published_block] for v in versions]))

    emit(args, data, human)
    return EXIT_OK
