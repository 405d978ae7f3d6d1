"""`pendingtx serve --sandbox` as a real process (contract 7.6)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import BASE_SETTINGS, StartServer
from tests.e2e.server import (
    STARTUP_TIMEOUT,
    Process,
    Server,
    caller_headers,
    free_port,
    run_cli,
    subprocess_env,
    wait_until,
)
from tests.e2e.test_readme import README
from tests.support import record

SANDBOX = {"PENDINGTX_SANDBOX": "true"}


def sandbox_app(server: Server, database_url: str) -> dict[str, Any]:
    """An application made by `pendingtx apps create` in sandbox mode, as the server's own."""
    out = run_cli(
        ["apps", "create", "--name", "sbx", "--org", "sbx", "--json", "--database-url", database_url],
        env=SANDBOX,
    )
    created: dict[str, Any] = json.loads(out)
    return created


def test_a_sandbox_server_says_so_in_its_log_and_on_every_answer(start_server: StartServer) -> None:
    # Asked for two processes, a sandbox serves in one: its clock and reset are a process's.
    server = start_server({**SANDBOX, "PENDINGTX_PROCESSES": "2"})
    assert "SANDBOX MODE" in server.log()
    assert "sandbox mode serves in one process, not 2" in server.log()
    assert httpx.get(server.base_url + "/healthz", timeout=10).json()["process"] == server.pid
    for path in ("/healthz", "/nowhere"):
        assert httpx.get(server.base_url + path, timeout=10).headers["sandbox"] == "true"


def test_a_delayed_answer_does_not_hold_the_server(start_server: StartServer, e2e_database_url: str) -> None:
    server = start_server(SANDBOX)
    app = sandbox_app(server, e2e_database_url)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        delayed: list[httpx.Response] = []

        def slow() -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as other:
                delayed.append(other.get("/v1/transactions", headers={**headers, "Prefer": "delay=4000"}))

        waiting = threading.Thread(target=slow)
        waiting.start()
        try:
            # Served while the other request waits out its 4 s.
            assert http.get("/v1/transactions", headers=headers).status_code == 200
            assert waiting.is_alive()
        finally:
            waiting.join(30)
    assert delayed[0].status_code == 200
    assert delayed[0].headers["preference-applied"] == "delay=4000"


def printed(process: Process, name: str) -> str | None:
    """The value of a `Name:   value` line the process printed, if it has yet."""
    for line in process.log().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return None


def start_sandbox(tmp_path: Path, started: list[Process]) -> tuple[Process, str, dict[str, str]]:
    """`pendingtx sandbox` on a free port, once it answers: the process, its URL and its demo app."""
    port = free_port()
    process = Process(["sandbox", "--port", str(port)], tmp_path / "sandbox.log", BASE_SETTINGS)
    started.append(process)
    wait_until(lambda: printed(process, "AppSecret") is not None, STARTUP_TIMEOUT, what="the credentials")
    root = f"http://127.0.0.1:{port}"
    app = {"appKey": printed(process, "AppKey") or "", "appSecret": printed(process, "AppSecret") or ""}

    def healthy() -> bool:
        try:
            return httpx.get(f"{root}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, STARTUP_TIMEOUT, what="the sandbox")
    return process, root, app


def test_pendingtx_sandbox_starts_a_fresh_sandbox_with_a_demo_app(
    tmp_path: Path, started: list[Process]
) -> None:
    process, root, app = start_sandbox(tmp_path, started)
    assert printed(process, "URL") == root
    assert printed(process, "Docs") == f"{root}/docs"
    with httpx.Client(base_url=root, timeout=30) as http:
        headers = caller_headers(http, app)
        accepted = http.post(
            "/v1/transactions", json=[record("SBX-REJECT-1"), record("OK-1")], headers=headers
        )
        assert accepted.status_code == 202
        assert accepted.headers["sandbox"] == "true"
        key = accepted.json()["jobStatusQueryKey"]

        def finished() -> bool:
            return (
                http.get(f"/v1/jobs/insight/status/{key}", headers=headers).json()["status"]
                == "Partially Completed"
            )

        wait_until(finished, 30, what="the job")
        status = http.get(f"/v1/jobs/insight/status/{key}", headers=headers)
        assert status.json()["validationMessage"] == [
            "[0] externalId=SBX-REJECT-1: externalId: sandbox: rejected by trigger"
        ]
        assert http.get("/docs").status_code == 200
    assert process.stop() == 0


def readme_sandbox_example() -> str:
    """The python block of README.md's section on testing against the sandbox."""
    text = README.read_text()
    section = text[text.index("## Testing your integration against the sandbox") :]
    begin = section.index("```python\n") + len("```python\n")
    return section[begin : section.index("\n```\n", begin)]


def test_the_readmes_pytest_example_passes_against_a_sandbox(tmp_path: Path, started: list[Process]) -> None:
    _, root, app = start_sandbox(tmp_path, started)
    module = tmp_path / "example" / "test_integration.py"
    module.parent.mkdir()
    module.write_text(readme_sandbox_example() + "\n")
    (module.parent / "pytest.ini").write_text("[pytest]\n")
    env = subprocess_env(
        {"PENDINGTX_URL": root, "PENDINGTX_APP_KEY": app["appKey"], "PENDINGTX_APP_SECRET": app["appSecret"]}
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=module.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_moving_the_clock_reaches_the_embedded_worker_retention_runs(
    start_server: StartServer, e2e_database_url: str
) -> None:
    server = start_server({**SANDBOX, "PENDINGTX_JOB_RETENTION_DAYS": "1"})
    app = sandbox_app(server, e2e_database_url)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        key = http.post("/v1/transactions", json=[record("RET-1")], headers=headers).json()[
            "jobStatusQueryKey"
        ]
        status_path = f"/v1/jobs/insight/status/{key}"
        wait_until(
            lambda: http.get(status_path, headers=headers).json()["status"] == "Completed", 30, what="done"
        )
        moved = http.post("/sandbox/clock", json={"advanceSeconds": 2 * 86400}, headers=headers)
        assert moved.status_code == 200
        # Every token is past its lifetime now, on the server's clock.
        assert http.get(status_path, headers=headers).json()["message"] == "Access Token expired"
        headers = caller_headers(http, app)
        # The worker's sweep reads the same clock: the job is past its retention, and deleted.
        wait_until(lambda: http.get(status_path, headers=headers).status_code == 410, 30, what="the sweep")
