"""Issue 15's attacks on the API service as ``govshare api serve`` runs it (a real process, real
sockets): a deeply nested JSON body (it killed the process with SIGSEGV), the same nesting in an
uploaded data file, a lone surrogate in a query parameter (a 502 blaming the provider's oracle), huge
heads, too many headers, silent, slow and too many connections. After each attack the process is
alive and answers the next request."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.settings import ApiSettings, ServingSettings, token_sha256
from devtools.devnet import free_port
from devtools.sample_data import COMPANY_FIELDS
from ledger.keys import save_keystore
from serving import ServeLimits
from tests.api.conftest import assert_problem, register_companies
from tests.serving.test_limits import OVERSIZED_HEADS, send_oversized_head

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"  # test password of test keystores
DEEP = b"[" * 100_000 + b"]" * 100_000  # issue 15's body


@dataclass
class ApiProcess:
    """``python -m cli.main api serve --config FILE`` as a child process (its own session)."""

    process: subprocess.Popen[str]
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive_and_answering(self) -> bool:
        """The process runs and answers ``GET /v1/health`` (whatever the chain's state)."""
        if self.process.poll() is not None:
            return False
        return httpx.get(f"{self.url}/v1/health", timeout=30, trust_env=False).status_code == 200

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


def start_api(tmp_path: Path, rpc_url: str, *, lines: list[str], account: str, timeout: float = 90) -> ApiProcess:
    token = secrets.token_urlsafe(32)
    port = free_port()
    (tmp_path / "api.toml").write_text("\n".join([
        f"rpc_url = {json.dumps(rpc_url)}", f"listen_port = {port}", *lines,
        "[[tokens]]", f'sha256 = "{token_sha256(token)}"', f'account = "{account}"', 'label = "test"', "",
    ]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")} | {"GOVSHARE_KEY_PASSWORD": PASSWORD}
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "serve", "--config", str(tmp_path / "api.toml")],
                               cwd=PROJECT_ROOT, env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    api = ApiProcess(process, port, token)
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, api.stop()
        try:
            httpx.get(f"{api.url}/v1/health", timeout=2, trust_env=False)
            return api
        except httpx.TransportError:
            assert time.monotonic() < deadline, "govshare api serve did not start"
            time.sleep(0.2)


# ---------------------------------------------------------------- deep JSON, surrogates (with a chain)

def test_deep_json_and_lone_surrogates_are_the_clients_errors_and_the_service_lives(consortium, members, tmp_path: Path):
    operator = members.samr.operator
    save_keystore(operator, tmp_path / "operator.json", PASSWORD, iterations=2)  # test key, weak KDF for speed
    manifest = consortium.deployment.save(tmp_path / "deployments")
    api = start_api(tmp_path, consortium.chain.url, account=operator.address,
                    lines=[f'manifest = "deployments/{manifest.name}"', 'keystores = ["operator.json"]'])
    http = httpx.Client(base_url=api.url, timeout=60, trust_env=False)
    http.headers["Authorization"] = f"Bearer {api.token}"
    try:
        before = consortium.chain.block_number()
        # unauthenticated, the body of issue 15: a 400 naming the limit, before anything parses it
        for headers in ({"Content-Type": "application/json"}, {}):
            reply = httpx.post(f"{api.url}/v1/queries", content=DEEP, headers=headers, timeout=60, trust_env=False)
            problem = assert_problem(reply, 400, "json-too-deep")
            assert problem["detail"] == "the request body nests 100000 levels deep; at most 64 are accepted"
            assert problem["max_depth"] == 64
            assert api.alive_and_answering()
        nested = {"grant_id": 1, "params": {"a": json.loads("[" * 62 + "]" * 62)}}  # 64 levels: within the limit, the wrong shape
        assert_problem(http.post("/v1/queries", json=nested), 422, "invalid-request")

        # a data file nested the same way, uploaded
        dataset = register_companies(api_client(api, http), operator)
        record = dict.fromkeys(COMPANY_FIELDS, "x")
        upload = (json.dumps(record) + "\n").encode() + b'{"company_id": ' + DEEP + b"}\n"
        reply = http.post(f"/v1/datasets/{dataset['id']}/versions", files={"file": ("deep.jsonl", upload, "application/x-ndjson")})
        problem = assert_problem(reply, 422, "invalid-data-file")
        assert problem["detail"] == "line 2: the record nests 100001 levels deep; at most 64 are accepted"
        assert api.alive_and_answering()
        assert consortium.catalog.dataset(dataset["id"]).version_count == 0  # nothing was published

        # a lone surrogate: a 400 naming the parameter, the oracle never asked
        for body, field, where in [
            ('{"grant_id": 1, "params": {"company_id": "\\ud800"}}', "params", "params['company_id']"),
            ('{"grant_id": 1, "params": {"\\udfff": "v"}}', "params", "params (the name '\\udfff')"),
            ('{"grant_id": 1, "fields": ["name", "\\ud800x"]}', "fields", "fields[1]"),
        ]:
            reply = http.post("/v1/queries", content=body.encode(), headers={"Content-Type": "application/json"})
            problem = assert_problem(reply, 400, "invalid-unicode")
            assert problem["field"] == field and problem["detail"].startswith(where + " holds a lone surrogate"), problem
        for path, body, field in [  # any text the API takes in, not only a query's
            ("/v1/grants", '{"dataset_id": 1, "fields": ["name"], "purpose": "audit \\udc00", "duration_seconds": 60, '
                           '"quota": 1}', "purpose"),
            ("/v1/datasets", '{"name": "\\ud800", "fields": ["a"], "level": "public"}', "name"),
        ]:
            reply = http.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
            problem = assert_problem(reply, 400, "invalid-unicode")
            assert problem["field"] == field and problem["detail"].startswith(field + " holds a lone surrogate"), problem
        assert consortium.chain.block_number() == before + 1  # the registration only
        assert api.alive_and_answering()
    finally:
        http.close()
        code, err = api.stop()
    assert code == 0 and "Traceback" not in err, err[-2000:]


def api_client(api: ApiProcess, http: httpx.Client):  # type: ignore[no-untyped-def]
    """What ``register_companies`` needs of a running API: ``post(who, path, json=...)``."""

    class _Client:
        @staticmethod
        def post(_who: object, path: str, **kwargs: object) -> httpx.Response:
            return http.post(path, **kwargs)  # type: ignore[arg-type]

    return _Client()


# ---------------------------------------------------------------- heads and connections (no chain needed)

KEEP_ALIVE, REQUEST, CAP = 1.0, 2.0, 128


@pytest.fixture(scope="module")
def limited_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The API with short timeouts and a small connection cap in its ``[serving]`` table; its chain
    is down (it still serves: a request that needs the chain is a 503)."""
    api = start_api(tmp_path_factory.mktemp("limited-api"), f"http://127.0.0.1:{free_port()}", account="0x" + "12" * 20,
                    lines=["[serving]", f"keep_alive_seconds = {KEEP_ALIVE}", f"request_seconds = {REQUEST}",
                           f"max_connections = {CAP}", ""])
    yield api
    code, err = api.stop()
    assert code == 0, err[-2000:]


@OVERSIZED_HEADS
def test_oversized_heads_are_431(limited_api: ApiProcess, head: str, refusal: tuple[str, str]) -> None:
    send_oversized_head(limited_api.port, head, refusal)
    assert limited_api.alive_and_answering()


def _connect(api: ApiProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", api.port), timeout=10)


def _closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (what it sends first is dropped)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_silent_connections_are_closed_and_those_past_the_cap_refused(limited_api: ApiProcess) -> None:
    """800 connections that never send a byte: those past the cap get a 503 at once, the others are
    closed after the keep-alive timeout; the service then serves again."""
    socks = [_connect(limited_api) for _ in range(800)]
    try:
        refused = 0
        for sock in socks[CAP + 10:CAP + 20]:  # past the cap: answered at once, before sending anything
            sock.settimeout(10)
            refused += sock.recv(100).startswith(b"HTTP/1.1 503 ")
        assert refused == 10
        started = time.monotonic()
        assert sum(_closed(sock, max(0.05, KEEP_ALIVE * 5 - (time.monotonic() - started))) for sock in socks) == 800
    finally:
        for sock in socks:
            sock.close()
    assert limited_api.alive_and_answering()


def test_slowloris_connections_are_cut_off(limited_api: ApiProcess) -> None:
    """100 connections that drip a request head a header at a time, never finishing it: each is
    closed once ``request_seconds`` have passed since its request began."""
    socks = [_connect(limited_api) for _ in range(100)]  # within the cap: none of them refused at once
    try:
        for sock in socks:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        open_ = list(socks)
        while open_ and time.monotonic() - started < REQUEST * 4:
            time.sleep(0.25)
            still = []
            for sock in open_:
                try:
                    sock.sendall(b"X-Drip: a\r\n")
                    still.append(sock)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            open_ = still
        assert sum(_closed(sock, 0.5) for sock in socks) == len(socks)
    finally:
        for sock in socks:
            sock.close()
    assert limited_api.alive_and_answering()


def test_the_serving_settings_have_the_oracles_defaults_and_bounds(tmp_path: Path) -> None:
    defaults = ServingSettings().limits()
    assert defaults == ServeLimits()  # the oracle's [serving] defaults are ServeLimits' too (tests/oracle)
    (tmp_path / "api.toml").write_text('rpc_url = "http://x"\n[serving]\nmax_connections = 0\n')
    with pytest.raises(ValueError, match="serving.max_connections"):
        ApiSettings.load(tmp_path / "api.toml")
    (tmp_path / "api.toml").write_text('rpc_url = "http://x"\n[serving]\nmax_conections = 10\n')
    with pytest.raises(ValueError, match="serving.max_conections: unknown key"):
        ApiSettings.load(tmp_path / "api.toml")


def test_settings_nested_too_deeply_are_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVSHARE_API_RPC_URL", raising=False)
    (tmp_path / "api.toml").write_text('rpc_url = "http://x"\nx = ' + "[" * 5_000 + "]" * 5_000 + "\n")
    with pytest.raises(ValueError, match="not valid TOML: its arrays or tables nest too deeply"):
        ApiSettings.load(tmp_path / "api.toml")
    (tmp_path / "api.toml").write_text('rpc_url = "http://x"\n')
    monkeypatch.setenv("GOVSHARE_API_ORACLE_URLS", "[" * 5_000 + "]" * 5_000)
    with pytest.raises(ValueError, match="a setting's value nests too deeply"):
        ApiSettings.load(tmp_path / "api.toml")
