"""Long-poll on the status endpoint (contract 7.1): `?wait=N` and `Prefer: wait=N` hold the answer
until the job is terminal, time passes, or the server stops; held reads cost no query each."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.domain.jobs import JobKind
from pendingtx.services import submissions
from pendingtx.services.authentication import Caller
from pendingtx.services.enqueue import enqueue
from pendingtx.storage import apps
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.events import CHANNEL as EVENTS_CHANNEL
from tests.conftest import Served, assert_error, mint, register
from tests.e2e.server import wait_until
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

UNKNOWN_KEY = "NjasfsdgTkkMDcvMjOTowMA=="
# Long enough that a read answered by the timeout, not the completion, fails the test's deadline.
LONG = 50
DEADLINE = 20.0


def submit(client: TestClient, headers: dict[str, str], external_id: str = "LP-1") -> str:
    answer = client.post("/v1/transactions", json=[record(external_id)], headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["jobStatusQueryKey"])


def status_url(key: str, query: str = "") -> str:
    return f"/v1/jobs/insight/status/{key}{query}"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=64) as executor:
        yield executor


def held(runtime: Runtime, org_id: int) -> int:
    return runtime.events.held(org_id)[0]


def caller_of(runtime: Runtime, headers: dict[str, str]) -> Caller:
    with runtime.uow.read() as conn:
        app = apps.find_app(conn, headers["AppKey"])
    assert app is not None
    return Caller(app.id, app.app_key, app.name, app.org_id)


def org_of(runtime: Runtime, headers: dict[str, str]) -> int:
    return caller_of(runtime, headers).org_id


def hold(
    pool: ThreadPoolExecutor, client: TestClient, url: str, headers: dict[str, str]
) -> Future[httpx.Response]:
    return pool.submit(client.get, url, headers=headers)


def test_a_held_read_answers_when_its_job_completes(
    client: TestClient, runtime: Runtime, headers: dict[str, str], pool: ThreadPoolExecutor
) -> None:
    key = submit(client, headers)
    org = org_of(runtime, headers)
    answer = hold(pool, client, status_url(key, f"?wait={LONG}"), headers)
    wait_until(lambda: held(runtime, org) == 1, DEADLINE, what="the read to be held")
    assert not answer.done()
    runtime.new_worker().run_until_idle()
    response = answer.result(timeout=DEADLINE)
    assert response.status_code == 200
    assert response.json()["status"] == "Completed"
    assert "retry-after" not in response.headers
    assert "preference-applied" not in response.headers
    assert held(runtime, org) == 0


def test_prefer_wait_is_applied_and_said_so(
    client: TestClient, runtime: Runtime, headers: dict[str, str], pool: ThreadPoolExecutor
) -> None:
    key = submit(client, headers)
    org = org_of(runtime, headers)
    answer = hold(pool, client, status_url(key), {**headers, "Prefer": f"respond-async, wait={LONG}"})
    wait_until(lambda: held(runtime, org) == 1, DEADLINE, what="the read to be held")
    runtime.new_worker().run_until_idle()
    response = answer.result(timeout=DEADLINE)
    assert response.json()["status"] == "Completed"
    assert response.headers["preference-applied"] == f"wait={LONG}"


def test_a_wait_that_passes_answers_as_usual_with_retry_after(
    client: TestClient, headers: dict[str, str]
) -> None:
    key = submit(client, headers)
    response = client.get(status_url(key, "?wait=1"), headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "Submitted"
    assert response.headers["retry-after"] == "1"


def test_a_terminal_job_and_an_unknown_key_answer_at_once(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    key = submit(client, headers)
    runtime.new_worker().run_until_idle()
    response = client.get(status_url(key, f"?wait={LONG}"), headers=headers)
    assert response.json()["status"] == "Completed"
    assert_error(
        client.get(status_url(UNKNOWN_KEY, f"?wait={LONG}"), headers=headers), 404, "resource.not.found"
    )


@pytest.mark.parametrize(
    "query", ["?wait=61", "?wait=-1", "?wait=x", "?wait=", "?wait=1.5", "?wait=1&wait=2"]
)
def test_a_bad_wait_is_400(client: TestClient, headers: dict[str, str], query: str) -> None:
    key = submit(client, headers)
    body = assert_error(
        client.get(status_url(key, query), headers=headers), 400, "request.validation.failure"
    )
    assert [(e["field"], e["location"]) for e in body["errors"]] == [("wait", "query")]


def test_a_bad_wait_does_not_come_before_authentication(client: TestClient) -> None:
    assert_error(client.get(status_url(UNKNOWN_KEY, "?wait=99")), 401, "gateway.authentication.failure")


@pytest.mark.parametrize("prefer", ["wait=abc", "wait", "wait=-3", "return=minimal"])
def test_an_unreadable_prefer_is_ignored(client: TestClient, headers: dict[str, str], prefer: str) -> None:
    key = submit(client, headers)
    response = client.get(status_url(key), headers={**headers, "Prefer": prefer})
    assert response.status_code == 200
    assert response.json()["status"] == "Submitted"
    assert "preference-applied" not in response.headers


def test_query_wait_decides_over_prefer_and_a_long_prefer_is_capped(
    client: TestClient, headers: dict[str, str]
) -> None:
    key = submit(client, headers)
    response = client.get(status_url(key, "?wait=0"), headers={**headers, "Prefer": "wait=3600"})
    assert response.json()["status"] == "Submitted"
    assert "preference-applied" not in response.headers


def test_excess_held_reads_of_one_organization_get_429(
    serve_with: Any, runtime: Runtime, pool: ThreadPoolExecutor
) -> None:
    served: Served = serve_with(max_waiting_per_organization=2)
    creds = register(served.runtime)
    headers = {"Authorization": f"Bearer {mint(served.client, creds)}", "AppKey": creds.app_key}
    other = register(served.runtime, name="other-app", org="other")
    other_headers = {"Authorization": f"Bearer {mint(served.client, other)}", "AppKey": other.app_key}
    keys = [submit(served.client, headers, f"LP-{i}") for i in range(3)]
    org = org_of(served.runtime, headers)
    answers = [hold(pool, served.client, status_url(k, f"?wait={LONG}"), headers) for k in keys[:2]]
    wait_until(lambda: held(served.runtime, org) == 2, DEADLINE, what="two reads to be held")
    refused = served.client.get(status_url(keys[2], f"?wait={LONG}"), headers=headers)
    assert_error(refused, 429, "request.rate.limited")
    assert refused.headers["retry-after"] == "1"
    # Another organization is not limited by this one's, and a read without wait never is.
    theirs = submit(served.client, other_headers, "OT-1")
    assert served.client.get(status_url(theirs, "?wait=1"), headers=other_headers).status_code == 200
    assert served.client.get(status_url(keys[2]), headers=headers).status_code == 200
    served.runtime.new_worker().run_until_idle()
    assert [a.result(timeout=DEADLINE).json()["status"] for a in answers] == ["Completed", "Completed"]


def test_closing_the_event_bus_answers_held_reads_at_once(
    client: TestClient, runtime: Runtime, headers: dict[str, str], pool: ThreadPoolExecutor
) -> None:
    keys = [submit(client, headers, f"SD-{i}") for i in range(5)]
    org = org_of(runtime, headers)
    answers = [hold(pool, client, status_url(k, f"?wait={LONG}"), headers) for k in keys]
    wait_until(lambda: held(runtime, org) == 5, DEADLINE, what="the reads to be held")
    runtime.events.close()  # what the stop signal does (bootstrap.serve)
    for answer in answers:
        response = answer.result(timeout=DEADLINE)
        assert response.json()["status"] == "Submitted"
        assert response.headers["retry-after"] == "1"


def test_held_reads_cost_one_query_per_news_not_one_per_read(
    client: TestClient, runtime: Runtime, headers: dict[str, str], pool: ThreadPoolExecutor
) -> None:
    n = 20
    keys = [submit(client, headers, f"Q-{i}") for i in range(n)]
    org = org_of(runtime, headers)
    answers = [hold(pool, client, status_url(k, f"?wait={LONG}"), headers) for k in keys]
    wait_until(lambda: held(runtime, org) == n, DEADLINE, what="the reads to be held")

    statements: list[str] = []
    main = threading.current_thread()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.current_thread() is not main:
            statements.append(statement)

    sa.event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        reads = runtime.events.reads
        # News for the organization (another job accepted) while n reads are held: one read of the
        # log tells that none of theirs completed; nothing else is read for them.
        submit_directly(runtime, headers)
        # The bus counts a read as it starts it: wait for its statement too.
        wait_until(lambda: runtime.events.reads > reads and statements, DEADLINE, what="the news to be read")
        assert len(statements) == 1, statements
        assert "events" in statements[0]
        assert all(not a.done() for a in answers)
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", count)
    runtime.new_worker().run_until_idle()
    assert {a.result(timeout=DEADLINE).json()["status"] for a in answers} == {"Completed"}


def submit_directly(runtime: Runtime, headers: dict[str, str]) -> None:
    """Accept a job on this (the test's) thread, as another client's submission would be."""
    job = submissions.batch_job(msgspec.json.encode([record("NEWS-1")]), kind=JobKind.CREATE, max_records=10)
    caller = caller_of(runtime, headers)
    enqueue(runtime.uow, caller, job, idempotency=None, clock=runtime.clock, notify=runtime.notify_workers)


def listening_backends(runtime: Runtime) -> int:
    """Connections to the test's database that LISTEN for events (their last statement says so)."""
    with runtime.engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query = 'LISTEN ' || :channel"
            ),
            {"channel": EVENTS_CHANNEL},
        ).scalar_one()
    return int(found)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_listening_starts_with_the_first_held_read_and_hears_other_processes(
    client: TestClient,
    runtime: Runtime,
    settings: Settings,
    headers: dict[str, str],
    pool: ThreadPoolExecutor,
) -> None:
    key = submit(client, headers)
    # Serving without a held read costs no listening backend (one woken at every commit otherwise).
    assert listening_backends(runtime) == 0
    answer = hold(pool, client, status_url(key, f"?wait={LONG}"), headers)
    wait_until(lambda: held(runtime, org_of(runtime, headers)) == 1, DEADLINE, what="the read to be held")
    wait_until(lambda: listening_backends(runtime) == 1, DEADLINE, what="the process to listen")
    # Another process completes the job: its NOTIFY is the only news this process gets of it.
    other = Runtime(settings=settings, engine=make_engine(settings), clock=runtime.clock)
    try:
        other.new_worker().run_until_idle()
    finally:
        other.close()
    response = answer.result(timeout=DEADLINE)
    assert response.json()["status"] == "Completed"
