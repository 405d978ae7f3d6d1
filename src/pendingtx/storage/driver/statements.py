"""Statements compiled once per dialect and run on the driver: the one way this service runs SQL.

Every query is a Core construct wrapped in a `Statement`, compiled the first time it runs on a kind
of database. Values still go through their columns' bind processors and rows through their result
processors, exactly as a Core execution would convert them, and rows come back as named tuples.
What is skipped is SQLAlchemy's per-execution machinery (cache keys, execution contexts, events),
which on these paths cost more than SQLite takes to run the statement.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ReturnsRows

if TYPE_CHECKING:
    from pendingtx.storage.driver.dialects import Dialect

Build = Callable[["Dialect"], sa.ClauseElement]
R = TypeVar("R")
Values = Mapping[str, Any]

# PostgreSQL's connections run in the driver's autocommit mode, and a transaction SQLAlchemy has begun
# is begun on the server by its first statement: BEGIN travels with it instead of in a round trip of
# its own (set by storage/driver/engine.py, taken by the first statement to run).
BEGIN_PENDING = "pendingtx.begin_pending"


def begin_pending(conn: sa.Connection) -> bool:
    """Whether the transaction is still to begin on the server, which the caller now sees to, before
    `announce` (the engine's own listener would otherwise begin it in a round trip of its own)."""
    return bool(conn.info.pop(BEGIN_PENDING, False))


@contextmanager
def driver_errors(dbapi: Any, sql: str | None) -> Iterator[None]:
    """Raise a driver's error as SQLAlchemy's, so that every caller handles one family of errors.

    This is the only place that translates them: a busy or unreachable database then surfaces as
    `sa.exc.OperationalError` (503 for the API), a duplicate key as `sa.exc.IntegrityError`.
    """
    error: type[Exception] = dbapi.Error
    try:
        yield
    except error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, error) from exc


class Compiled:
    """A statement compiled for one dialect: its SQL, how to bind its values, how to read its rows."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("a compiled-once statement cannot expand IN lists at execution")
        self._dialect = dialect
        # Literal values written into the statement (a status compared with, say) are parameters too.
        self._defaults: dict[str, Any] = dict(compiled.construct_params(_check=False))
        self._order: list[str] | None = list(compiled.positiontup or ()) if compiled.positional else None
        self._binders = [
            (name, processor)
            for name in self._defaults
            if (processor := compiled.binds[name].type._cached_bind_processor(dialect)) is not None
        ]
        columns = statement.exported_columns if isinstance(statement, ReturnsRows) else None
        self._types = [c.type for c in columns] if columns is not None else []
        self.row_type: Any = (
            namedtuple("Row", list(columns.keys()), rename=True) if columns is not None else None
        )
        # Whether running it gives rows to read (a SELECT, or a write with RETURNING).
        self.returns_rows = bool(self._types)
        # Result processors depend on what the driver says each column is (PostgreSQL's type
        # codes), so they are chosen at the first execution that returns rows.
        self._readers: list[tuple[int, Callable[[Any], Any]]] | None = None
        self._lock = threading.Lock()

    def parameters(self, values: Values) -> Any:
        """The values, converted, as the driver wants them: a tuple (qmark) or a mapping (pyformat)."""
        merged = {**self._defaults, **values}
        for name, processor in self._binders:
            value = merged[name]
            if value is not None:
                merged[name] = processor(value)
        if self._order is None:
            return merged
        return tuple(merged[name] for name in self._order)

    def rows(self, raw: Sequence[Sequence[Any]], cursor: Any) -> list[Any]:
        """Driver rows (read from `cursor`) as named rows, each value converted by its column's type."""
        # The cursor's description is looked at once: psycopg builds it anew at every access.
        readers = self._readers if self._readers is not None else self._choose_readers(cursor.description)
        make = self.row_type._make
        if not readers:
            return [make(row) for row in raw]
        converted = []
        for row in raw:
            values = list(row)
            for index, read in readers:
                value = values[index]
                if value is not None:
                    values[index] = read(value)
            converted.append(make(values))
        return converted

    def _choose_readers(self, description: Any) -> list[tuple[int, Callable[[Any], Any]]]:
        with self._lock:
            if self._readers is None:
                codes = [column[1] for column in description] if description else [None] * len(self._types)
                self._readers = [
                    (index, processor)
                    for index, (kind, code) in enumerate(zip(self._types, codes, strict=True))
                    if (processor := kind._cached_result_processor(self._dialect, code)) is not None
                ]
            return self._readers


