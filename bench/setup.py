"""Databases, applications and tokens for benchmark runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from pendingtx.bootstrap import build_runtime
from pendingtx.config import Settings
from pendingtx.domain.credentials import PRODUCT
from pendingtx.services import credentials

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def sqlite_database(directory: Path, name: str) -> Iterator[str]:
    """A fresh, migrated SQLite file."""
    url = f"sqlite:///{directory / f'{name}.db'}"
    build_runtime(Settings(database_url=url)).close()
    yield url


def postgres_available() -> bool:
    engine = sa.create_engine(PG_ADMIN, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    name = f"ptx_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        build_runtime(Settings(database_url=url)).close()
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def register_app(database_url: str, *, sandbox: bool = False) -> credentials.NewApp:
    runtime = build_runtime(Settings(database_url=database_url, sandbox=sandbox), migrate=False)
    try:
        return credentials.create_app(
            runtime.uow, name="bench", organization="bench", products=[PRODUCT], clock=runtime.clock
        )
    finally:
        runtime.close()


def auth_headers(base: str, app: credentials.NewApp) -> dict[str, str]:
    """Authorization and AppKey headers with a freshly minted token."""
    answer = httpx.post(
        f"{base}/v2/oauthtoken", data={"grant_type": "client_credentials"}, auth=(app.app_key, app.app_secret)
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}", "AppKey": app.app_key}


def record(external_id: str) -> dict[str, object]:
    """A valid one-record New Subscription."""
    return {
        "externalId": external_id,
        "type": "New Subscription",
        "productExternalId": "FUND-A",
        "investorExternalId": "INV-1",
        "amount": "100.50",
        "tradeDate": "2026-11-27",
    }
