"""A server keeps what tokens resolve to in memory (on SQLite), yet a revocation or an application
disabled by another process is refused on its very next request: two real servers on one database,
and the `apps disable` command, on both databases.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.conftest import BASE_SETTINGS
from tests.e2e.server import (
    Process,
    Server,
    caller_headers,
    create_app_via_cli,
    run_cli,
    submit_batch,
    wait_until,
)
from tests.support import record

pytestmark = pytest.mark.e2e

DEADLINE = 30


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, e2e_database_url: str) -> str:
    if request.param == "sqlite":
        return e2e_database_url
    return str(request.getfixturevalue("postgres_e2e_url"))


@pytest.fixture
def two_servers(database: str, tmp_path: Path, started: list[Process]) -> tuple[Server, Server]:
    """One server with the worker, one without, on the same database."""
    first = Server(database, tmp_path / "first.log", BASE_SETTINGS)
    started.append(first)
    first.wait_healthy()
    second = Server(database, tmp_path / "second.log", BASE_SETTINGS, no_worker=True)
    started.append(second)
    second.wait_healthy()
    return first, second


def finished_job(server: Server, app: dict[str, str], headers: dict[str, str]) -> str:
    key = submit_batch(server.base_url, app, [record("E2E-KEPT-1")])
    with httpx.Client(base_url=server.base_url, timeout=10) as http:

        def done() -> bool:
            return http.get(f"/v1/jobs/insight/status/{key}", headers=headers).json()["status"] == "Completed"

        wait_until(done, DEADLINE, what="the job to complete")
    return key


def kept_status(server: Server, here: httpx.Client, app: dict[str, str], headers: dict[str, str]) -> str:
    """The status URL of a finished job, read through `here` until its answer and token are kept."""
    url = f"/v1/jobs/insight/status/{finished_job(server, app, headers)}"
    for _ in range(3):  # read, then kept
        assert here.get(url, headers=headers).status_code == 200
    return url


def revoke(server: httpx.Client, app: dict[str, str], headers: dict[str, str]) -> None:
    """Revoke the caller's token through `server`, as the application itself."""
    token = headers["Authorization"].removeprefix("Bearer ")
    revoked = server.post(
        "/v2/oauthtoken/revoke", data={"token": token}, auth=(app["appKey"], app["appSecret"])
    )
    assert revoked.status_code == 200, revoked.text


def test_a_token_revoked_through_another_server_is_refused_on_the_next_request(
    database: str, two_servers: tuple[Server, Server]
) -> None:
    first, second = two_servers
    app = create_app_via_cli(database)
    with (
        httpx.Client(base_url=first.base_url, timeout=10) as here,
        httpx.Client(base_url=second.base_url, timeout=10) as there,
    ):
        headers = caller_headers(here, app)
        url = kept_status(first, here, app, headers)
        revoke(there, app, headers)
        refused = here.get(url, headers=headers)
        assert refused.status_code == 401, refused.text
        assert here.get("/v1/transactions", headers=headers).status_code == 401


def test_an_application_disabled_by_the_cli_is_refused_on_the_next_request(
    database: str, two_servers: tuple[Server, Server]
) -> None:
    first, _ = two_servers
    app = create_app_via_cli(database)
    with httpx.Client(base_url=first.base_url, timeout=10) as here:
        headers = caller_headers(here, app)
        url = kept_status(first, here, app, headers)
        run_cli(["apps", "disable", app["appKey"], "--database-url", database])
        refused = here.get(url, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["message"] == "Application is disabled"


def _kill_listeners(database: str) -> int:
    """Terminate every connection of this database that sits in LISTEN; how many there were."""
    engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(killed)


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_on_postgresql_a_revocation_is_refused_with_every_listener_killed(
    database: str, two_servers: tuple[Server, Server]
) -> None:
    """PostgreSQL servers keep no token in memory, so nothing depends on NOTIFY reaching them."""
    first, second = two_servers
    app = create_app_via_cli(database)
    with (
        httpx.Client(base_url=first.base_url, timeout=10) as here,
        httpx.Client(base_url=second.base_url, timeout=10) as there,
    ):
        headers = caller_headers(here, app)
        url = kept_status(first, here, app, headers)
        assert _kill_listeners(database) >= 1
        revoke(there, app, headers)
        refused = here.get(url, headers=headers)
        assert refused.status_code == 401, refused.text
