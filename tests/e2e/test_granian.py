"""`pendingtx serve --http-server granian`, on both databases: the key flows and every guarantee of the
uvicorn path (api/server.py) — a request in flight at SIGTERM is answered, held reads at once, the
process exits 0; limits answer in the contract's format; `X-Forwarded-For` is not believed; logs
are JSON lines; `--processes 2` shares the port."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import BASE_SETTINGS
from tests.e2e.raw_http import (
    answer_of,
    auth_lines,
    held_read_head,
    raw_request,
    read_to_end,
    read_until,
    stream_head,
)
from tests.e2e.server import (
    TERMINAL_STATUSES,
    Process,
    Server,
    caller_headers,
    create_app_via_cli,
    run_cli,
    wait_until,
)
from tests.support import record

pytestmark = pytest.mark.e2e

DEADLINE = 30
GRANIAN = {**BASE_SETTINGS, "PENDINGTX_HTTP_SERVER": "granian"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, e2e_database_url: str) -> str:
    if request.param == "sqlite":
        return e2e_database_url
    return str(request.getfixturevalue("postgres_e2e_url"))


def granian_server(
    database: str, tmp_path: Path, started: list[Process], *, name: str, **options: Any
) -> Server:
    server = Server(database, tmp_path / f"{name}.log", GRANIAN, **options)
    started.append(server)
    server.wait_healthy()
    return server


def json_lines(process: Process) -> list[dict[str, Any]]:
    """The process's log: every line must be one JSON object."""
    return [json.loads(line) for line in process.log().splitlines() if line.strip()]


def check_log(process: Process) -> list[dict[str, Any]]:
    lines = json_lines(process)
    assert any(x["logger"] == "_granian" for x in lines), lines  # granian's own records are JSON too
    assert not [x for x in lines if x["logger"] == "granian.access"], lines
    assert not [x for x in lines if x["level"] in ("ERROR", "CRITICAL")], lines
    return lines


