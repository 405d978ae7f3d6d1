"""A `pendingtx worker` killed with SIGKILL mid-job on PostgreSQL: another worker takes the job over.

The kill lands at a known moment: the test row-locks the job (`SELECT ... FOR UPDATE`), which lets
the worker's in-flight chunk commit and then holds it at its next progress update, so the process is
always killed mid-job, inside an open chunk transaction, however fast the machine is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from pendingtx.bootstrap import build_runtime
from pendingtx.config import Settings
from tests.e2e.conftest import StartServer, StartWorker
from tests.e2e.server import (
    TERMINAL_STATUSES,
    Process,
    caller_headers,
    create_app_via_cli,
    pg_connect,
    pid_of_worker_id,
    submit_batch,
    wait_until,
)
from tests.support import record

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RECORDS = 5000
CHUNK = 100
# Every 41st record is rejected: a zero amount, or a misspelt member; the rest are valid.
INVALID = {i: ("amount" if i % 2 else "amont") for i in range(7, RECORDS, 41)}
VALID_IDS = {f"K-{i:05d}" for i in range(RECORDS) if i not in INVALID}


def worker_settings(lease_seconds: float) -> dict[str, str]:
    return {
        "PENDINGTX_WORKER_CHUNK_SIZE": str(CHUNK),
        "PENDINGTX_WORKER_LEASE_SECONDS": str(lease_seconds),
        "PENDINGTX_WORKER_POLL_SECONDS": "0.5",
    }


def big_batch() -> list[dict[str, Any]]:
    batch = []
    for i in range(RECORDS):
        overrides: dict[str, Any] = {"investorExternalId": f"INV-{i % 97}"}
        if INVALID.get(i) == "amount":
            overrides["amount"] = "0"
        elif INVALID.get(i) == "amont":
            overrides["amont"] = "5.00"
        batch.append(record(f"K-{i:05d}", **overrides))
    return batch


@pytest.fixture
def e2e_database_url(postgres_e2e_url: str) -> str:
    """Every process of these tests runs on the test's own PostgreSQL database."""
    return postgres_e2e_url


@pytest.fixture
def db(e2e_database_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with pg_connect(e2e_database_url) as conn:
        yield conn


@dataclass(frozen=True)
class JobRow:
    id: int
    status: str
    record_count: int
    processed_count: int
    created_count: int
    failed_count: int
    worker_id: str | None
    lease_until: datetime | None


JOB_COLUMNS = "id, status, record_count, processed_count, created_count, failed_count, worker_id, lease_until"


def job_row(conn: psycopg.Connection[tuple[Any, ...]], key: str, *, lock: bool = False) -> JobRow:
    row = conn.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE key = %s{' FOR UPDATE' if lock else ''}", (key,)
    ).fetchone()
    assert row is not None, key
    return JobRow(*row)


@dataclass(frozen=True)
class Claim:
    worker_id: str
    attempt: int
    claimed_at: datetime
    lease_until: datetime
    ended_at: datetime | None


def claims_of(conn: psycopg.Connection[tuple[Any, ...]], job_id: int) -> list[Claim]:
    rows = conn.execute(
        "SELECT worker_id, attempt, claimed_at, lease_until, ended_at FROM job_claims"
        " WHERE job_id = %s ORDER BY claimed_at, id",
        (job_id,),
    ).fetchall()
    return [Claim(*r) for r in rows]


@contextmanager
def job_frozen_mid_way(database_url: str, key: str) -> Iterator[tuple[psycopg.Connection[Any], JobRow]]:
    """Wait until the job is part-way done, then hold its row lock: its worker stalls at its next chunk.

    Taking the lock waits for the worker's in-flight chunk to commit, so the row read under the lock is
    the job's last committed progress, and it cannot move until the block ends.
    """
    with pg_connect(database_url) as watch:
        wait_until(lambda: job_row(watch, key).processed_count > 0, 20, interval=0.001, what="a first chunk")
    with pg_connect(database_url) as conn, conn.transaction():
        row = job_row(conn, key, lock=True)
        assert row.status == "In Progress", row
        assert 0 < row.processed_count < RECORDS, f"the job was not caught mid-way: {row}"
        yield conn, row


