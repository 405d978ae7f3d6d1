"""End-to-end fixtures: real `pendingtx serve` processes on a temporary SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import databases
from tests.e2e.server import Process, Server

# Settings every e2e server runs with; a test may override any of them.
BASE_SETTINGS = {
    "PENDINGTX_WORKER_LEASE_SECONDS": "5",
    "PENDINGTX_WORKER_POLL_SECONDS": "0.2",
    "PENDINGTX_LOG_LEVEL": "info",
}

StartServer = Callable[..., Server]
StartWorker = Callable[..., Process]


@pytest.fixture
def e2e_database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'e2e.db'}"


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Process]]:
    """Every process a test starts; each is stopped at teardown, whatever happened."""
    processes: list[Process] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
def start_server(tmp_path: Path, e2e_database_url: str, started: list[Process]) -> StartServer:
    """Start `pendingtx serve` on the test's database and wait until it answers /healthz."""

    def start(settings: Mapping[str, str] | None = None, *, no_worker: bool = False) -> Server:
        server = Server(
            e2e_database_url,
            tmp_path / f"process-{len(started)}.log",
            {**BASE_SETTINGS, **(settings or {})},
            no_worker=no_worker,
        )
        started.append(server)
        server.wait_healthy()
        return server

    return start


@pytest.fixture
def start_worker(tmp_path: Path, e2e_database_url: str, started: list[Process]) -> StartWorker:
    """Start `pendingtx worker` on the test's database."""

    def start(settings: Mapping[str, str] | None = None) -> Process:
        worker = Process(
            ["worker", "--database-url", e2e_database_url],
            tmp_path / f"process-{len(started)}.log",
            {**BASE_SETTINGS, **(settings or {})},
        )
        started.append(worker)
        return worker

    return start


@pytest.fixture
def server(start_server: StartServer) -> Server:
    """One running server; its base URL is `server.base_url`."""
    return start_server()


@pytest.fixture
def base_url(server: Server) -> str:
    return server.base_url


# --- PostgreSQL end-to-end fixtures (appended) -----------------------------------------------------


@pytest.fixture
def postgres_e2e_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database `ptx_e2e_<random>` of its own, cloned from the session's migrated template.

    It is dropped WITH (FORCE) after the test; request it before any fixture that starts processes,
    so that they are stopped first. Skips (fails in CI) when no PostgreSQL server answers.
    """
    databases.require_postgres()
    template = request.getfixturevalue("postgres_databases").template
    name = f"ptx_e2e_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        databases.PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            yield sa.make_url(databases.PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
