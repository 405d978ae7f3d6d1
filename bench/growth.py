"""B8: growth (issue 18.5). The same organization with a small and a large number of transactions and
jobs (10,000 and 1,000,000 by default), bulk-loaded with the driver's insert_rows (COPY on
PostgreSQL) as B7 loads its jobs, then measured side by side, alternating between the two databases:
a transaction list page and a job list page (first and second), B1's status GET and B3's one-record
job round trip. Each figure's slope is its cost with the large data over its cost with the small.

The transaction list's second page is also timed as it was before its count was carried by the
cursor (counting again on every page), in the same run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from bench.b7 import _JOB_COLUMNS, _LOAD_CHUNK, caller_of, terminal_job_rows
from bench.figures import (
    Database,
    Figure,
    _one_job_latencies,
    _percentile,
    _status_path,
    _submit,
    _wait_terminal,
)
from bench.servers import pendingtx_server, worker_process
from bench.setup import auth_headers, record, register_app
from bench.wrk import run_wrk
from pendingtx.bootstrap import Runtime, build_runtime
from pendingtx.config import Settings
from pendingtx.domain import listing as list_rules
from pendingtx.domain.cursors import ListKind
from pendingtx.services import job_listing, listing
from pendingtx.services.authentication import Caller
from pendingtx.services.credentials import NewApp
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.driver import insert_rows
from pendingtx.storage.tables import jobs, transactions

_TX_COLUMNS = (
    "org_id", "job_id", "created_at", "changed_at", "external_id", "type", "status",
    "product_external_id", "investor_external_id", "currency", "amount", "trade_date",
)  # fmt: skip
PAGE = "50"


@dataclass(frozen=True)
class Loaded:
    """One database with its data: where it is, its application, and the caller the services see."""

    url: str
    app: NewApp
    caller: Caller
    rows: int
    seconds: float


def _load(url: str, rows: int) -> Loaded:
    """`rows` jobs and `rows` transactions (one per job) in one organization, then statistics."""
    began = time.monotonic()
    app = register_app(url)
    runtime = build_runtime(Settings(database_url=url), migrate=False)
    try:
        caller = caller_of(runtime, app)
        # A second apart up to now: inside the retention period, or the servers' sweepers would spend
        # the run deleting them.
        start = datetime.now(UTC) - timedelta(seconds=rows + 60)
        made = 0
        while made < rows:
            chunk = range(made, min(made + _LOAD_CHUNK, rows))
            job_rows = terminal_job_rows(caller, chunk, start)
            with runtime.uow.write() as conn:
                insert_rows(conn, jobs, _JOB_COLUMNS, job_rows)
                first_job = (
                    int(conn.exec_driver_sql("SELECT max(id) FROM jobs").scalar_one()) - len(chunk) + 1
                )
                tx_rows = [
                    (caller.org_id, first_job + n, start + timedelta(seconds=i), start + timedelta(seconds=i),
                     f"G-{i}", "New Subscription", "Cancel" if i % 20 == 0 else "Active", f"FUND-{i % 7}",
                     f"INV-{i % 1000}", "USD", Decimal("100.50"), date(2026, 1, 2))
                    for n, i in enumerate(chunk)
                ]  # fmt: skip
                insert_rows(conn, transactions, _TX_COLUMNS, tx_rows)
            made += len(chunk)
        # As a live database's autovacuum would: statistics, and PostgreSQL's visibility map.
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE")
    finally:
        runtime.close()
    return Loaded(url, app, caller, rows, time.monotonic() - began)


class _Pages:
    """The list pages of one loaded database, called as the routes call them (no HTTP)."""

    def __init__(self, runtime: Runtime, caller: Caller) -> None:
        self.runtime = runtime
        self.caller = caller
        first = self.transactions([("limit", PAGE)])
        self.tx_cursor = first.paging.after_cursor or ""
        self.job_cursor = self.jobs([("limit", PAGE)]).paging.after_cursor or ""

    def transactions(self, params: list[tuple[str, str]]) -> listing.Listing:
        return listing.list_transactions(self.runtime.uow, self.caller, params, keys=self.runtime.keys)

    def jobs(self, params: list[tuple[str, str]]) -> job_listing.JobListing:
        return job_listing.list_jobs(self.runtime.uow, self.caller, "insight", params, keys=self.runtime.keys)

    def counted_again(self, params: list[tuple[str, str]]) -> listing.Listing:
        """A page as it was read before its count was carried: counted on every page."""
        cursors = self.runtime.keys.cursor_key().for_listing(ListKind.TRANSACTIONS, self.caller.org_id)
        query = listing.checked(list_rules.parse_list_query(params, cursors))
        with self.runtime.uow.read() as conn:
            page = tx_repo.list_page(conn, self.caller.org_id, replace(query, total=None))
        return listing.Listing(page.rows, listing.paging_of(query, page, cursors=cursors, params=params))

    def calls(self) -> dict[str, Callable[[], object]]:
        after = ("after", self.tx_cursor)
        return {
            "transaction list page 1": lambda: self.transactions([("limit", PAGE)]),
            "transaction list page 2": lambda: self.transactions([("limit", PAGE), after]),
            "transaction list page 2 counted again": lambda: self.counted_again([("limit", PAGE), after]),
            "job list page 1": lambda: self.jobs([("limit", PAGE)]),
            "job list page 2": lambda: self.jobs([("limit", PAGE), ("after", self.job_cursor)]),
        }


def _page_medians(small: Loaded, large: Loaded, rounds: int) -> dict[str, tuple[float, float]]:
    """Median ms of each page call on the small and the large database, alternated call by call."""
    times: dict[str, tuple[list[float], list[float]]] = {}
    with ExitStack() as stack:
        sides = []
        for loaded in (small, large):
            runtime = build_runtime(Settings(database_url=loaded.url), migrate=False)
            stack.callback(runtime.close)
            sides.append(_Pages(runtime, loaded.caller).calls())
        for name in sides[0]:
            times[name] = ([], [])
            for side in sides:
                side[name]()  # warm: statements compiled and prepared, pages cached as on a live server
        for _ in range(rounds):
            for name in sides[0]:
                for index, side in enumerate(sides):
                    began = time.perf_counter()
                    side[name]()
                    times[name][index].append((time.perf_counter() - began) * 1000)
    return {name: (statistics.median(s), statistics.median(b)) for name, (s, b) in times.items()}


@contextmanager
def _served(loaded: Loaded, *, separate_worker: bool) -> Iterator[tuple[str, dict[str, str], str]]:
    """A server (and worker process) on the database; yields its base URL, headers and a job key."""
    with ExitStack() as stack:
        base, _ = stack.enter_context(pendingtx_server(loaded.url, worker=not separate_worker))
        if separate_worker:
            stack.enter_context(worker_process(loaded.url))
        headers = auth_headers(base, loaded.app)
        key = _submit(base, headers, msgspec.json.encode([record("G-status")]))
        _wait_terminal(base, headers, [key])
        yield base, headers, key


def _served_figures(
    small: Loaded, large: Loaded, *, separate_worker: bool, seconds: int, rounds: int, jobs: int
) -> dict[str, tuple[float, float]]:
    """B1 (best of `rounds`, rps and p50/p99) and B3 (p50/p99 of `jobs` one-record jobs in blocks),
    each alternated between the two databases' servers."""
    with ExitStack() as stack:
        served = [stack.enter_context(_served(d, separate_worker=separate_worker)) for d in (small, large)]
        best: list[Any] = [None, None]
        for _ in range(rounds):
            for index, (base, headers, key) in enumerate(served):
                run = run_wrk(f"{base}{_status_path(key)}", seconds=seconds, headers=headers)
                if run.errors:
                    raise RuntimeError(f"B8's status GET got {run.errors} errors")
                if best[index] is None or run.rps > best[index].rps:
                    best[index] = run
        latencies: list[list[float]] = [[], []]
        for base, headers, _ in served:
            _one_job_latencies(base, headers, 20)  # warm (and the worker process ready)
        blocks = 5
        for block in range(blocks):
            for index, (base, headers, _) in enumerate(served):
                latencies[index] += _one_job_latencies(base, headers, jobs // blocks, prefix=f"B8-{block}")
    return {
        "B1 rps": (best[0].rps, best[1].rps),
        "B1 p50": (best[0].p50_ms, best[1].p50_ms),
        "B1 p99": (best[0].p99_ms, best[1].p99_ms),
        "B3 p50": (_percentile(latencies[0], 50), _percentile(latencies[1], 50)),
        "B3 p99": (_percentile(latencies[0], 99), _percentile(latencies[1], 99)),
    }


def b8_growth(
    database: Database,
    label: str,
    *,
    small_rows: int,
    large_rows: int,
    separate_worker: bool,
    seconds: int = 5,
    page_rounds: int = 25,
) -> list[Figure]:
    """B8 on one database kind: the figures with `small_rows` and `large_rows`, and their slopes."""
    with database() as small_url, database() as large_url:
        small = _load(small_url, small_rows)
        large = _load(large_url, large_rows)
        took = f"{small_rows:,} in {small.seconds:.0f} s, {large_rows:,} in {large.seconds:.0f} s"
        print(f"B8 {label}: loaded {took}", flush=True)
        pages = _page_medians(small, large, page_rounds)
        served = _served_figures(
            small, large, separate_worker=separate_worker, seconds=seconds, rounds=2, jobs=300
        )
    scale = f"{small_rows:,} -> {large_rows:,} transactions and jobs"

    def row(name: str, small_value: float, large_value: float, unit: str, slope: float) -> Figure:
        return Figure(
            f"B8 {name} ({label})",
            f"{small_value:,.2f} -> {large_value:,.2f} {unit}",
            scale,
            f"{slope:.2f}",
            "",
            None,
        )

    rows = [
        Figure(f"B8 load ({label})", f"{small.seconds:.0f} s + {large.seconds:.0f} s", scale, "", "", None)
    ]
    for name, (s, b) in pages.items():
        rows.append(row(f"{name} ({PAGE} rows) ms", s, b, "ms", b / s))
    rps_small, rps_large = served["B1 rps"]
    rows.append(row("B1 status GET rps", rps_small, rps_large, "rps", rps_small / rps_large))
    for name in ("B1 p50", "B1 p99", "B3 p50", "B3 p99"):
        s, b = served[name]
        rows.append(row(f"{name} ms", s, b, "ms", b / s))
    before = pages["transaction list page 2 counted again"][1]
    after = pages["transaction list page 2"][1]
    rows.append(
        Figure(
            f"B8 transaction list at {large_rows:,}, ms: page 1 / page 2 counted again / carried ({label})",
            f"{pages['transaction list page 1'][1]:.2f} / {before:.2f} / {after:.2f}",
            "",
            f"{before / after:.1f}x",
            "",
            None,
        )
    )
    return rows
