"""The service as a whole: health, OpenAPI, every error as a problem (malformed JSON, invalid
fields, oversized bodies, unknown paths, the chain down), its settings, and ``govshare api serve``."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.errors import ConfigError
from api.settings import ApiSettings, token_sha256
from devtools.devnet import free_port
from ledger.keys import save_keystore
from tests.api.conftest import PROBLEM, assert_problem

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"  # test password of test keystores


def test_health_and_openapi(consortium, members, serve_api):
    api = serve_api([members.tax.operator])
    health = api.get(None, "/v1/health").json()
    assert health == {"status": "ok", "chain_reachable": True, "chain_id": 1337, "block": consortium.chain.block_number(),
                      "accounts": [members.tax.operator.address]}
    spec = api.get(None, "/openapi.json").json()
    assert {"/v1/datasets", "/v1/datasets/{dataset_id}/versions", "/v1/grants/{grant_id}/co-approve", "/v1/queries",
            "/v1/health"} <= set(spec["paths"])
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "SignedRequest"}
    upload = spec["paths"]["/v1/datasets/{dataset_id}/versions"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data", "application/json"}
    assert "application/problem+json" in spec["paths"]["/v1/grants/{grant_id}/approve"]["post"]["responses"]["403"]["content"]
    docs = api.get(None, "/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_malformed_and_invalid_requests_are_problems(consortium, members, serve_api):
    api = serve_api([members.tax.operator])
    tax = members.tax.operator
    before = consortium.chain.block_number()
    reply = api.post(tax, "/v1/grants", content=b'{"dataset_id": 1, "fields": [', headers={"Content-Type": "application/json"})
    assert_problem(reply, 400, "malformed-json")
    reply = api.post(tax, "/v1/datasets/1/versions", content=b'{"format": ', headers={"Content-Type": "application/json"})
    assert_problem(reply, 400, "malformed-json")
    problem = assert_problem(api.post(tax, "/v1/grants", json={"dataset_id": 1, "fields": []}), 422, "invalid-request")
    assert {tuple(e["loc"]) for e in problem["errors"]} >= {("body", "fields"), ("body", "purpose")}
    assert_problem(api.post(tax, "/v1/grants", json={"dataset_id": 1, "fields": ["a"], "purpose": "p", "duration_seconds": 1,
                                                     "quota": 1, "surprise": True}), 422, "invalid-request")
    assert_problem(api.get(tax, "/v1/grants", params={"direction": "sideways"}), 422, "invalid-request")
    assert_problem(api.get(tax, "/v1/datasets/abc"), 422, "invalid-request")
    assert_problem(api.get(tax, "/v1/nothing-here"), 404, "not-found")
    assert_problem(api.request(tax, "DELETE", "/v1/datasets"), 405, "method-not-allowed")
    reply = api.post(tax, "/v1/datasets/1/versions", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert reply.headers["content-type"] == PROBLEM and reply.status_code in (400, 422)
    assert consortium.chain.block_number() == before


def test_oversized_bodies_are_refused_with_413(consortium, members, serve_api):
    api = serve_api([members.samr.operator], max_body_bytes=4096)
    op = members.samr.operator
    big = json.dumps({"name": "x" * 5000, "fields": ["a"], "level": "public"}).encode()
    before = consortium.chain.block_number()
    problem = assert_problem(api.post(op, "/v1/datasets", content=big, headers={"Content-Type": "application/json"}),
                             413, "payload-too-large")
    assert problem["max_body_bytes"] == 4096
    # streamed without a Content-Length (chunked): counted as it arrives
    chunks = iter([big[:3000], big[3000:]])
    reply = api.post(op, "/v1/datasets", content=chunks, headers={"Content-Type": "application/json"})
    assert_problem(reply, 413, "payload-too-large")
    # a file upload over the limit
    reply = api.post(op, "/v1/datasets/1/versions", files={"file": ("big.csv", b"a\n" + b"x\n" * 3000, "text/csv")})
    assert_problem(reply, 413, "payload-too-large")
    assert consortium.chain.block_number() == before
    # under the limit, the same service works
    reply = api.post(op, "/v1/datasets", json={"name": "small", "fields": ["a"], "level": "public"})
    assert reply.status_code == 201, reply.text


def test_chain_down_is_503(consortium, members, serve_api, tmp_path: Path):
    """A real fault: the service's rpc_url is a port nothing listens on (it connects on first use)."""
    manifest = consortium.deployment.save(tmp_path)
    api = serve_api([members.tax.operator], connect=None, rpc_url=f"http://127.0.0.1:{free_port()}", manifest=manifest)
    problem = assert_problem(api.get(members.tax.operator, "/v1/datasets"), 503, "chain-unavailable")
    assert "127.0.0.1" not in problem["detail"]  # the node's URL is not shown (it may carry a key)
    assert_problem(api.post(members.tax.operator, "/v1/grants", json={"dataset_id": 1, "fields": ["a"], "purpose": "p",
                                                                    "duration_seconds": 1, "quota": 1}), 503, "chain-unavailable")
    # unauthenticated is still 401: credentials are checked before the chain is asked
    assert_problem(api.get(None, "/v1/datasets"), 401)
    assert api.get(None, "/v1/health").json()["status"] == "degraded"


