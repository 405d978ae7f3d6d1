"""Jobs as a resource over HTTP (contract 7.4): list, cancel, results as JSON pages and CSV, and
retention's 410; both databases."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from pendingtx.api import answers
from pendingtx.bootstrap import Runtime
from pendingtx.services import retention
from tests.conftest import assert_error
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

UNKNOWN_KEY = "NjasfsdgTkkMDcvMjOTowMA=="


def submit(client: TestClient, headers: dict[str, str], batch: Any, path: str = "/v1/transactions") -> str:
    answer = client.post(path, json=batch, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["jobStatusQueryKey"])


def jobs(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/jobs/insight", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    msgspec.convert(body, answers.JobPage)
    return body


def results(client: TestClient, headers: dict[str, str], key: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/v1/jobs/insight/results/{key}", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    msgspec.convert(body, answers.ResultsPage)
    return body


def csv_rows(client: TestClient, headers: dict[str, str], key: str, **params: Any) -> list[list[str]]:
    answer = client.get(
        f"/v1/jobs/insight/results/{key}", params=params, headers={**headers, "Accept": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(answer.text)))


def test_jobs_are_listed_newest_first_with_filters_and_cursors(
    client: TestClient, headers: dict[str, str], runtime: Runtime, other_headers: dict[str, str]
) -> None:
    first = submit(client, headers, [record("J-1")])
    second = submit(client, headers, [record("J-2"), record("J-3", amount="0")])
    third = submit(
        client,
        headers,
        [{**record("T-1"), "type": "Full Transfer", "toInvestorExternalId": "I-9"}],
        "/v1/transfers",
    )
    submit(client, other_headers, [record("X-1")])
    runtime.new_worker().run_until_idle()

    page = jobs(client, headers, limit=2)
    assert [j["jobStatusQueryKey"] for j in page["data"]["results"]] == [third, second]
    assert page["paging"]["totalCount"] == 3
    assert page["data"]["results"][0]["kind"] == "transfer"
    assert "validationDetails" not in page["data"]["results"][0]
    older = jobs(client, headers, limit=2, after=page["paging"]["cursors"]["after"])
    assert [j["jobStatusQueryKey"] for j in older["data"]["results"]] == [first]
    assert older["paging"]["next"] is None
    assert older["paging"]["previous"] is not None
    newer = jobs(client, headers, limit=2, before=older["paging"]["cursors"]["before"])
    assert [j["jobStatusQueryKey"] for j in newer["data"]["results"]] == [third, second]

    partial = jobs(client, headers, status="Partially Completed")
    assert [j["jobStatusQueryKey"] for j in partial["data"]["results"]] == [second]
    assert jobs(client, headers, kind="transfer")["paging"]["totalCount"] == 1
    assert (
        jobs(client, headers, submittedStart="2000-01-01", submittedEnd="9999-12-31")["paging"]["totalCount"]
        == 3
    )
    assert jobs(client, headers, submittedEnd="2000-01-01")["paging"]["totalCount"] == 0


def test_job_list_refuses_bad_parameters(client: TestClient, headers: dict[str, str]) -> None:
    body = assert_error(
        client.get("/v1/jobs/insight?status=Done&kind=x&limit=0&after=zzz", headers=headers),
        400,
        "request.validation.failure",
    )
    assert [e["field"] for e in body["errors"]] == ["status", "kind", "limit", "after"]
    assert_error(client.get("/v1/jobs/other", headers=headers), 400, "request.validation.failure")
    assert_error(client.get("/v1/jobs/insight"), 401, "gateway.authentication.failure")


def test_cancel_answers_202_then_409_and_404_for_unknown_or_foreign_keys(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    key = submit(client, headers, [record("C-1")])
    answer = client.post(f"/v1/jobs/insight/cancel/{key}", headers=headers)
    assert answer.status_code == 202, answer.text
    body = msgspec.convert(answer.json(), answers.JobStatus)
    assert (body.status, body.processedCount) == ("Cancelled", 0)
    assert_error(client.post(f"/v1/jobs/insight/cancel/{key}", headers=headers), 409, "job.already.finished")
    assert_error(
        client.post(f"/v1/jobs/insight/cancel/{key}", headers=other_headers), 404, "resource.not.found"
    )
    assert_error(
        client.post(f"/v1/jobs/insight/cancel/{UNKNOWN_KEY}", headers=headers), 404, "resource.not.found"
    )
    assert_error(
        client.post("/v1/jobs/insight/cancel/a%20b", headers=headers), 400, "request.validation.failure"
    )
    status = client.get(f"/v1/jobs/insight/status/{key}", headers=headers).json()
    assert status["status"] == "Cancelled"
    assert status["message"].startswith("Cancelled: ")


def test_results_of_a_big_job_equal_its_counts_paged_and_as_csv(
    serve_with: Any, headers: dict[str, str]
) -> None:
    """10,000 records, 3,000 of them rejected (two problems each): pages of 1,000 and the CSV agree
    with the status counts."""
    served = serve_with(worker_chunk_size=2_000)
    client, runtime = served.client, served.runtime
    batch = [
        record(f"B-{i}") if i % 10 >= 3 else record(f"B-{i}", amount="0", currency="??")
        for i in range(10_000)
    ]
    key = submit(client, headers, batch)
    runtime.new_worker().run_until_idle()
    status = client.get(f"/v1/jobs/insight/status/{key}", headers=headers).json()
    assert (status["recordCount"], status["processedCount"], status["failedCount"]) == (10_000, 10_000, 3_000)
    assert status["truncated"] is True
    assert len(status["validationDetails"]) == 1000

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = results(client, headers, key, limit=1000, **({"after": cursor} if cursor else {}))
        seen += page["data"]["results"]
        cursor = page["paging"]["cursors"]["after"]
        if page["paging"]["next"] is None:
            break
    assert [r["index"] for r in seen] == list(range(10_000))
    by_outcome = {o: sum(r["outcome"] == o for r in seen) for o in ("created", "rejected", "unprocessed")}
    assert by_outcome == {"created": 7_000, "rejected": 3_000, "unprocessed": 0}
    assert seen[1]["problems"]
    assert seen[1]["externalId"] == "B-1"
    assert seen[5] == {"index": 5, "externalId": "B-5", "outcome": "created", "problems": []}

    rejected = results(client, headers, key, outcome="rejected", limit=1000)
    assert rejected["paging"]["totalCount"] == 3_000
    assert all(r["outcome"] == "rejected" for r in rejected["data"]["results"])
    created = results(client, headers, key, outcome="created", limit=7)
    assert [r["index"] for r in created["data"]["results"]] == [3, 4, 5, 6, 7, 8, 9]
    more = results(
        client, headers, key, outcome="created", limit=7, after=created["paging"]["cursors"]["after"]
    )
    assert [r["index"] for r in more["data"]["results"]] == [13, 14, 15, 16, 17, 18, 19]

    lines = csv_rows(client, headers, key)
    assert lines[0] == ["index", "externalId", "outcome", "field", "reason"]
    per_problem = sum(len(r["problems"]) or 1 for r in seen)
    assert len(lines) - 1 == per_problem
    assert {line[0] for line in lines[1:]} == {str(i) for i in range(10_000)}
    assert lines[6] == ["4", "B-4", "created", "", ""] or lines[1][2] == "rejected"
    rejected_lines = csv_rows(client, headers, key, outcome="rejected")
    assert {line[2] for line in rejected_lines[1:]} == {"rejected"}
    assert len({line[0] for line in rejected_lines[1:]}) == 3_000


def test_results_of_a_cancelled_job_say_unprocessed(client: TestClient, headers: dict[str, str]) -> None:
    key = submit(client, headers, [record("U-1"), record("U-2")])
    client.post(f"/v1/jobs/insight/cancel/{key}", headers=headers)
    page = results(client, headers, key)
    assert [(r["externalId"], r["outcome"]) for r in page["data"]["results"]] == [
        ("U-1", "unprocessed"),
        ("U-2", "unprocessed"),
    ]
    assert csv_rows(client, headers, key)[1:] == [
        ["0", "U-1", "unprocessed", "", ""],
        ["1", "U-2", "unprocessed", "", ""],
    ]


def test_results_of_unknown_or_foreign_jobs_are_not_found(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    key = submit(client, headers, [record("N-1")])
    for who in (other_headers,):
        assert_error(client.get(f"/v1/jobs/insight/results/{key}", headers=who), 404, "resource.not.found")
        assert_error(
            client.get(f"/v1/jobs/insight/results/{key}", headers={**who, "Accept": "text/csv"}),
            404,
            "resource.not.found",
        )
    assert_error(
        client.get(f"/v1/jobs/insight/results/{UNKNOWN_KEY}", headers=headers), 404, "resource.not.found"
    )
    assert_error(
        client.get(f"/v1/jobs/insight/results/{key}?outcome=lost", headers=headers),
        400,
        "request.validation.failure",
    )


def test_retention_leaves_410_for_old_keys_404_for_unknown_and_foreign_and_keeps_transactions(
    client: TestClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    old = submit(client, headers, [record("O-1"), record("O-2", amount="0")])
    runtime.new_worker().run_until_idle()
    clock.advance(1000)
    young = submit(client, headers, [record("Y-1")])
    waiting = submit(client, headers, [record("W-1")])
    runtime.new_worker().claim()  # the oldest waiting job: In Progress, never swept
    swept = retention.sweep(runtime.uow, retention_period=timedelta(seconds=500), clock=clock)
    assert swept == 1
    for path in (f"status/{old}", f"results/{old}"):
        assert_error(client.get(f"/v1/jobs/insight/{path}", headers=headers), 410, "resource.gone")
        assert_error(client.get(f"/v1/jobs/insight/{path}", headers=other_headers), 404, "resource.not.found")
    assert_error(client.post(f"/v1/jobs/insight/cancel/{old}", headers=headers), 410, "resource.gone")
    assert_error(
        client.get(f"/v1/jobs/insight/results/{old}", headers={**headers, "Accept": "text/csv"}),
        410,
        "resource.gone",
    )
    assert_error(
        client.get(f"/v1/jobs/insight/status/{UNKNOWN_KEY}", headers=headers), 404, "resource.not.found"
    )
    assert client.get(f"/v1/jobs/insight/status/{young}", headers=headers).status_code == 200
    assert client.get(f"/v1/jobs/insight/status/{waiting}", headers=headers).status_code == 200
    listed = client.get("/v1/transactions", headers=headers).json()
    assert [t["externalId"] for t in listed["data"]["results"]] == ["O-1"]
    assert jobs(client, headers)["paging"]["totalCount"] == 2


def test_the_job_count_stops_at_its_limit(
    client: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pendingtx.storage import job_pages

    job_pages._listing.cache_clear()
    monkeypatch.setattr(job_pages, "COUNT_LIMIT", 2)
    for i in range(3):
        submit(client, headers, [record(f"N-{i}")])
    try:
        page = jobs(client, headers, limit=1)
        assert page["paging"]["totalCount"] == 2
        assert page["paging"]["next"] is not None
        assert len(jobs(client, headers)["data"]["results"]) == 3
    finally:
        job_pages._listing.cache_clear()
