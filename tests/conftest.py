"""Fixtures: a real SQLite file per test (copied from one migrated template), a fake clock, the app."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pendingtx.api.app import create_app
from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.domain.credentials import PRODUCT
from pendingtx.services import credentials
from pendingtx.storage.engine import make_engine
from pendingtx.storage.migrate import upgrade
from tests.support import FakeClock, basic


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite database, copied for each test instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(Settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "pendingtx.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, worker_chunk_size=50, log_level="warning")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(settings: Settings, clock: FakeClock) -> Iterator[Runtime]:
    rt = Runtime(settings=settings, engine=make_engine(settings), clock=clock)
    yield rt
    rt.close()


@dataclass(frozen=True)
class AppCreds:
    """A registered application and its credentials."""

    app_key: str
    app_secret: str
    organization: str

    @property
    def basic(self) -> str:
        return basic(self.app_key, self.app_secret)


def register(
    runtime: Runtime, *, name: str = "ops-app", org: str = "acme", products: tuple[str, ...] = (PRODUCT,)
) -> AppCreds:
    new = credentials.create_app(runtime.uow, name=name, organization=org, products=products, clock=runtime.clock)
    return AppCreds(new.app_key, new.app_secret, org)


@pytest.fixture
def app_creds(runtime: Runtime) -> AppCreds:
    return register(runtime)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """The real application in-process, without the background worker: tests run jobs explicitly."""
    with TestClient(create_app(runtime, run_worker=False), base_url="http://127.0.0.1") as c:
        yield c


def mint(client: TestClient, creds: AppCreds) -> str:
    response = client.post(
        "/v2/oauthtoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": creds.basic},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def token(client: TestClient, app_creds: AppCreds) -> str:
    return mint(client, app_creds)


@pytest.fixture
def headers(token: str, app_creds: AppCreds) -> dict[str, str]:
    """Authorization and AppKey headers of a valid caller."""
    return {"Authorization": f"Bearer {token}", "AppKey": app_creds.app_key}
