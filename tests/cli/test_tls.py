"""``govshare`` over TLS: ``govshare query`` to an https oracle that requires client certificates
(``--oracle-ca-file``, ``--oracle-client-cert``, ``--oracle-client-key``) with the chain behind a
TLS gateway that requires one too (``--rpc-ca-file``, ``--rpc-client-cert``, ``--rpc-client-key`` or
their variables); refusals and a key file others may read. Real subprocesses, real certificates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from devtools.sample_data import companies
from oracle.config import DatasetConfig
from serving import ServerTls
from tests.cli.conftest import CliWorld
from tests.oracle.conftest import TAX_FIELDS, Published, RunningOracle, oracle_config, start_oracle
from tests.support.certificates import TestAuthority, https_server_context
from tests.support.cli import govshare, govshare_all
from tests.support.rpc_gateway import RpcGateway


@pytest.fixture
def mtls(cli_world: CliWorld, published: Published, company_api, tmp_path: Path) -> Iterator[tuple[dict, RunningOracle, RpcGateway]]:
    w = cli_world
    pki = {name: TestAuthority(tmp_path, name) for name in ("department", "clients", "stranger")}
    server = pki["department"].issue("samr-oracle", server=True)
    tls = ServerTls(server.cert_file, server.key_file, pki["clients"].ca_file, require_client_cert=True)
    datasets = {published.companies: DatasetConfig(id=published.companies, base_url=company_api.url, path="/companies",
                                                   params=("company_id", "status"))}
    oracle = start_oracle(oracle_config(tmp_path, w.consortium, "SAMR", datasets, tls=tls), w.members.samr.oracle, w.consortium)
    gateway = RpcGateway(w.consortium.chain.url,
                         tls=https_server_context(pki["department"], "node", client_ca=pki["clients"])).start()
    w.consortium.registry.set_oracle_url(w.members.samr.operator, oracle.url)
    try:
        yield pki, oracle, gateway
    finally:
        gateway.stop()
        oracle.stop()


def test_query_over_mutual_tls_to_the_oracle_and_the_chain(cli_world: CliWorld, published: Published, mtls,
                                                           tmp_path: Path) -> None:
    w = cli_world
    pki, oracle, gateway = mtls
    tax = pki["clients"].issue("tax-cli", server=False)
    impostor = pki["stranger"].issue("impostor", server=False)
    readable = tmp_path / "readable-key.pem"
    readable.write_bytes(tax.key_file.read_bytes())
    readable.chmod(0o644)
    target = companies()[42]
    chain = ["--rpc", gateway.url, "--rpc-ca-file", str(pki["department"].ca_file),
             "--rpc-client-cert", str(tax.cert_file), "--rpc-client-key", str(tax.key_file)]
    to_oracle = ["--oracle-ca-file", str(pki["department"].ca_file)]
    query = ["query", str(published.tax_grant), "--param", f"company_id={target['company_id']}"]
    served, no_cert, stranger, insecure, no_chain_cert, plain_to_https = govshare_all([
        w.args(*query, *chain, *to_oracle, "--oracle-client-cert", str(tax.cert_file), "--oracle-client-key",
               str(tax.key_file), "--json", key="tax"),
        w.args(*query, *chain, *to_oracle, key="tax"),
        w.args(*query, *chain, *to_oracle, "--oracle-client-cert", str(impostor.cert_file), "--oracle-client-key",
               str(impostor.key_file), key="tax"),
        w.args(*query, *chain, *to_oracle, "--oracle-client-cert", str(tax.cert_file), "--oracle-client-key",
               str(readable), key="tax"),
        ["chain", "status", "--rpc", gateway.url, "--rpc-ca-file", str(pki["department"].ca_file)],
        w.args(*query, *chain, "--oracle-url", oracle.url.replace("https://", "http://"), key="tax"),
    ], w.env)
    assert served.returncode == 0, served.stderr
    assert served.json()["records"] == [{k: target[k] for k in TAX_FIELDS}]
    assert served.json()["oracle"] == w.members.samr.oracle.address
    for refused in (no_cert, stranger, plain_to_https):
        assert refused.returncode == 3 and "cannot reach SAMR's oracle" in refused.stderr, refused.stderr
    assert insecure.returncode == 2 and f"chmod 600 {readable}" in insecure.stderr, insecure.stderr
    assert no_chain_cert.returncode == 3, no_chain_cert.stderr
    assert oracle.oracle.outbox.pending_count() == 1  # the refused connections never reached the oracle's decision path

    env = w.env | {"GOVSHARE_RPC": gateway.url, "GOVSHARE_RPC_CA_FILE": str(pki["department"].ca_file),
                   "GOVSHARE_RPC_CLIENT_CERT": str(tax.cert_file), "GOVSHARE_RPC_CLIENT_KEY": str(tax.key_file)}
    status = govshare("--json", "chain", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["chain_id"] == w.consortium.chain.chain_id
    half = govshare("chain", "status", "--rpc-client-key", "tax-key.pem", env=env | {"GOVSHARE_RPC_CLIENT_CERT": ""})
    assert half.returncode == 2 and "go together" in half.stderr, half.stderr
