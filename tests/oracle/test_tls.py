"""The oracle over https and mutual TLS, as ``govshare oracle serve`` serves it from its TOML config:
a real process, real certificates made for the test (a department CA for the oracle's certificate,
a consortium client CA for requesters' and the oracle's own, a stranger CA), and the chain node
behind a TLS-terminating gateway that asks the oracle (answering and anchoring processes) for its
client certificate too."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from devtools.devnet import free_port
from devtools.sample_data import companies
from ledger.compiler import PROJECT_ROOT
from ledger.contracts.audit_log import Outcome
from ledger.keys import save_keystore
from ledger.tls import ClientTls
from requester.client import OracleClient, OracleUnreachable
from tests.support.certificates import (
    IssuedCertificate,
    TestAuthority,
    client_context,
    https_server_context,
    plain_exchange,
    tls12_handshake,
    tls_exchange,
)
from tests.support.rpc_gateway import RpcGateway

PASSWORD = "tls-test-password"  # test keystore password, not a secret


def _config(tmp_path: Path, entries: dict[str, Any], dataset: dict[str, Any]) -> Path:
    lines = [f"{key} = {json.dumps(value)}" for key, value in entries.items()]
    lines += [f"[datasets.{dataset.pop('id')}]", *(f"{key} = {json.dumps(value)}" for key, value in dataset.items()), ""]
    path = tmp_path / "samr-oracle.toml"
    path.write_text("\n".join(lines))
    return path


def _serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "cli.main", "oracle", "serve", "--config", str(config)],
                                cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=os.environ | {"GOVSHARE_KEY_PASSWORD": PASSWORD})


class Pki:
    """The test's certificate authorities and the certificates they issued."""

    def __init__(self, directory: Path) -> None:
        self.department = TestAuthority(directory, "samr")  # issues the oracle's and the node's server certificates
        self.clients = TestAuthority(directory, "consortium-clients")  # issues requesters' and the oracle's client certificates
        self.stranger = TestAuthority(directory, "stranger")
        self.oracle_server = self.department.issue("samr-oracle-server", server=True)
        self.requester = self.clients.issue("tax-requester", server=False)
        self.oracle_client = self.clients.issue("samr-oracle-client", server=False)
        self.impostor = self.stranger.issue("impostor", server=False)

    def requester_tls(self, issued: IssuedCertificate | None) -> ClientTls:
        return ClientTls(self.department.ca_file, issued.cert_file if issued else None, issued.key_file if issued else None)


@pytest.fixture
def mtls_oracle(tmp_path: Path, consortium, members, published, company_api) -> Iterator[tuple[Pki, int, Any]]:
    pki = Pki(tmp_path)
    gateway = RpcGateway(consortium.chain.url,
                         tls=https_server_context(pki.department, "besu-node", client_ca=pki.clients)).start()
    key_file = save_keystore(members.samr.oracle, tmp_path / "samr-oracle.json", PASSWORD, iterations=2)
    port = free_port()
    config = _config(tmp_path, {
        "rpc_url": gateway.url, "rpc_ca_file": str(pki.department.ca_file),
        "rpc_client_cert_file": str(pki.oracle_client.cert_file), "rpc_client_key_file": str(pki.oracle_client.key_file),
        "manifest": str(consortium.deployment.save(tmp_path / "deployments")), "department": "SAMR",
        "key_file": str(key_file), "outbox": str(tmp_path / "outbox.sqlite"), "listen_port": port,
        "batch_max_age_seconds": 0.2, "request_poll_interval_seconds": 0.5,
        "tls_cert_file": str(pki.oracle_server.cert_file), "tls_key_file": str(pki.oracle_server.key_file),
        "tls_client_ca_file": str(pki.clients.ca_file), "tls_require_client_cert": True,
    }, {"id": published.companies, "base_url": company_api.url, "path": "/companies", "params": ["company_id", "status"]})
    log = tmp_path / "oracle.log"
    process = _serve(config, log)
    try:
        good = client_context(pki.department, pki.requester)
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if tls_exchange(port, good).startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the oracle did not answer over https:\n{log.read_text()}"
            time.sleep(0.2)
        yield pki, port, gateway
    finally:
        process.terminate()
        process.wait(timeout=30)
        gateway.stop()


