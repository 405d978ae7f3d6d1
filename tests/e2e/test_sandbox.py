"""`pendingtx serve --sandbox` as a real process (contract 7.6)."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import StartServer


def test_a_sandbox_server_says_so_in_its_log_and_on_every_answer(start_server: StartServer) -> None:
    server = start_server({"PENDINGTX_SANDBOX": "true"})
    assert "SANDBOX MODE" in server.log()
    for path in ("/healthz", "/nowhere"):
        assert httpx.get(server.base_url + path, timeout=10).headers["sandbox"] == "true"
