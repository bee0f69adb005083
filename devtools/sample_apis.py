"""Sample department systems: real FastAPI services standing in for a department's own HTTP API.

* market supervision's company registry: ``GET /companies?company_id=…`` (any field as a filter)
* public security's resident registry: ``GET /residents?id_number=…``

Each answers ``{"records": [...]}`` (exact-match filters on the dataset's fields, at most ``limit``
records) and ``GET /health``. Records are generated with a fixed seed (``devtools.sample_data``).
Run one: ``python -m devtools.sample_apis companies --port 8101``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any, Sequence

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from devtools.sample_data import COMPANY_FIELDS, RESIDENT_FIELDS, companies, residents

MAX_LIMIT = 100


def create_registry_app(title: str, collection: str, fields: Sequence[str], records: list[dict[str, Any]]) -> FastAPI:
    """A read-only registry over ``records`` at ``GET /{collection}``."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None)
    key = fields[0]
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_key[str(record[key])].append(record)

    # ``async def``: the handlers do no I/O, so they run on the event loop instead of hopping to
    # a worker thread and back for every request (which costs CPU and, with the GIL, queues requests).
    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "records": len(records)}

    @app.get(f"/{collection}")
    async def search(request: Request) -> dict[str, Any]:
        params = dict(request.query_params)
        try:
            limit = min(int(params.pop("limit", "10")), MAX_LIMIT)
        except ValueError:
            raise HTTPException(status_code=400, detail="limit must be an integer") from None
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise HTTPException(status_code=400, detail=f"unknown fields: {', '.join(unknown)}")
        candidates = by_key.get(params[key], []) if key in params else records
        found = [r for r in candidates if all(str(r[f]) == v for f, v in params.items())]
        return {"records": found[:limit]}

    return app


def company_registry_app(count: int = 3000) -> FastAPI:
    return create_registry_app("市场监督管理局 company registry", "companies", COMPANY_FIELDS, companies(count))


def resident_registry_app(count: int = 3000) -> FastAPI:
    return create_registry_app("公安局 resident registry", "residents", RESIDENT_FIELDS, residents(count))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="run a sample department API")
    parser.add_argument("registry", choices=["companies", "residents"])
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    app = company_registry_app() if args.registry == "companies" else resident_registry_app()
    # a department's own system, served as such a system would be (uvicorn's defaults), not with
    # govshare's serving: the benchmarks' direct baseline stays what it was in every round
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