def test_a_request_in_flight_and_held_reads_are_answered_at_sigterm_then_jobs_complete(
    database: str, tmp_path: Path, started: list[Process]
) -> None:
    app = create_app_via_cli(database)
    first = granian_server(database, tmp_path, started, name="first", no_worker=True)
    with httpx.Client(base_url=first.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        accepted = http.post("/v1/transactions", json=[record("GR-1")], headers=headers)
        assert accepted.status_code == 202, accepted.text
        held_key = accepted.json()["jobStatusQueryKey"]
    reads = [
        raw_request(
            first.port,
            held_read_head(held_key, headers),
        )
        for _ in range(2)
    ]
    stream = raw_request(
        first.port,
        stream_head(headers),
    )
    read_until(stream, b"event: job.submitted")
    # A submission whose body is half sent when the signal comes: it is in flight, and must be
    # answered once the rest arrives.
    body = json.dumps([record("GR-2")]).encode()
    submission = raw_request(
        first.port,
        f"POST /v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{auth_lines(headers)}Connection: close\r\n\r\n",
        body[:10],
    )
    with submission, stream, reads[0], reads[1]:
        first.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "SIGTERM received" in first.log(), DEADLINE, what="the stop signal")
        read_to_end(stream)  # the stream ends now, not after the socket's 30 s timeout
        for read in reads:
            # Answered now, not after the 60 s the reads asked for (the socket's timeout is 30 s).
            status, answer = answer_of(read)
            assert (status, answer["status"]) == (200, "Submitted"), answer
        submission.sendall(body[10:])
        status, answer = answer_of(submission)
    assert status == 202, answer
    assert first.process.wait(DEADLINE) == 0
    lines = check_log(first)
    assert any(x["logger"] == "pendingtx.access" and x.get("status") == 202 for x in lines)
    assert app["appSecret"] not in first.log()

    second = granian_server(database, tmp_path, started, name="second")
    with httpx.Client(base_url=second.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        for key in (held_key, answer["jobStatusQueryKey"]):

            def finished(key: str = key) -> bool:
                answer = http.get(f"/v1/jobs/insight/status/{key}", headers=headers)
                assert answer.status_code == 200, answer.text
                return answer.json()["status"] in TERMINAL_STATUSES

            wait_until(finished, DEADLINE, what=f"job {key} to finish")
    assert second.stop() == 0
    check_log(second)


def test_limits_answer_in_the_contracts_format_and_forwarded_for_is_not_believed(
    database: str, tmp_path: Path, started: list[Process]
) -> None:
    server = granian_server(database, tmp_path, started, name="server", no_worker=True)
    app = create_app_via_cli(database)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        too_long = http.get("/v1/transactions?externalId=" + "a" * 2100, headers=headers)
        assert too_long.status_code == 414, too_long.text
        assert too_long.json()["code"] == "request.uri.too.long"
        big = http.get("/v1/transactions", headers={**headers, "X-Filler": "v" * 9000})
        assert big.status_code == 400, big.text
        assert big.json()["code"] == "request.validation.failure"
        assert [e["field"] for e in big.json()["errors"]] == ["x-filler"]

        run_cli(["apps", "update", app["appKey"], "--allow-ip", "10.9.9.9/32", "--database-url", database])
        forged = http.get("/v1/transactions", headers={**headers, "X-Forwarded-For": "10.9.9.9"})
        assert forged.status_code == 403, forged.text
        assert forged.json()["code"] == "gateway.access.failure"
        assert "127.0.0.1" in forged.json()["message"]
    assert server.stop() == 0
    check_log(server)


def test_two_processes_share_the_port_and_sigterm_drains_both(
    database: str, tmp_path: Path, started: list[Process]
) -> None:
    server = granian_server(database, tmp_path, started, name="server", processes=2)
    seen: dict[int, bool] = {}

    def both() -> bool:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            body = http.get("/healthz").json()
        seen[body["process"]] = body["worker"]
        return len(seen) == 2

    wait_until(both, DEADLINE, what="two processes to answer")
    assert sorted(seen.values()) == [False, True]
    app = create_app_via_cli(database)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        accepted = http.post("/v1/transactions", json=[record("GR-P")], headers=headers)
        assert accepted.status_code == 202, accepted.text
        key = accepted.json()["jobStatusQueryKey"]

        def finished() -> bool:
            answer = http.get(f"/v1/jobs/insight/status/{key}", headers=headers)
            return answer.json()["status"] in TERMINAL_STATUSES

        wait_until(finished, DEADLINE, what="the job to finish")
    assert server.stop() == 0, server.log()[-4000:]
    lines = check_log(server)
    assert len({x["pid"] for x in lines if x.get("event") == "process.serving"}) == 2


def test_a_port_in_use_is_refused(e2e_database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--database-url", e2e_database_url]
        process = Process(command, tmp_path / "refused.log", {**GRANIAN, "PENDINGTX_PROCESSES": "1"})
        try:
            assert process.process.wait(DEADLINE) == 1
        finally:
            process.stop()
    assert f"cannot listen on 127.0.0.1:{port}" in process.log()


def test_a_request_that_never_finishes_holds_the_stop_no_longer_than_the_shutdown_timeout(
    e2e_database_url: str, tmp_path: Path, started: list[Process]
) -> None:
    # granian itself would wait for it as long as the client keeps the connection.
    settings = {**GRANIAN, "PENDINGTX_SHUTDOWN_TIMEOUT_SECONDS": "1", "PENDINGTX_PROCESSES": "1"}
    server = Server(e2e_database_url, tmp_path / "server.log", settings)
    started.append(server)
    server.wait_healthy()
    with raw_request(
        server.port,
        "POST /v2/oauthtoken HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
        b"grant_type=",
    ):
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(DEADLINE) == 0
    assert "requests still in flight after 1.0 s; stopping anyway" in server.log()
