"""Client SDK fixtures: the real app in-process over a sync bridge, on SQLite only, and fake time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from pendingtx.bootstrap import Runtime, build_app
from pendingtx.cli import main
from pendingtx_client import Client
from pendingtx_client.cli.connection import ClientOptions
from tests import databases
from tests.client.bridge import ASGIBridge, Recording, asgi_transport
from tests.client.flavours import FLAVOURS, open_client
from tests.conftest import AppCreds

BASE_URL = "http://pendingtx.test"


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only: the SDK's behaviour does not depend on the server's database."""
    return databases.sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture(autouse=True)
def _cheap_hashing(cheap_argon2: None) -> None:
    """Every client call may mint a token; keep argon2 cheap."""


class FakeTime:
    """A monotonic clock and a sleep that only move it; `on_sleep` runs at each sleep (e.g. a worker)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: list[Callable[[], object]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
        for action in self.on_sleep:
            action()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    """Which client a test drives: `Client` ("sync") or `AsyncClient` ("async"), see flavours.py."""
    return str(request.param)


@pytest.fixture
def transport(runtime: Runtime) -> Iterator[Recording]:
    """The real application (no background worker), for either client, recording every request."""
    app = build_app(runtime)
    bridge = ASGIBridge(app)
    yield Recording(bridge, asgi_transport(app))
    bridge.close()


@pytest.fixture
def worker_on_sleep(runtime: Runtime, fake_time: FakeTime) -> None:
    """While the client "sleeps", a worker processes every waiting job."""
    fake_time.on_sleep.append(lambda: runtime.new_worker().run_until_idle())


@pytest.fixture
def sdk(app_creds: AppCreds, transport: Recording, fake_time: FakeTime, flavour: str) -> Iterator[Client]:
    """A client (of each flavour) of the in-process app for the registered application."""
    with open_client(
        flavour,
        BASE_URL,
        app_creds.app_key,
        app_creds.app_secret,
        transport=transport,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        # Jobs run only while the client sleeps (worker_on_sleep): a held read would wait for nothing.
        long_poll=False,
    ) as client:
        yield client


Run = Callable[..., Result]


@pytest.fixture
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PENDINGTX_* variable and no profile file of the caller's reach the commands."""
    for name in [n for n in os.environ if n.startswith("PENDINGTX_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def credentials_env(app_creds: AppCreds) -> dict[str, str]:
    return {
        "PENDINGTX_URL": BASE_URL,
        "PENDINGTX_APP_KEY": app_creds.app_key,
        "PENDINGTX_APP_SECRET": app_creds.app_secret,
    }


@pytest.fixture
def run(
    transport: Recording, fake_time: FakeTime, credentials_env: dict[str, str], isolated_environment: None
) -> Run:
    """Invoke `pendingtx ARGS...` with the in-process app as its server and fake time."""

    def invoke(
        *args: str, env: dict[str, str] | None = None, transport_: httpx.BaseTransport | None = None
    ) -> Result:
        # Jobs run only while the client sleeps (worker_on_sleep): a held read would wait for nothing.
        options = ClientOptions(
            transport=transport_ or transport, sleep=fake_time.sleep, clock=fake_time.clock, long_poll=False
        )
        environment = {"COLUMNS": "200", **credentials_env, **(env or {})}
        return CliRunner().invoke(main, list(args), env=environment, obj=options, catch_exceptions=False)

    return invoke
