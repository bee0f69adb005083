"""The catalog: search and read datasets, register one, publish a version from a CSV or JSON Lines file.

``GET  /v1/datasets?q=&owner=&level=&retired=``  search (name, field or owner, case-insensitive)
``GET  /v1/datasets/{id}``                        one dataset with its versions
``POST /v1/datasets``                             register (operator of the caller's department)
``POST /v1/datasets/{id}/versions``               publish: multipart ``file`` (format from its suffix or
                                                  a ``format`` field), or JSON ``{"format", "text"}``; the
                                                  service computes content hash and Merkle root
                                                  (``ledger.dataset_file``) and publishes them
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import Caller, CurrentCaller, require_operator
from api.deps import ApiContext, ConsortiumDep, ContextDep
from api.errors import (
    Conflict,
    Forbidden,
    NotFound,
    UnprocessableContent,
    UnsupportedMediaType,
)
from api.schemas import (
    DatasetCreate,
    DatasetPublic,
    DatasetsPublic,
    Level,
    VersionCreate,
    VersionPublic,
    problem_responses,
)
from ledger.contracts.catalog import Dataset, UnknownField
from ledger.dataset_file import (
    FORMATS,
    DataFileError,
    commit_records,
    detect_format,
    parse_records,
)
from ledger.deployment import Consortium

__all__ = ["dataset_or_404", "field_mask", "router"]

router = APIRouter(prefix="/v1/datasets", tags=["catalog"], responses=problem_responses(401, 403, 503))


def dataset_or_404(consortium: Consortium, dataset_id: int) -> Dataset:
    """The dataset, or a 404 problem naming the id."""
    if dataset_id < 1 or dataset_id > consortium.catalog.dataset_count():
        raise NotFound(f"the catalog has no dataset {dataset_id}", slug="unknown-dataset", title="Unknown dataset",
                       dataset_id=dataset_id)
    return consortium.catalog.dataset(dataset_id)


def field_mask(schema: Sequence[str], names: Sequence[str], dataset_id: int) -> int:
    """The bitmask of ``names`` over ``schema`` (422 ``UnknownField`` for a name not in it)."""
    mask = 0
    for name in names:
        try:
            mask |= 1 << schema.index(name)
        except ValueError:
            raise UnknownField(f"dataset {dataset_id} has no field {name!r}; its fields are {', '.join(schema)}") from None
    return mask


@router.get("", response_model=DatasetsPublic, summary="Search datasets")
def search_datasets(
    caller: CurrentCaller,
    consortium: ConsortiumDep,
    q: Annotated[str | None, Query(max_length=200, description="in the name, a field name or the owner's code/name")] = None,
    owner: Annotated[str | None, Query(max_length=32, description="the owner department's code")] = None,
    level: Annotated[Level | None, Query(description="classification")] = None,
    retired: Annotated[bool | None, Query(description="only retired (true) or only live (false) datasets")] = None,
) -> DatasetsPublic:
    """Every dataset of the catalog that matches all the given filters."""
    departments = {d.id: d for d in consortium.registry.departments()}
    needle = q.casefold() if q else None
    found = []
    for dataset_id in range(1, consortium.catalog.dataset_count() + 1):
        dataset = consortium.catalog.dataset(dataset_id)
        dept = departments[dataset.owner_dept]
        if owner and dept.code.casefold() != owner.casefold():
            continue
        if level is not None and dataset.classification != level.classification():
            continue
        if retired is not None and dataset.retired != retired:
            continue
        if needle and not any(needle in text.casefold() for text in (dataset.name, dept.code, dept.name, *dataset.fields)):
            continue
        found.append(DatasetPublic.of(dataset, dept))
    return DatasetsPublic(datasets=found, count=len(found))


@router.get("/{dataset_id}", response_model=DatasetPublic, summary="One dataset with its versions",
            responses=problem_responses(404))
def get_dataset(dataset_id: int, caller: CurrentCaller, consortium: ConsortiumDep) -> DatasetPublic:
    """The dataset, its owner and every published version (content hash, Merkle root, record count)."""
    dataset = dataset_or_404(consortium, dataset_id)
    versions = [consortium.catalog.version(dataset_id, v) for v in range(1, dataset.version_count + 1)]
    return DatasetPublic.of(dataset, consortium.registry.department(dataset.owner_dept), versions)


@router.post("", response_model=DatasetPublic, status_code=201, summary="Register a dataset",
             responses=problem_responses(409, 422))
def register_dataset(body: DatasetCreate, caller: CurrentCaller, consortium: ConsortiumDep, response: Response) -> DatasetPublic:
    """Register a dataset owned by the caller's department (the caller must be one of its operators)."""
    signer = caller.acting_signer("register a dataset")
    require_operator(consortium, caller, "register a dataset")
    seen: dict[str, int] = {}
    for index, name in enumerate(body.fields):
        if name in seen:
            raise UnprocessableContent(f"field {name!r} appears twice (positions {seen[name]} and {index})",
                                       slug="duplicate-field", title="Duplicate field")
        seen[name] = index
    dataset_id = consortium.catalog.register(signer, body.name, body.fields, body.level.classification(),
                                             body.frequency.update_frequency())
    response.headers["Location"] = f"/v1/datasets/{dataset_id}"
    return DatasetPublic.of(consortium.catalog.dataset(dataset_id), caller.department, [])


