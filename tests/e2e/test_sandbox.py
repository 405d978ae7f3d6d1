"""`pendingtx serve --sandbox` as a real process (contract 7.6)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from tests.e2e.conftest import StartServer
from tests.e2e.server import Server, caller_headers, run_cli

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
    server = start_server(SANDBOX)
    assert "SANDBOX MODE" in server.log()
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
                delayed.append(other.get("/v1/transactions", headers={**headers, "Prefer": "delay=10000"}))

        waiting = threading.Thread(target=slow)
        waiting.start()
        try:
            # Served while the other request waits out its 10 s.
            assert http.get("/v1/transactions", headers=headers).status_code == 200
            assert waiting.is_alive()
        finally:
            waiting.join(30)
    assert delayed[0].status_code == 200
    assert delayed[0].headers["preference-applied"] == "delay=10000"
