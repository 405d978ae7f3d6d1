"""Listing transactions (`GET /v1/transactions`): query parsing, cursors and paging links."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import Field, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import quote, urlencode

from pendingtx.domain.cursors import ListingCursors, PageCursor
from pendingtx.domain.times import eastern
from pendingtx.domain.transactions import Problem, TransactionStatus, TransactionType

DEFAULT_LIMIT = 25
MAX_LIMIT = 50

FILTER_PARAMS = (
    "status", "type", "externalId", "productExternalId", "investorExternalId", "contactExternalId",
    "createStartDate", "createEndDate", "changeStartDate", "changeEndDate",
)  # fmt: skip
PAGING_PARAMS = ("limit", "after", "before")
_PARAM_RANK = {name: rank for rank, name in enumerate(FILTER_PARAMS + PAGING_PARAMS)}

# ASCII so that other scripts' digits are not read as a date or a number.
_MOMENT_TEXT = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?)?", re.ASCII)
_LIMIT_TEXT = re.compile(r"[0-9]{1,9}", re.ASCII)
_TEXT_REASON = "must be 1-64 characters"
_MOMENT_REASON = "must be a date-time yyyy-MM-ddTHH:mm:ss.SSS or a date yyyy-MM-dd (US Eastern time)"
_CURSOR_REASON = "is not a valid cursor"

_Member = TypeVar("_Member", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed listing request: filters combined with AND, then one page after or before a cursor.

    Date bounds are inclusive, aware UTC datetimes; `after` and `before` are row sequence numbers,
    opened from the opaque cursors the client sent, and `total` the count that cursor carries.
    """

    status: TransactionStatus | None = None
    type: TransactionType | None = None
    external_id: str | None = None
    product_external_id: str | None = None
    investor_external_id: str | None = None
    contact_external_id: str | None = None
    create_start: datetime | None = None
    create_end: datetime | None = None
    change_start: datetime | None = None
    change_end: datetime | None = None
    limit: int = DEFAULT_LIMIT
    after: int | None = None
    before: int | None = None
    total: int | None = None


class _Paged(Protocol):
    """A listing query: a dataclass with a page size."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def limit(self) -> int: ...


_Q = TypeVar("_Q", bound=_Paged)


def filters_of(query: _Paged) -> str:
    """What a listing's count depends on: the query's filters as parsed, without its page."""
    # The frozen dataclass's repr names every filter and its parsed value, so two spellings of one
    # date count alike, and a filter added to the query later changes the text of every listing.
    return repr(replace(query, limit=DEFAULT_LIMIT, after=None, before=None, total=None))


@dataclass(frozen=True, slots=True)
class Paging:
    """The paging member of a listing answer: cursors of the page's ends and links to its neighbours."""

    total_count: int
    limit: int
    before_cursor: str | None
    after_cursor: str | None
    next: str | None
    previous: str | None


