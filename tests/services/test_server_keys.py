"""Server keys: made on first use, stored once however many processes race for it, then read by all."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.domain.cursors import KEY_BYTES, ListKind
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.server_keys import CURSOR_KEY
from pendingtx.storage.tables import server_keys
from tests.support import FakeClock

RACERS = 4


def stored(runtime: Runtime) -> list[tuple[str, bytes]]:
    with runtime.uow.read() as conn:
        rows = conn.execute(sa.select(server_keys.c.name, server_keys.c.secret)).all()
    return [(str(name), bytes(secret)) for name, secret in rows]


def test_the_key_is_made_on_first_use_and_kept(runtime: Runtime) -> None:
    assert stored(runtime) == []  # building a runtime touches no table
    key = runtime.keys.cursor_key()
    [(name, secret)] = stored(runtime)
    assert (name, len(secret)) == (CURSOR_KEY, KEY_BYTES)
    assert runtime.keys.cursor_key() is key


def test_racing_processes_agree_on_one_key(settings: Settings, clock: FakeClock) -> None:
    runtimes = [Runtime(settings=settings, engine=make_engine(settings), clock=clock) for _ in range(RACERS)]
    start = threading.Barrier(RACERS)

    def first_cursor(runtime: Runtime) -> str:
        start.wait(timeout=10)
        return runtime.keys.cursor_key().for_listing(ListKind.TRANSACTIONS, 1).seal(1)

    try:
        with ThreadPoolExecutor(RACERS) as pool:
            cursors = list(pool.map(first_cursor, runtimes))
        assert len(set(cursors)) == 1
        assert len(stored(runtimes[0])) == 1
    finally:
        for runtime in runtimes:
            runtime.close()
