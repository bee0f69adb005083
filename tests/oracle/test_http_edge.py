"""The oracle's HTTP edge as ``govshare oracle serve`` serves it (its app under uvicorn with
govshare's limits, ``serving``), over real sockets: keep-alive, pipelining, limits (head 431, body
413, not HTTP 400, each closing the connection), an ignored upgrade, Expect: 100-continue, HEAD,
problems for every failure, idle and slow clients, graceful shutdown. (Every other oracle test
talks to it too: the fixtures serve the oracle the same way.)"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from fastapi import FastAPI

from devtools.devnet import free_port
from devtools.sample_data import companies
from ledger.contracts.audit_log import Outcome
from oracle.app import OracleHttpApp
from requester.client import OracleClient
from serving import ServerThread


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


class _Reader:
    """Reads HTTP/1.1 responses (with Content-Length) off a socket, one after another."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self, *, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a whole head: {self.buffer[:200]!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = 0 if head_only or status == 100 else int(headers["content-length"])
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("closed mid-body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the connection (nothing more arrives) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b"" and not self.buffer
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_keeps_the_connection_alive_across_requests(samr_oracle):
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        for _ in range(3):
            sock.sendall(_get("/v1/health"))
            status, headers, body = reader.response()
            assert status == 200 and json.loads(body)["department"] == "SAMR"
            assert "connection" not in headers and headers["date"].endswith("GMT")


def test_answers_pipelined_requests_in_order(samr_oracle, members, published):
    body, _, _ = samr_oracle.client.signed_body(members.tax.operator, members.tax.id, published.companies,
                                                published.tax_grant, published.company_fields,
                                                {"company_id": companies()[7]["company_id"]})
    query = json.dumps(body).encode()
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v1/identity") + _post("/v1/query", query) + _post("/v1/query", b"{not json")
                     + _get("/v1/health"))
        answers = [reader.response() for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 400, 200]
    assert "public_key" in json.loads(answers[0][2])
    assert json.loads(answers[1][2])["receipt"]["sequence"] == 1
    assert json.loads(answers[2][2])["title"] == "malformed request"
    assert json.loads(answers[3][2])["oracle"] == members.samr.oracle.address


def test_many_pipelined_requests_are_all_answered(samr_oracle):
    count = 48  # the server stops reading while a request waits, and resumes as it catches up
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v1/health") * count)
        statuses = [reader.response()[0] for _ in range(count)]
    assert statuses == [200] * count


def test_requests_before_a_refused_one_are_answered_then_the_connection_closes(samr_oracle):
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v1/health") + _get("/v1/identity") + b"\x00\x01 garbage\r\n\r\n")
        first, second = reader.response(), reader.response()
        assert first[0] == 200 and "connection" not in first[1]
        assert second[0] == 200 and second[1]["connection"] == "close" and "public_key" in json.loads(second[2])
        assert reader.closed()


def test_half_closed_connection_gets_its_answers(samr_oracle):
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v1/health") * 3)
        sock.shutdown(socket.SHUT_WR)  # nothing more will be sent
        statuses = [reader.response()[0] for _ in range(3)]
        assert statuses == [200, 200, 200]
        assert reader.closed()


def test_connection_close_and_http_1_0_close_after_the_answer(samr_oracle):
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v1/health", "Connection: close\r\n"))
        status, headers, _ = reader.response()
        assert status == 200 and headers["connection"] == "close"
        assert reader.closed()
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(b"GET /v1/health HTTP/1.0\r\nHost: x\r\n\r\n")
        assert reader.response()[0] == 200
        assert reader.closed()


def test_refuses_a_body_announced_over_the_limit_without_reading_it(samr_oracle):
    limit = samr_oracle.oracle.config.max_request_bytes
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(f"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: {limit + 1}\r\n\r\n".encode())
        status, headers, body = reader.response()
        assert status == 413 and headers["content-type"] == "application/problem+json"
        assert str(limit) in json.loads(body)["detail"] and headers["connection"] == "close"
        assert reader.closed()


def test_refuses_a_chunked_body_that_grows_over_the_limit(samr_oracle):
    limit = samr_oracle.oracle.config.max_request_bytes
    chunk = b"x" * 8192
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(limit // len(chunk) + 2))
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        try:
            sock.sendall(b"POST /v1/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the server may close while we still write
            pass
        assert reader.response()[0] == 413


def test_refuses_a_head_over_the_limit_and_bytes_that_are_not_http(samr_oracle):
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v1/health", "X-Filler: " + "a" * 20000 + "\r\n"))
        status, _, body = reader.response()
        assert status == 431 and json.loads(body)["title"] == "request head too large"
        assert reader.closed()
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
        status, _, body = reader.response()
        assert status == 400 and json.loads(body)["title"] == "malformed request"
        assert reader.closed()
    with _connect(samr_oracle.url) as sock:  # websocket and h2c are not spoken here: the upgrade is ignored
        reader = _Reader(sock)
        sock.sendall(_get("/v1/health", "Connection: Upgrade\r\nUpgrade: websocket\r\n") + b"\x81\x05hello")
        status, headers, _ = reader.response()
        assert status == 200 and headers["connection"] == "close" and "upgrade" not in headers
        assert reader.closed()


def test_expect_100_continue(samr_oracle):
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        body = b'{"query": {}}'
        sock.sendall(f"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        assert reader.response()[0] == 100  # before the body is sent
        sock.sendall(body)
        assert reader.response()[0] == 400
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(b"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n")
        assert reader.response()[0] == 413  # no 100: the body would be refused anyway


def test_head_get_only_routes_and_unknown_paths(samr_oracle):
    with _connect(samr_oracle.url) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v1/query"))
        status, headers, body = reader.response()
        assert status == 405 and headers["allow"] == "POST"
        sock.sendall(_post("/v1/query?with=a-query-string", b"{}"))  # the path decides, as under any ASGI server
        assert json.loads(reader.response()[2])["title"] == "malformed request"
        sock.sendall(_get("/v1/no-such-route"))
        assert reader.response()[0] == 404
        sock.sendall(_get("/v1/results/12345"))  # FastAPI's own answer
        status, _, body = reader.response()
        assert status == 401 and json.loads(body)["title"] == "unauthorised"
        sock.sendall(b"HEAD /v1/identity HTTP/1.1\r\nHost: x\r\n\r\n" + _get("/v1/health"))
        status, headers, _ = reader.response(head_only=True)  # the head only, with the GET's length
        assert int(headers["content-length"]) > 0
        status, _, body = reader.response()  # the next answer follows at once: no body was sent for HEAD
        assert status == 200 and json.loads(body)["department"] == "SAMR"


def _app_with(samr_oracle, api: FastAPI) -> OracleHttpApp:
    return OracleHttpApp(samr_oracle.oracle.service, api, samr_oracle.oracle.config.max_request_bytes)


def test_a_failing_route_is_a_500_problem_and_the_server_goes_on(samr_oracle):
    api = FastAPI()

    @api.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    server = ServerThread(_app_with(samr_oracle, api), free_port()).start()
    try:
        with _connect(server.url) as sock:
            reader = _Reader(sock)
            sock.sendall(_get("/boom"))
            status, headers, body = reader.response()
            assert status == 500 and headers["content-type"] == "application/problem+json"
            assert json.loads(body)["title"] == "internal error" and "a bug" not in body.decode()
        with _connect(server.url) as sock:
            reader = _Reader(sock)
            sock.sendall(_get("/v1/query"))
            assert reader.response()[0] == 405
    finally:
        server.stop()


def test_idle_and_slow_connections_are_closed(samr_oracle):
    api = FastAPI()
    server = ServerThread(_app_with(samr_oracle, api), free_port(), keep_alive_seconds=0.5, request_seconds=1.0).start()
    try:
        with _connect(server.url) as sock:
            reader = _Reader(sock)
            sock.sendall(_get("/v1/query"))
            assert reader.response()[0] == 405
            started = time.monotonic()
            assert reader.closed(timeout=5)  # idle past keep_alive_seconds
            assert time.monotonic() - started < 4
        with _connect(server.url) as sock:  # a request that never completes (slowloris)
            reader = _Reader(sock)
            sock.sendall(b"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            started = time.monotonic()
            assert reader.closed(timeout=5)
            assert time.monotonic() - started < 4
    finally:
        server.stop()


def test_shutdown_finishes_answers_in_progress_and_stops_accepting(samr_oracle):
    api = FastAPI()

    @api.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(1.0)
        return {"done": True}

    server = ServerThread(_app_with(samr_oracle, api), free_port()).start()
    url = server.url
    with _connect(url) as busy, _connect(url) as idle:
        idle_reader = _Reader(idle)
        idle.sendall(_get("/v1/query"))
        assert idle_reader.response()[0] == 405
        busy.sendall(_get("/slow"))
        time.sleep(0.3)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        status, headers, body = _Reader(busy).response()
        assert status == 200 and json.loads(body) == {"done": True} and headers["connection"] == "close"
        assert idle_reader.closed()
        stopper.join(timeout=20)
    assert not stopper.is_alive()
    with pytest.raises(OSError):
        _connect(url).close()


def test_the_app_is_also_an_asgi_app_for_any_asgi_server(samr_oracle, consortium, members, published):
    """OracleHttpApp keeps its ASGI face (here under uvicorn): the same answers, limits and refusals."""
    server = ServerThread(samr_oracle.oracle.app, free_port()).start()
    client = OracleClient(server.url, consortium.chain.chain_id, consortium.deployment.addresses["QueryRequests"],
                          oracle_address=members.samr.oracle.address)
    try:
        target = companies()[11]
        result = client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                              published.company_fields, {"company_id": target["company_id"]})
        assert result.records[0]["company_id"] == target["company_id"] and result.receipt["outcome"] == Outcome.SERVED
        limit = samr_oracle.oracle.config.max_request_bytes
        with _connect(server.url) as sock:
            reader = _Reader(sock)
            sock.sendall(_post("/v1/query", b"{not json"))
            assert reader.response()[0] == 400
            sock.sendall(_get("/v1/query"))
            assert reader.response()[1]["allow"] == "POST"
            sock.sendall(_get("/v1/health"))
            assert json.loads(reader.response()[2])["department"] == "SAMR"
            sock.sendall(f"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: {limit + 1}\r\n\r\n".encode())
            assert reader.response()[0] == 413
    finally:
        client.close()
        server.stop()
