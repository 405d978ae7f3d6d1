"""A hostile JSON Patch against a real server: it costs milliseconds, and other organizations never wait.

`[add /x [1]]` then 22 copies of /x into itself doubles the document with each copy: unbounded, about
ten seconds of CPU and 670 MB inside the worker's write transaction, while every other
organization's POST waited on SQLite's write lock.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, caller_headers, create_app_via_cli, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e

DOUBLING = [{"op": "add", "path": "/x", "value": [1]}] + [{"op": "copy", "from": "/x", "path": "/x/-"}] * 22
TERMINAL = {"Completed", "Partially Completed", "Failed"}


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def job_of(http: httpx.Client, key: str, headers: dict[str, str]) -> dict[str, object]:
    answer = http.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_doubling_patch_fails_fast_and_another_organization_is_served_meanwhile(
    server: Server, e2e_database_url: str
) -> None:
    hostile = create_app_via_cli(e2e_database_url, name="hostile", org="hostile")
    other = create_app_via_cli(e2e_database_url, name="other", org="other")
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        mine, theirs = caller_headers(http, hostile), caller_headers(http, other)
        created = http.post("/v1/transactions", json=[record("PT-1")], headers=mine).json()
        wait_until(lambda: job_of(http, created["jobStatusQueryKey"], mine)["status"] in TERMINAL, 10)
        baseline = peak_memory_mb(server.pid)

        began = time.monotonic()
        patched = http.patch(
            "/v1/transactions/PT-1",
            json=DOUBLING,
            headers={**mine, "Content-Type": "application/json-patch+json"},
        )
        assert patched.status_code == 202, patched.text
        # Another organization's POST right behind it: answered at once, and its job done soon after.
        posted = http.post("/v1/transactions", json=[record("B-1")], headers=theirs)
        assert posted.status_code == 202, posted.text
        assert time.monotonic() - began < 3
        key = patched.json()["jobStatusQueryKey"]
        wait_until(lambda: job_of(http, key, mine)["status"] in TERMINAL, 5, what="the hostile job")
        wait_until(
            lambda: job_of(http, posted.json()["jobStatusQueryKey"], theirs)["status"] in TERMINAL,
            5,
            what="the other organization's job",
        )
        assert http.get("/healthz").status_code == 200
        assert time.monotonic() - began < 5

        job = job_of(http, key, mine)
        assert job["status"] == "Failed"
        assert job["validationMessage"] == [
            "[0] externalId=PT-1: patch: operation 14 (copy) refused: it would make the transaction "
            "larger than 65536 bytes"
        ]
    # Unbounded, the worker reached hundreds of MB; bounded, the copies it made stay under 64 KiB.
    assert peak_memory_mb(server.pid) - baseline < 100
