"""Issue 15's attacks on the oracle as ``govshare oracle serve`` runs it (a real process, real sockets):
deeply nested JSON, a lone surrogate in a parameter, huge heads, too many headers, too many
connections; its ``[serving]`` table (the API's keys and defaults). After each attack the process is
alive and answers the next request."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.devnet import free_port
from ledger.keys import save_keystore
from oracle.config import OracleConfig
from oracle.errors import ConfigError
from serving import ServeLimits
from tests.oracle.test_config import render, write
from tests.oracle.test_crash_safety import PASSWORD, OracleProcess
from tests.serving.test_limits import OVERSIZED_HEADS, send_oversized_head

CAP = 16


@pytest.fixture
def oracle(tmp_path, consortium, members, published, company_api) -> Iterator[OracleProcess]:
    manifest = consortium.deployment.save(tmp_path / "deployments")
    key_file = save_keystore(members.samr.oracle, tmp_path / "samr-oracle.json", PASSWORD, iterations=2)  # test key
    port = free_port()
    (tmp_path / "samr-oracle.toml").write_text("\n".join([
        f"rpc_url = {json.dumps(consortium.chain.url)}", f"manifest = {json.dumps(str(manifest))}", 'department = "SAMR"',
        f"key_file = {json.dumps(str(key_file))}", f"outbox = {json.dumps(str(tmp_path / 'outbox.sqlite'))}",
        f"listen_port = {port}", f"[datasets.{published.companies}]", f"base_url = {json.dumps(company_api.url)}",
        'path = "/companies"', 'params = ["company_id", "status"]',
        "[serving]", f"max_connections = {CAP}", "keep_alive_seconds = 2.0", "",
    ]))
    process = OracleProcess(tmp_path / "samr-oracle.toml", port, tmp_path / "oracle.log").start()
    yield process
    process.terminate()


def _alive(oracle: OracleProcess) -> bool:
    assert oracle.process is not None
    return oracle.process.poll() is None and httpx.get(f"{oracle.url}/v1/health", timeout=30).status_code == 200


def _query_body(params: str) -> bytes:
    return ('{"query": {}, "signature": "0x' + "ab" * 65 + '", "params": ' + params + ', "paramsSalt": "0x' + "cd" * 32
            + '"}').encode()


def test_deep_json_and_lone_surrogates_are_400_and_the_oracle_lives(oracle: OracleProcess) -> None:
    url = f"{oracle.url}/v1/query"
    issue_body = b"[" * 100_000 + b"]" * 100_000  # over max_request_bytes: never read
    reply = httpx.post(url, content=issue_body, headers={"Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 413 and _alive(oracle)
    for body in (b"[" * 30_000 + b"]" * 30_000, _query_body('{"a": ' + "[" * 30_000 + "]" * 30_000 + "}")):
        reply = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert reply.status_code == 400 and reply.json()["title"] == "malformed request", reply.text
        assert "recursion limit exceeded" in reply.json()["detail"]
        assert _alive(oracle)
    for params in ('{"company_id": "\\ud800"}', '{"\\udfff": "v"}'):
        reply = httpx.post(url, content=_query_body(params), headers={"Content-Type": "application/json"}, timeout=30)
        assert reply.status_code == 400 and reply.json()["title"] == "malformed request", reply.text
        assert "hex escape" in reply.json()["detail"] or "surrogate" in reply.json()["detail"]
    assert _alive(oracle)


@OVERSIZED_HEADS
def test_oversized_heads_are_431(oracle: OracleProcess, head: str, refusal: tuple[str, str]) -> None:
    send_oversized_head(oracle.port, head, refusal)
    assert _alive(oracle)


def test_connections_past_the_configured_cap_are_refused(oracle: OracleProcess) -> None:
    socks = [socket.create_connection(("127.0.0.1", oracle.port), timeout=10) for _ in range(CAP + 4)]
    try:
        time.sleep(0.3)
        answers = []
        for sock in socks[CAP:]:
            sock.settimeout(10)
            answers.append(sock.recv(100))
        assert all(a.startswith(b"HTTP/1.1 503 ") for a in answers), answers
    finally:
        for sock in socks:
            sock.close()
    time.sleep(0.3)
    assert _alive(oracle)


def test_the_serving_table_defaults_to_the_apis_defaults_and_names_bad_keys(tmp_path: Path) -> None:
    assert OracleConfig.load(write(tmp_path, render())).serving == ServeLimits()
    config = OracleConfig.load(write(tmp_path, render(tail="[serving]\nmax_headers = 50\nkeep_alive_seconds = 1.5\n")))
    assert config.serving == ServeLimits(max_headers=50, keep_alive_seconds=1.5)
    for table, key in [("max_connections = 0", "serving.max_connections"), ("max_head_bytes = 100", "serving.max_head_bytes"),
                       ("request_seconds = -1", "serving.request_seconds"), ("max_conections = 5", "serving.max_conections")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            OracleConfig.load(write(tmp_path, render(tail=f"[serving]\n{table}\n")))


def test_a_config_nested_too_deeply_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML: its arrays or tables nest too deeply"):
        OracleConfig.load(write(tmp_path, render(top={"x": "[" * 5_000 + "]" * 5_000})))