# ---------------------------------------------------------------- settings

def test_settings_from_toml_under_the_environment(tmp_path: Path, monkeypatch):
    token = secrets.token_hex(16)
    account = "0x" + "ab" * 20
    (tmp_path / "api.toml").write_text(f"""
rpc_url = "http://127.0.0.1:8545"
manifest = "deployments/1337.json"
keystores = ["keys/operator.json", {{ path = "/abs/auditor.json", password_file = "keys/auditor.password" }}]
index_path = "audit.sqlite"
max_body_bytes = 65536
[[tokens]]
sha256 = "{token_sha256(token).upper()}"
account = "{account}"
[oracle_urls]
samr = "http://10.0.0.5:8700/"
""")
    monkeypatch.setenv("GOVSHARE_API_LISTEN_PORT", "9900")
    monkeypatch.setenv("GOVSHARE_API_RPC_URL", "http://node:8545")
    settings = ApiSettings.load(tmp_path / "api.toml")
    assert settings.rpc_url == "http://node:8545" and settings.listen_port == 9900  # the environment wins
    assert settings.manifest == tmp_path / "deployments/1337.json" and settings.index_path == tmp_path / "audit.sqlite"
    assert [k.path for k in settings.keystores] == [tmp_path / "keys/operator.json", Path("/abs/auditor.json")]
    assert settings.keystores[1].password_file == tmp_path / "keys/auditor.password"
    assert settings.tokens[0].sha256 == token_sha256(token) and settings.tokens[0].account.lower() == account
    assert settings.oracle_urls == {"SAMR": "http://10.0.0.5:8700"} and settings.max_body_bytes == 65536


@pytest.mark.parametrize(("content", "message"), [
    ('rpc_url = "http://x"\npassword = "hunter2"', "password: unknown key; secrets are never in this file"),
    ('rpc_url = "http://x"\nlisten_prot = 1', "listen_prot: unknown key"),
    ('manifest = "m.json"', "rpc_url: required"),
    ('rpc_url = "http://x"\n[[tokens]]\nsha256 = "{}"\naccount = "0x{}"'.format(token_sha256("changeme"), "12" * 20),
     "well-known placeholder"),
    ('rpc_url = "http://x"\n[[tokens]]\nsha256 = "abc"\naccount = "0x%s"' % ("12" * 20), "tokens.0.sha256"),
    ('rpc_url = "http://x"\n[oracle_urls]\nSAMR = "ftp://x"', "oracle_urls"),
    ('rpc_url = "http://x"\nmax_body_bytes = 12', "max_body_bytes"),
    ('rpc_url = "http://x"\nrpc_ca_file = "api.toml"', "rpc_ca_file is for an https rpc_url"),
    ('rpc_url = "https://x"\nrpc_ca_file = "absent.pem"', "rpc_ca_file: no such file"),
    ('rpc_url = "https://x"\nrpc_ca_file = "api.toml"', "rpc_ca_file: cannot be loaded as PEM certificates"),
    ("rpc_url = ", "not valid TOML"),
])
def test_bad_settings_name_the_key(tmp_path: Path, monkeypatch, content: str, message: str):
    monkeypatch.delenv("GOVSHARE_API_RPC_URL", raising=False)
    (tmp_path / "api.toml").write_text(content)
    with pytest.raises(ConfigError) as info:
        ApiSettings.load(tmp_path / "api.toml")
    assert message in str(info.value) and "hunter2" not in str(info.value)


