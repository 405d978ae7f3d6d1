"""Sandbox mode's storage (contract 7.6): the database's mode marker both ways, the kept clock
offset, and the reset of one organization; on both databases."""

from __future__ import annotations

import pytest

from pendingtx.bootstrap import build_runtime
from pendingtx.clock import SandboxClock
from pendingtx.config import Settings
from pendingtx.storage.sandbox import DatabaseRefused, clock_offset
from tests.conftest import register


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
