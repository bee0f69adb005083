"""The relay to department APIs (oracle.relay), against real HTTP servers: the sample registries and a
purpose-built API that misbehaves for real. Every test runs through both of the relay's clients: the
blocking one (``fetch``, used by the on-chain request follower) and the asyncio one (``fetch_async``,
used by the oracle's HTTP path), the latter on asyncio's own event loop and on uvloop (the loop the
oracle's server runs)."""

from __future__ import annotations

import asyncio
import socketserver
import ssl
import statistics
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Iterator

import pytest
import uvloop
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse

from devtools.devnet import free_port
from devtools.sample_apis import company_registry_app
from devtools.sample_data import companies, residents
from oracle.config import DatasetConfig
from oracle.errors import MalformedRequest, SourceBadResponse, SourceTimeout, SourceUnavailable
from oracle.relay import DepartmentApi
from serving import ServerThread
from tests.support.certificates import IssuedCertificate, TestAuthority
from tests.support.loop import LoopThread

LIMIT = 64 * 1024
HUGE_BODY = b'{"records": ["' + b"x" * (LIMIT * 2) + b'"]}'
SECRET = "440103195306086513"  # a parameter value: must never appear in an error


def misbehaving_app() -> FastAPI:
    """One endpoint per way a department API can fail."""
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.get("/echo")
    def echo(request: Request) -> dict[str, Any]:
        return {"records": [{**request.query_params, "_port": request.client.port if request.client else 0}]}

    @app.get("/slow")
    async def slow() -> dict[str, Any]:
        await asyncio.sleep(1.5)
        return {"records": []}

    @app.get("/drip")
    def drip() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"records": ['
            for _ in range(8):
                await asyncio.sleep(0.15)
                yield b" "
            yield b"]}"

        return StreamingResponse(body(), media_type="application/json")

    @app.get("/error")
    def error() -> Response:
        return PlainTextResponse("internal error", status_code=500)

    @app.get("/not-found")
    def not_found() -> Response:
        return JSONResponse({"detail": "no"}, status_code=404)

    @app.get("/redirect")
    def redirect() -> Response:
        return RedirectResponse("/echo", status_code=302)

    @app.get("/text")
    def text() -> Response:
        return PlainTextResponse("<html>hello</html>")

    @app.get("/nan")
    def nan() -> Response:
        return Response(b'{"records": [{"a": NaN}]}', media_type="application/json")

    @app.get("/huge")
    def huge() -> Response:  # Content-Length says it all
        return Response(HUGE_BODY, media_type="application/json")

    @app.get("/huge-stream")
    def huge_stream() -> StreamingResponse:  # chunked: no Content-Length; 16 times the limit
        async def body() -> AsyncIterator[bytes]:
            yield b'{"records": ["'
            for _ in range(128):
                yield b"x" * 8192
            yield b'"]}'

        return StreamingResponse(body(), media_type="application/json")

    @app.get("/records-x")
    def records_x() -> dict[str, Any]:
        return {"records": "x"}

    @app.get("/records-missing")
    def records_missing() -> dict[str, Any]:
        return {"rows": []}

    @app.get("/top-level-list")
    def top_level_list() -> list[Any]:
        return [{"a": 1}]

    @app.get("/records-not-objects")
    def records_not_objects() -> dict[str, Any]:
        return {"records": [{"a": 1}, 2]}

    @app.get("/gzip")
    def gzipped() -> Response:
        import gzip

        return Response(gzip.compress(b'{"records": []}'), media_type="application/json", headers={"Content-Encoding": "gzip"})

    @app.get("/many")
    def many() -> dict[str, Any]:
        return {"records": [{"n": i} for i in range(250)]}

    return app


@pytest.fixture(scope="module")
def bad_api() -> Iterator[str]:
    server = ServerThread(misbehaving_app(), free_port()).start()
    yield server.url
    server.stop()


#: The client under test: None for the blocking one, else the loop the asyncio one runs on.
Loop = LoopThread | None


@pytest.fixture(scope="module", params=["blocking", "asyncio", "uvloop"])
def client(request: pytest.FixtureRequest) -> Iterator[Loop]:
    """Which client the tests drive: None for the blocking one, else the event loop (running in a
    thread of its own) that the asyncio client runs on."""
    if request.param == "blocking":
        yield None
        return
    loop = LoopThread(uvloop.new_event_loop() if request.param == "uvloop" else asyncio.new_event_loop())
    yield loop
    loop.stop()


class Relay:
    """A :class:`DepartmentApi` fetched through the client under test."""

    def __init__(self, config: DatasetConfig, loop: Loop) -> None:
        self.api = DepartmentApi(config)
        self.loop = loop

    def fetch(self, params: dict[str, str]) -> list[dict]:
        if self.loop is None:
            return self.api.fetch(params)
        return self.loop.run(self.api.fetch_async(params))

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()


def dataset(base_url: str, path: str, params: tuple[str, ...] = ("q",), **overrides: Any) -> DatasetConfig:
    config = DatasetConfig(
        id=9, base_url=base_url, path=path, params=params, timeout_seconds=0.5, max_response_bytes=LIMIT, max_records=100
    )
    return replace(config, **overrides)


def fetch_error(client: Loop, config: DatasetConfig, params: dict[str, str] | None = None) -> Exception:
    """The error the client raises, checked to hide the parameter value everywhere."""
    with Relay(config, client) as api:
        with pytest.raises((SourceUnavailable, MalformedRequest)) as caught:
            api.fetch(params if params is not None else {"q": SECRET})
    error = caught.value
    assert SECRET not in str(error)
    assert SECRET not in "".join(traceback.format_exception(error))
    return error


# ---- the sample registries ---------------------------------------------------------------------


def test_company_lookup_and_filters(client: Loop, company_api: str) -> None:
    target = companies()[1234]
    config = dataset(company_api.url, "/companies", ("company_id", "status"), fixed_params={"limit": "100"})
    with Relay(config, client) as api:
        assert api.fetch({"company_id": target["company_id"]}) == [target]
        revoked = api.fetch({"status": "吊销"})
        assert len(revoked) == 100 and all(r["status"] == "吊销" for r in revoked)  # the fixed limit was sent
        assert api.fetch({"company_id": "nobody"}) == []


def test_resident_lookup(client: Loop, resident_api: str) -> None:
    person = residents()[0]
    with Relay(dataset(resident_api.url, "/residents", ("id_number",)), client) as api:
        assert api.fetch({"id_number": person["id_number"]}) == [person]


def test_sample_api_400_is_source_unavailable(client: Loop, company_api: str) -> None:
    config = dataset(company_api.url, "/companies", ("company_id",), fixed_params={"limit": "x"})
    error = fetch_error(client, config, {"company_id": SECRET})
    assert type(error) is SourceUnavailable and "HTTP 400" in str(error) and "dataset 9" in str(error)
    assert f"{company_api.url}/companies" in str(error)


def test_median_latency_of_sequential_fetches(client: Loop, company_api: str) -> None:
    target = companies()[42]
    with Relay(dataset(company_api.url, "/companies", ("company_id",)), client) as api:
        api.fetch({"company_id": target["company_id"]})
        times = []
        for _ in range(200):
            start = time.perf_counter()
            api.fetch({"company_id": target["company_id"]})
            times.append(time.perf_counter() - start)
    median_ms = statistics.median(times) * 1e3
    print(f"relay: median {median_ms:.2f} ms over 200 sequential fetches (p95 {sorted(times)[189] * 1e3:.2f} ms)")
    assert median_ms < 100


# ---- forwarding and the pool -------------------------------------------------------------------


def test_params_forwarded_with_fixed_params_and_connection_reused(client: Loop, bad_api: str) -> None:
    config = dataset(bad_api, "/echo", ("q", "r"), fixed_params={"limit": "7"})
    with Relay(config, client) as api:
        first = api.fetch({"q": "王 & =?", "r": ""})
        second = api.fetch({"q": "b"})
    assert {k: v for k, v in first[0].items() if k != "_port"} == {"q": "王 & =?", "r": "", "limit": "7"}
    assert second[0]["q"] == "b"
    assert first[0]["_port"] == second[0]["_port"]  # the same keep-alive connection


def test_unknown_parameter_is_malformed_and_nothing_is_sent(client: Loop, bad_api: str) -> None:
    error = fetch_error(client, dataset(bad_api, "/echo", ("q",)), {"q": "a", "salary": SECRET, "limit": "1"})
    assert isinstance(error, MalformedRequest) and "limit, salary" in str(error)
    error = fetch_error(client, dataset(bad_api, "/echo", ("q",)), {"q": 5})  # type: ignore[dict-item]
    assert isinstance(error, MalformedRequest) and "must be a string" in str(error)


def test_many_records_are_truncated(client: Loop, bad_api: str) -> None:
    with Relay(dataset(bad_api, "/many", max_records=30), client) as api:
        assert api.fetch({}) == [{"n": i} for i in range(30)]
    with Relay(dataset(bad_api, "/many", max_records=250), client) as api:
        assert len(api.fetch({})) == 250


# ---- failures ------------------------------------------------------------------------------------


def test_slow_answer_is_a_timeout(client: Loop, bad_api: str) -> None:
    start = time.monotonic()
    error = fetch_error(client, dataset(bad_api, "/slow", timeout_seconds=0.3))
    assert type(error) is SourceTimeout and "0.3 s" in str(error)
    assert time.monotonic() - start < 1.2


def test_dripping_answer_is_a_timeout(client: Loop, bad_api: str) -> None:
    """Every byte arrives within the read timeout, but the whole answer does not within the deadline."""
    error = fetch_error(client, dataset(bad_api, "/drip", timeout_seconds=0.5))
    assert type(error) is SourceTimeout
    with Relay(dataset(bad_api, "/drip", timeout_seconds=3.0), client) as api:
        assert api.fetch({}) == []


def test_nothing_listening_is_unavailable(client: Loop) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error = fetch_error(client, dataset(url, "/companies"))
    assert type(error) is SourceUnavailable and f"{url}/companies" in str(error) and "ConnectionRefusedError" in str(error)


def test_unknown_host_is_unavailable(client: Loop) -> None:
    error = fetch_error(client, dataset("http://no-such-department.invalid", "/x", timeout_seconds=5.0))
    assert type(error) is SourceUnavailable


class _HangUp(socketserver.BaseRequestHandler):
    """Reads the request, then closes the connection without answering."""

    def handle(self) -> None:
        self.request.recv(65536)


def test_dropped_connection_is_unavailable(client: Loop) -> None:
    with socketserver.TCPServer(("127.0.0.1", 0), _HangUp) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            error = fetch_error(client, dataset(f"http://127.0.0.1:{server.server_address[1]}", "/x"))
        finally:
            server.shutdown()
    assert type(error) is SourceUnavailable and "ProtocolError" in str(error)


@pytest.mark.parametrize(("path", "status"), [("/error", 500), ("/not-found", 404)])
def test_error_status_is_unavailable(client: Loop, bad_api: str, path: str, status: int) -> None:
    error = fetch_error(client, dataset(bad_api, path))
    assert type(error) is SourceUnavailable and f"HTTP {status}" in str(error)
    assert error.http_status == 502


def test_redirect_is_not_followed(client: Loop, bad_api: str) -> None:
    error = fetch_error(client, dataset(bad_api, "/redirect"))
    assert type(error) is SourceBadResponse and "HTTP 302" in str(error)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/huge", f"answered {len(HUGE_BODY)} bytes, more than the limit of {LIMIT}"),  # refused on Content-Length
        ("/huge-stream", f"answered more than the limit of {LIMIT} bytes"),  # counted while streaming
    ],
)
def test_body_over_the_limit(client: Loop, bad_api: str, path: str, expected: str) -> None:
    start = time.monotonic()
    error = fetch_error(client, dataset(bad_api, path, timeout_seconds=5.0))
    assert type(error) is SourceBadResponse and expected in str(error)
    assert time.monotonic() - start < 2  # stopped at the limit, not after reading an endless body


