"""Listing: filters (with US Eastern dates), cursor paging in both directions, tenancy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendingtx import errors
from pendingtx.bootstrap import Runtime
from pendingtx.domain.cursors import ListKind
from pendingtx.services.authentication import Caller
from pendingtx.services.listing import list_transactions
from tests.services.conftest import Submit
from tests.support import FakeClock, record


def ids(runtime: Runtime, caller: Caller, **params: str) -> list[str]:
    listing = list_transactions(runtime.uow, caller, list(params.items()), keys=runtime.keys)
    return [row.tx.external_id for row in listing.rows]


def test_filters_combine_with_and(runtime: Runtime, caller: Caller, submit: Submit) -> None:
    submit(
        [
            record("F-1", productExternalId="P1", investorExternalId="I1"),
            record("F-2", productExternalId="P1", investorExternalId="I2", contactExternalId="C1"),
            record("F-3", type="Dividend", productExternalId="P2", investorExternalId="I1"),
        ]
    )
    runtime.new_worker().run_until_idle()
    assert ids(runtime, caller, productExternalId="P1") == ["F-1", "F-2"]
    assert ids(runtime, caller, productExternalId="P1", investorExternalId="I1") == ["F-1"]
    assert ids(runtime, caller, type="Dividend") == ["F-3"]
    assert ids(runtime, caller, contactExternalId="C1") == ["F-2"]
    assert ids(runtime, caller, externalId="F-3", status="Active") == ["F-3"]
    assert ids(runtime, caller, status="Cancel") == []


@pytest.mark.parametrize(
    ("created_utc", "day", "inside"),
    [
        # 04:30 UTC on 16 January is still the 15th in New York (EST, UTC-5).
        (datetime(2026, 1, 16, 4, 30, tzinfo=UTC), "2026-01-15", True),
        (datetime(2026, 1, 16, 5, 0, tzinfo=UTC), "2026-01-15", False),
        # 03:30 UTC on 16 July is the 15th in New York (EDT, UTC-4); 04:00 is already the 16th.
        (datetime(2026, 7, 16, 3, 30, tzinfo=UTC), "2026-07-15", True),
        (datetime(2026, 7, 16, 4, 0, tzinfo=UTC), "2026-07-15", False),
    ],
)
def test_bare_dates_are_whole_days_in_new_york(
    runtime: Runtime,
    caller: Caller,
    submit: Submit,
    clock: FakeClock,
    created_utc: datetime,
    day: str,
    inside: bool,
) -> None:
    clock.now = created_utc
    submit([record("D-1")])
    runtime.new_worker().run_until_idle()
    found = ids(runtime, caller, createStartDate=day, createEndDate=day)
    assert found == (["D-1"] if inside else [])
    assert ids(runtime, caller, changeStartDate=day, changeEndDate=day) == found


def test_end_bound_is_inclusive_to_the_millisecond(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 1, 15, 15, 0, 0, 999_700, tzinfo=UTC)  # 10:00:00.999700 in New York
    submit([record("E-1")])
    runtime.new_worker().run_until_idle()
    assert ids(runtime, caller, createEndDate="2026-01-15T10:00:00.999") == ["E-1"]
    assert ids(runtime, caller, createEndDate="2026-01-15T10:00:00.998") == []
    assert ids(runtime, caller, createStartDate="2026-01-15T10:00:00.999") == ["E-1"]


def test_invalid_parameters_are_named(runtime: Runtime, caller: Caller) -> None:
    with pytest.raises(errors.ValidationFailed) as raised:
        list_transactions(
            runtime.uow, caller, [("limit", "0"), ("after", "!!"), ("colour", "red")], keys=runtime.keys
        )
    assert {e.field for e in raised.value.errors} == {"limit", "after", "colour"}
    assert all(e.location == "query" for e in raised.value.errors)


@pytest.fixture
def many(runtime: Runtime, submit: Submit) -> list[str]:
    names = [f"R-{i:03d}" for i in range(37)]
    batch = [record(n, status=None, productExternalId=f"P{i % 3}") for i, n in enumerate(names)]
    submit(batch)
    runtime.new_worker().run_until_idle()
    return names


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 50), product=st.sampled_from([None, "P0", "P1", "P2"]))
def test_paging_forward_and_backward_visits_every_row_once(
    runtime: Runtime, caller: Caller, many: list[str], limit: int, product: str | None
) -> None:
    filters = [("productExternalId", product)] if product else []
    expected = [n for i, n in enumerate(many) if product is None or f"P{i % 3}" == product]
    forward: list[str] = []
    cursor: list[tuple[str, str]] = []
    while True:
        page = list_transactions(
            runtime.uow, caller, [*filters, ("limit", str(limit)), *cursor], keys=runtime.keys
        )
        assert page.paging.total_count == len(expected)
        forward += [r.tx.external_id for r in page.rows]
        if page.paging.next is None:
            break
        cursor = [("after", str(page.paging.after_cursor))]
    assert forward == expected
    backward: list[str] = []
    cursors = runtime.keys.cursor_key().for_listing(ListKind.TRANSACTIONS, caller.org_id)
    last = cursors.open_page(str(page.paging.after_cursor), "")
    assert last is not None
    cursor = [("before", page.paging.after_cursor or "")]
    backward = [r.tx.external_id for r in page.rows][-1:]
    while True:
        page = list_transactions(
            runtime.uow, caller, [*filters, ("limit", str(limit)), *cursor], keys=runtime.keys
        )
        backward = [r.tx.external_id for r in page.rows] + backward
        if page.paging.previous is None:
            break
        cursor = [("before", str(page.paging.before_cursor))]
    assert backward == expected


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    products=st.lists(st.sampled_from(["P0", "P1", "P2"]), min_size=0, max_size=30),
    limit=st.integers(1, 50),
    product=st.sampled_from([None, "P0", "P1", "P2"]),
)
def test_paging_over_random_data_returns_each_match_once_in_order(
    runtime: Runtime, caller: Caller, submit: Submit, products: list[str], limit: int, product: str | None
) -> None:
    from pendingtx.domain.transactions import validate_record
    from pendingtx.storage import apps as app_repo
    from pendingtx.storage import transactions as tx_repo
    from pendingtx.storage.tables import jobs

    # A fresh organization per example, holding exactly this example's rows.
    with runtime.uow.read() as conn:
        seeded = conn.execute(sa.select(sa.func.min(jobs.c.id))).scalar()
    if seeded is None:
        submit([record("SEED")])
    with runtime.uow.write() as conn:
        job_id = conn.execute(sa.select(sa.func.min(jobs.c.id))).scalar()
        org_id = app_repo.ensure_organization(conn, f"org-{uuid.uuid4().hex}", now=runtime.clock())
        rows = [validate_record(record(f"R-{i}", productExternalId=p)) for i, p in enumerate(products)]
        tx_repo.insert_transactions(conn, org_id=org_id, job_id=job_id, records=rows, now=runtime.clock())  # type: ignore[arg-type]
    who = Caller(caller.app_id, caller.app_key, caller.app_name, org_id)
    expected = [f"R-{i}" for i, p in enumerate(products) if product is None or p == product]
    filters = [("productExternalId", product)] if product else []
    forward: list[str] = []
    cursor: list[tuple[str, str]] = []
    while True:
        page = list_transactions(
            runtime.uow, who, [*filters, ("limit", str(limit)), *cursor], keys=runtime.keys
        )
        assert page.paging.total_count == len(expected)
        forward += [r.tx.external_id for r in page.rows]
        if page.paging.next is None:
            break
        cursor = [("after", str(page.paging.after_cursor))]
    assert forward == expected
    if not expected:
        return
    backward = [r.tx.external_id for r in page.rows]
    while page.paging.previous is not None:
        page = list_transactions(
            runtime.uow,
            who,
            [*filters, ("limit", str(limit)), ("before", str(page.paging.before_cursor))],
            keys=runtime.keys,
        )
        backward = [r.tx.external_id for r in page.rows] + backward
    assert backward == expected
