"""The API service's ``GET /metrics``: the real app over real HTTP, scraped and parsed with
prometheus-client's own parser. Requests are counted under their route template (never the raw
path), method and status class, and timed; queries to a real oracle by outcome; a chain that cannot
be reached; the settings that close or remove the route; no label carries an id, an account or a path."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.settings import ApiSettings, token_sha256
from devtools.devnet import free_port
from devtools.sample_data import companies
from tests.api.conftest import RunningApi, assert_problem
from tests.oracle.conftest import published, samr_oracle  # noqa: F401 - fixtures: a dataset, a grant to tax, SAMR's oracle

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: RunningApi, **headers: str) -> Samples:
    reply = api.http.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def test_requests_are_counted_by_route_template_method_and_status_class(consortium, members, serve_api):
    api = serve_api([members.tax.operator])
    tax = members.tax.operator
    for _ in range(2):
        assert api.get(None, "/v1/health").status_code == 200
    for dataset_id in (1, 2, 3):  # three raw paths, one template
        assert_problem(api.get(tax, f"/v1/datasets/{dataset_id}"), 404)
    assert api.get(tax, "/v1/grants").status_code == 200
    assert_problem(api.get(None, "/v1/grants"), 401)
    assert_problem(api.get(tax, "/v1/no-such-thing/42"), 404)
    assert_problem(api.post(tax, "/v1/grants", json={"dataset_id": 1}), 422)
    assert_problem(api.request(tax, "PROPFIND", "/v1/grants"), 405)  # a method outside the usual set: "other"

    samples = scrape(api)
    requests = {(dict(k)["route"], dict(k)["method"], dict(k)["status"]): v
                for k, v in series(samples, "govshare_api_requests_total").items()}
    assert requests == {
        ("/v1/health", "GET", "2xx"): 2,
        ("/v1/datasets/{dataset_id}", "GET", "4xx"): 3,
        ("/v1/grants", "GET", "2xx"): 1,
        ("/v1/grants", "GET", "4xx"): 1,
        ("unrouted", "GET", "4xx"): 1,
        ("/v1/grants", "POST", "4xx"): 1,
        ("/v1/grants", "other", "4xx"): 1,
    }
    assert value(samples, "govshare_api_request_seconds_count", route="/v1/datasets/{dataset_id}", method="GET") == 3
    assert value(samples, "govshare_api_request_seconds_count", route="/v1/health", method="GET") == 2
    assert value(samples, "govshare_api_request_seconds_bucket", route="/v1/health", method="GET", le="+Inf") == 2
    assert 0 < value(samples, "govshare_api_request_seconds_sum", route="/v1/health", method="GET") < 10
    for name, labels in samples:
        for label, text in labels:
            assert label in {"route", "method", "status", "outcome", "le"}, (name, label)
            assert not re.search(r"0x[0-9a-fA-F]{6,}|/v1/datasets/\d|/42", text), (name, label, text)
    # the scrape itself is counted by the next one
    assert value(scrape(api), "govshare_api_requests_total", route="/metrics", method="GET", status="2xx") == 1


def test_queries_to_oracles_are_counted_by_outcome(consortium, members, serve_api, published, samr_oracle, company_api):  # noqa: F811
    tax = members.tax.operator
    api = serve_api([tax], oracle_urls={"SAMR": samr_oracle.url})
    target = companies()[3]["company_id"]
    reply = api.post(tax, "/v1/queries", json={"grant_id": published.tax_grant, "params": {"company_id": target}})
    assert reply.status_code == 200, reply.text
    refused = api.post(tax, "/v1/queries", json={"grant_id": published.tax_grant, "params": {"company_id": target},
                                                 "fields": ["company_id", "legal_representative"]})
    assert_problem(refused, 403, "oracle-refused")
    samples = scrape(api)
    assert {dict(k)["outcome"]: v for k, v in series(samples, "govshare_api_oracle_calls_total").items()} == {
        "served": 1, "refused": 1, "bad_answer": 0, "timeout": 0, "unreachable": 0}
    assert value(samples, "govshare_api_oracle_call_seconds_count") == 2
    assert value(samples, "govshare_api_requests_total", route="/v1/queries", method="POST", status="2xx") == 1
    assert value(samples, "govshare_api_requests_total", route="/v1/queries", method="POST", status="4xx") == 1

    # an oracle URL where nothing listens, and one where something that is not an oracle answers
    down = serve_api([tax], oracle_urls={"SAMR": f"http://127.0.0.1:{free_port()}"})
    assert_problem(down.post(tax, "/v1/queries", json={"grant_id": published.tax_grant, "params": {"company_id": target}}),
                   502, "oracle-unreachable")
    wrong = serve_api([tax], oracle_urls={"SAMR": company_api.url})
    assert_problem(wrong.post(tax, "/v1/queries", json={"grant_id": published.tax_grant, "params": {"company_id": target}}),
                   502, "oracle-bad-answer")
    assert value(scrape(down), "govshare_api_oracle_calls_total", outcome="unreachable") == 1
    assert value(scrape(wrong), "govshare_api_oracle_calls_total", outcome="bad_answer") == 1
    assert value(scrape(api), "govshare_api_oracle_calls_total", outcome="unreachable") == 0  # a registry per service


def test_a_chain_that_cannot_be_reached_is_counted(consortium, members, serve_api, tmp_path: Path):
    manifest = consortium.deployment.save(tmp_path)
    api = serve_api([members.tax.operator], connect=None, rpc_url=f"http://127.0.0.1:{free_port()}", manifest=manifest)
    for _ in range(2):
        assert_problem(api.get(members.tax.operator, "/v1/datasets"), 503, "chain-unavailable")
    assert api.get(None, "/v1/health").json()["status"] == "degraded"
    samples = scrape(api)  # the metrics need no chain
    assert value(samples, "govshare_api_chain_unavailable_total") == 2
    assert value(samples, "govshare_api_requests_total", route="/v1/datasets", method="GET", status="5xx") == 2


def test_metrics_can_ask_for_a_token_or_be_off(consortium, members, serve_api):
    token = secrets.token_urlsafe(32)
    closed = serve_api([members.tax.operator], metrics_token_sha256=token_sha256(token))
    assert_problem(closed.http.get("/metrics"), 401, "unauthenticated")
    # an account's token is not the metrics' token
    assert_problem(closed.get(members.tax.operator, "/metrics"), 401, "unauthenticated")
    assert_problem(closed.http.get("/metrics", headers={"Authorization": f"Bearer {token}x"}), 401)
    samples = scrape(closed, Authorization=f"Bearer {token}")
    assert value(samples, "govshare_api_requests_total", route="/metrics", method="GET", status="4xx") == 3
    # OpenMetrics when the scraper asks for it
    reply = closed.http.get("/metrics", headers={"Authorization": f"Bearer {token}",
                                                 "Accept": "application/openmetrics-text; version=1.0.0"})
    assert reply.headers["content-type"].startswith("application/openmetrics-text") and reply.text.rstrip().endswith("# EOF")

    off = serve_api([members.tax.operator], metrics_enabled=False)
    assert_problem(off.http.get("/metrics"), 404, "not-found")
    assert off.get(None, "/v1/health").status_code == 200
    assert "/metrics" not in off.get(None, "/openapi.json").json()["paths"]
    assert "/metrics" not in closed.get(None, "/openapi.json").json()["paths"]  # not part of the API's contract


def test_a_placeholder_metrics_token_is_refused():
    with pytest.raises(ValueError, match="metrics_token_sha256 is the hash of a well-known placeholder"):
        ApiSettings(rpc_url="http://x", metrics_token_sha256=token_sha256("changeme"))
    assert ApiSettings(rpc_url="http://x", metrics_token_sha256=token_sha256("changeme"), development=True)
    assert ApiSettings(rpc_url="http://x").metrics_enabled is True
    with pytest.raises(ValueError, match="metrics_token_sha256"):
        ApiSettings(rpc_url="http://x", metrics_token_sha256="abc")


def test_metrics_answer_over_plain_http_without_credentials(consortium, members, serve_api):
    api = serve_api([members.tax.operator])
    reply = httpx.get(f"{api.url}/metrics", trust_env=False)
    assert reply.status_code == 200 and "govshare_api_requests_total" in reply.text
