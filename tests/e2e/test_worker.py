"""`pendingtx serve --no-worker` beside a separate `pendingtx worker` process on the same database."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import StartServer, StartWorker
from tests.e2e.server import caller_headers, create_app_via_cli, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e


def test_separate_worker_process_runs_the_jobs(
    start_server: StartServer, start_worker: StartWorker, e2e_database_url: str
) -> None:
    app = create_app_via_cli(e2e_database_url)
    server = start_server(no_worker=True)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        headers = caller_headers(http, app)
        accepted = http.post("/v1/transactions", json=[record("W-1"), record("W-2")], headers=headers)
        assert accepted.status_code == 202, accepted.text
        status_url = f"/v1/jobs/insight/status/{accepted.json()['jobStatusQueryKey']}"
        # No worker runs anywhere yet, so the job can only be waiting.
        assert http.get(status_url, headers=headers).json()["status"] == "Submitted"

        worker = start_worker({"PENDINGTX_WORKER_POLL_SECONDS": "0.1"})
        wait_until(
            lambda: http.get(status_url, headers=headers).json()["status"] == "Completed",
            15,
            what="the separate worker to finish the job",
        )

    assert worker.stop() == 0, worker.log()
