"""B7: jobs as a resource at scale. An organization holding many jobs and problem rows (bulk-loaded
with the driver's insert_rows: COPY on PostgreSQL), then the time per page of the job list and of a
1,000-record results page, and the memory a 100,000-line CSV stream takes.

Pages are timed as the routes call them (the service call in its own read transaction), without
HTTP: the figure is the database work and the shaping, which is what grows with the data.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from bench.figures import Database, Figure
from bench.setup import record, register_app
from pendingtx.bootstrap import Runtime, build_runtime
from pendingtx.config import Settings
from pendingtx.domain.jobs import JobKind, JobStatus, new_job_key
from pendingtx.services import job_listing, job_results
from pendingtx.services.authentication import Caller
from pendingtx.services.credentials import NewApp
from pendingtx.storage import apps as app_repo
from pendingtx.storage.driver import insert_rows
from pendingtx.storage.tables import job_problems, jobs

# Rows are loaded this many per transaction.
_LOAD_CHUNK = 50_000


def caller_of(runtime: Runtime, app: NewApp) -> Caller:
    """The caller a registered bench application acts as."""
    with runtime.uow.read() as conn:
        found = app_repo.find_app(conn, app.app_key)
    assert found is not None
    return Caller(found.id, found.app_key, found.name, found.org_id)


def terminal_job_rows(caller: Caller, indexes: range, start: datetime) -> list[tuple[object, ...]]:
    """Rows of `_JOB_COLUMNS` for one-record jobs ended a second apart from `start`, their terminal
    statuses in turn."""
    statuses = [JobStatus.COMPLETED, JobStatus.PARTIALLY_COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
    rows: list[tuple[object, ...]] = []
    for i in indexes:
        status = statuses[i % len(statuses)]
        when = start + timedelta(seconds=i)
        done = int(status is JobStatus.COMPLETED)
        rows.append(
            (new_job_key(), caller.org_id, caller.app_id, JobKind.CREATE.value, status.value, b"[]",
             1, 1, done, 1 - done, f"{status.value}: bench", when, when)
        )  # fmt: skip
    return rows


_JOB_COLUMNS = (
    "key", "org_id", "app_id", "kind", "status", "payload", "record_count", "processed_count",
    "created_count", "failed_count", "message", "submitted_at", "completed_at",
)  # fmt: skip
_PROBLEM_COLUMNS = ("job_id", "record_index", "external_id", "field", "reason")
RESULT_RECORDS = 10_000
REJECTED_EVERY = 10  # 3 of every 10 records rejected, as in the 10,000/3,000 example
GOAL_MS = 20.0


def _vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _load(url: str, *, job_count: int, problem_rows: int) -> tuple[Caller, str, str]:
    """The organization's jobs and problems; returns its caller, a 10,000-record job with 3,000
    rejections, and a 10,000-record job with 10 problems per record (100,000 CSV lines)."""
    app = register_app(url)
    runtime = build_runtime(Settings(database_url=url), migrate=False)
    try:
        caller = caller_of(runtime, app)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        made = 0
        while made < job_count:
            rows = terminal_job_rows(caller, range(made, min(made + _LOAD_CHUNK, job_count)), start)
            with runtime.uow.write() as conn:
                insert_rows(conn, jobs, _JOB_COLUMNS, rows)
            made += len(rows)
        # Other jobs' problems, so that the table is as large as asked: spread over the first jobs.
        with runtime.uow.read() as conn:
            first_id = int(conn.exec_driver_sql("SELECT min(id) FROM jobs").scalar_one())
        made = 0
        while made < problem_rows:
            rows = [
                (first_id + i // 10, i % 10, f"X-{i}", "amount", "must be greater than 0")
                for i in range(made, min(made + _LOAD_CHUNK, problem_rows))
            ]
            with runtime.uow.write() as conn:
                insert_rows(conn, job_problems, _PROBLEM_COLUMNS, rows)
            made += len(rows)
        paged = _result_job(runtime, caller, start, problems_per_record=1, rejected=lambda i: i % 10 < 3)
        csv_job = _result_job(runtime, caller, start, problems_per_record=10, rejected=lambda i: True)
        # As a live database's autovacuum would: statistics, and PostgreSQL's visibility map (so that
        # counts can read the index alone).
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE")
        return caller, paged, csv_job
    finally:
        runtime.close()


def _result_job(
    runtime: Any,
    caller: Caller,
    start: datetime,
    *,
    problems_per_record: int,
    rejected: Callable[[int], bool],
) -> str:
    payload = msgspec.json.encode([record(f"R-{i}") for i in range(RESULT_RECORDS)])
    failed = [i for i in range(RESULT_RECORDS) if rejected(i)]
    key = new_job_key()
    status = JobStatus.FAILED if len(failed) == RESULT_RECORDS else JobStatus.PARTIALLY_COMPLETED
    row = (key, caller.org_id, caller.app_id, JobKind.CREATE.value, status.value, payload, RESULT_RECORDS,
           RESULT_RECORDS, RESULT_RECORDS - len(failed), len(failed), "bench", start, start)  # fmt: skip
    with runtime.uow.write() as conn:
        insert_rows(conn, jobs, _JOB_COLUMNS, [row])
        job_id = int(conn.exec_driver_sql("SELECT max(id) FROM jobs").scalar_one())
        insert_rows(
            conn,
            job_problems,
            _PROBLEM_COLUMNS,
            [
                (job_id, i, f"R-{i}", f"field{n}", "must be valid")
                for i in failed
                for n in range(problems_per_record)
            ],
        )
    return key


def _median_ms(call: Callable[[], object], runs: int = 25) -> float:
    call()  # warm: statements compiled, pages cached as they would be on a live server
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def b7_jobs_resource(database: Database, label: str, *, job_count: int, problem_rows: int) -> list[Figure]:
    """B7 on one database: list pages, results pages, and the CSV stream's memory."""
    with database() as url:
        began = time.monotonic()
        caller, paged_key, csv_key = _load(url, job_count=job_count, problem_rows=problem_rows)
        loaded = time.monotonic() - began
        runtime = build_runtime(Settings(database_url=url), migrate=False)
        try:
            uow, keys = runtime.uow, runtime.keys

            def jobs_page(params: list[tuple[str, str]]) -> Any:
                return job_listing.list_jobs(uow, caller, "insight", params, keys=keys)

            first = jobs_page([("limit", "50")])
            middle_cursor = first.paging.after_cursor or ""
            for _ in range(200):  # some pages in: the cursor of page 201
                middle_cursor = (
                    jobs_page([("limit", "50"), ("after", middle_cursor)]).paging.after_cursor or ""
                )
            list_first = _median_ms(lambda: jobs_page([("limit", "50")]))
            list_deep = _median_ms(lambda: jobs_page([("limit", "50"), ("after", middle_cursor)]))
            list_status = _median_ms(lambda: jobs_page([("limit", "50"), ("status", "Cancelled")]))

            def results(params: list[tuple[str, str]]) -> Any:
                return job_results.results_page(uow, caller, "insight", paged_key, params, keys=keys)

            second = results([("limit", "1000")]).paging.after_cursor or ""
            results_first = _median_ms(lambda: results([("limit", "1000")]))
            results_next = _median_ms(lambda: results([("limit", "1000"), ("after", second)]))
            results_rejected = _median_ms(lambda: results([("limit", "1000"), ("outcome", "rejected")]))
            results_created = _median_ms(lambda: results([("limit", "1000"), ("outcome", "created")]))

            gc.collect()
            rss_before = _vm_rss_kib()
            peak = rss_before
            lines = 0
            stream = job_results.CsvResults(uow, caller, "insight", csv_key, [], keys=keys)
            stream.open()
            began = time.perf_counter()
            while chunk := stream.next_chunk():
                lines += chunk.count("\n")
                peak = max(peak, _vm_rss_kib())
            csv_seconds = time.perf_counter() - began
        finally:
            runtime.close()
    scale = f"{job_count:,} jobs, {problem_rows:,} other problem rows"
    ok = max(
        list_first, list_deep, list_status, results_first, results_next, results_rejected, results_created
    )
    return [
        Figure(f"B7 load ({label})", f"{loaded:.0f} s", scale, "", "", None),
        Figure(
            f"B7 job list page of 50 ms: first / page 201 / status filter ({label})",
            f"{list_first:.1f} / {list_deep:.1f} / {list_status:.1f}",
            scale,
            "",
            f"< {GOAL_MS:.0f} ms",
            max(list_first, list_deep, list_status) < GOAL_MS,
        ),
        Figure(
            f"B7 results page of 1,000 ms: first / second / rejected / created ({label})",
            f"{results_first:.1f} / {results_next:.1f} / {results_rejected:.1f} / {results_created:.1f}",
            "10,000-record job, 3,000 rejected",
            "",
            f"< {GOAL_MS:.0f} ms",
            ok < GOAL_MS,
        ),
        Figure(
            f"B7 CSV stream of {lines - 1:,} lines: RSS growth ({label})",
            f"{(peak - rss_before) / 1024:.1f} MiB in {csv_seconds:.1f} s",
            "10,000 records x 10 problems",
            "",
            "flat",
            None,
        ),
    ]
