"""The requesting side (``requester.client``) against a real oracle over HTTP, and against servers
that misbehave for real: every failure comes back typed, never as a transport library's error."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from devtools.devnet import free_port
from devtools.sample_data import companies
from ledger.contracts.audit_log import Outcome
from protocol.receipt import receipt_signer
from requester.client import (
    OracleBadAnswer,
    OracleClient,
    OracleTimeout,
    OracleUnreachable,
    QueryRefused,
    ReceiptNotFromOracle,
)
from serving import ServerThread


def _client(url: str, consortium, **kwargs) -> OracleClient:
    return OracleClient(url, consortium.chain.chain_id, consortium.deployment.addresses["QueryRequests"], **kwargs)


def test_a_query_is_answered_with_records_and_a_receipt_of_the_pinned_oracle(samr_oracle, consortium, members, published):
    client = _client(samr_oracle.url, consortium, oracle_address=members.samr.oracle.address)
    try:
        target = companies()[3]
        result = client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                              published.company_fields, {"company_id": target["company_id"]})
    finally:
        client.close()
    assert [r["company_id"] for r in result.records] == [target["company_id"]]
    assert result.receipt["outcome"] == Outcome.SERVED and receipt_signer(result.receipt) == members.samr.oracle.address
    assert result.query.requester == members.tax.operator.address and result.params == {"company_id": target["company_id"]}


def test_a_receipt_of_another_account_is_refused_even_when_served(samr_oracle, consortium, members, published):
    client = _client(samr_oracle.url, consortium, oracle_address=members.psb.oracle.address)  # not SAMR's oracle
    try:
        with pytest.raises(ReceiptNotFromOracle, match="not signed by the provider's registered oracle"):
            client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant,
                         published.company_fields, {"company_id": companies()[4]["company_id"]})
    finally:
        client.close()


def test_a_refusal_carries_the_oracles_reason_and_its_signed_receipt(samr_oracle, consortium, members, published):
    client = _client(samr_oracle.url, consortium, oracle_address=members.samr.oracle.address)
    try:
        with pytest.raises(QueryRefused) as refused:
            client.query(members.tax.operator, members.tax.id, published.companies, published.tax_grant + 99,
                         published.company_fields, {"company_id": companies()[5]["company_id"]})
    finally:
        client.close()
    assert refused.value.status == 403 and refused.value.reason == "UNKNOWN_GRANT"
    assert receipt_signer(refused.value.receipt) == members.samr.oracle.address


def _misbehaving_app() -> FastAPI:
    app = FastAPI()

    @app.post("/not-json/v1/query")
    async def not_json() -> Response:
        return PlainTextResponse("<html>a proxy's error page</html>", status_code=502)

    @app.post("/not-an-object/v1/query")
    async def not_an_object() -> list:
        return [1, 2, 3]

    @app.post("/no-records/v1/query")
    async def no_records() -> dict:
        return {"receipt": None}

    @app.post("/slow/v1/query")
    async def slow(request: Request) -> dict:
        await asyncio.sleep(5)
        return {}

    return app


@pytest.fixture(scope="module")
def misbehaving() -> Iterator[ServerThread]:
    server = ServerThread(_misbehaving_app(), free_port()).start()
    yield server
    server.stop()


@pytest.mark.parametrize("path, message", [
    ("/not-json", "with a body that is not JSON"),
    ("/not-an-object", "with JSON that is not an object"),
    ("/no-records", "without records and a receipt"),
])
def test_an_answer_that_is_not_the_protocols_is_a_bad_answer(misbehaving, consortium, members, path, message):
    client = _client(misbehaving.url + path, consortium)
    try:
        with pytest.raises(OracleBadAnswer, match=message):
            client.query(members.tax.operator, members.tax.id, 1, 1, 1, {"company_id": "x"})
    finally:
        client.close()


def test_an_oracle_that_does_not_answer_in_time_is_a_timeout(misbehaving, consortium, members):
    client = _client(misbehaving.url + "/slow", consortium, timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(OracleTimeout, match="did not answer within 0.5 s"):
            client.query(members.tax.operator, members.tax.id, 1, 1, 1, {"company_id": "x"})
    finally:
        client.close()
    assert time.monotonic() - started < 3


def test_an_oracle_that_cannot_be_reached_or_hangs_up_is_unreachable(consortium, members):
    nobody = f"http://127.0.0.1:{free_port()}"
    client = _client(nobody, consortium)
    try:
        with pytest.raises(OracleUnreachable, match="cannot reach"):
            client.query(members.tax.operator, members.tax.id, 1, 1, 1, {"company_id": "x"})
    finally:
        client.close()
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, reads the request, hangs up without a word
    port = listener.getsockname()[1]

    def hang_up() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    client = _client(f"http://127.0.0.1:{port}", consortium)
    try:
        with pytest.raises(OracleUnreachable) as unreachable:
            client.query(members.tax.operator, members.tax.id, 1, 1, 1, {"company_id": "x"})
        assert not isinstance(unreachable.value, OracleTimeout)
    finally:
        client.close()
        listener.close()
