"""Column types: money exact and times in UTC on every database, and values read back as the domain's
(enum members, allow-lists) so that rows map onto records by name alone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from pendingtx.domain.networks import Network, allow_list_from_text, allow_list_text


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; SQLite stores them as naive UTC text."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # One call a value (TypeDecorator's own processor makes two): rows are read on hot paths.
        if dialect.name == "sqlite":
            # The same few texts (a polled job's, a token's) come back on every request: each is
            # parsed once, where SQLite's own DATETIME reader costs microseconds a value.
            return _utc_from_text
        return _utc


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_PARSED: dict[str, datetime] = {}
_MAX_PARSED = 4096


def _utc_from_text(text: str | None) -> datetime | None:
    if text is None:  # Core hands every value over, None included
        return None
    parsed = _PARSED.get(text)
    if parsed is None:
        if len(_PARSED) >= _MAX_PARSED:
            _PARSED.clear()
        parsed = _PARSED[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return parsed


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL; on SQLite a canonical decimal string, since SQLite would round via float.

    PostgreSQL's NUMERIC has no fixed scale here, so a value comes back with exactly the digits it was
    stored with; the domain rules bound its size and decimal places.
    """

    impl = sa.String(48)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(asdecimal=True))
        return dialect.type_descriptor(sa.String(48))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


E = TypeVar("E", bound=StrEnum)


class Enumerated(TypeDecorator[E]):
    """A StrEnum stored as its text: members in, members out."""

    impl = sa.String
    cache_ok = True

    def __init__(self, members: type[E], length: int) -> None:
        super().__init__(length)
        self.members = members

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.members(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        members = self.members
        # One call a value (TypeDecorator's own processor makes two): rows are read on hot paths.
        return lambda value: None if value is None else members(value)


class AllowList(TypeDecorator[tuple[Network, ...]]):
    """An IP allow-list: its networks joined by commas in the database, NULL for none (any address)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else allow_list_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[Network, ...] | None:
        # Parsed once per distinct text: the same few allow-lists come back on every request.
        return allow_list_from_text(value)