class Statement:
    """A Core statement (or a function of the dialect that builds one), compiled once per dialect.

    Build statements once, at module level or in a cached factory: compiling costs far more than
    running. A statement cannot expand `IN` lists; pass a list as one parameter instead (see
    Dialect.each_of).
    """

    __slots__ = ("_build", "_compiled", "binary")

    def __init__(self, build: sa.ClauseElement | Build, *, binary: bool = False) -> None:
        self._build = build
        self._compiled: dict[tuple[str, str], Compiled] = {}
        # Rows in the driver's binary format where it has one (PostgreSQL): a large `bytea` comes
        # several times faster than as hex text. For statements whose columns are all plain values.
        self.binary = binary

    def compiled(self, dialect: sa.Dialect) -> Compiled:
        """The statement compiled for this kind of database (and driver parameter style)."""
        key = (dialect.name, dialect.paramstyle)
        found = self._compiled.get(key)
        if found is None:
            from pendingtx.storage.driver.dialects import dialect_of

            build = self._build
            statement = build if isinstance(build, sa.ClauseElement) else build(dialect_of(dialect.name))
            found = self._compiled.setdefault(key, Compiled(statement, dialect))
        return found


class Result:
    """What a statement run in a transaction gave: its rows (named, converted) and its row count."""

    __slots__ = ("_compiled", "_cursor", "rowcount")

    def __init__(self, cursor: Any, compiled: Compiled) -> None:
        self._cursor = cursor
        self._compiled = compiled
        self.rowcount: int = cursor.rowcount

    def all(self) -> list[Any]:
        """Every row."""
        return self._compiled.rows(self._cursor.fetchall(), self._cursor)

    def first(self) -> Any:
        """The first row, or None."""
        raw = self._cursor.fetchone()
        return None if raw is None else self._compiled.rows([raw], self._cursor)[0]

    def one(self) -> Any:
        """The first row; there must be one."""
        row = self.first()
        if row is None:
            raise sa.exc.NoResultFound("the statement returned no row")
        return row

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        row = self.first()
        return None if row is None else row[0]


def announce(conn: sa.Connection, cursor: Any, sql: str, parameters: Any, *, many: bool) -> None:
    """Tell the engine's `before_cursor_execute` listeners, if any, what is about to run.

    Statements here skip SQLAlchemy's execution machinery, not its instrumentation: tracing, and the
    tests that make a worker die at any statement, see each one as they would a Core execution.
    """
    listeners = conn.dispatch.before_cursor_execute
    if listeners:
        listeners(conn, cursor, sql, parameters, None, many)


def run(conn: sa.Connection, statement: Statement, values: Values | None = None) -> Result:
    """Execute the statement in the connection's transaction, on its driver connection."""
    compiled = statement.compiled(conn.dialect)
    driver: Any = conn.connection.driver_connection
    cursor = (
        driver.cursor(binary=True)
        if statement.binary and conn.dialect.name == "postgresql"
        else driver.cursor()
    )
    parameters = compiled.parameters(values or {})
    begin = begin_pending(conn)
    announce(conn, cursor, compiled.sql, parameters, many=False)
    with driver_errors(conn.dialect.loaded_dbapi, compiled.sql):
        if begin:
            with driver.pipeline():
                driver.cursor().execute("BEGIN", prepare=False)
                cursor.execute(compiled.sql, parameters)
        else:
            cursor.execute(compiled.sql, parameters)
    return Result(cursor, compiled)


