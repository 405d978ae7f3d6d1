"""What the figures are divided by, measured on the same database in the same run."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import sqlalchemy as sa

from pendingtx.config import Settings
from pendingtx.storage.driver.engine import normalize_url

_COLUMNS = (
    "org_id, external_id, job_id, type, status, product_external_id, investor_external_id, amount, "
    "currency, trade_date, created_at, changed_at"
)


def executemany_rate(database_url: str, count: int) -> float:
    """Rows/s of plain DB-API executemany of the same rows into a bare table (its unique key only),
    committed every 10,000."""
    engine = sa.create_engine(normalize_url(database_url))
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (
            1,
            f"A-{i}",
            1,
            "New Subscription",
            "Active",
            "FUND-A",
            "INV-1",
            "100.5",
            "USD",
            date(2026, 11, 27),
            now,
            now,
        )
        for i in range(count)
    ]
    placeholders = ", ".join(["%s" if engine.dialect.name == "postgresql" else "?"] * 12)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_anchor")
            key = "INTEGER PRIMARY KEY" if engine.dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
            conn.exec_driver_sql(
                f"CREATE TABLE bench_anchor (id {key}, org_id BIGINT, external_id TEXT, job_id BIGINT, "
                "type TEXT, status TEXT, product_external_id TEXT, investor_external_id TEXT, "
                "amount NUMERIC, currency TEXT, trade_date DATE, created_at TIMESTAMP, "
                "changed_at TIMESTAMP, UNIQUE (org_id, external_id))"
            )
        statement = f"INSERT INTO bench_anchor ({_COLUMNS}) VALUES ({placeholders})"
        return _timed_executemany(engine, statement, rows)
    finally:
        engine.dispose()


_SERVICE_COLUMNS = (
    "org_id, job_id, created_at, changed_at, external_id, type, status, product_external_id, "
    "investor_external_id, contact_external_id, to_product_external_id, to_investor_external_id, "
    "amount, units, currency, trade_date, settlement_date, comments"
)


def service_table_rate(database_url: str, count: int) -> float:
    """Rows/s of plain DB-API executemany of the rows the worker stores, into the service's own
    `transactions` table (with the indexes its listing filters use), committed every 10,000.

    `database_url` is a fresh, migrated database holding one application (bench.setup.register_app).
    """
    engine = sa.create_engine(normalize_url(database_url))
    sqlite = engine.dialect.name == "sqlite"
    # Values as the worker hands them to the driver: SQLite gets text, PostgreSQL native types.
    now: object = datetime.now(UTC)
    trade: object = date(2026, 11, 27)
    if sqlite:
        now, trade = now.replace(tzinfo=None).isoformat(" "), trade.isoformat()  # type: ignore[attr-defined]
    try:
        with engine.begin() as conn:
            org_id, app_id = conn.exec_driver_sql("SELECT org_id, id FROM apps").one()
            job_id = conn.exec_driver_sql(
                "INSERT INTO jobs (key, org_id, app_id, kind, status, payload, record_count, "
                "processed_count, created_count, failed_count, attempts, submitted_at) VALUES ('anchor', "
                f"{int(org_id)}, {int(app_id)}, 'create', 'Completed', '', {count}, 0, 0, 0, 0, "
                "CURRENT_TIMESTAMP) RETURNING id"
            ).scalar_one()
        rest = (None, None, None, "100.5", None, "USD", trade, None, None)
        rows = [
            (org_id, job_id, now, now, f"A-{i}", "New Subscription", "Active", "FUND-A", "INV-1", *rest)
            for i in range(count)
        ]
        mark = "?" if sqlite else "%s"
        statement = f"INSERT INTO transactions ({_SERVICE_COLUMNS}) VALUES ({', '.join([mark] * 18)})"
        return _timed_executemany(engine, statement, rows)
    finally:
        engine.dispose()


def _timed_executemany(engine: sa.Engine, statement: str, rows: list[tuple[object, ...]]) -> float:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            # The same durability as the service's connections, so only the work differs.
            cursor.execute(f"PRAGMA synchronous={Settings().sqlite_synchronous}")
        started = time.perf_counter()
        for start in range(0, len(rows), 10_000):
            cursor.executemany(statement, rows[start : start + 10_000])
            raw.commit()
        elapsed = time.perf_counter() - started
    finally:
        raw.close()
    return len(rows) / elapsed


def wait_all_terminal(database_url: str, *, timeout: float) -> int:
    """Wait until no job is waiting or running; returns how many jobs there are."""
    engine = sa.create_engine(normalize_url(database_url))
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                waiting, total = conn.exec_driver_sql(
                    "SELECT SUM(CASE WHEN status IN ('Submitted', 'In Progress') THEN 1 ELSE 0 END), "
                    "COUNT(*) FROM jobs"
                ).one()
            if not waiting:
                return int(total)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{waiting} jobs still unfinished")
            time.sleep(0.05)
    finally:
        engine.dispose()
