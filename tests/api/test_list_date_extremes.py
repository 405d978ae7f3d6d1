"""Listing date bounds at the ends of the calendar: year 1 and year 9999 answer 200 with the right rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.storage.tables import transactions
from tests.support import record

# The last microsecond-precise instants a row can carry: 18:59:59.999xxx on 9999-12-31 in New York.
LAST_MILLISECOND = datetime(9999, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)
END_PARAMS = ["createEndDate", "changeEndDate"]
START_PARAMS = ["createStartDate", "changeStartDate"]


def listed_ids(client: TestClient, headers: dict[str, str], **params: str) -> list[str]:
    answer = client.get("/v1/transactions", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return [row["externalId"] for row in body["data"]["results"]]


@pytest.fixture
def rows(client: TestClient, headers: dict[str, str], runtime: Runtime) -> None:
    """NOW-1 created by the fake clock in 2026; LATE-1 moved to the last millisecond of year 9999."""
    answer = client.post("/v1/transactions", json=[record("NOW-1"), record("LATE-1")], headers=headers)
    assert answer.status_code == 202, answer.text
    runtime.new_worker().run_until_idle()
    with runtime.uow.write() as conn:
        conn.execute(
            sa.update(transactions)
            .where(transactions.c.external_id == "LATE-1")
            .values(created_at=LAST_MILLISECOND, changed_at=LAST_MILLISECOND)
        )


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize("name", END_PARAMS)
@pytest.mark.parametrize(
    "value", ["9999-12-31", "9999-12-31T18:59:59.999", "9999-12-31T23:59:59.999", "9999-12-31T19:00:00"]
)
def test_end_bounds_in_year_9999_include_every_row(
    client: TestClient, headers: dict[str, str], name: str, value: str
) -> None:
    assert listed_ids(client, headers, **{name: value}) == ["NOW-1", "LATE-1"]


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize("name", END_PARAMS)
def test_an_end_bound_one_millisecond_before_the_last_row_leaves_it_out(
    client: TestClient, headers: dict[str, str], name: str
) -> None:
    assert listed_ids(client, headers, **{name: "9999-12-31T18:59:59.998"}) == ["NOW-1"]


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize(("start", "end"), list(zip(START_PARAMS, END_PARAMS, strict=True)))
def test_the_whole_calendar_and_its_last_instants(
    client: TestClient, headers: dict[str, str], start: str, end: str
) -> None:
    assert listed_ids(client, headers, **{start: "0001-01-01", end: "9999-12-31"}) == ["NOW-1", "LATE-1"]
    assert listed_ids(client, headers, **{start: "9999-12-31T18:59:59.999", end: "9999-12-31"}) == ["LATE-1"]
    assert listed_ids(client, headers, **{start: "9999-12-31T19:00:00", end: "9999-12-31T23:59:59.999"}) == []
    assert listed_ids(client, headers, **{start: "0001-01-01", end: "0001-01-01"}) == []
    assert listed_ids(client, headers, **{end: "0001-01-01T00:00:00.000"}) == []
