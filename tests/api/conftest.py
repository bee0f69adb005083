"""API fixtures: the real app (``api.app.create_app``) served over real HTTP by uvicorn in a thread,
on the session's ganache with the four member departments, called with httpx.

``serve_api(callers, held=..., **settings)`` starts one service: each caller gets a fresh random
bearer token bound to its account (test tokens, made per test), and the service acts with the keys
in ``held`` (default: the callers'). Keys are ganache's public dev keys: test keys, not secrets.
A department's service holds its own department's keys; some refusal tests give one service the
keys of several departments to ask it many things at once.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import sign_request
from api.settings import ApiSettings, TokenBinding, token_sha256
from devtools.devnet import free_port
from devtools.sample_data import COMPANY_FIELDS, companies
from ledger.deployment import Consortium
from ledger.keys import Signer
from serving import ServerThread

PROBLEM = "application/problem+json"
PROBLEM_PREFIX = "urn:govshare:problem:"


@dataclass
class RunningApi:
    """One running API service and a client for it."""

    server: ServerThread
    tokens: dict[str, str]  # account -> its bearer token (random, this test only)
    http: httpx.Client = field(repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    def request(self, who: Signer | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``method path`` with ``who``'s bearer token (no credentials when ``who`` is None)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who.address]}"
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, who: Signer | None, path: str, **kwargs: Any) -> httpx.Response:
        return self.request(who, "GET", path, **kwargs)

    def post(self, who: Signer | None, path: str, **kwargs: Any) -> httpx.Response:
        return self.request(who, "POST", path, **kwargs)

    def signed(self, signer: Signer, method: str, target: str, body: bytes = b"", *, timestamp: int | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
        """A signed request: ``target`` is the path and query exactly as sent."""
        signed = sign_request(signer, method, target, body, timestamp=timestamp)
        return self.http.request(method, target, content=body, headers={**signed, **(headers or {})})

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


StartApi = Callable[..., RunningApi]


@pytest.fixture
def serve_api(consortium: Consortium) -> Iterator[StartApi]:
    """Start API services for this test (stopped at its end)."""
    running: list[RunningApi] = []

    def start(callers: Iterable[Signer], *, held: Iterable[Signer] | None = None,
              connect: Consortium | None = consortium, **settings: Any) -> RunningApi:
        callers = list(callers)
        tokens = {c.address: secrets.token_urlsafe(32) for c in callers}
        bindings = [TokenBinding(sha256=token_sha256(t), account=a, label=f"test {a[:8]}") for a, t in tokens.items()]
        config = ApiSettings(rpc_url=settings.pop("rpc_url", consortium.chain.url), tokens=tuple(bindings), **settings)
        app = create_app(config, consortium=connect, signers=callers if held is None else list(held))
        server = ServerThread(app, free_port()).start()
        api = RunningApi(server, tokens, httpx.Client(base_url=server.url, timeout=60, trust_env=False))
        running.append(api)
        return api

    yield start
    for api in running:
        api.stop()


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and type); returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM, response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_PREFIX) and body["title"] and body["detail"], body
    assert body["instance"] == response.request.url.path
    if slug is not None:
        assert body["type"] == PROBLEM_PREFIX + slug, body
    return body


def company_rows(count: int = 40) -> list[dict[str, str]]:
    """The first records of the sample company registry (the same ones its API serves)."""
    return companies()[:count]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] = COMPANY_FIELDS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return path


def register_companies(api: RunningApi, operator: Signer, *, level: str = "internal", name: str = "企业登记信息 company registry") -> dict[str, Any]:
    """Register the company registry's schema through the API (201) and return the dataset."""
    reply = api.post(operator, "/v1/datasets", json={"name": name, "fields": list(COMPANY_FIELDS), "level": level,
                                                     "frequency": "daily"})
    assert reply.status_code == 201, reply.text
    return reply.json()
