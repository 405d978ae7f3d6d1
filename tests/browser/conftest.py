"""Browser tests: the system's Chromium (Debian's `chromium`, which .ci/run installs), driven by
Playwright, against a real `pendingtx serve` process started once per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.e2e.server import Server, create_app_via_cli

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class Served:
    """A running server and an application registered on it."""

    server: Server
    app: dict[str, str]
    database_url: str

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`pendingtx serve` on a fresh SQLite file, with one application."""
    root = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{root / 'browser.db'}"
    app = create_app_via_cli(database_url, name="browser-app", org="browser")
    server = Server(database_url, root / "server.log", {"PENDINGTX_LOG_LEVEL": "warning"})
    try:
        server.wait_healthy()
        yield Served(server, app, database_url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium: the system's, never a browser Playwright would download."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()
