"""The five figures (B1-B5), each measured beside its anchor in the same run."""

from __future__ import annotations

import asyncio
import http.client
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import msgspec

from bench import anchors
from bench.servers import noop_server, peak_rss_mb, pendingtx_server, worker_process
from bench.setup import auth_headers, record, register_app
from bench.wrk import run_wrk

Database = Callable[[], AbstractContextManager[str]]
SCRIPTS = Path(__file__).with_name("scripts")


@dataclass(frozen=True)
class Figure:
    """One line of the results table."""

    name: str
    value: str
    anchor: str
    ratio: str
    goal: str
    met: bool | None


def _status_path(key: str) -> str:
    return f"/v1/jobs/insight/status/{key}"


def _wait_terminal(base: str, headers: dict[str, str], keys: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for key in keys:
            while "retry-after" in client.get(_status_path(key)).headers:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"job {key} did not finish")
                time.sleep(0.02)


def _submit(base: str, headers: dict[str, str], body: bytes) -> str:
    answer = httpx.post(
        f"{base}/v1/transactions",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=60,
    )
    answer.raise_for_status()
    return str(answer.json()["jobStatusQueryKey"])


def b1_status(database: Database, label: str, *, seconds: int, rounds: int) -> list[Figure]:
    """Status GET with auth on a real job key, against the no-op ASGI app; best of `rounds`."""
    with database() as url:
        app = register_app(url)
        with pendingtx_server(url) as (base, _):
            headers = auth_headers(base, app)
            key = _submit(base, headers, msgspec.json.encode([record("B1-1")]))
            _wait_terminal(base, headers, [key])
            runs = []
            for _ in range(rounds):
                with noop_server() as noop:
                    anchor = run_wrk(f"{noop}/", seconds=seconds)
                ours = run_wrk(f"{base}{_status_path(key)}", seconds=seconds, headers=headers)
                if ours.errors:
                    raise RuntimeError(f"B1 got {ours.errors} errors")
                runs.append((ours.rps / anchor.rps, ours, anchor))
    ratio, ours, anchor = max(runs, key=lambda r: r[0])
    return [
        Figure(
            f"B1 status GET rps ({label})",
            f"{ours.rps:,.0f}",
            f"{anchor.rps:,.0f} no-op ASGI",
            f"{ratio:.2f}",
            ">= 0.45",
            ratio >= 0.45,
        ),
        Figure(
            f"B1 status GET p50/p99 ms ({label})",
            f"{ours.p50_ms:.2f} / {ours.p99_ms:.2f}",
            f"{anchor.p50_ms:.2f} / {anchor.p99_ms:.2f}",
            "",
            "p99 <= 10",
            ours.p99_ms <= 10,
        ),
    ]


def b1_sandbox_cost(database: Database, *, seconds: int, rounds: int) -> list[Figure]:
    """Status GET on a sandbox server (no trigger, no Prefer) against a plain one, runs alternated:
    sandbox mode must cost nothing measurable when unused."""
    with database() as plain_url, database() as sandbox_url:
        plain_app = register_app(plain_url)
        with (
            pendingtx_server(plain_url) as (plain, _),
            # The sandbox marks its fresh database at startup; its application is registered after.
            pendingtx_server(sandbox_url, env={"PENDINGTX_SANDBOX": "true"}) as (sandbox, _),
        ):
            sandbox_app = register_app(sandbox_url, sandbox=True)
            targets = []
            for base, app in ((plain, plain_app), (sandbox, sandbox_app)):
                headers = auth_headers(base, app)
                key = _submit(base, headers, msgspec.json.encode([record("B1-1")]))
                _wait_terminal(base, headers, [key])
                targets.append((f"{base}{_status_path(key)}", headers))
            best = [0.0, 0.0]
            for _ in range(rounds):
                for i, (url, headers) in enumerate(targets):
                    run = run_wrk(url, seconds=seconds, headers=headers)
                    if run.errors:
                        raise RuntimeError(f"B1 (sandbox) got {run.errors} errors")
                    best[i] = max(best[i], run.rps)
    ratio = best[1] / best[0]
    return [
        Figure(
            "B1 status GET rps, sandbox mode unused (SQLite)",
            f"{best[1]:,.0f}",
            f"{best[0]:,.0f} same server without sandbox",
            f"{ratio:.2f}",
            ">= 0.95",
            ratio >= 0.95,
        )
    ]