def test_huge_body_within_a_larger_limit_is_read(client: Loop, bad_api: str) -> None:
    """With a larger limit the same body is read whole and judged on its content (a string record)."""
    error = fetch_error(client, dataset(bad_api, "/huge", max_response_bytes=4 * LIMIT))
    assert type(error) is SourceBadResponse and "record 0 that is not an object" in str(error)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/text", "not JSON"),
        ("/nan", "not JSON"),
        ("/records-x", '"records" list'),
        ("/records-missing", '"records" list'),
        ("/top-level-list", '"records" list'),
        ("/records-not-objects", "record 1 that is not an object"),
    ],
)
def test_bad_bodies(client: Loop, bad_api: str, path: str, expected: str) -> None:
    error = fetch_error(client, dataset(bad_api, path))
    assert type(error) is SourceBadResponse and expected in str(error)
    assert error.http_status == 502


class _OneAnswerThenClose(socketserver.BaseRequestHandler):
    """Answers one request on a connection, announcing keep-alive, then closes it (as a server whose
    idle timeout expired would): the relay's pooled connection is stale on the next request."""

    def handle(self) -> None:
        self.request.recv(65536)
        body = b'{"records": [{"q": "ok"}]}'
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.05)


def test_a_stale_kept_alive_connection_is_replaced_once(client: Loop) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _OneAnswerThenClose) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            with Relay(dataset(f"http://127.0.0.1:{server.server_address[1]}", "/x"), client) as api:
                first = api.fetch({"q": "a"})
                time.sleep(0.2)  # the server has closed the pooled connection by now
                second = api.fetch({"q": "b"})
        finally:
            server.shutdown()
    assert first == second == [{"q": "ok"}]


