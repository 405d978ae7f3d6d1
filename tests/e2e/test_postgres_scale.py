"""Scale-out on PostgreSQL: 2 `serve --no-worker` processes, 3 `worker` processes, 200 jobs at once.

Every job must reach a terminal status, every valid record must be stored exactly once (externalIds
shared by several jobs: by exactly one of them), and the claims audit must show that no job was ever
held by two workers at the same time.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import StartServer, StartWorker
from tests.e2e.server import (
    TERMINAL_STATUSES,
    caller_headers,
    create_app_via_cli,
    pg_connect,
    pid_of_worker_id,
    submit_batch,
    wait_until,
)
from tests.support import record

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

JOBS = 200
RECORDS = 50
SUBMITTERS = 16
SHARED = 40  # externalIds that each appear in several jobs
SETTINGS = {"PENDINGTX_WORKER_POLL_SECONDS": "0.2", "PENDINGTX_WORKER_LEASE_SECONDS": "10"}
ALREADY_EXISTS = "already exists in the organization"


@dataclass
class Planned:
    """One job to submit, and what must become of each of its records."""

    number: int
    batch: list[dict[str, Any]]
    invalid: set[int] = field(default_factory=set)
    shared: dict[int, str] = field(default_factory=dict)  # record index -> externalId shared with others
    key: str = ""


def plan() -> list[Planned]:
    """200 jobs of 50 records: some invalid records, and externalIds shared across jobs.

    The last two records of each job carry ids that about ten jobs share each, in ascending order, so
    any two jobs meet their common ids in the same order: jobs that race for an id conflict on the unique
    key and one waits for the other, but they cannot deadlock (opposite orders could, since processing
    inserts in batch order: that would cost a failed attempt and a back-off, checked for below).
    """
    jobs = []
    for j in range(JOBS):
        planned = Planned(j, [])
        for i in range(RECORDS - 2):
            overrides: dict[str, Any] = {"investorExternalId": f"INV-{j}"}
            if j % 4 == 0 and i in (3, 17):
                overrides["amount"] = "-1" if i == 3 else "1.234"  # must be > 0; at most 2 decimals
                planned.invalid.add(i)
            planned.batch.append(record(f"S{j:03d}-{i:02d}", **overrides))
        first, second = f"SHARED-{j % SHARED:02d}", f"SHARED-{(j * 7 + 3) % SHARED:02d}"
        if first == second:
            second = f"SHARED-{(j + 1) % SHARED:02d}"
        first, second = sorted((first, second))
        for i, external_id in zip((RECORDS - 2, RECORDS - 1), (first, second), strict=True):
            planned.batch.append(record(external_id, productExternalId=f"FUND-{j}"))
            planned.shared[i] = external_id
        jobs.append(planned)
    return jobs


@pytest.fixture
def e2e_database_url(postgres_e2e_url: str) -> str:
    """Every process of this test runs on the test's own PostgreSQL database."""
    return postgres_e2e_url