def b2_ingest(database: Database, label: str, *, goal_rate: float | None) -> list[Figure]:
    """100,000 records as 10 batches of 10,000, from the first POST until all are terminal.

    The ratio's anchor is plain executemany of the same rows into the service's own table, in a fresh
    database; the same rows into a bare table (its unique key only) are shown beside it.
    """
    batches = [msgspec.json.encode([record(f"B2-{b}-{i}") for i in range(10_000)]) for b in range(10)]
    with database() as url:
        app = register_app(url)
        with pendingtx_server(url) as (base, pid):
            headers = auth_headers(base, app)
            started = time.perf_counter()
            keys = [_submit(base, headers, body) for body in batches]
            _wait_terminal(base, headers, keys)
            elapsed = time.perf_counter() - started
            rss = peak_rss_mb(pid)
        bare_rate = anchors.executemany_rate(url, 100_000)
    with database() as url:
        register_app(url)
        anchor_rate = anchors.service_table_rate(url, 100_000)
    rate = 100_000 / elapsed
    ratio = rate / anchor_rate
    met = ratio >= 0.25 and (goal_rate is None or rate >= goal_rate)
    goal = f">= {goal_rate:,.0f}/s, ratio >= 0.25" if goal_rate else "ratio >= 0.25"
    return [
        Figure(
            f"B2 ingest records/s ({label})",
            f"{rate:,.0f}",
            f"{anchor_rate:,.0f} executemany into the service's table",
            f"{ratio:.2f}",
            goal,
            met,
        ),
        Figure(
            f"B2 beside a bare table ({label})",
            f"{rate:,.0f}",
            f"{bare_rate:,.0f} executemany into a table with only the unique key",
            f"{rate / bare_rate:.2f}",
            "",
            None,
        ),
        Figure(f"B4 peak RSS during B2 ({label})", f"{rss:.0f} MiB", "", "", "<= 250 MiB", rss <= 250),
    ]


