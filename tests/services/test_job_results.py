"""A job's results read a page at a time: the CSV stream holds one page of records at once."""

from __future__ import annotations

import pytest

from pendingtx.bootstrap import Runtime
from pendingtx.services import job_results
from pendingtx.services.authentication import Caller
from pendingtx.services.job_status import APP_NAME
from tests.services.conftest import Submit
from tests.support import record


def test_the_csv_stream_reads_one_page_of_records_per_chunk(
    runtime: Runtime, caller: Caller, submit: Submit, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = submit([record(f"C-{i}", amount="0" if i % 4 == 0 else "5") for i in range(250)])
    runtime.new_worker().run_until_idle()
    monkeypatch.setattr(job_results, "CSV_PAGE", 100)
    stream = job_results.CsvResults(runtime.uow, caller, APP_NAME, accepted.key, [], keys=runtime.keys)
    stream.open()
    chunks = []
    while chunk := stream.next_chunk():
        chunks.append(chunk)
    lines = [chunk.splitlines() for chunk in chunks]
    assert [len(part) for part in lines] == [101, 100, 50]  # the header, then a page each
    assert lines[0][:3] == [
        "index,externalId,outcome,field,reason",
        "0,C-0,rejected,amount,must be greater than 0",
        "1,C-1,created,,",
    ]
    assert lines[2][-1] == "249,C-249,created,,"


def test_results_of_a_job_in_progress_say_unprocessed_beyond_its_progress(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    accepted = submit([record(f"P-{i}") for i in range(6)])
    worker = runtime.new_worker()
    job = worker.claim()
    assert job is not None
    page = job_results.results_page(runtime.uow, caller, APP_NAME, accepted.key, [], keys=runtime.keys)
    assert {row.outcome.value for row in page.rows} == {"unprocessed"}
    assert page.paging.total_count == 6