@pytest.fixture
def db(e2e_database_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with pg_connect(e2e_database_url) as conn:
        yield conn


def job_status(conn: psycopg.Connection[tuple[Any, ...]], key: str) -> str:
    row = conn.execute("SELECT status FROM jobs WHERE key = %s", (key,)).fetchone()
    assert row is not None, key
    return str(row[0])


def submit_all(base_urls: list[str], app: dict[str, str], jobs: list[Planned]) -> None:
    """Submit every job from 16 threads at once, alternating between the API processes."""

    def submit_slice(slice_number: int) -> None:
        clients = [httpx.Client(base_url=url, timeout=30) for url in base_urls]
        try:
            headers = caller_headers(clients[slice_number % len(clients)], app)
            for planned in jobs[slice_number::SUBMITTERS]:
                http = clients[planned.number % len(clients)]
                accepted = http.post("/v1/transactions", json=planned.batch, headers=headers)
                assert accepted.status_code == 202, accepted.text
                planned.key = accepted.json()["jobStatusQueryKey"]
        finally:
            for client in clients:
                client.close()

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        for done in [pool.submit(submit_slice, n) for n in range(SUBMITTERS)]:
            done.result()


def test_two_apis_three_workers_two_hundred_concurrent_jobs(
    e2e_database_url: str,
    db: psycopg.Connection[tuple[Any, ...]],
    start_server: StartServer,
    start_worker: StartWorker,
) -> None:
    started_at = time.monotonic()
    app = create_app_via_cli(e2e_database_url)
    apis = [start_server(SETTINGS, no_worker=True) for _ in range(2)]
    workers = [start_worker(SETTINGS) for _ in range(3)]
    jobs = plan()

    submit_all([api.base_url for api in apis], app, jobs)
    assert len({p.key for p in jobs}) == JOBS

    def all_terminal() -> bool:
        row = db.execute(
            "SELECT count(*) FILTER (WHERE status = ANY(%s)), count(*) FROM jobs",
            (list(TERMINAL_STATUSES),),
        ).fetchone()
        assert row is not None
        return bool(row[0] == row[1] == JOBS)

    wait_until(all_terminal, 45, interval=0.1, what="all 200 jobs to reach a terminal status")
    for process in (*apis, *workers):
        assert process.process.poll() is None, process.log()

    rows = db.execute(
        "SELECT key, id, status, record_count, processed_count, created_count, failed_count, worker_id,"
        " lease_until, message FROM jobs"
    ).fetchall()
    job_id_of: dict[str, int] = {}
    for key, job_id, status, record_count, processed, created, failed, worker_id, lease, message in rows:
        job_id_of[key] = job_id
        assert (record_count, processed, worker_id, lease) == (RECORDS, RECORDS, None, None), key
        assert created + failed == RECORDS, (key, created, failed, message)
        assert status == ("Completed" if failed == 0 else "Partially Completed"), (key, status, message)
    planned_of_id = {job_id_of[p.key]: p for p in jobs}

    # Every externalId is stored at most once; which job stored each one.
    stored = db.execute("SELECT external_id, job_id FROM transactions").fetchall()
    counts = Counter(external_id for external_id, _ in stored)
    assert [i for i, n in counts.items() if n > 1] == []
    stored_by = dict(stored)

    problems: dict[int, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for job_id, index, reason in db.execute("SELECT job_id, record_index, reason FROM job_problems"):
        problems[job_id][index].append(reason)

    holders_of_shared: dict[str, list[int]] = defaultdict(list)
    for planned in jobs:
        job_id = job_id_of[planned.key]
        for index, item in enumerate(planned.batch):
            external_id = item["externalId"]
            if index in planned.invalid:
                assert external_id not in stored_by, external_id
                assert len(problems[job_id][index]) == 1
            elif index in planned.shared:
                holders_of_shared[external_id].append(job_id)
            else:
                assert stored_by.get(external_id) == job_id, external_id
                assert index not in problems[job_id], (external_id, problems[job_id][index])
        created, failed = db.execute(
            "SELECT created_count, failed_count FROM jobs WHERE id = %s", (job_id,)
        ).fetchone() or (None, None)
        stored_here = sum(1 for j in stored_by.values() if j == job_id)
        assert created == stored_here, planned.key
        assert failed == len(problems[job_id]), planned.key

    # Each shared externalId: stored by exactly one of the jobs that carry it, refused by all the others.
    assert len(holders_of_shared) == SHARED
    for external_id, carriers in holders_of_shared.items():
        winner = stored_by.get(external_id)
        assert winner in carriers, (external_id, winner, carriers)
        for loser in carriers:
            if loser == winner:
                continue
            index = next(i for i, e in planned_of_id[loser].shared.items() if e == external_id)
            assert problems[loser][index] == [ALREADY_EXISTS], (external_id, loser, problems[loser][index])

    expected_created = sum(RECORDS - 2 - len(p.invalid) for p in jobs) + SHARED
    assert len(stored) == expected_created

    # The claims audit: per job, each claim starts only once the previous one had ended or run out.
    claims: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in db.execute(
        "SELECT job_id, worker_id, attempt, claimed_at, lease_until, ended_at FROM job_claims"
        " ORDER BY job_id, claimed_at, id"
    ):
        claims[row[0]].append(row[1:])
    assert set(claims) == set(planned_of_id)
    retried = 0
    for job_id, held in claims.items():
        assert [c[1] for c in held] == list(range(1, len(held) + 1)), (job_id, held)
        for previous, current in itertools.pairwise(held):
            previous_end = previous[4] or previous[3]
            assert current[2] >= previous_end, f"job {job_id} held by two workers at once: {held}"
        assert held[-1][4] is not None, (job_id, held)  # the finishing claim was closed
        retried += len(held) > 1
    by_worker = Counter(c[0] for held in claims.values() for c in held)
    worker_pids = {pid_of_worker_id(w) for w in by_worker}
    assert worker_pids <= {w.pid for w in workers}
    print(
        f"\n{JOBS} jobs in {time.monotonic() - started_at:.1f} s; claims per worker: {dict(by_worker)};"
        f" jobs claimed more than once: {retried}"
    )
    assert len(by_worker) >= 2, by_worker

    # The status endpoint of either API process tells the same story as the database.
    with httpx.Client(base_url=apis[1].base_url, timeout=10) as http:
        headers = caller_headers(http, app)
        for planned in jobs[:: JOBS // 10]:
            http_body = http.get(f"/v1/jobs/insight/status/{planned.key}", headers=headers).json()
            job_id = job_id_of[planned.key]
            assert http_body["batchId"] == str(job_id)
            assert http_body["status"] in TERMINAL_STATUSES
            assert http_body["failedCount"] == len(problems[job_id])
            assert [d["index"] for d in http_body["validationDetails"]] == sorted(problems[job_id])

    # Nothing went wrong inside the workers: no internal error, no retried or abandoned job.
    for worker in workers:
        log = worker.log()
        assert "Traceback" not in log, log
        assert '"level":"ERROR"' not in log, log
    assert retried == 0


def test_jobs_racing_for_the_same_ids_in_opposite_orders_cost_no_attempt(
    e2e_database_url: str,
    db: psycopg.Connection[tuple[Any, ...]],
    start_server: StartServer,
    start_worker: StartWorker,
) -> None:
    """Two jobs carrying the same two new externalIds in opposite orders, processed at the same moment.

    Exactly one job must store each id and the other reject it as already existing, as for any race on
    an id; and that race must be settled inside the attempt (as a unique-key conflict already is), not
    cost a failed attempt, a back-off and a step towards giving the job up.

    To make the two workers meet mid-insert every time, the test holds two more of the jobs' ids in an
    open transaction of its own: each worker stops there after inserting its first id, then both go on.
    """
    app = create_app_via_cli(e2e_database_url)
    api = start_server(SETTINGS, no_worker=True)
    workers = [start_worker(SETTINGS) for _ in range(2)]
    warm_up = submit_batch(api.base_url, app, [record("WARM-1")])
    wait_until(lambda: job_status(db, warm_up) == "Completed", 20, what="the warm-up job")
    row = db.execute("SELECT id, org_id FROM jobs WHERE key = %s", (warm_up,)).fetchone()
    assert row is not None
    warm_job_id, org_id = row

    def both_waiting_on_the_holder() -> bool:
        waiting = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()
        return waiting is not None and waiting[0] == 2

    with pg_connect(e2e_database_url) as holder, holder.transaction(force_rollback=True):
        for external_id in ("RACE-Z1", "RACE-Z2"):
            holder.execute(
                "INSERT INTO transactions (org_id, external_id, job_id, type, status, product_external_id,"
                " investor_external_id, currency, trade_date, created_at, changed_at)"
                " VALUES (%s, %s, %s, 'New Subscription', 'Active', 'FUND-A', 'INV-1', 'USD',"
                " '2026-11-27', now(), now())",
                (org_id, external_id, warm_job_id),
            )
        first = submit_batch(api.base_url, app, [record("RACE-X"), record("RACE-Z1"), record("RACE-Y")])
        second = submit_batch(api.base_url, app, [record("RACE-Y"), record("RACE-Z2"), record("RACE-X")])
        wait_until(both_waiting_on_the_holder, 20, what="both jobs to be mid-insert")
    # The holder's rows are gone: each worker goes on to the id the other one has just inserted.

    wait_until(
        lambda: {job_status(db, first), job_status(db, second)} <= TERMINAL_STATUSES, 30, what="both jobs"
    )
    stored = dict(db.execute("SELECT external_id, job_id FROM transactions").fetchall())
    ids = {key: job_id for key, job_id in db.execute("SELECT key, id FROM jobs").fetchall()}
    assert {stored["RACE-Z1"], stored["RACE-Z2"]} == {ids[first], ids[second]}
    assert stored["RACE-Z1"] == ids[first]
    assert stored["RACE-Z2"] == ids[second]
    for external_id in ("RACE-X", "RACE-Y"):
        assert stored[external_id] in (ids[first], ids[second])
    rows = db.execute(
        "SELECT key, created_count, failed_count, attempts FROM jobs WHERE key IN (%s, %s)", (first, second)
    ).fetchall()
    assert sum(r[1] for r in rows) == 4
    assert sum(r[2] for r in rows) == 2
    reasons = [r[0] for r in db.execute("SELECT reason FROM job_problems")]
    assert reasons == [ALREADY_EXISTS, ALREADY_EXISTS]

    attempts = {r[0]: r[3] for r in rows}
    logs = "".join(w.log() for w in workers)
    assert attempts == {first: 1, second: 1}, (
        f"a race on externalIds cost a failed attempt (attempts {attempts}); worker logs:\n{logs}"
    )
