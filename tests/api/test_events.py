"""`GET /v1/events` (contract 7.2): the organization's log replayed as pages and streamed as
server-sent events, resumable from `Last-Event-ID`, never another organization's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from tests.api.test_long_poll import org_of, submit
from tests.conftest import Served, assert_error, mint, register
from tests.e2e.server import wait_until

pytestmark = pytest.mark.usefixtures("cheap_argon2")

STREAM = {"Accept": "text/event-stream"}
DEADLINE = 20.0


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as executor:
        yield executor


def replay(client: TestClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    response = client.get(f"/v1/events{query}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ["data", "paging"]
    return body


def frames(text: str) -> list[dict[str, str]]:
    """The events of an SSE body (comments and blank frames left out)."""
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        if fields:
            found.append(fields)
    return found


def stream(
    client: TestClient, headers: dict[str, str], query: str = "", **extra: str
) -> list[dict[str, str]]:
    response = client.get(f"/v1/events{query}", headers={**headers, **STREAM, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return frames(response.text)


def test_the_log_is_replayed_in_order_paged_and_filtered(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    first = submit(client, headers, "E-1")
    second = submit(client, headers, "E-2")
    runtime.new_worker().run_until_idle()
    body = replay(client, headers)
    results = body["data"]["results"]
    assert [e["sequence"] for e in results] == list(range(1, 7))
    assert body["paging"] == {"limit": 100, "next": None}
    assert {e["data"]["jobStatusQueryKey"] for e in results} == {first, second}
    assert results[0]["type"] == "job.submitted"
    assert list(results[0]) == ["id", "sequence", "type", "createdAt", "data"]

    page = replay(client, headers, "?limit=4")
    assert [e["sequence"] for e in page["data"]["results"]] == [1, 2, 3, 4]
    assert page["paging"]["next"] == "/v1/events?limit=4&after=4"
    rest = replay(client, headers, page["paging"]["next"].removeprefix("/v1/events"))
    assert [e["sequence"] for e in rest["data"]["results"]] == [5, 6]
    assert rest["paging"]["next"] is None

    done = replay(client, headers, "?type=job.completed")["data"]["results"]
    assert [e["data"]["jobStatusQueryKey"] for e in done] == [first, second]
    assert all(e["type"] == "job.completed" for e in done)
    mine = replay(client, headers, f"?key={first}&after=1")["data"]["results"]
    assert [e["type"] for e in mine] == ["job.started", "job.completed"]


def test_another_organizations_events_and_keys_are_never_seen(
    client: TestClient, runtime: Runtime, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    mine = submit(client, headers, "M-1")
    theirs = submit(client, other_headers, "T-1")
    runtime.new_worker().run_until_idle()
    seen = replay(client, other_headers)["data"]["results"]
    assert {e["data"]["jobStatusQueryKey"] for e in seen} == {theirs}
    assert replay(client, other_headers, f"?key={mine}")["data"]["results"] == []
    # A stream of another organization's job has nothing to wait for: it ends at once, empty.
    assert stream(client, other_headers, f"?key={mine}") == []
    assert {f["id"] for f in stream(client, other_headers, f"?key={theirs}")} == {"1", "2", "3"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?after=-1", "after"),
        ("?after=x", "after"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?type=job.deleted", "type"),
        ("?type=job.started&type=job.completed", "type"),
        ("?after=1&after=2", "after"),
        ("?cursor=1", "cursor"),
        ("?key=not/a*key", "key"),
    ],
)
def test_bad_parameters_are_400(client: TestClient, headers: dict[str, str], query: str, field: str) -> None:
    for extra in ({}, STREAM):
        answer = client.get(f"/v1/events{query}", headers={**headers, **extra})
        body = assert_error(answer, 400, "request.validation.failure")
        assert [e["field"] for e in body["errors"]] == [field]


def test_a_bad_last_event_id_is_400_and_authentication_comes_first(
    client: TestClient, headers: dict[str, str]
) -> None:
    answer = client.get("/v1/events", headers={**headers, **STREAM, "Last-Event-ID": "abc"})
    body = assert_error(answer, 400, "request.validation.failure")
    assert body["errors"][0]["location"] == "header"
    assert_error(client.get("/v1/events?limit=0"), 401, "gateway.authentication.failure")


def test_a_job_stream_resumes_from_last_event_id_without_gap_or_duplicate(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    key = submit(client, headers, "R-1")
    submit(client, headers, "R-2")
    runtime.new_worker().run_until_idle()
    whole = stream(client, headers, f"?key={key}")
    assert [f["event"] for f in whole] == ["job.submitted", "job.started", "job.completed"]
    logged = replay(client, headers, f"?key={key}")["data"]["results"]
    assert [f["id"] for f in whole] == [str(e["sequence"]) for e in logged]
    assert "2" not in [f["id"] for f in whole]  # R-2 was submitted second: the key narrows the stream
    assert [json.loads(f["data"]) for f in whole] == logged
    for cut in range(len(whole)):
        resumed = stream(client, headers, f"?key={key}&after=0", **{"Last-Event-ID": whole[cut]["id"]})
        assert resumed == whole[cut + 1 :]


def test_a_stream_goes_live_and_a_job_stream_ends_after_its_completion(
    client: TestClient, runtime: Runtime, headers: dict[str, str], pool: ThreadPoolExecutor
) -> None:
    key = submit(client, headers, "L-1")
    org = org_of(runtime, headers)
    answer: Future[list[dict[str, str]]] = pool.submit(stream, client, headers, f"?key={key}")
    wait_until(lambda: runtime.events.held(org)[1] == 1, DEADLINE, what="the stream to open")
    runtime.new_worker().run_until_idle()
    got = answer.result(timeout=DEADLINE)
    assert [f["event"] for f in got] == ["job.submitted", "job.started", "job.completed"]
    assert runtime.events.held(org) == (0, 0)


def test_an_unfiltered_stream_resumes_live_and_ends_at_shutdown(
    client: TestClient, runtime: Runtime, headers: dict[str, str], pool: ThreadPoolExecutor
) -> None:
    submit(client, headers, "U-1")
    org = org_of(runtime, headers)
    answer = pool.submit(stream, client, headers, "", **{"Last-Event-ID": "1"})
    wait_until(lambda: runtime.events.held(org)[1] == 1, DEADLINE, what="the stream to open")
    submit(client, headers, "U-2")
    runtime.new_worker().run_until_idle()
    wait_until(lambda: len(replay(client, headers)["data"]["results"]) == 6, DEADLINE, what="the jobs")
    runtime.events.close()  # what the stop signal does (bootstrap.serve)
    got = answer.result(timeout=DEADLINE)
    assert [int(f["id"]) for f in got] == [2, 3, 4, 5, 6]


def test_excess_streams_of_one_organization_get_429_and_heartbeats_flow(
    serve_with: Any, pool: ThreadPoolExecutor
) -> None:
    served: Served = serve_with(max_event_streams_per_organization=1, event_heartbeat_seconds=0.05)
    creds = register(served.runtime)
    headers = {"Authorization": f"Bearer {mint(served.client, creds)}", "AppKey": creds.app_key}
    org = org_of(served.runtime, headers)
    lines: list[str] = []

    def listen() -> None:
        with served.client.stream("GET", "/v1/events", headers={**headers, **STREAM}) as response:
            for line in response.iter_lines():
                lines.append(line)

    opened = pool.submit(listen)
    wait_until(lambda: served.runtime.events.held(org)[1] == 1, DEADLINE, what="the stream to open")
    refused = served.client.get("/v1/events", headers={**headers, **STREAM})
    assert_error(refused, 429, "request.rate.limited")
    assert refused.headers["retry-after"]
    # A replay is no stream: never limited by them.
    assert served.client.get("/v1/events", headers=headers).status_code == 200
    wait_until(lambda: sum(line.startswith(":") for line in lines) >= 2, DEADLINE, what="two heartbeats")
    served.runtime.events.close()
    opened.result(timeout=DEADLINE)
    assert served.runtime.events.held(org) == (0, 0)
