"""A server killed with SIGKILL mid-job: the restarted server finishes the job, nothing twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import StartServer
from tests.e2e.server import Server, caller_headers, create_app_via_cli, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e

RECORDS = 500
# Chunks of 50 commit ten times per job, so the kill may land between any two of them. The lease is
# far longer than the test may take: the restarted server must rescue the job because its holder's
# process is dead, not because the lease ran out.
SETTINGS = {"PENDINGTX_WORKER_CHUNK_SIZE": "50", "PENDINGTX_WORKER_LEASE_SECONDS": "600"}


@contextmanager
def read_db(database_url: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the service's SQLite file, straight through the stdlib driver."""
    path = Path(database_url.removeprefix("sqlite:///"))
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
        yield conn


def job_row(database_url: str, key: str) -> tuple[str, int, int, int, int, str | None]:
    with read_db(database_url) as conn:
        row = conn.execute(
            "SELECT status, record_count, processed_count, created_count, failed_count, worker_id"
            " FROM jobs WHERE key = ?",
            (key,),
        ).fetchone()
    assert row is not None, key
    return row  # type: ignore[no-any-return]


def stored_external_ids(database_url: str) -> list[str]:
    with read_db(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT external_id FROM transactions ORDER BY id")]


def submit(server: Server, app: dict[str, str], batch: list[dict[str, object]]) -> str:
    """Mint a token and POST the batch; returns the job key as soon as the 202 arrives."""
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        accepted = http.post("/v1/transactions", json=batch, headers=headers)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["jobStatusQueryKey"])


def assert_consistent(database_url: str, key: str) -> tuple[str, int]:
    """Whatever the moment of death: what is stored matches the job's committed progress exactly."""
    status, record_count, processed, created, failed, _ = job_row(database_url, key)
    ids = stored_external_ids(database_url)
    assert record_count == RECORDS
    assert len(ids) == len(set(ids)) == created == processed
    assert failed == 0
    assert processed == RECORDS or processed % 50 == 0
    return status, processed


@pytest.mark.parametrize("moment", ["right-after-202", "mid-job"])
def test_job_survives_sigkill_and_restart(
    start_server: StartServer, e2e_database_url: str, moment: str
) -> None:
    app = create_app_via_cli(e2e_database_url)
    batch = [record(f"R-{i:04d}", investorExternalId=f"INV-{i}") for i in range(RECORDS)]
    first = start_server(SETTINGS)
    key = submit(first, app, batch)
    if moment == "mid-job":
        wait_until(lambda: job_row(e2e_database_url, key)[2] > 0, 10, interval=0.001, what="a first chunk")
    first.kill()

    status, processed = assert_consistent(e2e_database_url, key)
    if moment == "mid-job":
        # The dead process still holds the job's lease, for another ten minutes.
        assert status == "In Progress"
        assert 0 < processed < RECORDS
        assert f":{first.pid}:" in (job_row(e2e_database_url, key)[5] or "")

    second = start_server(SETTINGS)
    wait_until(lambda: job_row(e2e_database_url, key)[0] == "Completed", 15, what="the job to complete")
    assert second.process.poll() is None

    status, record_count, processed, created, failed, worker_id = job_row(e2e_database_url, key)
    assert (status, record_count, processed, created, failed, worker_id) == (
        "Completed",
        RECORDS,
        RECORDS,
        RECORDS,
        0,
        None,
    )
    ids = stored_external_ids(e2e_database_url)
    assert sorted(ids) == sorted(r["externalId"] for r in batch)
    assert len(ids) == len(set(ids)) == RECORDS

    with httpx.Client(base_url=second.base_url, timeout=10) as http:
        headers = caller_headers(http, app)
        answer = http.get(f"/v1/jobs/insight/status/{key}", headers=headers)
        story = http.get("/v1/events", params={"key": key, "limit": 500}, headers=headers)
    assert answer.status_code == 200, answer.text
    # The log tells the story once, however the job was taken over: one start, one end, and a
    # progress event per chunk committed (none repeated by the takeover).
    assert story.status_code == 200, story.text
    events = story.json()["data"]["results"]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["job.submitted", "job.started"]
    assert kinds[-1] == "job.completed"
    assert kinds.count("job.completed") == 1
    assert kinds.count("job.started") == 1
    progress = [e["data"]["processedCount"] for e in events if e["type"] == "job.progress"]
    assert progress == sorted(set(progress))
    assert [e["sequence"] for e in events] == sorted({e["sequence"] for e in events})
    body = answer.json()
    assert (body["status"], body["recordCount"], body["processedCount"], body["failedCount"]) == (
        "Completed",
        RECORDS,
        RECORDS,
        0,
    )
    assert body["validationMessage"] == []