def test_an_https_node_takes_its_ca_file(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("GOVSHARE_API_RPC_URL", raising=False)
    from tests.support.certificates import TestAuthority

    authority = TestAuthority(tmp_path, "consortium")
    (tmp_path / "api.toml").write_text('rpc_url = "https://besu.consortium.example"\nrpc_ca_file = "consortium-ca.pem"\n')
    assert ApiSettings.load(tmp_path / "api.toml").rpc_ca_file == authority.ca_file


def test_missing_settings_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        ApiSettings.load(tmp_path / "absent.toml")


# ---------------------------------------------------------------- govshare api serve

def _govshare(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=PROJECT_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def test_govshare_api_serve(consortium, members, tmp_path: Path):
    operator = members.samr.operator
    save_keystore(operator, tmp_path / "operator.json", PASSWORD, iterations=2)  # test key, weak KDF for speed
    manifest = consortium.deployment.save(tmp_path / "deployments")
    token = secrets.token_urlsafe(32)
    port = free_port()
    (tmp_path / "api.toml").write_text(f"""
rpc_url = "{consortium.chain.url}"
manifest = "deployments/{manifest.name}"
keystores = ["operator.json"]
listen_port = {port}
[[tokens]]
sha256 = "{token_sha256(token)}"
account = "{operator.address}"
label = "test"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")} | {"GOVSHARE_KEY_PASSWORD": PASSWORD}
    process = _govshare("api", "serve", "--config", str(tmp_path / "api.toml"), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()
            try:
                health = httpx.get(f"{url}/v1/health", timeout=2, trust_env=False)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "govshare api serve did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok" and health.json()["accounts"] == [operator.address]
        reply = httpx.post(f"{url}/v1/datasets", headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=60,
                           json={"name": "served by the CLI", "fields": ["a", "b"], "level": "internal"})
        assert reply.status_code == 201, reply.text
        assert consortium.catalog.dataset(reply.json()["id"]).name == "served by the CLI"
        huge = httpx.get(f"{url}/v1/health", headers={"X-Filler": "a" * 20_000}, timeout=10, trust_env=False)
        assert huge.status_code == 431 and huge.json()["title"] == "request head too large"  # served with serving's limits
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert operator.account.key.hex()[2:] not in out + err and PASSWORD not in out + err and token not in out + err

    # a bad configuration: a clear message and exit code 1
    (tmp_path / "bad.toml").write_text('rpc_url = "http://x"\ntoken = "plain"\n')
    process = _govshare("api", "serve", "--config", str(tmp_path / "bad.toml"), env=env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "token: unknown key" in err and "Traceback" not in err


def test_the_chain_timeouts_are_settings(consortium, members, serve_api, tmp_path: Path, monkeypatch):
    """``rpc_timeout_seconds`` bounds each call to the node: a node that takes connections and never
    answers is a 503 within it, not within the default 30 s."""
    import socket
    import time

    monkeypatch.setenv("GOVSHARE_API_RPC_RECEIPT_TIMEOUT_SECONDS", "600")
    (tmp_path / "api.toml").write_text('rpc_url = "http://127.0.0.1:8545"\nrpc_timeout_seconds = 90\n')
    loaded = ApiSettings.load(tmp_path / "api.toml")
    assert (loaded.rpc_timeout_seconds, loaded.rpc_receipt_timeout_seconds) == (90.0, 600.0)
    manifest = consortium.deployment.save(tmp_path)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        api = serve_api([members.tax.operator], connect=None, rpc_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
                        manifest=manifest, rpc_timeout_seconds=1.5)
        started = time.monotonic()
        assert_problem(api.get(members.tax.operator, "/v1/datasets"), 503, "chain-unavailable")
        assert time.monotonic() - started < 30.0 / 2  # the default would have held it 30 s
