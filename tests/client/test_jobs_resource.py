"""Jobs as a resource through the SDK (both clients) and the CLI: list, cancel, results, CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from pendingtx.bootstrap import Runtime
from pendingtx_client import ApiError, Client, JobState
from tests.client.conftest import Run
from tests.support import record

pytestmark = pytest.mark.usefixtures("worker_on_sleep")


def test_jobs_are_listed_newest_first_and_filtered(sdk: Client) -> None:
    first = sdk.submit([record("L-1")])
    second = sdk.submit([record("L-2"), record("L-3", amount=-1)])
    sdk.wait(second.key, timeout=30)
    listed = list(sdk.jobs(limit=1))
    assert [job.key for job in listed] == [second.key, first.key]
    assert listed[0].status is JobState.PARTIALLY_COMPLETED
    assert (listed[0].kind, listed[0].record_count, listed[0].failed_count) == ("create", 2, 1)
    assert [job.key for job in sdk.jobs(status="Partially Completed")] == [second.key]
    with pytest.raises(TypeError):
        sdk.jobs(colour="red")  # type: ignore[call-arg]


def test_cancel_then_results_and_csv(sdk: Client, runtime: Runtime) -> None:
    job = sdk.submit([record("K-1"), record("K-2")])
    cancelled = sdk.cancel(job.key)
    assert cancelled.status is JobState.CANCELLED
    assert cancelled.terminal
    with pytest.raises(ApiError) as refused:
        sdk.cancel(job.key)
    assert (refused.value.status, refused.value.code) == (409, "job.already.finished")
    assert [(r.external_id, r.outcome) for r in sdk.results(job.key)] == [
        ("K-1", "unprocessed"),
        ("K-2", "unprocessed"),
    ]
    out = io.StringIO()
    assert sdk.results_csv(job.key, out) == 2
    assert out.getvalue().splitlines() == [
        "index,externalId,outcome,field,reason",
        "0,K-1,unprocessed,,",
        "1,K-2,unprocessed,,",
    ]


def test_results_page_through_every_record(sdk: Client) -> None:
    job = sdk.submit([record(f"R-{i}", amount=-1 if i % 3 == 0 else 5) for i in range(25)])
    sdk.wait(job.key, timeout=30)
    every = list(sdk.results(job.key, limit=4))
    assert [r.index for r in every] == list(range(25))
    rejected = list(sdk.results(job.key, outcome="rejected", limit=4))
    assert [r.index for r in rejected] == list(range(0, 25, 3))
    assert rejected[0].problems[0].field == "amount"


def test_the_cli_lists_cancels_and_writes_results(run: Run, sdk: Client, tmp_path: Path) -> None:
    job = sdk.submit([record("C-1"), record("C-2", amount=-1)])
    listed = run("jobs", "list")
    assert listed.exit_code == 0, listed.output
    assert job.key in listed.stdout
    assert "Submitted" in listed.stdout
    cancelled = run("jobs", "cancel", job.key)
    assert cancelled.exit_code == 0, cancelled.output
    assert "Cancelled" in cancelled.stdout
    again = run("jobs", "cancel", job.key)
    assert again.exit_code != 0
    target = tmp_path / "results.csv"
    written = run("jobs", "results", job.key, "--csv", str(target))
    assert written.exit_code == 0, written.output
    assert list(csv.reader(io.StringIO(target.read_text()))) == [
        ["index", "externalId", "outcome", "field", "reason"],
        ["0", "C-1", "unprocessed", "", ""],
        ["1", "C-2", "unprocessed", "", ""],
    ]
    shown = run("jobs", "results", job.key, "--outcome", "unprocessed")
    assert "[1] C-2  unprocessed" in shown.stdout


def test_submit_wait_writes_the_rejected_records_to_csv(run: Run, tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([record("S-1"), record("S-2", amount=-5), record("S-3", type="Nope")]))
    target = tmp_path / "rejected.csv"
    result = run("submit", str(batch), "--wait", "--batch-size", "2", "--rejected-csv", str(target))
    assert result.exit_code == 1, result.output
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert rows[0] == ["index", "externalId", "outcome", "field", "reason"]
    assert [(r[1], r[2], r[3]) for r in rows[1:]] == [
        ("S-2", "rejected", "amount"),
        ("S-3", "rejected", "type"),
    ]
    refused = run("submit", str(batch), "--rejected-csv", str(target))
    assert refused.exit_code == 2