def run_and_commit(
    conn: sa.Connection, statements: Sequence[tuple[Statement, Values | list[Values]]]
) -> list[Result]:
    """Execute the statements (once per row of values where given a list), then commit, all in one
    round trip (PostgreSQL: psycopg's pipeline mode, with COMMIT the last statement in it, so that
    leaving it is the one wait for results).

    The transaction's context still ends with its own commit, which then finds nothing to do. An
    error in any statement fails the commit and rolls back the whole transaction, as it would have
    without the pipeline.
    """
    driver: Any = conn.connection.driver_connection
    executed: list[tuple[Any, Compiled]] = []
    with driver_errors(conn.dialect.loaded_dbapi, "COMMIT"), driver.pipeline():
        if begin_pending(conn):
            driver.cursor().execute("BEGIN", prepare=False)
        for statement, values in statements:
            compiled = statement.compiled(conn.dialect)
            cursor = driver.cursor(binary=statement.binary)
            if isinstance(values, list):
                rows = [compiled.parameters(row) for row in values]
                announce(conn, cursor, compiled.sql, rows, many=True)
                cursor.executemany(compiled.sql, rows)
            else:
                parameters = compiled.parameters(values)
                announce(conn, cursor, compiled.sql, parameters, many=False)
                cursor.execute(compiled.sql, parameters)
            executed.append((cursor, compiled))
        driver.cursor().execute("COMMIT")
    return [Result(cursor, compiled) for cursor, compiled in executed]


def run_many(conn: sa.Connection, statement: Statement, rows: Sequence[Values]) -> int:
    """Execute the statement once per row of values; returns how many rows it affected in all."""
    if not rows:
        return 0
    compiled = statement.compiled(conn.dialect)
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    parameters = [compiled.parameters(row) for row in rows]
    begin = begin_pending(conn)
    announce(conn, cursor, compiled.sql, parameters, many=True)
    try:
        with driver_errors(conn.dialect.loaded_dbapi, compiled.sql):
            if begin:
                driver.execute("BEGIN", prepare=False)
            cursor.executemany(compiled.sql, parameters)
        return int(cursor.rowcount)
    finally:
        cursor.close()


class _Repeating:
    """A bind processor that converts the value it has just converted (the same object) only once.

    Rows of one chunk share some values, such as its creation time in two columns of every row.
    """

    __slots__ = ("_last", "_out", "_processor")

    def __init__(self, processor: Callable[[Any], Any]) -> None:
        self._processor = processor
        self._last: Any = _Repeating
        self._out: Any = None

    def __call__(self, value: Any) -> Any:
        if value is not self._last:
            self._last = value
            self._out = self._processor(value)
        return self._out


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    with_commit: bool = False,
) -> None:
    """Insert many rows (values in `columns` order) in the connection's transaction, at once; with
    `with_commit`, rows the transaction does not read back, which may then go with its commit.

    Values are converted with their columns' bind processors, column by column (most columns need
    none), then handed to the dialect's bulk path (COPY or executemany).
    """
    if not rows:
        return
    from pendingtx.storage.driver.dialects import dialect_of

    if with_commit and dialect_of(conn.dialect.name).insert_rows_at_commit(conn, table, columns, rows):
        return
    bound = [list(row) for row in rows]
    for index, name in enumerate(columns):
        processor = table.c[name].type._cached_bind_processor(conn.dialect)
        if processor is None:
            continue
        convert = _Repeating(processor)
        for row in bound:
            value = row[index]
            if value is not None:
                row[index] = convert(value)
    dialect_of(conn.dialect.name).insert_rows(conn, table, columns, [tuple(row) for row in bound])


def parameters_for(table: sa.Table, *names: str) -> dict[str, sa.BindParameter[Any]]:
    """Each named column bound to a parameter of its own name and type: the values of an INSERT."""
    return {name: sa.bindparam(name, type_=table.c[name].type) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in dataclasses.fields(cls))
    return names


def record_of(cls: type[R], row: Any, *, prefix: str = "") -> R:
    """The dataclass `cls` made of the row's values named after its fields (with `prefix`): columns
    are labelled after the record they fill, and their types convert the values."""
    return cls(*[getattr(row, prefix + name) for name in _field_names(cls)])
