"""Sandbox mode's storage (contract 7.6): the database's mode marker both ways, the kept clock
offset, and the reset of one organization; on both databases."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from pendingtx.bootstrap import build_runtime
from pendingtx.clock import SandboxClock
from pendingtx.config import Settings
from pendingtx.storage.sandbox import DatabaseRefused, clock_offset
from pendingtx.worker.clock_follower import ClockFollower
from pendingtx.worker.sweeper import Sweeper
from tests.conftest import register
from tests.e2e.server import wait_until


def sandbox_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, sandbox=True, log_level="warning")


def test_a_production_server_refuses_a_sandbox_database(database_url: str) -> None:
    build_runtime(sandbox_settings(database_url), migrate=False).close()
    with pytest.raises(DatabaseRefused) as refused:
        build_runtime(Settings(database_url=database_url), migrate=False)
    assert "\n" not in str(refused.value)
    assert "sandbox" in str(refused.value)
    # The sandbox itself starts again on its own database.
    build_runtime(sandbox_settings(database_url), migrate=False).close()


def test_a_sandbox_refuses_a_database_used_without_sandbox_mode(database_url: str) -> None:
    production = build_runtime(Settings(database_url=database_url), migrate=False)
    try:
        register(production)
    finally:
        production.close()
    with pytest.raises(DatabaseRefused) as refused:
        build_runtime(sandbox_settings(database_url), migrate=False)
    assert "\n" not in str(refused.value)
    assert "used without sandbox mode" in str(refused.value)


def test_a_production_server_leaves_an_unused_database_unmarked(database_url: str) -> None:
    build_runtime(Settings(database_url=database_url), migrate=False).close()
    # Nothing was written: a sandbox may still take the database.
    build_runtime(sandbox_settings(database_url), migrate=False).close()


def test_the_sandbox_clock_offset_is_kept_across_restarts(database_url: str) -> None:
    first = build_runtime(sandbox_settings(database_url), migrate=False)
    try:
        sandbox = first.sandbox()
        assert sandbox is not None
        assert isinstance(first.clock, SandboxClock)
        sandbox.advance(b'{"advanceSeconds": 3601}')
        assert first.clock.offset_seconds == 3601
    finally:
        first.close()
    again = build_runtime(sandbox_settings(database_url), migrate=False)
    try:
        assert isinstance(again.clock, SandboxClock)
        assert again.clock.offset_seconds == 3601
        assert clock_offset(again.uow) == 3601
    finally:
        again.close()


def test_a_worker_process_follows_a_clock_moved_by_another(database_url: str) -> None:
    api = build_runtime(sandbox_settings(database_url), migrate=False)
    worker = build_runtime(sandbox_settings(database_url).replace(worker_poll_seconds=0.01), migrate=False)
    follower = None
    try:
        moving, following = api.sandbox(), worker.sandbox()
        assert moving is not None
        assert following is not None
        assert isinstance(worker.clock, SandboxClock)
        assert following.catch_up() is False
        swept: list[bool] = []
        worker.sweepers.append(cast(Sweeper, SimpleNamespace(wake=lambda: swept.append(True))))
        follower = ClockFollower(following.catch_up, interval=0.01)
        follower.start()
        moving.advance(b'{"advanceSeconds": 600}')
        clock = worker.clock
        wait_until(lambda: clock.offset_seconds == 600, 10, what="the follower")
        assert swept == [True]  # its retention sweep runs at once, on the moved clock
    finally:
        if follower is not None:
            follower.request_stop()
            follower.join(5)
        worker.close()
        api.close()


def test_a_move_starts_from_where_another_process_left_the_clock(database_url: str) -> None:
    first = build_runtime(sandbox_settings(database_url), migrate=False)
    second = build_runtime(sandbox_settings(database_url), migrate=False)
    try:
        one, two = first.sandbox(), second.sandbox()
        assert one is not None
        assert two is not None
        one.advance(b'{"advanceSeconds": 600}')
        assert two.advance(b'{"advanceSeconds": 60}')["offsetSeconds"] == 660
        assert clock_offset(first.uow) == 660
    finally:
        second.close()
        first.close()