def test_the_oracle_serves_https_to_requesters_with_a_client_certificate_of_its_ca(
    mtls_oracle, consortium, members, published
) -> None:
    pki, port, gateway = mtls_oracle
    url = f"https://127.0.0.1:{port}"
    client = OracleClient(url, consortium.chain.chain_id, consortium.deployment.addresses["QueryRequests"],
                          oracle_address=members.samr.oracle.address, ssl_context=pki.requester_tls(pki.requester).context())
    try:
        result = client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                              published.company_fields, {"company_id": companies()[3]["company_id"]})
    finally:
        client.close()
    assert result.receipt["outcome"] == Outcome.SERVED and len(result.records) == 1
    deadline = time.monotonic() + 30  # anchored by the anchoring process, through the node's mutual TLS
    while consortium.audit_log.oracle_state(members.samr.oracle.address).last_sequence < 1:
        assert time.monotonic() < deadline, "the record was not anchored over the node's mutual TLS"
        time.sleep(0.2)
    assert "eth_sendRawTransaction" in gateway.methods


def test_the_oracle_refuses_plain_http_and_clients_without_a_good_certificate_in_the_handshake(
    mtls_oracle, consortium, members, published
) -> None:
    pki, port, _ = mtls_oracle
    assert b"HTTP/" not in plain_exchange(port)  # plain http to the https port: never an HTTP answer
    for issued in (None, pki.impostor):  # no certificate; one another CA issued
        with pytest.raises(ssl.SSLError):  # TLS 1.2: the server ends the handshake
            tls12_handshake(port, client_context(pki.department, issued))
        assert tls_exchange(port, client_context(pki.department, issued)) == b""  # TLS 1.3: closed, nothing of HTTP
        client = OracleClient(f"https://127.0.0.1:{port}", consortium.chain.chain_id,
                              consortium.deployment.addresses["QueryRequests"], ssl_context=pki.requester_tls(issued).context())
        with pytest.raises(OracleUnreachable):
            client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                         published.company_fields, {"company_id": companies()[3]["company_id"]})
        client.close()
    untrusting = OracleClient(f"https://127.0.0.1:{port}", consortium.chain.chain_id,
                              consortium.deployment.addresses["QueryRequests"])  # the system's CAs: the oracle's is not one
    with pytest.raises(OracleUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                         published.company_fields, {"company_id": companies()[3]["company_id"]})
    untrusting.close()
    assert tls12_handshake(port, client_context(pki.department, pki.requester)) == "TLSv1.2"
    assert tls_exchange(port, client_context(pki.department, pki.requester)).startswith(b"HTTP/1.1 200")  # still serving


def test_govshare_oracle_serve_refuses_a_tls_key_others_may_read_at_start(tmp_path: Path, consortium, members) -> None:
    authority = TestAuthority(tmp_path, "samr")
    server = authority.issue("samr-oracle-server", server=True)
    server.key_file.chmod(0o644)
    key_file = save_keystore(members.samr.oracle, tmp_path / "samr-oracle.json", PASSWORD, iterations=2)
    config = _config(tmp_path, {"rpc_url": consortium.chain.url, "department": "SAMR", "key_file": str(key_file),
                                "tls_cert_file": str(server.cert_file), "tls_key_file": str(server.key_file)},
                     {"id": 1, "base_url": "http://127.0.0.1:9", "path": "/x", "params": ["a"]})
    process = _serve(config, tmp_path / "oracle.log")
    assert process.wait(timeout=60) != 0
    out = (tmp_path / "oracle.log").read_text()
    assert f"tls_key_file: TLS key file {server.key_file} is accessible by group or others (mode 0644)" in out, out
    assert f"chmod 600 {server.key_file}" in out and "Traceback" not in out