class QueryReader:
    """Reads single-valued query parameters, collecting every problem found on the way."""

    def __init__(self, values: dict[str, str], cursors: ListingCursors) -> None:
        self.values = values
        self.cursors = cursors
        self.problems: list[Problem] = []

    def fail(self, name: str, reason: str) -> None:
        self.problems.append(Problem(name, reason))

    def member(self, name: str, kind: type[_Member]) -> _Member | None:
        """The value as a member of `kind`, spelt exactly; None when absent or wrong."""
        value = self.values.get(name)
        if value is None:
            return None
        if value in {member.value for member in kind}:
            return kind(value)
        self.fail(name, "must be one of: " + ", ".join(kind))
        return None

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is not None and not 1 <= len(value) <= 64:
            self.fail(name, _TEXT_REASON)
            return None
        return value

    def moment(self, name: str, *, end: bool) -> datetime | None:
        value = self.values.get(name)
        if value is None:
            return None
        moment = parse_eastern(value, end=end)
        if moment is None:
            self.fail(name, _MOMENT_REASON)
        return moment

    def limit(self, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int:
        value = self.values.get("limit")
        if value is None:
            return default
        if _LIMIT_TEXT.fullmatch(value) and 1 <= int(value) <= most:
            return int(value)
        self.fail("limit", f"must be an integer between 1 and {most}")
        return default

    def cursor(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        sequence = self.cursors.open(value)
        if sequence is None:
            self.fail(name, _CURSOR_REASON)
        return sequence

    def page_cursor(self, name: str, filters: str) -> PageCursor | None:
        """The page cursor named `name` of a listing with these filters (see `filters_of`)."""
        value = self.values.get(name)
        if value is None:
            return None
        opened = self.cursors.open_page(value, filters)
        if opened is None:
            self.fail(name, _CURSOR_REASON)
        return opened

    def paged(self, query: _Q) -> _Q:
        """The query with the `after` or `before` cursor asked for, and the count that cursor carries."""
        filters = filters_of(query)
        after = self.page_cursor("after", filters)
        before = self.page_cursor("before", filters)
        opened = after or before
        return replace(
            query,
            after=None if after is None else after.position,
            before=None if before is None else before.position,
            total=None if opened is None else opened.total,
        )


def parse_eastern(text: str, *, end: bool) -> datetime | None:
    """Read a contract date or date-time as America/New_York wall time and give the UTC instant.

    A bare date is the first millisecond of that day for a start bound, the last for an end bound.
    """
    match = _MOMENT_TEXT.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, millis = match.groups()
    if hour is None:
        hour, minute, second, millis = ("23", "59", "59", "999") if end else ("0", "0", "0", "0")
    try:
        # fold=0 picks the first of two ambiguous times when clocks go back (the daylight-time
        # one) and reads a time skipped when clocks go forward with the offset in force before it.
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int(millis or 0) * 1000, tzinfo=eastern(), fold=0,
        )  # fmt: skip
    except ValueError:  # well-formed but not a calendar moment, such as 2026-02-30 or 24:00:00
        return None
    try:
        return local.astimezone(UTC)
    except OverflowError:
        # Late on 9999-12-31 Eastern is past the last representable UTC instant; the latest
        # instant bounds the same rows, as nothing is stored after it.
        return datetime.max.replace(tzinfo=UTC)


def single_values(
    params: Sequence[tuple[str, str]], known: Mapping[str, int] = _PARAM_RANK
) -> tuple[dict[str, str], list[Problem]]:
    """The `known` parameters given exactly once, and a problem for each unknown or repeated one."""
    counts: dict[str, int] = {}
    for name, _ in params:
        counts[name] = counts.get(name, 0) + 1
    problems = [Problem(name, "unknown query parameter") for name in counts if name not in known]
    problems += [Problem(name, "must be given once") for name, n in counts.items() if n > 1 and name in known]
    values = {name: value for name, value in params if counts[name] == 1 and name in known}
    return values, problems


def parse_list_query(params: Sequence[tuple[str, str]], cursors: ListingCursors) -> ListQuery | list[Problem]:
    """The listing query from the raw (name, value) query items, or every problem with them.

    A cursor is valid only if `cursors`, those of the caller's listing, issued it.
    """
    values, problems = single_values(params)
    read = QueryReader(values, cursors)
    filters = ListQuery(
        status=read.member("status", TransactionStatus),
        type=read.member("type", TransactionType),
        external_id=read.text("externalId"),
        product_external_id=read.text("productExternalId"),
        investor_external_id=read.text("investorExternalId"),
        contact_external_id=read.text("contactExternalId"),
        create_start=read.moment("createStartDate", end=False),
        create_end=read.moment("createEndDate", end=True),
        change_start=read.moment("changeStartDate", end=False),
        change_end=read.moment("changeEndDate", end=True),
        limit=read.limit(),
    )
    query = read.paged(filters)
    _check_ranges(read, query)
    if "after" in values and "before" in values:
        read.fail("before", "cannot be combined with after")
    problems += read.problems
    if problems:
        # Stable: in contract order, unknown parameters last, a parameter's problems as found.
        return sorted(problems, key=lambda p: _PARAM_RANK.get(p.field, len(_PARAM_RANK)))
    return query


def _check_ranges(read: QueryReader, query: ListQuery) -> None:
    """A problem on the end parameter of each date range that ends before it starts."""
    ranges = (
        ("createStartDate", "createEndDate", query.create_start, query.create_end),
        ("changeStartDate", "changeEndDate", query.change_start, query.change_end),
    )
    for start_name, end_name, start, end in ranges:
        if start is not None and end is not None and start > end:
            read.fail(end_name, f"must not be before {start_name}")


def link(path: str, items: list[tuple[str, str]]) -> str:
    """The URL of `path` with these query items."""
    # `=` may stay as it is inside a value (a query item splits at its first `=`), and `:` is
    # allowed in a query by RFC 3986. `+` and `/` are escaped. Cursors need no escaping.
    return path + "?" + urlencode(items, safe=":=", quote_via=quote)


def paging_for(
    query: _Paged,
    *,
    cursors: ListingCursors,
    params: Sequence[tuple[str, str]],
    first_id: int | None,
    last_id: int | None,
    has_more_after: bool,
    has_more_before: bool,
    total_count: int,
    path: str = "/v1/transactions",
    filters: Sequence[str] = FILTER_PARAMS,
) -> Paging:
    """The paging member for a page whose rows run from `first_id` to `last_id` (None if empty).

    Its cursors carry `total_count`, so that the pages they lead to need not count again."""
    counted_for = filters_of(query)
    before_cursor = cursors.seal_page(first_id, total_count, counted_for) if first_id is not None else None
    after_cursor = cursors.seal_page(last_id, total_count, counted_for) if last_id is not None else None
    # The request's filters, in contract order, so that every page of a listing links alike.
    given = [(name, value) for name in filters for named, value in params if named == name]
    base = [*given, ("limit", str(query.limit))]
    return Paging(
        total_count=total_count,
        limit=query.limit,
        before_cursor=before_cursor,
        after_cursor=after_cursor,
        next=link(path, [*base, ("after", after_cursor)]) if has_more_after and after_cursor else None,
        previous=link(path, [*base, ("before", before_cursor)])
        if has_more_before and before_cursor
        else None,
    )


def to_body(paging: Paging) -> dict[str, object]:
    """The contract's JSON form of the paging member."""
    return {
        "totalCount": paging.total_count,
        "limit": paging.limit,
        "cursors": {"before": paging.before_cursor, "after": paging.after_cursor},
        "next": paging.next,
        "previous": paging.previous,
    }
