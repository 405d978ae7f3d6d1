"""The SDK's long-poll and event stream against real processes: `Client.wait` needs one held read
where polling needs one per Retry-After, and `Client.events` / `pendingtx events` read the log."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pendingtx_client import AsyncClient, Client, JobState
from tests.e2e.conftest import BASE_SETTINGS
from tests.e2e.server import Process, Server, create_app_via_cli, run_cli, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e


class Counting(httpx.HTTPTransport):
    """The network, counting the status reads sent."""

    def __init__(self) -> None:
        super().__init__()
        self.status_reads = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "/status/" in request.url.path:
            with self._lock:
                self.status_reads += 1
        return super().handle_request(request)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sdk-long-poll.db'}"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    """A server without a worker: jobs wait until a test starts `pendingtx worker`."""
    started = Server(
        database_url,
        tmp_path / "server.log",
        {**BASE_SETTINGS, "PENDINGTX_EVENT_CHECK_SECONDS": "0.05"},
        no_worker=True,
    )
    try:
        started.wait_healthy()
        yield started
    finally:
        started.stop()


def test_wait_with_long_poll_needs_far_fewer_requests_than_polling(
    server: Server, database_url: str, tmp_path: Path
) -> None:
    app = create_app_via_cli(database_url, name="lp-app", org="lp")
    held, polled = Counting(), Counting()
    with (
        Client(server.base_url, app["appKey"], app["appSecret"], transport=held) as long_poll,
        Client(
            server.base_url, app["appKey"], app["appSecret"], transport=polled, long_poll=False
        ) as polling,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        key = long_poll.submit([record("W-1")]).key
        waits = [pool.submit(c.wait, key, timeout=60) for c in (long_poll, polling)]
        # The job stays Submitted until a worker runs: let polling make its usual reads first.
        wait_until(lambda: polled.status_reads >= 4, 30, what="four polls")
        worker = Process(["worker", "--database-url", database_url], tmp_path / "worker.log", BASE_SETTINGS)
        try:
            assert [w.result(timeout=60).status for w in waits] == [JobState.COMPLETED] * 2
        finally:
            worker.stop()
    print(f"\nstatus reads: long-poll {held.status_reads}, polling {polled.status_reads}")
    assert held.status_reads == 1
    assert polled.status_reads >= 4


def test_events_are_iterated_resumed_and_listed_by_the_command(
    server: Server, database_url: str, tmp_path: Path
) -> None:
    app = create_app_via_cli(database_url, name="ev-app", org="ev")
    worker = Process(["worker", "--database-url", database_url], tmp_path / "worker.log", BASE_SETTINGS)
    try:
        with Client(server.base_url, app["appKey"], app["appSecret"]) as client:
            key = client.submit([record("V-1"), record("V-2", amount=-1)]).key
            seen = list(client.events(key=key))  # ends after the job's job.completed
            assert [e.type for e in seen] == ["job.submitted", "job.started", "job.completed"]
            assert seen[-1].status is JobState.PARTIALLY_COMPLETED
            assert [e.sequence for e in client.events(key=key, after=seen[0].sequence)] == [
                e.sequence for e in seen[1:]
            ]
            assert [e.id for e in client.events(follow=False)] == [e.id for e in seen]

            async def in_async() -> list[int]:
                async with AsyncClient(server.base_url, app["appKey"], app["appSecret"]) as api:
                    return [e.sequence async for e in api.events(key=key, after=1)]

            assert asyncio.run(in_async()) == [e.sequence for e in seen[1:]]
    finally:
        worker.stop()
    env = {
        "PENDINGTX_URL": server.base_url,
        "PENDINGTX_APP_KEY": app["appKey"],
        "PENDINGTX_APP_SECRET": app["appSecret"],
    }
    out = run_cli(["events", "--key", key, "--follow"], env=env)
    lines = [line.split("\t") for line in out.splitlines()]
    assert [line[1] for line in lines] == ["job.submitted", "job.started", "job.completed"]
    assert lines[-1][2:] == [key, "Partially Completed", "2/2"]
