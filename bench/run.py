"""`make bench`: every figure beside its anchor, printed and written into docs/PERFORMANCE.md.

Usage: python -m bench.run [--only B1,B1G,B1S,B1P,B2,B3,B5,B5P,B6,B7,B8] [--no-write] [--seconds N]
    [--b7-jobs N] [--b8-rows SMALL,LARGE]

Not in the default set: B8 (growth: 10,000 against 1,000,000 transactions and jobs), whose loads
take several minutes more, and B1P and B5P, which run B1 and B5 on `serve --processes 2` and
`--processes 1`, alternated three times, with nothing pinned, and B1G, which runs B1 on granian and
on uvicorn (`serve --http-server`), alternated three times. Ask for them with `--only`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench import b7, figures, growth
from bench.setup import postgres_available, postgres_database, sqlite_database
from bench.wrk import require_wrk

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _sqlite(directory: Path) -> Callable[[], AbstractContextManager[str]]:
    counter = iter(range(1000))

    @contextmanager
    def database() -> Iterator[str]:
        with sqlite_database(directory, f"bench{next(counter)}") as url:
            yield url

    return database


def measure(
    only: set[str],
    seconds: int,
    directory: Path,
    b7_jobs: int = 1_000_000,
    b8_rows: tuple[int, int] = (10_000, 1_000_000),
) -> list[figures.Figure]:
    sqlite = _sqlite(directory)
    pg = postgres_database if postgres_available() else None
    rows: list[figures.Figure] = []
    if "B1" in only:
        rows += figures.b1_status(sqlite, "SQLite", seconds=seconds, rounds=2)
        if pg:
            rows += figures.b1_status(pg, "PostgreSQL", seconds=seconds, rounds=1)
    if "B1P" in only:
        rows += figures.b1_processes(sqlite, "SQLite", seconds=seconds)
        if pg:
            rows += figures.b1_processes(pg, "PostgreSQL", seconds=seconds)
    if "B1G" in only:
        rows += figures.b1_http_servers(sqlite, "SQLite", seconds=seconds)
        if pg:
            rows += figures.b1_http_servers(pg, "PostgreSQL", seconds=seconds)
    if "B1S" in only:
        rows += figures.b1_sandbox_cost(sqlite, seconds=seconds, rounds=3)
    if "B2" in only:
        rows += figures.b2_ingest(sqlite, "SQLite", goal_rate=50_000)
        if pg:
            rows += figures.b2_ingest(pg, "PostgreSQL", goal_rate=None)
    if "B3" in only:
        rows += figures.b3_latency(
            sqlite, "SQLite, in-process worker", separate_worker=False, goal_p50=3, goal_p99=10
        )
        if pg:
            rows += figures.b3_latency(
                pg, "PostgreSQL, worker process", separate_worker=True, goal_p50=10, goal_p99=None
            )
    if "B5" in only:
        rows += figures.b5_throughput(sqlite, "SQLite", seconds=20)
    if "B5P" in only:
        rows += figures.b5_processes(sqlite, "SQLite", seconds=10)
    if "B6" in only:
        rows += figures.b6_long_poll(sqlite)
    if "B7" in only:
        rows += b7.b7_jobs_resource(sqlite, "SQLite", job_count=b7_jobs, problem_rows=b7_jobs)
        if pg:
            rows += b7.b7_jobs_resource(pg, "PostgreSQL", job_count=b7_jobs, problem_rows=b7_jobs)
    if "B8" in only:
        small, large = b8_rows
        rows += growth.b8_growth(
            sqlite, "SQLite", small_rows=small, large_rows=large, separate_worker=False, seconds=seconds
        )
        if pg:
            rows += growth.b8_growth(
                pg, "PostgreSQL", small_rows=small, large_rows=large, separate_worker=True, seconds=seconds
            )
    return rows


def table(rows: list[figures.Figure]) -> str:
    lines = ["| figure | pendingtx | anchor (same run) | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.name} | {r.value} | {r.anchor} | {r.ratio} | {r.goal} | {met} |")
    return "\n".join(lines)


def write_report(rows: list[figures.Figure], command: str, elapsed: float) -> None:
    section = "\n".join(
        [
            START,
            f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({platform.machine()}, "
            f"Python {platform.python_version()}), in {elapsed:.0f} s, with `{command}`.",
            "",
            table(rows),
            END,
        ]
    )
    text = REPORT.read_text() if REPORT.exists() else f"# Performance\n\n{START}\n{END}\n"
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.DOTALL)
    REPORT.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="B1,B1S,B2,B3,B5,B6,B7")
    parser.add_argument("--b7-jobs", type=int, default=1_000_000, help="jobs (and problem rows) B7 loads")
    parser.add_argument(
        "--b8-rows", default="10000,1000000", help="transactions and jobs B8 loads: small,large"
    )
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run in B1")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    args = parser.parse_args()
    require_wrk()
    started = time.monotonic()
    with figures.temporary_directory() as directory:
        only = {s.strip().upper() for s in args.only.split(",")}
        small, large = (int(n) for n in args.b8_rows.split(","))
        rows = measure(only, args.seconds, directory, args.b7_jobs, (small, large))
    elapsed = time.monotonic() - started
    print(table(rows))
    if not args.no_write:
        write_report(rows, "make bench", elapsed)
        print(f"\nwritten to {REPORT.relative_to(ROOT)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
