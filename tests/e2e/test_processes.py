"""`pendingtx serve --processes 2`: two processes answer on one port, exactly one runs the worker, a
revocation through one is refused by the other at once, and SIGTERM to the parent drains both
(held reads and streams answered at once) before it exits 0, leaving no process behind."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import BASE_SETTINGS
from tests.e2e.raw_http import (
    answer_of,
    held_read_head,
    kept_alive_answer,
    read_to_end,
    read_until,
    send_request,
    stream_head,
)
from tests.e2e.server import (
    TERMINAL_STATUSES,
    Process,
    Server,
    caller_headers,
    create_app_via_cli,
    wait_until,
)
from tests.support import record

pytestmark = pytest.mark.e2e

DEADLINE = 30
# On SQLite a process with held reads also checks the database's data version: this rarely, so that
# a held read answered in time was woken by its sibling's news, not by the check.
SLOW_CHECK = {"PENDINGTX_EVENT_CHECK_SECONDS": "60"}
BIG = 5_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, e2e_database_url: str) -> str:
    if request.param == "sqlite":
        return e2e_database_url
    return str(request.getfixturevalue("postgres_e2e_url"))


def serving(database: str, tmp_path: Path, started: list[Process], **options: Any) -> Server:
    server = Server(
        database, tmp_path / "server.log", {**BASE_SETTINGS, **SLOW_CHECK}, processes=2, **options
    )
    started.append(server)
    server.wait_healthy()
    return server


def health(http: httpx.Client) -> dict[str, Any]:
    answer = http.get("/healthz")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def processes_of(server: Server) -> dict[int, bool]:
    """Each serving process's id and whether it runs the worker, asked over new connections until two
    have answered (the kernel spreads connections among the processes)."""
    seen: dict[int, bool] = {}

    def both() -> bool:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            body = health(http)
        seen[body["process"]] = body["worker"]
        return len(seen) == 2

    wait_until(both, DEADLINE, what="two processes to answer")
    return seen


@contextmanager
def client_of(server: Server, pid: int) -> Iterator[httpx.Client]:
    """A keep-alive connection that the process `pid` serves."""
    found: list[httpx.Client] = []

    def connected() -> bool:
        http = httpx.Client(base_url=server.base_url, timeout=90)
        if health(http)["process"] == pid:
            found.append(http)
            return True
        http.close()
        return False

    wait_until(connected, DEADLINE, what=f"a connection served by process {pid}")
    try:
        yield found[0]
    finally:
        found[0].close()


def parent_of(pid: int) -> int:
    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def json_lines(process: Process) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.log().splitlines() if line.strip()]


def accept(http: httpx.Client, headers: Mapping[str, str], *records: dict[str, Any]) -> str:
    accepted = http.post("/v1/transactions", json=list(records), headers=dict(headers))
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["jobStatusQueryKey"])


def status_of(http: httpx.Client, headers: Mapping[str, str], key: str, wait: int = 0) -> httpx.Response:
    return http.get(
        f"/v1/jobs/insight/status/{key}", params={"wait": wait} if wait else {}, headers=dict(headers)
    )


def stop_and_check(server: Server, pids: list[int]) -> list[dict[str, Any]]:
    """SIGTERM to the parent: it exits 0 and leaves no child behind; returns its log."""
    assert server.stop() == 0, server.log()[-4000:]
    for pid in pids:
        wait_until(lambda pid=pid: gone(pid), DEADLINE, what=f"process {pid} to end")
    lines = json_lines(server)
    assert not [x for x in lines if x["level"] in ("ERROR", "CRITICAL")], lines
    return lines


def test_two_processes_share_the_port_one_runs_the_worker_and_sigterm_drains_both(
    database: str, tmp_path: Path, started: list[Process]
) -> None:
    app = create_app_via_cli(database)
    server = serving(database, tmp_path, started)
    roles = processes_of(server)
    assert sorted(roles.values()) == [False, True], roles
    assert all(parent_of(pid) == server.pid for pid in roles)
    with_worker = next(pid for pid, worker in roles.items() if worker)
    without = next(pid for pid, worker in roles.items() if not worker)

    with client_of(server, with_worker) as near, client_of(server, without) as far:
        headers = caller_headers(far, app)
        # A job accepted where no worker runs is done by the sibling's, and a read held there is
        # answered when it completes (the sibling's news, not the data-version check, on SQLite).
        # The worker first takes a large job accepted before it, so the read is held well before.
        busy = accept(near, headers, *(record(f"PROC-BIG-{i}") for i in range(BIG)))
        held = accept(far, headers, record("PROC-1"))
        # Asked to wait longer than the deadline: only news of the completion can answer it in time.
        answer = far.get(
            f"/v1/jobs/insight/status/{held}", params={"wait": 60}, headers=headers, timeout=DEADLINE
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "Completed"
        keys = [busy, held, accept(near, headers, record("PROC-2")), accept(far, headers, record("PROC-3"))]
        for http in (near, far):

            def finished(http: httpx.Client = http) -> bool:
                answers = [status_of(http, headers, key) for key in keys]
                assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
                return all(a.json()["status"] in TERMINAL_STATUSES for a in answers)

            wait_until(finished, DEADLINE, what="every job to be final, read through both processes")

        # Revoked through one process: the other, which kept the token, refuses it on the next request.
        token = headers["Authorization"].removeprefix("Bearer ")
        revoked = near.post(
            "/v2/oauthtoken/revoke", data={"token": token}, auth=(app["appKey"], app["appSecret"])
        )
        assert revoked.status_code == 200, revoked.text
        assert status_of(far, headers, held).status_code == 401
        assert status_of(near, headers, held).status_code == 401

    lines = stop_and_check(server, list(roles))
    serving_lines = [x for x in lines if x.get("event") == "process.serving"]
    assert sorted((x["pid"], x["worker"]) for x in serving_lines) == sorted(roles.items())


def connection_to(server: Server, pid: int) -> socket.socket:
    """A raw keep-alive connection that the process `pid` serves."""
    found: list[socket.socket] = []

    def connected() -> bool:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        if kept_alive_answer(client)["process"] == pid:
            found.append(client)
            return True
        client.close()
        return False

    wait_until(connected, DEADLINE, what=f"a connection served by process {pid}")
    return found[0]


def test_sigterm_answers_the_held_reads_and_streams_of_every_process_at_once(
    e2e_database_url: str, tmp_path: Path, started: list[Process]
) -> None:
    app = create_app_via_cli(e2e_database_url)
    server = serving(e2e_database_url, tmp_path, started, no_worker=True)
    roles = processes_of(server)
    assert list(roles.values()) == [False, False], roles
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        key = accept(http, headers, record("PROC-HELD"))
    reads: list[socket.socket] = []
    streams: list[socket.socket] = []
    # Each request has reached its process (the kernel's queue says so) before the signal is sent.
    for pid in roles:
        reads.append(
            send_request(
                connection_to(server, pid),
                server.port,
                held_read_head(key, headers),
            )
        )
        stream = send_request(
            connection_to(server, pid),
            server.port,
            stream_head(headers),
        )
        read_until(stream, b"event: job.submitted")
        streams.append(stream)
    stop_and_check(server, list(roles))
    # Answered at the signal, not after the 60 s they asked to wait (the sockets' timeout is 30 s):
    # the job is still waiting, and every stream has ended.
    for read in reads:
        assert answer_of(read)[1]["status"] == "Submitted"
        read.close()
    for stream in streams:
        read_to_end(stream)
        stream.close()
