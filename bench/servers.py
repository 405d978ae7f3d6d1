"""Starting and stopping the processes a benchmark measures, pinned to a core when there are two."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVER_CORE = "0"
CLIENT_CORE = "1"


def pinned(command: Sequence[str], core: str) -> list[str]:
    """The command pinned to one core with taskset, when the machine has two or more."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", core, *command]
    return list(command)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready")


def wait_serving(base: str, processes: int, timeout: float = 60.0) -> None:
    """Wait until `processes` distinct processes have answered /healthz on new connections: a load
    generator that connects earlier would find only the first one listening."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < processes:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {processes} processes answered")
        seen.add(int(httpx.get(f"{base}/healthz", timeout=5).json()["process"]))


@contextmanager
def process(
    command: Sequence[str], *, env: dict[str, str] | None = None, ready: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of a block; stop it with SIGTERM (SIGKILL after 10 s)."""
    proc = subprocess.Popen(
        list(command),
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if ready:
            wait_ready(ready)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def pendingtx_server(
    database_url: str,
    *,
    worker: bool = True,
    env: dict[str, str] | None = None,
    processes: int = 1,
    pin: bool = True,
) -> Iterator[tuple[str, int]]:
    """`pendingtx serve --processes N` on a free port, pinned to the server core unless told not to;
    yields (base URL, PID of the parent)."""
    port = free_port()
    command = [str(BIN / "pendingtx"), "serve", "--port", str(port), "--database-url", database_url]
    command += ["--processes", str(processes)]
    if not worker:
        command.append("--no-worker")
    # Budgets far above what one run sends: the check still runs, so its cost is still measured.
    settings = {
        "PENDINGTX_LOG_LEVEL": "warning",
        "PENDINGTX_APP_STATUS_READS_PER_MINUTE": "1000000000",
        "PENDINGTX_APP_REQUESTS_PER_MINUTE": "1000000000",
        **(env or {}),
    }
    base = f"http://127.0.0.1:{port}"
    launched = pinned(command, SERVER_CORE) if pin else command
    with process(launched, env=settings, ready=f"{base}/healthz") as proc:
        wait_serving(base, processes)
        yield base, proc.pid


@contextmanager
def noop_server() -> Iterator[str]:
    """The no-op ASGI app on uvicorn with the same loop and HTTP parser as `pendingtx serve`."""
    port = free_port()
    command = [
        str(BIN / "uvicorn"),
        "bench.noop_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        # As `pendingtx serve` (api.server.server_config): without uvicorn's proxy-header middleware.
        "--no-proxy-headers",
        "--loop",
        "auto",
        "--http",
        "auto",
    ]
    base = f"http://127.0.0.1:{port}"
    with process(pinned(command, SERVER_CORE), ready=f"{base}/"):
        yield base


@contextmanager
def worker_process(database_url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """A separate `pendingtx worker` process, on the client core so it does not share the server's."""
    command = [str(BIN / "pendingtx"), "worker", "--database-url", database_url]
    with process(pinned(command, CLIENT_CORE), env={"PENDINGTX_LOG_LEVEL": "warning", **(env or {})}) as proc:
        yield proc.pid


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")