def test_an_encoded_body_is_refused(client: Loop, bad_api: str) -> None:
    error = fetch_error(client, dataset(bad_api, "/gzip"))
    assert type(error) is SourceBadResponse and "encoded" in str(error)


# ---- an https source: its own CA, and a client certificate it requires (mutual TLS) ---------------


@dataclass(frozen=True)
class TlsSource:
    url: str  # https, the sample company registry
    department_ca: TestAuthority  # issued the source's certificate
    oracle_cert: IssuedCertificate  # issued by the CA the source trusts for clients
    stranger_ca: TestAuthority  # trusted by nobody here


@pytest.fixture(scope="module")
def tls_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSource]:
    directory = tmp_path_factory.mktemp("tls")
    department_ca, oracle_ca, stranger_ca = (TestAuthority(directory, n) for n in ("department", "oracle", "stranger"))
    server_cert = department_ca.issue("company-registry", server=True)
    tls = {"ssl_certfile": str(server_cert.cert_file), "ssl_keyfile": str(server_cert.key_file),
           "ssl_ca_certs": str(oracle_ca.ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    server = ServerThread(company_registry_app(), free_port(), tls=tls).start()
    yield TlsSource(server.url, department_ca, oracle_ca.issue("samr-oracle", server=False), stranger_ca)
    server.stop()


def tls_dataset(source: TlsSource, **files: Any) -> DatasetConfig:
    return dataset(source.url, "/companies", ("company_id",), timeout_seconds=2.0, **files)


def test_an_https_source_is_reached_with_its_ca_and_the_oracles_certificate(client: Loop, tls_source: TlsSource) -> None:
    target = companies()[77]
    config = tls_dataset(tls_source, ca_file=tls_source.department_ca.ca_file,
                         client_cert_file=tls_source.oracle_cert.cert_file, client_key_file=tls_source.oracle_cert.key_file)
    with Relay(config, client) as api:
        assert tls_source.url.startswith("https://")
        assert api.fetch({"company_id": target["company_id"]}) == [target]
        assert api.fetch({"company_id": target["company_id"]}) == [target]  # again, on the kept-alive connection


def test_an_https_source_whose_ca_is_not_trusted_is_refused(client: Loop, tls_source: TlsSource) -> None:
    """Without its CA (the system's trust), or with a CA that did not issue its certificate: no data,
    a clear error, whatever client certificate the oracle has."""
    cert = {"client_cert_file": tls_source.oracle_cert.cert_file, "client_key_file": tls_source.oracle_cert.key_file}
    for ca in (None, tls_source.stranger_ca.ca_file):
        error = fetch_error(client, tls_dataset(tls_source, ca_file=ca, **cert), {"company_id": SECRET})
        assert type(error) is SourceUnavailable and "CERTIFICATE_VERIFY_FAILED" in str(error), error


def test_an_https_source_that_requires_a_client_certificate_refuses_an_oracle_without_the_right_one(
    client: Loop, tls_source: TlsSource
) -> None:
    """No certificate, or one from a CA the source does not trust for clients: the source ends the
    handshake, and the relay reports the source unavailable (nothing is read as an answer)."""
    stranger = tls_source.stranger_ca.issue("impostor", server=False)
    for cert in ({}, {"client_cert_file": stranger.cert_file, "client_key_file": stranger.key_file}):
        error = fetch_error(client, tls_dataset(tls_source, ca_file=tls_source.department_ca.ca_file, **cert),
                            {"company_id": SECRET})
        assert type(error) is SourceUnavailable, error
