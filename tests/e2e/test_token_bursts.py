"""A burst of token requests against a real server process: memory stays bounded.

Each real Argon2id check holds 64 MiB; twenty at once would take 1.3 GB. The server checks at most
PENDINGTX_MAX_CONCURRENT_SECRET_CHECKS (4) secrets at once, so its peak memory grows by a few
hundred MiB at most; the requests that find no slot in time get 503.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import StartServer
from tests.e2e.server import create_app_via_cli

pytestmark = pytest.mark.e2e

BURST = 20
MIB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def test_a_burst_of_wrong_secrets_keeps_memory_bounded(
    start_server: StartServer, e2e_database_url: str
) -> None:
    # A limit above the burst: here only the bound on concurrent checks holds memory down.
    server = start_server({"PENDINGTX_AUTH_FAILURE_LIMIT": "1000"}, no_worker=True)
    app = create_app_via_cli(e2e_database_url)
    before = peak_rss(server.pid)

    def attempt(_: int) -> int:
        answer = httpx.post(
            f"{server.base_url}/v2/oauthtoken",
            data={"grant_type": "client_credentials"},
            auth=(app["appKey"], "not-the-secret"),
            timeout=60,
        )
        return answer.status_code

    with ThreadPoolExecutor(BURST) as pool:
        statuses = Counter(pool.map(attempt, range(BURST)))
    assert set(statuses) <= {401, 503}, statuses
    assert statuses[401] >= 4
    grown = peak_rss(server.pid) - before
    assert grown < 10 * 64 * MIB, f"peak memory grew by {grown // MIB} MiB"
