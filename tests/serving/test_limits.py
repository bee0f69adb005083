"""govshare's limits on top of uvicorn (``serving``), over real sockets against a trivial app: what
a client cannot do to a service facing other departments whatever the app behind it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from devtools.devnet import free_port
from serving import ServerThread
from serving.limits import ServeLimits


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict:
        return {"pong": True}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    running = ServerThread(_app(), free_port(), keep_alive_seconds=0.5, request_seconds=1.0).start()
    yield running
    running.stop()


def _connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10)


_buffers: dict[int, bytes] = {}


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The next answer on ``sock`` (what arrives after it is kept for the next call)."""
    data = _buffers.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole head: {data[:100]!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        rest += sock.recv(65536)
    _buffers[sock.fileno()] = rest[length:]
    return int(lines[0].split(" ")[1]), headers, rest[:length]


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_the_defaults_bound_heads_and_slow_clients() -> None:
    limits = ServeLimits()
    assert limits.max_head_bytes == 16_384 and 0 < limits.keep_alive_seconds <= 10 and 0 < limits.request_seconds <= 60
    assert limits.max_headers == 100 and 0 < limits.max_connections <= 1024


def test_a_connection_that_never_speaks_is_closed(server: ServerThread) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        assert _closed_within(sock, 5)
        assert time.monotonic() - started < 3


def test_a_request_head_dripped_byte_by_byte_is_cut_off(server: ServerThread) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        for _ in range(8):  # keeps sending, slower than a whole request within request_seconds
            time.sleep(0.3)
            try:
                sock.sendall(b"X-A: b\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        assert _closed_within(sock, 5)
        assert time.monotonic() - started < 5


TOO_LARGE = ("request head too large", "a request's line and headers are at most 16384 bytes")
TOO_MANY = ("too many header fields", "a request has at most 100 header fields")

#: The heads an attacker sends (issue 15), and what each gets.
OVERSIZED_HEADS = pytest.mark.parametrize(("head", "refusal"), [
    ("X-Filler: " + "a" * 1_048_576 + "\r\n", TOO_LARGE),  # one header of a MiB
    ("".join(f"X-{i}: v\r\n" for i in range(5_000)), TOO_MANY),  # 5,000 small headers
    ("".join(f"X-{i}: {'b' * 65_536}\r\n" for i in range(16)), TOO_LARGE),  # 16 headers of 64 KiB
    ("".join(f"X-{i}: v\r\n" for i in range(100)), TOO_MANY),  # 101 with Host, well under the size
], ids=["1 MiB header", "5000 headers", "16 headers of 64 KiB", "101 small headers"])


def send_oversized_head(port: int, head: str, refusal: tuple[str, str]) -> None:
    """Send ``head`` to the server on ``port``: a 431 problem saying ``refusal``, then the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(f"GET /ping HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        except (BrokenPipeError, ConnectionResetError):  # refused while we still wrote
            pass
        status, headers, body = _answer(sock)
        assert status == 431 and headers["content-type"] == "application/problem+json"
        title, detail = refusal
        assert json.loads(body) == {"type": "about:blank", "title": title, "status": 431, "detail": detail}
        assert headers["connection"] == "close" and _closed_within(sock, 5)


@OVERSIZED_HEADS
def test_an_oversized_head_is_431_and_the_connection_closes(server: ServerThread, head: str,
                                                           refusal: tuple[str, str]) -> None:
    send_oversized_head(int(server.url.rsplit(":", 1)[1]), head, refusal)


def test_a_hundred_headers_are_served(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(99)) + b"\r\n")
        assert _answer(sock)[0] == 200


def test_connections_beyond_the_cap_are_refused_at_once_and_the_others_served() -> None:
    capped = ServerThread(_app(), free_port(), max_connections=8, keep_alive_seconds=30).start()
    port = int(capped.url.rsplit(":", 1)[1])
    try:
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
        time.sleep(0.2)  # the server has accepted them
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            status, headers, body = _answer(extra)  # answered before it sent anything
            assert status == 503 and headers["retry-after"] == "1" and headers["connection"] == "close"
            assert json.loads(body)["title"] == "too many connections" and _closed_within(extra, 5)
        held[0].sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")  # the ones within the cap are served
        assert _answer(held[0])[0] == 200
        for sock in held[:4]:
            sock.close()
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as again:  # room again
            again.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _answer(again)[0] == 200
        for sock in held[4:]:
            sock.close()
    finally:
        capped.stop()


def test_many_silent_connections_are_all_closed_within_the_idle_timeout(server: ServerThread) -> None:
    """800 connections that never send a byte (issue 15): those beyond the cap (512) are refused at
    once, the others closed after the keep-alive timeout (0.5 s here); none is left open."""
    socks = [_connect(server) for _ in range(800)]
    try:
        time.sleep(3)  # six keep-alive timeouts
        assert sum(_drained_and_closed(sock) for sock in socks) == 800
        with _connect(server) as sock:  # and the server still serves
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _answer(sock)[0] == 200
    finally:
        for sock in socks:
            sock.close()


def _drained_and_closed(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (what it sent before, a 503, is read and dropped)."""
    sock.settimeout(0.05)
    try:
        while sock.recv(65536):
            pass
        return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_an_unfinished_header_is_refused_before_it_is_whole(server: ServerThread) -> None:
    """httptools holds a header value whole before calling back: the raw bytes of an unfinished
    head are counted too, so a server never buffers an endless header (the answer comes while the
    header is still open, long before the slow-request timeout)."""
    with _connect(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 65_536)
        started = time.monotonic()
        status, headers, _ = _answer(sock)
        assert status == 431 and headers["connection"] == "close"
        assert time.monotonic() - started < 0.5


def test_pipelined_small_requests_in_one_segment_are_not_mistaken_for_a_large_head(server: ServerThread) -> None:
    request = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 1_000 + b"\r\n\r\n"
    with _connect(server) as sock:
        sock.sendall(request * 40)  # about 40 KB at once: many heads, none of them large
        assert [_answer(sock)[0] for _ in range(40)] == [200] * 40


def test_a_head_just_within_the_limit_is_served(server: ServerThread) -> None:
    request = b"GET /ping HTTP/1.1\r\nHost: x\r\n"
    filler = 16_384 - len(b"/ping") - len(b"Host") - len(b"x") - 4 - len(b"X-Filler") - 4
    with _connect(server) as sock:
        sock.sendall(request + b"X-Filler: " + b"a" * filler + b"\r\n\r\n")
        status, _, body = _answer(sock)
        assert status == 200 and json.loads(body) == {"pong": True}


def test_bytes_that_are_not_http_get_a_problem(server: ServerThread) -> None:
    with _connect(server) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00 not http\r\n\r\n")
        status, headers, body = _answer(sock)
        assert status == 400 and json.loads(body)["title"] == "malformed request"
        assert headers["connection"] == "close" and _closed_within(sock, 5)