def kill_mid_job(database_url: str, key: str, victim: Process) -> JobRow:
    """SIGKILL the worker that holds the job while it is stalled mid-job; returns the job as left."""
    with job_frozen_mid_way(database_url, key) as (conn, row):
        assert pid_of_worker_id(row.worker_id) == victim.pid, (row.worker_id, victim.pid)
        victim.kill()
        left = job_row(conn, key)
    # Still "In Progress", still held by the dead process, with only whole chunks applied.
    assert left.status == "In Progress"
    assert pid_of_worker_id(left.worker_id) == victim.pid
    assert 0 < left.processed_count < RECORDS
    assert left.processed_count % CHUNK == 0
    return left


def wait_terminal(conn: psycopg.Connection[tuple[Any, ...]], key: str, timeout: float) -> JobRow:
    wait_until(
        lambda: job_row(conn, key).status in TERMINAL_STATUSES, timeout, interval=0.05, what=f"job {key}"
    )
    return job_row(conn, key)


def assert_job_done_exactly_once(
    conn: psycopg.Connection[tuple[Any, ...]], base_url: str, app: dict[str, str], key: str
) -> JobRow:
    """Every valid record stored exactly once, the invalid ones absent, counts and status body exact."""
    job = job_row(conn, key)
    assert (job.status, job.record_count, job.processed_count) == ("Partially Completed", RECORDS, RECORDS)
    assert (job.created_count, job.failed_count) == (len(VALID_IDS), len(INVALID))
    assert (job.worker_id, job.lease_until) == (None, None)

    repeated = conn.execute(
        "SELECT external_id, count(*) FROM transactions GROUP BY org_id, external_id HAVING count(*) > 1"
    ).fetchall()
    assert repeated == []
    stored = {r[0] for r in conn.execute("SELECT external_id FROM transactions WHERE job_id = %s", (job.id,))}
    assert stored == VALID_IDS

    problems = conn.execute(
        "SELECT record_index, field FROM job_problems WHERE job_id = %s ORDER BY record_index", (job.id,)
    ).fetchall()
    assert [r[0] for r in problems] == sorted(INVALID)
    assert {r[1] for r in problems} == {"amount", "amont"}

    with httpx.Client(base_url=base_url, timeout=10) as http:
        answer = http.get(f"/v1/jobs/insight/status/{key}", headers=caller_headers(http, app))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body)[:4] == ["status", "batchId", "message", "validationMessage"]
    assert body["status"] == "Partially Completed"
    assert body["batchId"] == str(job.id)
    assert body["message"] == (
        f"Partially Completed: {len(VALID_IDS)} of {RECORDS} transactions created; {len(INVALID)} rejected"
    )
    assert (body["recordCount"], body["processedCount"], body["failedCount"]) == (
        RECORDS,
        RECORDS,
        len(INVALID),
    )
    assert [d["index"] for d in body["validationDetails"]] == sorted(INVALID)
    assert len(body["validationMessage"]) == len(INVALID)
    assert body["validationMessage"][0].startswith("[7] externalId=K-00007: amount")
    assert "retry-after" not in answer.headers
    return job


def prove_worker_ready(conn: psycopg.Connection[tuple[Any, ...]], api_url: str, app: dict[str, str]) -> str:
    """Submit a one-record job and wait for it: only an idle worker past its start-up can have run it."""
    key = submit_batch(api_url, app, [record(f"READY-{uuid.uuid4().hex[:8]}")])
    assert wait_terminal(conn, key, 20).status == "Completed"
    (claim,) = claims_of(conn, job_row(conn, key).id)
    return claim.worker_id


def test_killed_worker_job_is_taken_over_by_another_worker_after_lease_expiry(
    e2e_database_url: str,
    db: psycopg.Connection[tuple[Any, ...]],
    start_server: StartServer,
    start_worker: StartWorker,
) -> None:
    """Takeover by lease expiry alone: the second worker was already running when the first died.

    A worker expires dead same-host workers' leases only once, when it starts; this one started (and
    proved it by running a job) before the kill, so it can only take the job over when the lease ends.
    """
    app = create_app_via_cli(e2e_database_url)
    api = start_server(no_worker=True)
    first = start_worker(worker_settings(3))
    key = submit_batch(api.base_url, app, big_batch())

    with job_frozen_mid_way(e2e_database_url, key) as (lock, row):
        assert pid_of_worker_id(row.worker_id) == first.pid
        # The first worker is stuck on our lock; a second worker starts and proves it is running.
        second = start_worker(worker_settings(3))
        ready_by = prove_worker_ready(db, api.base_url, app)
        assert pid_of_worker_id(ready_by) == second.pid
        first.kill()
        left = job_row(lock, key)
    assert left.status == "In Progress"
    assert pid_of_worker_id(left.worker_id) == first.pid
    assert 0 < left.processed_count < RECORDS
    assert left.processed_count % CHUNK == 0

    wait_terminal(db, key, 20)
    job = assert_job_done_exactly_once(db, api.base_url, app, key)

    dead, taker = claims_of(db, job.id)
    assert pid_of_worker_id(dead.worker_id) == first.pid
    assert pid_of_worker_id(taker.worker_id) == second.pid
    assert (dead.attempt, taker.attempt) == (1, 2)
    assert dead.ended_at is None  # it died holding the lease
    assert taker.ended_at is not None
    # No overlap: the takeover began only when the dead worker's (last renewed) lease had run out.
    assert taker.claimed_at >= dead.lease_until
    assert second.process.poll() is None, second.log()


