"""SIGTERM during a large job: the process hands the job back at a chunk boundary and exits 0 in time;
a restarted process finishes the job, every record stored exactly once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from pendingtx.worker.pool import DEFAULT_SHUTDOWN_TIMEOUT
from tests.e2e.conftest import StartServer, StartWorker
from tests.e2e.server import Process, create_app_via_cli, submit_batch, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e

RECORDS = 5_000
CHUNK = 100
# The lease is far longer than the test: a restarted process must resume the job because it was
# handed back, not because a lease ran out.
SETTINGS = {"PENDINGTX_WORKER_CHUNK_SIZE": str(CHUNK), "PENDINGTX_WORKER_LEASE_SECONDS": "600"}


@contextmanager
def read_db(database_url: str) -> Iterator[sqlite3.Connection]:
    path = Path(database_url.removeprefix("sqlite:///"))
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
        yield conn


def job_row(database_url: str, key: str) -> dict[str, Any]:
    with read_db(database_url) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT id, status, record_count, processed_count, created_count, failed_count, worker_id,"
            " lease_until FROM jobs WHERE key = ?",
            (key,),
        ).fetchone()
    assert row is not None, key
    return dict(row)


def claims_of(database_url: str, job_id: int) -> list[tuple[int, bool]]:
    """(attempt, ended) of every claim of the job, in order."""
    with read_db(database_url) as conn:
        rows = conn.execute(
            "SELECT attempt, ended_at IS NOT NULL FROM job_claims WHERE job_id = ? ORDER BY id", (job_id,)
        ).fetchall()
    return [(int(a), bool(e)) for a, e in rows]


def stored_external_ids(database_url: str) -> list[str]:
    with read_db(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT external_id FROM transactions ORDER BY id")]


def json_lines(process: Process) -> list[dict[str, Any]]:
    """The process's log: every line must be one JSON object."""
    return [json.loads(line) for line in process.log().splitlines() if line.strip()]


def stop_in_time(process: Process) -> int:
    """SIGTERM; the exit status, which must come within the shutdown timeout."""
    began = time.monotonic()
    status = process.stop(timeout=DEFAULT_SHUTDOWN_TIMEOUT + 5)
    elapsed = time.monotonic() - began
    assert elapsed < DEFAULT_SHUTDOWN_TIMEOUT, f"took {elapsed:.1f} s to stop:\n{process.log()[-4000:]}"
    return status


def assert_handed_back(database_url: str, key: str) -> int:
    """The job stopped at a chunk boundary and is free for any worker now; returns records done."""
    row = job_row(database_url, key)
    assert row["status"] == "In Progress", row
    assert row["worker_id"] is None, row
    assert 0 < row["processed_count"] < RECORDS, row
    assert row["processed_count"] % CHUNK == 0, row
    assert row["created_count"] == row["processed_count"] == len(stored_external_ids(database_url))
    assert claims_of(database_url, row["id"]) == [(1, True)]
    return int(row["processed_count"])


def assert_completed_once(database_url: str, key: str, batch: list[dict[str, Any]]) -> None:
    row = job_row(database_url, key)
    counts = ("status", "record_count", "processed_count", "created_count", "failed_count", "worker_id")
    assert tuple(row[c] for c in counts) == ("Completed", RECORDS, RECORDS, RECORDS, 0, None)
    ids = stored_external_ids(database_url)
    assert len(ids) == len(set(ids)) == RECORDS
    assert sorted(ids) == sorted(r["externalId"] for r in batch)
    # Handing the job back gave its attempt back: the restart's claim is attempt 1 again.
    assert claims_of(database_url, row["id"]) == [(1, True), (1, True)]


@pytest.fixture
def batch() -> list[dict[str, Any]]:
    return [record(f"SD-{i:05d}", investorExternalId=f"INV-{i % 97}") for i in range(RECORDS)]


def test_sigterm_hands_the_job_back_and_a_restart_finishes_it(
    start_server: StartServer, e2e_database_url: str, batch: list[dict[str, Any]]
) -> None:
    app = create_app_via_cli(e2e_database_url)
    first = start_server(SETTINGS)
    key = submit_batch(first.base_url, app, batch)
    wait_until(lambda: job_row(e2e_database_url, key)["processed_count"] > 0, 30, interval=0.001)

    assert stop_in_time(first) == 0
    done = assert_handed_back(e2e_database_url, key)
    log = json_lines(first)
    released = [x for x in log if x.get("event") == "job.released"]
    assert [(x["reason"], x["processed"]) for x in released] == [("stopping", done)]
    assert any(x.get("logger") == "pendingtx.access" and x.get("route") == "/v1/transactions" for x in log)
    assert not [x for x in log if x["level"] in ("ERROR", "CRITICAL")], log
    # What the test's client sent never reaches the log.
    assert app["appSecret"] not in first.log()

    second = start_server(SETTINGS)
    wait_until(lambda: job_row(e2e_database_url, key)["status"] == "Completed", 30, what="the resumed job")
    assert_completed_once(e2e_database_url, key, batch)
    assert stop_in_time(second) == 0


def test_sigterm_stops_a_separate_worker_process_the_same_way(
    start_server: StartServer,
    start_worker: StartWorker,
    e2e_database_url: str,
    batch: list[dict[str, Any]],
) -> None:
    app = create_app_via_cli(e2e_database_url)
    server = start_server(SETTINGS, no_worker=True)
    key = submit_batch(server.base_url, app, batch)
    first = start_worker(SETTINGS)
    wait_until(lambda: job_row(e2e_database_url, key)["processed_count"] > 0, 30, interval=0.001)

    assert stop_in_time(first) == 0
    assert_handed_back(e2e_database_url, key)
    assert any(x.get("event") == "job.released" for x in json_lines(first))

    second = start_worker(SETTINGS)
    wait_until(lambda: job_row(e2e_database_url, key)["status"] == "Completed", 30, what="the resumed job")
    assert_completed_once(e2e_database_url, key, batch)
    assert stop_in_time(second) == 0
    assert stop_in_time(server) == 0


def test_an_idle_server_stops_at_once(start_server: StartServer) -> None:
    server = start_server()
    began = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - began < 3
    lines = json_lines(server)
    assert any(x["msg"].startswith("Finished server process") for x in lines), lines
