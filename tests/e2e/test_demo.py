"""`pendingtx demo`: the whole flow against a throw-away service, as a user runs it."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.server import pendingtx_command, subprocess_env

pytestmark = pytest.mark.e2e


def test_demo_prints_the_three_requests_and_a_partial_outcome() -> None:
    done = subprocess.run(
        [*pendingtx_command(), "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    requests = re.findall(r"^> (\w+) (\S+)$", out, flags=re.MULTILINE)
    assert requests[:2] == [("POST", "/v2/oauthtoken"), ("POST", "/v1/transactions")]
    assert len(requests) == 3
    assert requests[2][0] == "GET"
    assert re.fullmatch(r"/v1/jobs/insight/status/[A-Za-z0-9_-]{22}==", requests[2][1])
    assert re.findall(r"^< (\d{3})$", out, flags=re.MULTILINE) == ["200", "202", "200"]
    assert '"status": "Partially Completed"' in out
    assert "[2] externalId=DEMO-3: amount: must be greater than 0" in out