def _one_job_latencies(base: str, headers: dict[str, str], count: int, *, prefix: str = "B3") -> list[float]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    post_headers = {**headers, "Content-Type": "application/json"}
    latencies = []
    for i in range(count):
        body = msgspec.json.encode([record(f"{prefix}-{i}")])
        started = time.perf_counter()
        conn.request("POST", "/v1/transactions", body=body, headers=post_headers)
        key = json.loads(conn.getresponse().read())["jobStatusQueryKey"]
        while True:
            conn.request("GET", _status_path(key), headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.getheader("retry-after") is None:
                break
        latencies.append((time.perf_counter() - started) * 1000)
    conn.close()
    return latencies


def _percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def b3_latency(
    database: Database, label: str, *, separate_worker: bool, goal_p50: float, goal_p99: float | None
) -> list[Figure]:
    """500 sequential one-record jobs: POST sent until a status GET shows the job terminal."""
    with database() as url:
        app = register_app(url)
        with pendingtx_server(url, worker=not separate_worker) as (base, _):
            headers = auth_headers(base, app)
            if separate_worker:
                with worker_process(url):
                    _one_job_latencies(base, headers, 20)  # the worker is ready once jobs flow
                    latencies = _one_job_latencies(base, headers, 500)
            else:
                latencies = _one_job_latencies(base, headers, 500)
    p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
    met = p50 <= goal_p50 and (goal_p99 is None or p99 <= goal_p99)
    goal = f"p50 <= {goal_p50:g}" + (f", p99 <= {goal_p99:g}" if goal_p99 else "")
    return [
        Figure(
            f"B3 one-record job latency ms p50/p99 ({label})",
            f"{p50:.2f} / {p99:.2f}",
            "Celery+Redis 2.0 p50 (notes)",
            "",
            goal,
            met,
        )
    ]


def _jobs_per_second(database: Database, *, seconds: int, processes: int = 1, pin: bool = True) -> float:
    """One-record jobs from 8 concurrent clients for `seconds` on a fresh database: jobs completed
    per second, from the first request until the last job is terminal."""
    with database() as url:
        app = register_app(url)
        with pendingtx_server(url, processes=processes, pin=pin) as (base, _):
            headers = auth_headers(base, app)
            started = time.perf_counter()
            result = run_wrk(
                f"{base}/v1/transactions",
                connections=8,
                seconds=seconds,
                headers=headers,
                script=SCRIPTS / "submit_one.lua",
                pin=pin,
            )
            done = anchors.wait_all_terminal(url, timeout=120)
            elapsed = time.perf_counter() - started
    if result.errors or result.socket_errors:
        raise RuntimeError(f"B5 got {result.errors} errors, {result.socket_errors} socket errors")
    return done / elapsed


def b5_throughput(database: Database, label: str, *, seconds: int) -> list[Figure]:
    """One-record jobs from 8 concurrent clients for `seconds`: jobs completed per second."""
    rate = _jobs_per_second(database, seconds=seconds)
    return [
        Figure(
            f"B5 job throughput jobs/s ({label})",
            f"{rate:,.0f}",
            "Celery 715, procrastinate 790 (notes)",
            "",
            ">= 1,000",
            rate >= 1000,
        )
    ]


def _median_ratio(label: str, unit: str, by_count: dict[int, list[float]], goal: float | None) -> Figure:
    one, two = statistics.median(by_count[1]), statistics.median(by_count[2])
    runs = " / ".join(f"{a:,.0f}" for a in by_count[2])
    anchor_runs = " / ".join(f"{a:,.0f}" for a in by_count[1])
    return Figure(
        f"{label}: --processes 2 against 1, nothing pinned (3 alternated pairs, medians)",
        f"{two:,.0f} {unit} ({runs})",
        f"{one:,.0f} {unit} with 1 ({anchor_runs})",
        f"{two / one:.2f}",
        f">= {goal}" if goal else "",
        None if goal is None else two / one >= goal,
    )


def b1_processes(database: Database, label: str, *, seconds: int, pairs: int = 3) -> list[Figure]:
    """B1's status GET on `serve --processes 1` and `--processes 2`, alternated, nothing pinned (wrk
    shares the cores with the server)."""
    by_count: dict[int, list[float]] = {1: [], 2: []}
    with database() as url:
        app = register_app(url)
        for _ in range(pairs):
            for count in (1, 2):
                with pendingtx_server(url, processes=count, pin=False) as (base, _):
                    headers = auth_headers(base, app)
                    key = _submit(base, headers, msgspec.json.encode([record("B1-1")]))
                    _wait_terminal(base, headers, [key])
                    ours = run_wrk(f"{base}{_status_path(key)}", seconds=seconds, headers=headers, pin=False)
                    if ours.errors or ours.socket_errors:
                        raise RuntimeError(
                            f"B1P got {ours.errors} errors, {ours.socket_errors} socket errors"
                        )
                    by_count[count].append(ours.rps)
    return [_median_ratio(f"B1 status GET rps ({label})", "rps", by_count, 1.4)]


HTTP_SERVERS = ("uvicorn", "granian")


def b1_http_servers(database: Database, label: str, *, seconds: int, pairs: int = 3) -> list[Figure]:
    """B1 on `serve --http-server uvicorn` and `granian`, alternated `pairs` times, each run against
    its own run of the no-op app on uvicorn (B1's anchor); server pinned as in B1."""
    ratios: dict[str, list[float]] = {name: [] for name in HTTP_SERVERS}
    rps: dict[str, list[float]] = {name: [] for name in HTTP_SERVERS}
    p99: dict[str, list[float]] = {name: [] for name in HTTP_SERVERS}
    with database() as url:
        app = register_app(url)
        for _ in range(pairs):
            for name in HTTP_SERVERS:
                with pendingtx_server(url, env={"PENDINGTX_HTTP_SERVER": name}) as (base, _):
                    headers = auth_headers(base, app)
                    key = _submit(base, headers, msgspec.json.encode([record("B1-1")]))
                    _wait_terminal(base, headers, [key])
                    with noop_server() as noop:
                        anchor = run_wrk(f"{noop}/", seconds=seconds)
                    ours = run_wrk(f"{base}{_status_path(key)}", seconds=seconds, headers=headers)
                    if ours.errors or ours.socket_errors:
                        raise RuntimeError(
                            f"B1G ({name}) got {ours.errors} errors, {ours.socket_errors} socket errors"
                        )
                    ratios[name].append(ours.rps / anchor.rps)
                    rps[name].append(ours.rps)
                    p99[name].append(ours.p99_ms)
    rows = [
        Figure(
            f"B1 status GET rps on {name} ({label}; {pairs} alternated runs, median ratio)",
            f"{statistics.median(rps[name]):,.0f} ({' / '.join(f'{r:,.0f}' for r in rps[name])})",
            "no-op ASGI on uvicorn, run before each",
            f"{statistics.median(ratios[name]):.2f} ({' / '.join(f'{r:.2f}' for r in ratios[name])})",
            ">= 0.45",
            statistics.median(ratios[name]) >= 0.45,
        )
        for name in HTTP_SERVERS
    ]
    gain = statistics.median(ratios["granian"]) / statistics.median(ratios["uvicorn"])
    rows.append(
        Figure(
            f"B1 granian against uvicorn ({label}): ratio of the median ratios; p99 ms (medians)",
            f"p99 {statistics.median(p99['granian']):.2f}",
            f"p99 {statistics.median(p99['uvicorn']):.2f} on uvicorn",
            f"{gain:.2f}",
            "",
            None,
        )
    )
    return rows


def b5_processes(database: Database, label: str, *, seconds: int, pairs: int = 3) -> list[Figure]:
    """B5's one-record jobs on `serve --processes 1` and `--processes 2`, alternated, nothing pinned;
    each run on a fresh database."""
    by_count: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(pairs):
        for count in (1, 2):
            by_count[count].append(_jobs_per_second(database, seconds=seconds, processes=count, pin=False))
    return [_median_ratio(f"B5 job throughput jobs/s ({label})", "jobs/s", by_count, None)]


@contextmanager
def temporary_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pendingtx-bench-") as tmp:
        yield Path(tmp)


def current_rss_mb(pid: int) -> float:
    """The process's resident memory now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _held_read(port: int, key: str, headers: dict[str, str]) -> tuple[float, dict[str, object]]:
    """One status read with `?wait=60` on its own connection: when its answer began to arrive (epoch
    seconds), and the answer. Plain asyncio streams keep the client's own cost out of the figure."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"GET {_status_path(key)}?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    arrived = time.time()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length)
    writer.close()
    if b" 200 " not in status_line:
        raise RuntimeError(f"held read answered {status_line!r}: {body[:200]!r}")
    return arrived, json.loads(body)


def b6_long_poll(database: Database, *, clients: int = 1000, check_seconds: float = 0.02) -> list[Figure]:
    """`clients` connections each long-poll one of as many one-record jobs on one server process
    (SQLite). Figures: answer time minus the job's completedAt (p50/p99), and the server's RSS growth
    per held read; the jobs completed by the server's own worker, then by a `pendingtx worker` process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * clients + 256)), hard))
    rows = []
    for embedded in (True, False):
        late_ms, per_read_kib = _b6_run(
            database, clients=clients, check_seconds=check_seconds, embedded=embedded
        )
        p50, p99 = _percentile(late_ms, 50), _percentile(late_ms, 99)
        how = "in-process worker" if embedded else "worker process"
        rows += [
            Figure(
                f"B6 long-poll answer after completion ms p50/p99 ({clients} held reads, SQLite, {how})",
                f"{p50:.1f} / {p99:.1f}",
                "polling every Retry-After (1 s): ~500 mean",
                "",
                "p99 <= 100",
                p99 <= 100,
            ),
            Figure(
                f"B6 server RSS growth per held read KiB ({how})", f"{per_read_kib:.1f}", "", "", "", None
            ),
        ]
    return rows


def _b6_run(
    database: Database, *, clients: int, check_seconds: float, embedded: bool
) -> tuple[list[float], float]:
    # The jobs are accepted by a second server without a worker, so that nothing completes them
    # before every read is held: the measured server's own worker is woken only by its polling
    # timer (other processes' jobs wake no worker on SQLite), set far beyond the setup's length.
    with database() as url:
        app = register_app(url)
        env = {"PENDINGTX_EVENT_CHECK_SECONDS": str(check_seconds), "PENDINGTX_WORKER_POLL_SECONDS": "120"}
        with (
            pendingtx_server(url, worker=embedded, env=env) as (base, pid),
            pendingtx_server(url, worker=False) as (intake, _),
        ):
            started = time.monotonic()
            headers = auth_headers(base, app)
            keys = [
                _submit(intake, headers, msgspec.json.encode([record(f"B6-{i}")])) for i in range(clients)
            ]
            port = int(base.rsplit(":", 1)[1])
            time.sleep(1.0)  # let the server settle
            before = current_rss_mb(pid)

            async def run() -> tuple[list[tuple[float, dict[str, object]]], float]:
                reads = [asyncio.ensure_future(_held_read(port, key, headers)) for key in keys]
                await asyncio.sleep(3.0)  # every read sent and held
                if any(r.done() for r in reads):
                    raise RuntimeError("a read answered before any job could complete")
                if time.monotonic() - started > 100:
                    raise RuntimeError("setup took longer than the worker's polling timer")
                held = current_rss_mb(pid)
                if embedded:
                    # A job accepted by the measured server wakes its worker, which takes them all.
                    await asyncio.to_thread(_submit, base, headers, msgspec.json.encode([record("B6-wake")]))
                    answers = await asyncio.wait_for(asyncio.gather(*reads), timeout=120)
                else:
                    with worker_process(url):
                        answers = await asyncio.wait_for(asyncio.gather(*reads), timeout=120)
                return answers, held

            answers, held = asyncio.run(run())
    late_ms = []
    for arrived, body in answers:
        if body["status"] != "Completed":
            raise RuntimeError(f"a held read answered {body['status']}")
        late_ms.append((arrived - datetime.fromisoformat(str(body["completedAt"])).timestamp()) * 1000)
    return late_ms, (held - before) * 1024 / clients
