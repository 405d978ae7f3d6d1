"""The one seam between the service's queries and the database drivers (docs/ARCHITECTURE.md).

statements.py  Statement: a Core construct compiled once per dialect; `run` and `run_many` it in a
               transaction; `driver_errors`, the one place driver errors become SQLAlchemy's
detached.py    single statements outside any transaction, blocking or awaited (the hot reads)
dialects.py    Dialect: every difference between SQLite and PostgreSQL the queries meet
engine.py      engines, and each kind's connection setup
"""

from pendingtx.storage.driver.dialects import Dialect, dialect_for, dialect_of
from pendingtx.storage.driver.statements import (
    Result,
    Statement,
    driver_errors,
    insert_rows,
    parameters_for,
    record_of,
    run,
    run_many,
)

__all__ = [
    "Dialect",
    "Result",
    "Statement",
    "dialect_for",
    "dialect_of",
    "driver_errors",
    "insert_rows",
    "parameters_for",
    "record_of",
    "run",
    "run_many",
]
