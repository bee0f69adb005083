"""The API over https and mutual TLS (``tls_*`` settings, as ``govshare api serve`` serves them), its
queries to a provider's oracle that requires client certificates (``oracle_*`` settings), and the
checks of every TLS file at start-up. Real certificates made for the test, real processes and servers."""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.errors import ConfigError
from api.settings import ApiSettings, TokenBinding, token_sha256
from devtools.devnet import free_port
from ledger.compiler import PROJECT_ROOT
from ledger.keys import save_keystore
from oracle.config import DatasetConfig
from serving import ServerThread, ServerTls
from tests.api.conftest import assert_problem
from tests.oracle.conftest import TAX_FIELDS, oracle_config, published, start_oracle  # noqa: F401 - a fixture
from tests.support.certificates import (
    TestAuthority,
    client_context,
    plain_exchange,
    tls12_handshake,
    tls_exchange,
)

PASSWORD = "tls-api-test-password"  # test keystore password, not a secret


def _pki(directory: Path) -> dict[str, TestAuthority]:
    return {name: TestAuthority(directory, name) for name in ("department", "clients", "stranger")}


def test_govshare_api_serve_over_mutual_tls(consortium, members, tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    pki["department"].issue("samr-api", server=True)
    caller = pki["clients"].issue("samr-dashboard", server=False)
    save_keystore(members.samr.operator, tmp_path / "operator.json", PASSWORD, iterations=2)
    manifest = consortium.deployment.save(tmp_path / "deployments")
    token, port = secrets.token_urlsafe(32), free_port()
    (tmp_path / "api.toml").write_text(f"""
rpc_url = "{consortium.chain.url}"
manifest = "deployments/{manifest.name}"
keystores = ["operator.json"]
listen_port = {port}
tls_cert_file = "samr-api.pem"
tls_key_file = "samr-api-key.pem"
tls_client_ca_file = "clients-ca.pem"
tls_require_client_cert = true
[[tokens]]
sha256 = "{token_sha256(token)}"
account = "{members.samr.operator.address}"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")} | {"GOVSHARE_KEY_PASSWORD": PASSWORD}
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "serve", "--config", str(tmp_path / "api.toml")],
                               cwd=PROJECT_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    url = f"https://127.0.0.1:{port}"
    good = httpx.Client(base_url=url, verify=client_context(pki["department"], caller), timeout=60, trust_env=False)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()
            try:
                health = good.get("/v1/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "govshare api serve did not start over https"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["accounts"] == [members.samr.operator.address]
        reply = good.post("/v1/datasets", headers={"Authorization": f"Bearer {token}"},
                          json={"name": "served over mutual TLS", "fields": ["a", "b"], "level": "internal"})
        assert reply.status_code == 201, reply.text

        assert b"HTTP/" not in plain_exchange(port)  # plain http to the https port: no HTTP answer
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=10, trust_env=False)
        for issued in (None, pki["stranger"].issue("impostor", server=False)):  # no certificate; another CA's
            with pytest.raises(ssl.SSLError):
                tls12_handshake(port, client_context(pki["department"], issued))  # refused in the handshake
            assert tls_exchange(port, client_context(pki["department"], issued)) == b""  # TLS 1.3: closed, no HTTP
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{url}/v1/health", verify=client_context(pki["department"], issued), timeout=10, trust_env=False)
        assert good.get("/v1/health").status_code == 200
    finally:
        good.close()
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert token not in out + err and PASSWORD not in out + err
    assert "https://127.0.0.1" in err  # the start-up line says it serves https


def test_queries_reach_an_oracle_that_requires_client_certificates_with_the_apis_own(
    consortium, members, published, company_api, tmp_path: Path  # noqa: F811 - a fixture
) -> None:
    pki = _pki(tmp_path)
    oracle_server = pki["department"].issue("samr-oracle", server=True)
    tls = ServerTls(oracle_server.cert_file, oracle_server.key_file, pki["clients"].ca_file, require_client_cert=True)
    datasets = {published.companies: DatasetConfig(id=published.companies, base_url=company_api.url, path="/companies",
                                                   params=("company_id", "status"))}
    oracle = start_oracle(oracle_config(tmp_path, consortium, "SAMR", datasets, tls=tls), members.samr.oracle, consortium)
    try:
        assert oracle.url.startswith("https://")
        consortium.registry.set_oracle_url(members.samr.operator, oracle.url)
        tax_cert = pki["clients"].issue("tax-api", server=False)
        stranger_cert = pki["stranger"].issue("tax-impostor", server=False)
        for files, status in [
            ({"oracle_client_cert_file": tax_cert.cert_file, "oracle_client_key_file": tax_cert.key_file}, 200),
            ({}, 502),  # no client certificate: the oracle ends the handshake
            ({"oracle_client_cert_file": stranger_cert.cert_file, "oracle_client_key_file": stranger_cert.key_file}, 502),
        ]:
            token = secrets.token_urlsafe(32)
            settings = ApiSettings(rpc_url=consortium.chain.url, oracle_ca_file=pki["department"].ca_file, **files,
                                   tokens=(TokenBinding(sha256=token_sha256(token), account=members.tax.operator.address),))
            server = ServerThread(create_app(settings, consortium=consortium, signers=[members.tax.operator]), free_port()).start()
            try:
                reply = httpx.post(f"{server.url}/v1/queries", headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                   trust_env=False, json={"grant_id": published.tax_grant, "params": {"company_id": "x"}})
            finally:
                server.stop()
            if status == 200:
                assert reply.status_code == 200, reply.text
                assert reply.json()["oracle_url"] == oracle.url and set(reply.json()["fields"]) == set(TAX_FIELDS)
            else:
                assert assert_problem(reply, 502, "oracle-unreachable")["oracle_url"] == oracle.url
    finally:
        oracle.stop()


def test_tls_settings_are_checked_at_start(tmp_path: Path, monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("GOVSHARE_API_"):
            monkeypatch.delenv(name)
    pki = _pki(tmp_path)
    server = pki["department"].issue("api", server=True)
    client = pki["clients"].issue("client", server=False)
    (tmp_path / "readable-key.pem").write_bytes(server.key_file.read_bytes())
    (tmp_path / "readable-key.pem").chmod(0o644)
    (tmp_path / "not-pem.pem").write_text("hunter2\n")
    (tmp_path / "keystore.json").write_text("{}")
    (tmp_path / "keystore.json").chmod(0o640)
    base = 'rpc_url = "https://node.example"\n'
    served = 'tls_cert_file = "api.pem"\ntls_key_file = "api-key.pem"\n'
    mutual = served + 'tls_client_ca_file = "clients-ca.pem"\ntls_require_client_cert = true\n'
    (tmp_path / "api.toml").write_text(base + mutual + 'oracle_ca_file = "department-ca.pem"\n'
                                       'oracle_client_cert_file = "client.pem"\noracle_client_key_file = "client-key.pem"\n'
                                       'rpc_client_cert_file = "client.pem"\nrpc_client_key_file = "client-key.pem"\n')
    settings = ApiSettings.load(tmp_path / "api.toml")
    assert settings.tls == ServerTls(server.cert_file, server.key_file, pki["clients"].ca_file, True)
    assert settings.rpc_tls is not None and settings.rpc_tls.key_file == client.key_file
    assert settings.oracle_tls.ca_file == pki["department"].ca_file
    (tmp_path / "api.toml").write_text(base)
    assert ApiSettings.load(tmp_path / "api.toml").tls is None and ApiSettings.load(tmp_path / "api.toml").rpc_tls is None
    refused = [
        (base + 'tls_cert_file = "api.pem"\n', "tls_key_file: is required with the other"),
        (base + 'tls_client_ca_file = "clients-ca.pem"\n', "tls_client_ca_file: needs tls_cert_file and tls_key_file"),
        (base + served + "tls_require_client_cert = true\n", "tls_require_client_cert: needs tls_client_ca_file"),
        (base + 'tls_cert_file = "api.pem"\ntls_key_file = "readable-key.pem"\n',
         f"tls_key_file: TLS key file {tmp_path / 'readable-key.pem'} is accessible by group or others (mode 0644)"),
        (base + 'tls_cert_file = "not-pem.pem"\ntls_key_file = "api-key.pem"\n', "tls_cert_file: with tls_key_file cannot be loaded"),
        (base + served + 'tls_client_ca_file = "not-pem.pem"\n', "cannot be loaded as PEM certificates"),
        (base + served + 'tls_client_ca_file = "missing.pem"\n', "does not exist"),
        (base + 'oracle_client_cert_file = "client.pem"\n', "oracle_client_cert_file and oracle_client_key_file go together"),
        (base + 'oracle_ca_file = "not-pem.pem"\n', "oracle: cannot be loaded as PEM certificates"),
        (base + 'oracle_client_cert_file = "client.pem"\noracle_client_key_file = "readable-key.pem"\n', "chmod 600"),
        ('rpc_url = "http://node.example"\nrpc_client_cert_file = "client.pem"\nrpc_client_key_file = "client-key.pem"\n',
         "rpc_client_cert_file is for an https rpc_url"),
        (base + 'rpc_client_cert_file = "client.pem"\nrpc_client_key_file = "readable-key.pem"\n', "rpc_client_key_file: "),
        (base + 'keystores = ["keystore.json"]\n', "keystores.0.path: keystore"),
    ]
    for content, message in refused:
        (tmp_path / "api.toml").write_text(content)
        with pytest.raises(ConfigError) as info:
            ApiSettings.load(tmp_path / "api.toml")
        assert message in str(info.value) and "hunter2" not in str(info.value), str(info.value)
