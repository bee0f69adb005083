"""The sample department APIs, as real HTTP servers."""

from __future__ import annotations

import httpx

from devtools.sample_data import COMPANY_FIELDS, RESIDENT_FIELDS, companies, resident_check_digit, residents


def test_generated_data_is_fixed_and_well_formed() -> None:
    assert companies(50) == companies(50)
    people = residents(500)
    assert all(p["id_number"][-1] == resident_check_digit(p["id_number"][:17]) for p in people)
    assert all(len(p["id_number"]) == 18 for p in people)
    assert set(companies(1)[0]) == set(COMPANY_FIELDS) and set(people[0]) == set(RESIDENT_FIELDS)
    assert len({c["company_id"] for c in companies()}) == 3000


def test_lookup_by_key_and_filters(company_api: str) -> None:
    target = companies()[1234]
    reply = httpx.get(f"{company_api.url}/companies", params={"company_id": target["company_id"]})
    assert reply.status_code == 200
    assert reply.json() == {"records": [target]}
    by_status = httpx.get(f"{company_api.url}/companies", params={"status": "吊销", "limit": 5}).json()["records"]
    assert len(by_status) == 5 and all(r["status"] == "吊销" for r in by_status)
    assert httpx.get(f"{company_api.url}/health").json() == {"status": "ok", "records": 3000}


def test_resident_lookup(resident_api: str) -> None:
    person = residents()[7]
    reply = httpx.get(f"{resident_api.url}/residents", params={"id_number": person["id_number"]})
    assert reply.json()["records"] == [person]
    assert httpx.get(f"{resident_api.url}/residents", params={"id_number": "000"}).json() == {"records": []}


def test_bad_queries_are_400(company_api: str) -> None:
    assert httpx.get(f"{company_api.url}/companies", params={"salary": "1"}).status_code == 400
    assert httpx.get(f"{company_api.url}/companies", params={"limit": "x"}).status_code == 400


def test_the_registries_answer_on_the_event_loop() -> None:
    """Their handlers do no I/O, so they are coroutines: a plain ``def`` would send every request to
    a worker thread and back (the benchmark's baseline and the oracle's relay both pay for that)."""
    import inspect

    from fastapi.routing import APIRoute

    from devtools.sample_apis import company_registry_app, resident_registry_app

    for app in (company_registry_app(10), resident_registry_app(10)):
        endpoints = [route.endpoint for route in app.routes if isinstance(route, APIRoute)]
        assert len(endpoints) == 2 and all(inspect.iscoroutinefunction(e) for e in endpoints)
