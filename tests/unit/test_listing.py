"""Unit tests for listing queries, cursors and paging links (API spec 3.5)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendingtx.domain.cursors import MAX_POSITION, CursorKey, ListKind
from pendingtx.domain.listing import (
    FILTER_PARAMS,
    PAGING_PARAMS,
    ListQuery,
    Paging,
    filters_of,
    paging_for,
    parse_eastern,
    parse_list_query,
    to_body,
)
from pendingtx.domain.times import eastern
from pendingtx.domain.transactions import Problem, TransactionStatus, TransactionType

MOMENT_REASON = "must be a date-time yyyy-MM-ddTHH:mm:ss.SSS or a date yyyy-MM-dd (US Eastern time)"
LIMIT_REASON = "must be an integer between 1 and 50"
CURSOR_REASON = "is not a valid cursor"
DATE_PARAMS = FILTER_PARAMS[6:]
TEXT_PARAMS = FILTER_PARAMS[2:6]
TEXT_ATTRIBUTES = dict(
    zip(
        TEXT_PARAMS,
        ["external_id", "product_external_id", "investor_external_id", "contact_external_id"],
        strict=True,
    )
)
# Digits of another script, written as escapes to keep the source unambiguous.
ARABIC_FIVE = "\u0665"
CURSORS = CursorKey(bytes(range(64))).for_listing(ListKind.TRANSACTIONS, 1)


# The unfiltered listing's count, as its first page took it.
COUNTED = 7


def cursor(position: int) -> str:
    """A cursor of the unfiltered listing."""
    return CURSORS.seal_page(position, COUNTED, filters_of(ListQuery()))


def carrying(position: int, total: int, query: ListQuery) -> str:
    """The cursor a page of `query` gives a row, carrying `total`."""
    return CURSORS.seal_page(position, total, filters_of(query))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def parsed(*params: tuple[str, str]) -> ListQuery:
    result = parse_list_query(params, CURSORS)
    assert isinstance(result, ListQuery), f"expected a query, got {result!r}"
    return result


def problems(*params: tuple[str, str]) -> list[Problem]:
    result = parse_list_query(params, CURSORS)
    assert isinstance(result, list), f"expected problems, got {result!r}"
    assert result, "a refusal must name at least one problem"
    return result


# --- parameter names ------------------------------------------------------------------------


def test_parameter_names_are_the_contract_ones() -> None:
    assert FILTER_PARAMS == (
        "status", "type", "externalId", "productExternalId", "investorExternalId", "contactExternalId",
        "createStartDate", "createEndDate", "changeStartDate", "changeEndDate",
    )  # fmt: skip
    assert PAGING_PARAMS == ("limit", "after", "before")


def test_no_parameters_is_the_first_page_of_everything() -> None:
    assert parsed() == ListQuery(
        status=None,
        type=None,
        external_id=None,
        product_external_id=None,
        investor_external_id=None,
        contact_external_id=None,
        create_start=None,
        create_end=None,
        change_start=None,
        change_end=None,
        limit=25,
        after=None,
        before=None,
    )


def test_every_filter_is_read() -> None:
    query = parsed(
        ("status", "Cancel"),
        ("type", "Full Switch or Exchange"),
        ("externalId", "TX-1"),
        ("productExternalId", "P 1"),
        ("investorExternalId", "I/1"),
        ("contactExternalId", "Ç1"),
        ("createStartDate", "2026-01-15T10:00:00.000"),
        ("createEndDate", "2026-01-15T10:00:00.001"),
        ("changeStartDate", "2026-01-15"),
        ("changeEndDate", "2026-01-16"),
        ("limit", "10"),
        ("after", cursor(25)),
    )
    assert query == ListQuery(
        status=TransactionStatus.CANCEL,
        type=TransactionType.FULL_SWITCH_OR_EXCHANGE,
        external_id="TX-1",
        product_external_id="P 1",
        investor_external_id="I/1",
        contact_external_id="Ç1",
        create_start=utc(2026, 1, 15, 15, 0, 0),
        create_end=utc(2026, 1, 15, 15, 0, 0, 1000),
        change_start=utc(2026, 1, 15, 5, 0, 0),
        change_end=utc(2026, 1, 17, 4, 59, 59, 999000),
        limit=10,
        after=25,
        before=None,
        # The cursor was counted for no filters: these are counted afresh.
        total=None,
    )


@pytest.mark.parametrize("name", ["Status", "page", "offset", "", "externalID", "limit "])
def test_unknown_parameter(name: str) -> None:
    assert problems((name, "x")) == [Problem(name, "unknown query parameter")]


@pytest.mark.parametrize("name", [*FILTER_PARAMS, *PAGING_PARAMS])
def test_parameter_given_twice(name: str) -> None:
    assert problems((name, "x"), (name, "x")) == [Problem(name, "must be given once")]


def test_unknown_parameter_given_twice_is_named_once() -> None:
    assert problems(("page", "1"), ("page", "2")) == [Problem("page", "unknown query parameter")]


# --- status, type and text filters ----------------------------------------------------------


@pytest.mark.parametrize("status", list(TransactionStatus))
def test_status_values(status: TransactionStatus) -> None:
    assert parsed(("status", status.value)).status is status


@pytest.mark.parametrize("value", ["active", "CANCEL", "Cancelled", "", " Active"])
def test_status_must_be_exact(value: str) -> None:
    assert problems(("status", value)) == [Problem("status", "must be one of: Active, Cancel")]


@pytest.mark.parametrize("tx_type", list(TransactionType))
def test_type_values(tx_type: TransactionType) -> None:
    assert parsed(("type", tx_type.value)).type is tx_type


@pytest.mark.parametrize("value", ["dividend", "Full Switch Or Exchange", "Subscription", ""])
def test_type_must_be_exact(value: str) -> None:
    reason = "must be one of: " + ", ".join(t.value for t in TransactionType)
    assert problems(("type", value)) == [Problem("type", reason)]


@pytest.mark.parametrize("name", TEXT_PARAMS)
@pytest.mark.parametrize("value", ["x", "x" * 64, "with space & symbols/+", "日本"])
def test_text_filters_of_1_to_64_characters(name: str, value: str) -> None:
    query = parsed((name, value))
    assert getattr(query, TEXT_ATTRIBUTES[name]) == value


@pytest.mark.parametrize("name", TEXT_PARAMS)
@pytest.mark.parametrize("value", ["", "x" * 65])
def test_text_filters_outside_1_to_64_characters(name: str, value: str) -> None:
    assert problems((name, value)) == [Problem(name, "must be 1-64 characters")]


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # January: Eastern Standard Time, UTC-05:00.
        ("2026-01-15T10:00:00.000", utc(2026, 1, 15, 15, 0, 0)),
        ("2026-01-15T23:30:15.250", utc(2026, 1, 16, 4, 30, 15, 250000)),
        # July: Eastern Daylight Time, UTC-04:00.
        ("2026-07-15T10:00:00.000", utc(2026, 7, 15, 14, 0, 0)),
        ("2026-07-15T10:00:00", utc(2026, 7, 15, 14, 0, 0)),
        ("2024-02-29T00:00:00.999", utc(2024, 2, 29, 5, 0, 0, 999000)),
        # A time skipped when clocks go forward is read with the standard-time offset (fold=0).
        ("2026-03-08T02:30:00.000", utc(2026, 3, 8, 7, 30, 0)),
        # A time repeated when clocks go back is its first, daylight-time, occurrence (fold=0).
        ("2026-11-01T01:30:00.000", utc(2026, 11, 1, 5, 30, 0)),
    ],
)
def test_date_times_are_eastern_wall_time(text: str, expected: datetime) -> None:
    for name in DATE_PARAMS:
        query = parsed((name, text))
        moments = (query.create_start, query.create_end, query.change_start, query.change_end)
        assert moments[DATE_PARAMS.index(name)] == expected
    assert parse_eastern(text, end=False) == parse_eastern(text, end=True) == expected


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-01-15", utc(2026, 1, 15, 5, 0, 0), utc(2026, 1, 16, 4, 59, 59, 999000)),
        ("2026-07-15", utc(2026, 7, 15, 4, 0, 0), utc(2026, 7, 16, 3, 59, 59, 999000)),
        # The day clocks go forward has 23 hours, the day they go back 25.
        ("2026-03-08", utc(2026, 3, 8, 5, 0, 0), utc(2026, 3, 9, 3, 59, 59, 999000)),
        ("2026-11-01", utc(2026, 11, 1, 4, 0, 0), utc(2026, 11, 2, 4, 59, 59, 999000)),
    ],
)
def test_bare_dates_cover_the_whole_eastern_day(text: str, start: datetime, end: datetime) -> None:
    query = parsed(
        ("createStartDate", text), ("createEndDate", text), ("changeStartDate", text), ("changeEndDate", text)
    )
    assert (query.create_start, query.create_end) == (start, end)
    assert (query.change_start, query.change_end) == (start, end)


def test_create_end_date_of_a_january_day() -> None:
    assert parsed(("createEndDate", "2026-01-15")).create_end == datetime.fromisoformat(
        "2026-01-16T04:59:59.999Z"
    )


def test_extreme_dates() -> None:
    assert parse_eastern("0001-01-01", end=False) == utc(1, 1, 1, 4, 56, 2)  # local mean time, before 1883
    assert parse_eastern("9999-12-31", end=False) == utc(9999, 12, 31, 5, 0, 0)
    # Past the last representable UTC instant, which bounds the same rows.
    assert parse_eastern("9999-12-31", end=True) == datetime.max.replace(tzinfo=UTC)
    assert parse_eastern("9999-12-31T23:00:00", end=False) == datetime.max.replace(tzinfo=UTC)
    assert parse_eastern("0000-01-01", end=False) is None


def test_moments_are_aware_utc() -> None:
    moment = parsed(("changeStartDate", "2026-07-01T12:00:00.000")).change_start
    assert moment is not None
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-01-15T10:00:00.00",
        "2026-01-15T10:00:00.0000",
        "2026-01-15T10:00",
        "2026-01-15T10:00:00.",
        "2026-01-15 10:00:00.000",
        "2026-01-15t10:00:00.000",
        "2026-01-15T10:00:00.000Z",
        "2026-01-15T10:00:00.000-05:00",
        "2026-1-15",
        "20260115",
        "15/01/2026",
        "2026-02-30",
        "2026-13-01",
        "2026-01-15T24:00:00.000",
        "2026-01-15T10:60:00.000",
        "2026-01-15T10:00:60.000",
        " 2026-01-15",
        "2026-01-15\n",
        "202" + ARABIC_FIVE + "-01-15",
    ],
)
def test_malformed_dates(text: str) -> None:
    for name in DATE_PARAMS:
        assert problems((name, text)) == [Problem(name, MOMENT_REASON)]


@pytest.mark.parametrize(("start_name", "end_name"), [DATE_PARAMS[:2], DATE_PARAMS[2:]])
def test_start_after_end_is_a_problem_on_the_end(start_name: str, end_name: str) -> None:
    assert problems((start_name, "2026-01-16"), (end_name, "2026-01-15")) == [
        Problem(end_name, f"must not be before {start_name}")
    ]
    later = ("2026-01-15T10:00:00.001", "2026-01-15T10:00:00.000")
    assert problems((start_name, later[0]), (end_name, later[1])) == [
        Problem(end_name, f"must not be before {start_name}")
    ]


@pytest.mark.parametrize(("start_name", "end_name"), [DATE_PARAMS[:2], DATE_PARAMS[2:]])
def test_bounds_are_inclusive(start_name: str, end_name: str) -> None:
    moment = "2026-01-15T10:00:00.000"
    parsed((start_name, moment), (end_name, moment))
    parsed((start_name, "2026-01-15T23:59:59.999"), (end_name, "2026-01-15"))


def test_range_is_not_checked_when_a_bound_is_malformed() -> None:
    assert problems(("createStartDate", "2026-01-16"), ("createEndDate", "bad")) == [
        Problem("createEndDate", MOMENT_REASON)
    ]


# --- limit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "limit"), [("1", 1), ("25", 25), ("50", 50), ("007", 7)])
def test_limit(text: str, limit: int) -> None:
    assert parsed(("limit", text)).limit == limit


@pytest.mark.parametrize(
    "text", ["0", "51", "-1", "+5", "5.0", "1e1", "", " 5", "ten", ARABIC_FIVE, "9" * 400]
)
def test_limit_out_of_range_or_not_an_integer(text: str) -> None:
    assert problems(("limit", text)) == [Problem("limit", LIMIT_REASON)]


# --- cursors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!!",
        # The readable cursors of old: the standard base64 of the decimal row number.
        "MQ==",
        "MjU=",
        "OTIyMzM3MjAzNjg1NDc3NTgwNw==",
        "A" * 32,
        "A" * 48,
        "MQ\u2550\u2550",
    ],
)
def test_invalid_cursors(text: str) -> None:
    assert CURSORS.open(text) is None
    for name in ("after", "before"):
        assert problems((name, text)) == [Problem(name, CURSOR_REASON)]


@pytest.mark.parametrize("name", ["after", "before"])
def test_a_cursor_of_another_organization_or_listing_is_invalid(name: str) -> None:
    key = CursorKey(bytes(range(64)))
    for other in (key.for_listing(ListKind.TRANSACTIONS, 2), key.for_listing(ListKind.JOBS, 1)):
        assert problems((name, other.seal_page(7, 3, filters_of(ListQuery())))) == [
            Problem(name, CURSOR_REASON)
        ]
    # A row cursor of the listings that carry no count is no page cursor either.
    assert problems((name, CURSORS.seal(7))) == [Problem(name, CURSOR_REASON)]


@settings(database=None)
@given(st.integers(min_value=1, max_value=MAX_POSITION))
def test_cursors_round_trip(sequence: int) -> None:
    assert parsed(("before", cursor(sequence))).before == sequence
    assert parsed(("after", cursor(sequence))).after == sequence
    assert parsed(("after", cursor(sequence))).total == COUNTED


def test_a_cursor_carries_its_count_only_to_the_filters_it_was_counted_for() -> None:
    active = parsed(("status", "Active"))
    sealed = carrying(9, 120, active)
    assert parsed(("status", "Active"), ("after", sealed)).total == 120
    assert parsed(("status", "Active"), ("limit", "3"), ("before", sealed)).total == 120
    # The same date written otherwise is the same filter.
    dated = carrying(9, 4, parsed(("createStartDate", "2026-01-15")))
    assert parsed(("createStartDate", "2026-01-15T00:00:00.000"), ("after", dated)).total == 4
    # Other filters, or none: the row is still the cursor's, the count is taken again.
    for other in ([("status", "Cancel")], [], [("status", "Active"), ("type", "Dividend")]):
        query = parsed(*other, ("after", sealed))
        assert (query.after, query.total) == (9, None)


def test_after_and_before_cannot_be_combined() -> None:
    assert problems(("after", cursor(1)), ("before", cursor(25))) == [
        Problem("before", "cannot be combined with after")
    ]


def test_after_and_before_with_invalid_cursors() -> None:
    assert problems(("before", "x"), ("after", "y")) == [
        Problem("after", CURSOR_REASON),
        Problem("before", CURSOR_REASON),
        Problem("before", "cannot be combined with after"),
    ]


def test_every_problem_is_reported_in_contract_order() -> None:
    assert problems(
        ("sort", "asc"),
        ("limit", "100"),
        ("createEndDate", "2026-01-01"),
        ("status", "Open"),
        ("createStartDate", "2026-02-01"),
        ("externalId", ""),
        ("after", "nope"),
        ("status", "Active"),
    ) == [
        Problem("status", "must be given once"),
        Problem("externalId", "must be 1-64 characters"),
        Problem("createEndDate", "must not be before createStartDate"),
        Problem("limit", LIMIT_REASON),
        Problem("after", CURSOR_REASON),
        Problem("sort", "unknown query parameter"),
    ]


# --- paging ---------------------------------------------------------------------------------


def test_spec_example_first_page() -> None:
    paging = paging_for(
        ListQuery(),
        cursors=CURSORS,
        params=[],
        first_id=1,
        last_id=25,
        has_more_after=True,
        has_more_before=False,
        total_count=120,
    )
    first, last = carrying(1, 120, ListQuery()), carrying(25, 120, ListQuery())
    assert paging == Paging(
        total_count=120,
        limit=25,
        before_cursor=first,
        after_cursor=last,
        next=f"/v1/transactions?limit=25&after={last}",
        previous=None,
    )
    assert to_body(paging) == {
        "totalCount": 120,
        "limit": 25,
        "cursors": {"before": first, "after": last},
        "next": f"/v1/transactions?limit=25&after={last}",
        "previous": None,
    }


def test_middle_page_links_both_ways_with_its_filters() -> None:
    params = [
        ("limit", "10"),
        ("after", cursor(20)),
        ("type", "Full Transfer"),
        ("createStartDate", "2026-01-15T10:00:00.000"),
        ("status", "Active"),
    ]
    query = parsed(*params)
    paging = paging_for(
        query,
        cursors=CURSORS,
        params=params,
        first_id=21,
        last_id=30,
        has_more_after=True,
        has_more_before=True,
        total_count=45,
    )
    filters = "status=Active&type=Full%20Transfer&createStartDate=2026-01-15T10:00:00.000&limit=10"
    first, last = carrying(21, 45, query), carrying(30, 45, query)
    assert paging.next == f"/v1/transactions?{filters}&after={last}"
    assert paging.previous == f"/v1/transactions?{filters}&before={first}"
    assert (paging.before_cursor, paging.after_cursor, paging.limit) == (first, last, 10)


def test_last_page_has_no_next() -> None:
    params = [("before", cursor(101))]
    paging = paging_for(
        parsed(*params),
        cursors=CURSORS,
        params=params,
        first_id=76,
        last_id=100,
        has_more_after=False,
        has_more_before=True,
        total_count=100,
        path="/v1/other",
    )
    assert paging.next is None
    assert paging.previous == f"/v1/other?limit=25&before={carrying(76, 100, ListQuery())}"


def test_empty_page_has_no_cursors_or_links() -> None:
    paging = paging_for(
        ListQuery(),
        cursors=CURSORS,
        params=[],
        first_id=None,
        last_id=None,
        has_more_after=True,
        has_more_before=True,
        total_count=0,
    )
    assert paging == Paging(0, 25, None, None, None, None)
    assert to_body(paging)["cursors"] == {"before": None, "after": None}


def test_link_escapes_what_a_query_value_cannot_hold() -> None:
    params = [("productExternalId", "a+b/c&d=e #%")]
    paging = paging_for(
        parsed(*params),
        cursors=CURSORS,
        params=params,
        first_id=1,
        last_id=2,
        has_more_after=True,
        has_more_before=False,
        total_count=3,
    )
    after = carrying(2, 3, parsed(*params))
    expected = f"/v1/transactions?productExternalId=a%2Bb%2Fc%26d=e%20%23%25&limit=25&after={after}"
    assert paging.next == expected


FILTER_VALUES = {
    "status": st.sampled_from(list(TransactionStatus)).map(str),
    "type": st.sampled_from(list(TransactionType)).map(str),
    **{name: st.text(min_size=1, max_size=64) for name in TEXT_PARAMS},
    "createStartDate": st.just("2026-01-01"),
    "createEndDate": st.just("2026-07-01T12:30:00.500"),
}


@settings(deadline=None, database=None)
@given(
    st.fixed_dictionaries({}, optional=FILTER_VALUES).flatmap(
        lambda filters: st.permutations(list(filters.items()))
    ),
    st.integers(1, 50),
    st.integers(1, 10**12),
)
def test_next_link_reads_back_as_the_next_page(
    filters: list[tuple[str, str]], limit: int, last_id: int
) -> None:
    params = [*filters, ("limit", str(limit))]
    query = parsed(*params)
    paging = paging_for(
        query,
        cursors=CURSORS,
        params=params,
        first_id=1,
        last_id=last_id,
        has_more_after=True,
        has_more_before=False,
        total_count=9,
    )
    assert paging.next is not None
    link = urlsplit(paging.next)
    assert link.path == "/v1/transactions"
    items = parse_qsl(link.query, keep_blank_values=True)
    assert items[: len(filters)] == sorted(filters, key=lambda item: FILTER_PARAMS.index(item[0]))
    assert parsed(*items) == replace(query, after=last_id, total=9)


@settings(deadline=None, database=None)
@given(st.from_regex(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{3})?)?", fullmatch=True), st.booleans())
def test_any_date_shaped_text_gets_a_verdict_without_raising(text: str, end: bool) -> None:
    moment = parse_eastern(text, end=end)
    assert moment is None or moment.tzinfo is UTC


@settings(deadline=None, database=None)
@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)))
def test_eastern_wall_time_survives_the_round_trip(wall: datetime) -> None:
    wall = wall.replace(microsecond=wall.microsecond // 1000 * 1000)
    moment = parse_eastern(wall.isoformat(timespec="milliseconds"), end=False)
    assert moment is not None
    back = moment.astimezone(eastern()).replace(tzinfo=None)
    # Only a wall time skipped when clocks go forward reads differently: an hour later.
    assert back in (wall, wall + timedelta(hours=1))
