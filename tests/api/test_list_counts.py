"""The lists' `totalCount` (issue 18.5): counted by the first page, carried by its cursors to every
later page, counted afresh for other filters; cursors refused when altered or another organization's.
Both databases, over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.api import answers
from pendingtx.bootstrap import Runtime
from tests.conftest import assert_error
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

TRANSACTIONS = "/v1/transactions"
JOBS = "/v1/jobs/insight"
COUNTING = re.compile(r"\bcount\(", re.IGNORECASE)


def create(
    client: TestClient, headers: dict[str, str], runtime: Runtime, *external_ids: str, **fields: Any
) -> None:
    """One job per record, so that the job list grows with the transaction list."""
    for external_id in external_ids:
        answer = client.post(TRANSACTIONS, json=[record(external_id, **fields)], headers=headers)
        assert answer.status_code == 202, answer.text
    runtime.new_worker().run_until_idle()


def page(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    answer = client.get(path, params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    msgspec.convert(body, answers.JobPage if path == JOBS else answers.TransactionPage)
    return body


def follow(client: TestClient, headers: dict[str, str], link: str) -> dict[str, Any]:
    answer = client.get(link, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def keys(body: dict[str, Any]) -> list[str]:
    return [row.get("externalId") or row["jobStatusQueryKey"] for row in body["data"]["results"]]


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL of every statement this runtime runs inside the block."""
    ran: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        ran.append(statement)

    sa.event.listen(runtime.engine, "before_cursor_execute", seen)
    try:
        yield ran
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", seen)


def counts(ran: list[str]) -> list[str]:
    return [sql for sql in ran if COUNTING.search(sql)]


@pytest.mark.parametrize("path", [TRANSACTIONS, JOBS])
def test_every_page_says_the_count_its_first_page_took(
    client: TestClient, headers: dict[str, str], runtime: Runtime, path: str
) -> None:
    create(client, headers, runtime, *(f"C-{i}" for i in range(7)))
    first = page(client, headers, path, limit=3)
    assert first["paging"]["totalCount"] == 7
    seen = keys(first)
    link = first["paging"]["next"]
    while link:
        later = follow(client, headers, link)
        assert later["paging"]["totalCount"] == 7
        seen += keys(later)
        link = later["paging"]["next"]
    assert len(seen) == len(set(seen)) == 7
    back = follow(client, headers, later["paging"]["previous"])
    assert back["paging"]["totalCount"] == 7


@pytest.mark.parametrize("path", [TRANSACTIONS, JOBS])
def test_later_pages_run_no_count(
    client: TestClient, headers: dict[str, str], runtime: Runtime, path: str
) -> None:
    create(client, headers, runtime, *(f"N-{i}" for i in range(5)))
    with statements(runtime) as ran:
        first = page(client, headers, path, limit=2)
    assert len(counts(ran)) == 1, ran
    with statements(runtime) as ran:
        second = follow(client, headers, first["paging"]["next"])
        third = follow(client, headers, second["paging"]["next"])
        again = follow(client, headers, third["paging"]["previous"])
        by_cursor = page(client, headers, path, limit=4, before=second["paging"]["cursors"]["after"])
    assert ran, "the pages were read"
    assert counts(ran) == []
    assert [p["paging"]["totalCount"] for p in (second, third, again, by_cursor)] == [5, 5, 5, 5]


def test_rows_added_meanwhile_are_listed_but_not_counted_until_the_listing_begins_again(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    create(client, headers, runtime, "A-1", "A-2", "A-3")
    first = page(client, headers, TRANSACTIONS, limit=2)
    assert first["paging"]["totalCount"] == 3
    create(client, headers, runtime, "A-4")
    second = follow(client, headers, first["paging"]["next"])
    assert keys(second) == ["A-3", "A-4"]
    assert second["paging"]["totalCount"] == 3
    assert page(client, headers, TRANSACTIONS, limit=2)["paging"]["totalCount"] == 4


def test_newer_jobs_are_reached_from_an_older_page_and_counted_by_a_fresh_listing(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    create(client, headers, runtime, "J-1", "J-2", "J-3")
    first = page(client, headers, JOBS, limit=2)
    older = follow(client, headers, first["paging"]["next"])
    create(client, headers, runtime, "J-4")
    newer = page(client, headers, JOBS, limit=2, before=older["paging"]["cursors"]["before"])
    assert keys(newer) == keys(first)
    newest = follow(client, headers, newer["paging"]["previous"])
    assert len(keys(newest)) == 1
    assert newer["paging"]["totalCount"] == newest["paging"]["totalCount"] == 3
    assert page(client, headers, JOBS)["paging"]["totalCount"] == 4


@pytest.mark.parametrize(
    ("path", "first_filters", "other_filters", "other_count"),
    [
        (TRANSACTIONS, {"productExternalId": "P-1"}, {"productExternalId": "P-2"}, 2),
        (TRANSACTIONS, {"productExternalId": "P-1"}, {}, 6),
        (TRANSACTIONS, {}, {"investorExternalId": "I-1", "productExternalId": "P-2"}, 2),
        (JOBS, {"status": "Completed"}, {"kind": "create"}, 6),
        (JOBS, {}, {"status": "Failed"}, 0),
    ],
)
def test_a_cursor_used_with_other_filters_is_counted_afresh(
    client: TestClient,
    headers: dict[str, str],
    runtime: Runtime,
    path: str,
    first_filters: dict[str, str],
    other_filters: dict[str, str],
    other_count: int,
) -> None:
    create(
        client,
        headers,
        runtime,
        "F-1",
        "F-2",
        "F-3",
        "F-4",
        productExternalId="P-1",
        investorExternalId="I-1",
    )
    create(client, headers, runtime, "F-5", "F-6", productExternalId="P-2", investorExternalId="I-1")
    first = page(client, headers, path, limit=1, **first_filters)
    cursor = first["paging"]["cursors"]["after"]
    with statements(runtime) as ran:
        other = page(client, headers, path, limit=1, after=cursor, **other_filters)
    assert len(counts(ran)) == 1
    assert other["paging"]["totalCount"] == other_count
    # Its own cursors then carry the new count.
    if other["paging"]["next"]:
        assert follow(client, headers, other["paging"]["next"])["paging"]["totalCount"] == other_count


@pytest.mark.parametrize("path", [TRANSACTIONS, JOBS])
@pytest.mark.parametrize("name", ["after", "before"])
def test_altered_cursors_and_other_organizations_cursors_are_refused(
    client: TestClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    runtime: Runtime,
    path: str,
    name: str,
) -> None:
    create(client, headers, runtime, "R-1", "R-2", "R-3")
    create(client, other_headers, runtime, "R-1", "R-2", "R-3")
    cursor = page(client, headers, path, limit=1)["paging"]["cursors"]["after"]

    def refused(params: dict[str, str], by: dict[str, str] = headers) -> None:
        body = assert_error(client.get(path, params=params, headers=by), 400, "request.validation.failure")
        assert body["errors"] == [{"field": name, "location": "query", "reason": "is not a valid cursor"}]

    for index in range(len(cursor)):
        refused({name: cursor[:index] + ("B" if cursor[index] == "A" else "A") + cursor[index + 1 :]})
    refused({name: cursor}, other_headers)
    refused({name: cursor, "status": "Active" if path == TRANSACTIONS else "Completed"}, other_headers)
    # The other list's cursors are no cursors here.
    elsewhere = page(client, headers, JOBS if path == TRANSACTIONS else TRANSACTIONS, limit=1)
    refused({name: elsewhere["paging"]["cursors"]["after"]})
