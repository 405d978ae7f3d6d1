"""Running the real `pendingtx` command as a subprocess: the CLI, and servers on free local ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg

from pendingtx.storage.driver.engine import libpq_conninfo

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# PENDINGTX_TEST_HTTP_SERVER=granian runs every e2e server on granian (test_granian.py always does).
HTTP_SERVER = os.environ.get("PENDINGTX_TEST_HTTP_SERVER", "")


def wait_until(
    predicate: Callable[[], bool], timeout: float, *, interval: float = 0.02, what: str = ""
) -> None:
    """Poll `predicate` until it is true; fail the test when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pendingtx_command() -> list[str]:
    """The installed `pendingtx` entry point beside this interpreter, or `python -m pendingtx`."""
    found = shutil.which("pendingtx", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "pendingtx"]


def subprocess_env(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any PENDINGTX_* setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENDINGTX_")}
    env.update(settings or {})
    return env


def run_cli(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60) -> str:
    """Run `pendingtx ARGS...`, require exit status 0, and return its standard output."""
    done = subprocess.run(
        [*pendingtx_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(env),
        check=False,
    )
    assert done.returncode == 0, f"pendingtx {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def create_app_via_cli(database_url: str, *, name: str = "e2e-app", org: str = "e2e") -> dict[str, Any]:
    """`pendingtx apps create --json`: exactly {appKey, appSecret, organization}."""
    out = run_cli(["apps", "create", "--name", name, "--org", org, "--json", "--database-url", database_url])
    created: dict[str, Any] = json.loads(out)
    assert set(created) == {"appKey", "appSecret", "organization"}, created
    assert created["organization"] == org
    return created


class Process:
    """A `pendingtx` subprocess whose output goes to a log file; only this object ever signals it."""

    def __init__(
        self, args: Sequence[str], log_path: Path, settings: Mapping[str, str] | None = None
    ) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*pendingtx_command(), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=subprocess_env(settings),
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no chance to clean up."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (a graceful shutdown), then SIGKILL if it has not exited within `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


class Server(Process):
    """`pendingtx serve` on a free port of 127.0.0.1; one process unless `processes` says otherwise."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        settings: Mapping[str, str] | None = None,
        *,
        no_worker: bool = False,
        processes: int | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--database-url", database_url]
        if no_worker:
            args.append("--no-worker")
        if processes is not None:
            args += ["--processes", str(processes)]
        # The default is one process per core: the tests of one process's behaviour say so.
        defaults = {"PENDINGTX_PROCESSES": "1"}
        if HTTP_SERVER:
            defaults["PENDINGTX_HTTP_SERVER"] = HTTP_SERVER
        super().__init__(args, log_path, {**defaults, **(settings or {})})

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait for GET /healthz to answer 200 (the server has migrated and listens)."""
        wait_until(self._healthy, timeout, interval=0.05, what=f"{self.base_url}/healthz")


def caller_headers(http: httpx.Client, app: Mapping[str, str], *, timeout: float = 60) -> dict[str, str]:
    """Mint a token for the application; the Authorization and AppKey headers of a /v1 call.

    As a client does, a mint refused for a moment (429 or 503 with `Retry-After: 1`: too many
    mints at once) is tried again; a lockout (a longer `Retry-After`) is not.
    """
    answers: list[httpx.Response] = []

    def minted() -> bool:
        answers.append(
            http.post(
                "/v2/oauthtoken",
                data={"grant_type": "client_credentials"},
                auth=(app["appKey"], app["appSecret"]),
            )
        )
        answer = answers[-1]
        return answer.status_code not in (429, 503) or answer.headers.get("retry-after") != "1"

    wait_until(minted, timeout, interval=1.0, what="a token")
    assert answers[-1].status_code == 200, answers[-1].text
    return {"Authorization": f"Bearer {answers[-1].json()['access_token']}", "AppKey": app["appKey"]}


# --- PostgreSQL end-to-end helpers (appended) -------------------------------------------------------

TERMINAL_STATUSES = frozenset({"Completed", "Partially Completed", "Failed"})


def pg_connect(database_url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """A direct autocommit connection to the test's PostgreSQL database, to watch and check it."""
    return psycopg.connect(libpq_conninfo(database_url), autocommit=True, connect_timeout=5)


def pid_of_worker_id(worker_id: str | None) -> int | None:
    """The process id inside a `host:pid:nonce` worker id."""
    parts = (worker_id or "").split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def submit_batch(base_url: str, app: Mapping[str, str], batch: Sequence[Mapping[str, Any]]) -> str:
    """Mint a token and POST the batch to /v1/transactions; returns the job key from the 202."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        headers = caller_headers(http, app)
        accepted = http.post("/v1/transactions", json=list(batch), headers=headers)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["jobStatusQueryKey"])
