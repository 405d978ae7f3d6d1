"""The SDK's waiting, retries on 429/503 and token re-minting against a real sandbox server
(contract 7.6): the faults and the expiry are the server's own, asked for with `Prefer: code=` and
`POST /sandbox/clock`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pendingtx_client import JobState, RetryPolicy
from tests.client.flavours import open_client
from tests.e2e.conftest import BASE_SETTINGS
from tests.e2e.server import Server, caller_headers, run_cli, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e

SANDBOX = {"PENDINGTX_SANDBOX": "true"}
# The server's Retry-After (1 s) is honoured, shortened so that the test does not wait it out.
QUICK = RetryPolicy(max_retry_after=0.05, base_delay=0.05, max_delay=0.2)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A real sandbox server on a fresh SQLite file, and an application made in sandbox mode."""
    database_url = f"sqlite:///{tmp_path / 'sandbox.db'}"
    server = Server(database_url, tmp_path / "server.log", {**BASE_SETTINGS, **SANDBOX})
    try:
        server.wait_healthy()
        out = run_cli(
            ["apps", "create", "--name", "sdk", "--json", "--database-url", database_url], env=SANDBOX
        )
        yield server, json.loads(out)
    finally:
        server.stop()


class Faults:
    """Asks the sandbox for a fault on the first requests that match, and records every answer."""

    def __init__(self, faults: dict[tuple[str, str], str]) -> None:
        self.faults = dict(faults)
        self.seen: list[tuple[str, str, int]] = []

    def prepare(self, request: httpx.Request) -> None:
        code = self.faults.pop((request.method, request.url.path), None)
        if code is not None:
            request.headers["Prefer"] = f"code={code}"

    def saw(self, request: httpx.Request, response: httpx.Response) -> None:
        self.seen.append((request.method, request.url.path, response.status_code))


class _SyncFaults(httpx.HTTPTransport):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.faults.prepare(request)
        response = super().handle_request(request)
        self.faults.saw(request, response)
        return response


class _AsyncFaults(httpx.AsyncHTTPTransport):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.faults.prepare(request)
        response = await super().handle_async_request(request)
        self.faults.saw(request, response)
        return response


def transport(flavour: str, faults: Faults) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
    return _SyncFaults(faults) if flavour == "sync" else _AsyncFaults(faults)


def test_the_sdk_retries_the_sandboxs_503_and_429(
    sandbox: tuple[Server, dict[str, Any]], flavour: str
) -> None:
    server, app = sandbox
    faults = Faults({("POST", "/v1/transactions"): "503", ("GET", "/v1/transactions"): "429"})
    with open_client(
        flavour,
        server.base_url,
        app["appKey"],
        app["appSecret"],
        retry=QUICK,
        transport=transport(flavour, faults),
    ) as client:
        done = client.wait(client.submit([record("R-1")]).key, timeout=30)
        assert done.status is JobState.COMPLETED
        assert [t.external_id for t in client.transactions()] == ["R-1"]
    posts = [status for method, path, status in faults.seen if (method, path) == ("POST", "/v1/transactions")]
    lists = [status for method, path, status in faults.seen if (method, path) == ("GET", "/v1/transactions")]
    assert posts == [503, 202]  # the retry stored the job once
    assert lists == [429, 200]


def test_the_sdk_sees_a_slow_job_in_progress_then_waits_for_it(
    sandbox: tuple[Server, dict[str, Any]], flavour: str
) -> None:
    server, app = sandbox
    with open_client(flavour, server.base_url, app["appKey"], app["appSecret"]) as client:
        # The worker takes 2 s over an SBX-SLOW- record: the job is seen In Progress once claimed.
        job = client.submit([record("SBX-SLOW-1"), record("SBX-REJECT-1")])
        seen: list[JobState] = []

        def claimed() -> bool:
            seen.append(client.status(job.key).status)
            return seen[-1] is not JobState.SUBMITTED

        wait_until(claimed, 30, what="a claim")
        assert seen[-1] is JobState.IN_PROGRESS
        done = client.wait(job.key, timeout=30)
    assert done.status is JobState.PARTIALLY_COMPLETED
    assert done.validation_messages == (
        "[1] externalId=SBX-REJECT-1: externalId: sandbox: rejected by trigger",
    )


def test_the_sdk_mints_a_new_token_once_the_sandbox_clock_expired_its_own(
    sandbox: tuple[Server, dict[str, Any]], flavour: str
) -> None:
    server, app = sandbox
    faults = Faults({})
    with open_client(
        flavour, server.base_url, app["appKey"], app["appSecret"], transport=transport(flavour, faults)
    ) as client:
        assert list(client.transactions()) == []
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            moved = http.post(
                "/sandbox/clock", json={"advanceSeconds": 3601}, headers=caller_headers(http, app)
            )
            assert moved.status_code == 200, moved.text
        assert list(client.transactions()) == []
    lists = [status for method, path, status in faults.seen if path == "/v1/transactions"]
    mints = [status for method, path, status in faults.seen if path == "/v2/oauthtoken"]
    assert lists == [200, 401, 200]
    assert mints == [200, 200]