_VERSION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary", "description": "a .csv or .jsonl file"},
                               "format": {"type": "string", "enum": list(FORMATS),
                                          "description": "default: from the file name's suffix"}}}},
            "application/json": {"schema": VersionCreate.model_json_schema()},
        },
    }
}


@router.post("/{dataset_id}/versions", response_model=VersionPublic, status_code=201, openapi_extra=_VERSION_BODY,
             summary="Publish a version from a CSV or JSON Lines file", responses=problem_responses(400, 404, 409, 413, 415, 422))
async def publish_version(dataset_id: int, request: Request, caller: CurrentCaller, context: ContextDep,
                          response: Response) -> VersionPublic:
    """Read the records (every record must carry exactly the dataset's fields), compute their content
    hash and Merkle root, and publish them as the dataset's next version. A bad file is a 422 naming
    the line."""
    data, fmt = await _version_body(request)
    version = await run_in_threadpool(_publish, context, caller, dataset_id, data, fmt)
    response.headers["Location"] = f"/v1/datasets/{dataset_id}"
    return version


async def _version_body(request: Request) -> tuple[str | bytes, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            body = VersionCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_input=False)) from None
        return body.text, body.format
    if media_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise UnprocessableContent("send the data file in a form field named 'file'", slug="invalid-data-file",
                                           title="Invalid data file")
            declared = form.get("format")
            if declared is not None and declared not in FORMATS:
                raise UnprocessableContent(f"format must be one of {', '.join(FORMATS)}", slug="invalid-data-file",
                                           title="Invalid data file")
            fmt = declared if isinstance(declared, str) else detect_format(PurePath(upload.filename or ""))
            return await upload.read(), fmt
    raise UnsupportedMediaType("send multipart/form-data with a 'file', or application/json {\"format\", \"text\"}")


def _publish(context: ApiContext, caller: Caller, dataset_id: int, data: str | bytes, fmt: str) -> VersionPublic:
    consortium = context.consortium()
    signer = caller.acting_signer("publish a version")
    require_operator(consortium, caller, "publish a version")
    dataset = dataset_or_404(consortium, dataset_id)
    if dataset.owner_dept != caller.department.id:
        owner = consortium.registry.department(dataset.owner_dept)
        raise Forbidden(f"only an operator of {owner.code} (the owner) may publish versions of dataset {dataset_id}; "
                        f"{caller.account} acts for {caller.department.code}", slug="wrong-role", title="Wrong role",
                        account=caller.account)
    if dataset.retired:
        raise Conflict(f"dataset {dataset_id} is retired; no version can be published", slug="dataset-retired",
                       title="Dataset retired")
    text = _decode(data)
    records = parse_records(text, fmt, dataset.fields)
    if not records:
        raise DataFileError("the file holds no records")
    committed = commit_records(records)
    number = consortium.catalog.publish_version(signer, dataset_id, committed.content_hash, committed.merkle_root,
                                                committed.record_count)
    return VersionPublic.of(consortium.catalog.version(dataset_id, number))


def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFileError(f"line {line}: the file is not UTF-8 ({exc.reason} at byte {exc.start})") from None
