"""Tokens and terminal answers kept in memory are never stale: a change made by another process
(here another runtime over the same database, with its own connections) is seen on the very next
request, on both databases; and on SQLite, where they are kept, repeated status reads read nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime, build_app
from pendingtx.config import Settings
from pendingtx.domain.networks import parse_network
from pendingtx.services import credentials, retention
from pendingtx.storage import apps
from pendingtx.storage.driver.engine import make_engine
from tests.conftest import AppCreds, assert_error
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")


@pytest.fixture
def elsewhere(settings: Settings, clock: FakeClock) -> Iterator[Runtime]:
    """Another process's view of the test's database: its own engine, connections and memory."""
    rt = Runtime(settings=settings, engine=make_engine(settings), clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def finished(client: TestClient, runtime: Runtime, headers: dict[str, str]) -> str:
    """The key of a Completed job whose status was read twice (so kept, where anything is kept)."""
    accepted = client.post("/v1/transactions", json=[record("KT-1")], headers=headers)
    assert accepted.status_code == 202, accepted.text
    key = str(accepted.json()["jobStatusQueryKey"])
    runtime.new_worker().run_until_idle()
    for _ in range(2):
        assert status(client, headers, key).json()["status"] == "Completed"
    return key


def status(client: TestClient, headers: dict[str, str], key: str) -> Any:
    return client.get(f"/v1/jobs/insight/status/{key}", headers=headers)


def app_of(runtime: Runtime, creds: AppCreds) -> Any:
    with runtime.uow.read() as conn:
        return apps.find_app(conn, creds.app_key)


def test_a_token_revoked_elsewhere_is_refused_on_the_next_request(
    client: TestClient, elsewhere: Runtime, app_creds: AppCreds, headers: dict[str, str], finished: str
) -> None:
    token = headers["Authorization"].removeprefix("Bearer ")
    assert credentials.revoke_token(elsewhere.uow, app_of(elsewhere, app_creds), token, clock=elsewhere.clock)
    assert_error(status(client, headers, finished), 401, "gateway.authentication.failure")
    assert_error(client.get("/v1/transactions", headers=headers), 401, "gateway.authentication.failure")


def test_an_application_disabled_elsewhere_is_refused_on_the_next_request(
    client: TestClient, elsewhere: Runtime, app_creds: AppCreds, headers: dict[str, str], finished: str
) -> None:
    assert credentials.set_disabled(elsewhere.uow, app_creds.app_key, disabled=True)
    refused = assert_error(status(client, headers, finished), 401, "gateway.authentication.failure")
    assert refused["message"] == "Application is disabled"
    assert_error(client.get("/v1/transactions", headers=headers), 401, "gateway.authentication.failure")
    assert credentials.set_disabled(elsewhere.uow, app_creds.app_key, disabled=False)
    assert status(client, headers, finished).status_code == 200


def test_an_allow_list_changed_elsewhere_applies_on_the_next_request(
    client: TestClient, elsewhere: Runtime, app_creds: AppCreds, headers: dict[str, str], finished: str
) -> None:
    networks = [parse_network("203.0.113.0/24")]
    assert credentials.set_allowed_networks(elsewhere.uow, app_creds.app_key, networks)
    assert_error(status(client, headers, finished), 403, "gateway.access.failure")


def test_a_kept_answer_of_a_job_deleted_elsewhere_becomes_410(
    client: TestClient, elsewhere: Runtime, headers: dict[str, str], finished: str, clock: FakeClock
) -> None:
    period = timedelta(seconds=1)  # the sweep of another process, with a short retention period
    clock.advance(2)
    assert retention.sweep(elsewhere.uow, retention_period=period, clock=elsewhere.clock) == 1
    assert_error(status(client, headers, finished), 410, "resource.gone")


def test_a_token_used_elsewhere_is_not_refused_for_idleness_seen_here(
    client: TestClient,
    runtime: Runtime,
    elsewhere: Runtime,
    headers: dict[str, str],
    finished: str,
    clock: FakeClock,
) -> None:
    idle = runtime.lifetimes.idle.total_seconds()
    clock.advance(idle * 0.9)
    with TestClient(build_app(elsewhere), base_url="http://127.0.0.1") as there:
        assert status(there, headers, finished).status_code == 200  # writes down the use there
    clock.advance(idle * 0.2)  # idle for 1.1 lifetimes by what this process last saw of the token
    assert status(client, headers, finished).status_code == 200
    clock.advance(idle + 1)
    expired = assert_error(status(client, headers, finished), 401, "gateway.authentication.failure")
    assert expired["message"] == "Access Token expired"


# --- what keeping saves (SQLite only: PostgreSQL keeps nothing) ------------------------------------


def counted(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements this runtime's request path runs outside transactions, as they run."""
    ran: list[str] = []
    detached = runtime.detached

    def counting(run: Callable[..., Any]) -> Callable[..., Any]:
        def run_counted(statement: Any, values: Any) -> Any:
            ran.append(str(statement.compiled(detached.dialect).sql))
            return run(statement, values)

        return run_counted

    for name in ("one", "all", "count"):
        monkeypatch.setattr(detached, name, counting(getattr(detached, name)))
    return ran


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_repeated_reads_of_a_finished_job_read_nothing_until_something_is_committed(
    client: TestClient,
    runtime: Runtime,
    elsewhere: Runtime,
    headers: dict[str, str],
    other_headers: dict[str, str],
    finished: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = counted(runtime, monkeypatch)
    for _ in range(3):
        assert status(client, headers, finished).json()["status"] == "Completed"
    assert client.get("/v1/transactions", headers=headers).status_code == 200
    assert not [sql for sql in ran if "tokens" in sql or "jobs" in sql], ran
    # A commit elsewhere that changes nothing kept: one read of the generation, then none again.
    assert client.post("/v1/transactions", json=[record("KT-2")], headers=other_headers).status_code == 202
    ran.clear()
    for _ in range(3):
        assert status(client, headers, finished).json()["status"] == "Completed"
    assert len(ran) == 1, ran
    assert "cache_generation" in ran[0]


def test_postgresql_keeps_nothing(runtime: Runtime) -> None:
    assert runtime.reads.keeps is runtime.uow.rules.embedded


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_after_a_change_that_leaves_the_answer_standing_it_is_kept_again_at_once(
    client: TestClient,
    runtime: Runtime,
    elsewhere: Runtime,
    app_creds: AppCreds,
    headers: dict[str, str],
    finished: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert status(client, headers, finished).status_code == 200
    # The organization's generation moves, but nothing this caller sees changes.
    assert credentials.set_allowed_networks(elsewhere.uow, app_creds.app_key, [])
    ran = counted(runtime, monkeypatch)
    for _ in range(3):
        assert status(client, headers, finished).json()["status"] == "Completed"
    # Read again once (the generation, the token, the job), then nothing: the answer is stamped anew.
    assert [sql for sql in ran if "jobs" in sql], ran
    ran.clear()
    assert status(client, headers, finished).status_code == 200
    assert ran == [], ran
