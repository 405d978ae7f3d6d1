"""`pendingtx serve --processes N`: N API processes on one port, the embedded worker in one of them.

The parent has migrated the database; it spawns the children (multiprocessing's spawn start method,
so that none inherits the parent's threads or connections) and waits. Each child builds its own
runtime and binds the port with SO_REUSEPORT, so the kernel spreads connections among them. On
SIGTERM or SIGINT the parent sends SIGTERM to every child, each drains as a lone `serve` does, and
the parent exits 0 once all have. A child that ends on its own stops the others and the parent
exits 1: the process manager that started it restarts the whole.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from types import FrameType

from pendingtx.config import Settings
from pendingtx.siblings import Place

log = logging.getLogger("pendingtx")

# `processes = 0` means one per core, at most this many: beyond, SQLite's one writer and the
# database's connections (each process has its own pool) are the limit, not the cores.
MAX_DEFAULT_PROCESSES = 8
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def process_count(settings: Settings) -> int:
    """How many API processes `serve` runs: the setting, or one per core this process may use."""
    if settings.processes:
        return settings.processes
    return max(1, min(MAX_DEFAULT_PROCESSES, len(os.sched_getaffinity(0))))


def check_port_free(host: str, port: int) -> None:
    """OSError when something listens on the port: SO_REUSEPORT would otherwise share it silently
    with another process of the same user (an older server left running)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def serve_processes(settings: Settings, *, host: str, port: int, count: int, run_worker: bool) -> int:
    """Run `count` serving children until a stop signal; returns the exit status (0: all drained)."""
    check_port_free(host, port)
    directory = tempfile.mkdtemp(prefix="pendingtx-siblings-")
    context = multiprocessing.get_context("spawn")
    worker_index = 0 if run_worker else None
    children = [
        context.Process(
            target=_child,
            args=(settings, host, port, Place(directory, index, count, worker_index)),
            name=f"pendingtx-serve-{index}",
        )
        for index in range(count)
    ]
    started: list[multiprocessing.process.BaseProcess] = []
    stopping = threading.Event()

    def stop(_signal: int | None = None, _frame: FrameType | None = None) -> None:
        stopping.set()
        for child in started:
            if child.exitcode is None and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        for child in children:
            if stopping.is_set():
                break
            child.start()
            started.append(child)
        log.info(
            "serving on http://%s:%d with %d processes (pids %s)",
            host,
            port,
            len(started),
            ", ".join(str(c.pid) for c in started),
        )
        return _wait(started, stopping, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(directory, ignore_errors=True)


def _wait(
    children: list[multiprocessing.process.BaseProcess], stopping: threading.Event, stop: Callable[[], None]
) -> int:
    status = 0
    alive = list(children)
    while alive:
        multiprocessing.connection.wait([c.sentinel for c in alive])
        for child in [c for c in alive if not c.is_alive()]:
            child.join()
            alive.remove(child)
            # Killed by the stop signal before it could install its handler: it had served nothing.
            clean = child.exitcode == 0 or (stopping.is_set() and child.exitcode == -signal.SIGTERM)
            if not stopping.is_set():
                log.error("process %s exited with %s; stopping the others", child.pid, child.exitcode)
                status = 1
                stop()
            elif not clean:
                log.error("process %s exited with %s while stopping", child.pid, child.exitcode)
                status = 1
    return status


def _child(settings: Settings, host: str, port: int, place: Place) -> None:
    """One serving process (the target of a spawned child)."""
    # Its own process group: a terminal's Ctrl-C reaches the parent only, which stops each child
    # once (a second signal would make uvicorn drop the requests in flight).
    os.setpgrp()
    _stop_with_parent()
    from pendingtx.bootstrap import build_runtime, serve
    from pendingtx.observability.logs import AccessLog, configure_logging

    sink = configure_logging(settings.log_level)
    runtime = build_runtime(settings, migrate=False, place=place)
    try:
        serve(runtime, host=host, port=port, run_worker=place.runs_worker, access_log=AccessLog(sink=sink))
    finally:
        runtime.close()


def _stop_with_parent() -> None:
    """Drain and exit, as on SIGTERM, if the parent dies without stopping this process (SIGKILL)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="pendingtx-parent-watch", daemon=True).start()