def test_lease_expiry_alone_lets_a_worker_of_another_host_resume_the_job(
    e2e_database_url: str,
    db: psycopg.Connection[tuple[Any, ...]],
    start_server: StartServer,
    start_worker: StartWorker,
) -> None:
    """A worker whose id names another host never rescues this host's dead workers: only expiry helps."""
    lease_seconds = 3
    app = create_app_via_cli(e2e_database_url)
    api = start_server(no_worker=True)
    first = start_worker(worker_settings(lease_seconds))
    key = submit_batch(api.base_url, app, big_batch())
    left = kill_mid_job(e2e_database_url, key, first)
    assert left.lease_until is not None

    settings = Settings(
        database_url=e2e_database_url,
        worker_chunk_size=CHUNK,
        worker_lease_seconds=lease_seconds,
        worker_poll_seconds=0.5,
        log_level="warning",
    )
    runtime = build_runtime(settings, migrate=False)
    try:
        other = runtime.new_worker(worker_id=f"otherhost:1:{uuid.uuid4().hex[:8]}")
        # While the dead worker's lease runs, its job is nobody else's to take.
        if (left.lease_until - datetime.now(UTC)).total_seconds() > 0.5:
            assert other.run_once() is False
            assert job_row(db, key).worker_id == left.worker_id
        wait_until(
            lambda: datetime.now(UTC) > left.lease_until, lease_seconds + 2, interval=0.05, what="the lease"
        )
        assert other.run_until_idle() == 1
    finally:
        runtime.close()

    job = assert_job_done_exactly_once(db, api.base_url, app, key)
    dead, taker = claims_of(db, job.id)
    assert pid_of_worker_id(dead.worker_id) == first.pid
    assert taker.worker_id.startswith("otherhost:1:")
    assert (dead.attempt, taker.attempt, dead.ended_at) == (1, 2, None)
    assert taker.claimed_at >= dead.lease_until


def test_restarted_worker_rescues_a_dead_local_workers_job_at_once_and_the_audit_shows_no_overlap(
    e2e_database_url: str,
    db: psycopg.Connection[tuple[Any, ...]],
    start_server: StartServer,
    start_worker: StartWorker,
) -> None:
    """With a long lease, only the start-up rescue of dead same-host workers can explain a quick takeover.

    The claims audit must still show the first claim ending no later than the second began.
    """
    app = create_app_via_cli(e2e_database_url)
    api = start_server(no_worker=True)
    first = start_worker(worker_settings(120))
    key = submit_batch(api.base_url, app, big_batch())
    left = kill_mid_job(e2e_database_url, key, first)
    assert left.lease_until is not None

    second = start_worker(worker_settings(120))
    wait_terminal(db, key, 20)
    assert datetime.now(UTC) < left.lease_until, "the takeover should not have needed the lease to expire"
    job = assert_job_done_exactly_once(db, api.base_url, app, key)

    dead, taker = claims_of(db, job.id)
    assert pid_of_worker_id(dead.worker_id) == first.pid
    assert pid_of_worker_id(taker.worker_id) == second.pid
    assert (dead.attempt, taker.attempt) == (1, 2)
    # The rescue cut the dead worker's lease short; the audit row of its claim must say so.
    dead_until = dead.ended_at or dead.lease_until
    assert taker.claimed_at >= dead_until, (
        f"job_claims shows the dead worker's claim lasting until {dead_until.isoformat()} but the next"
        f" claim began at {taker.claimed_at.isoformat()}: the rescue did not end the old claim's audit row"
    )
