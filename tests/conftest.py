"""Fixtures: a real SQLite file per test (copied from one migrated template), a fake clock, the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime, build_app
from pendingtx.config import Settings
from pendingtx.domain.credentials import PRODUCT
from pendingtx.services import credentials
from pendingtx.storage.driver.engine import make_engine
from tests import databases
from tests.support import FakeClock, basic


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite database, copied for each test instead of migrating again."""
    return databases.migrated_sqlite(tmp_path_factory.mktemp("template") / "template.db")


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[databases.PostgresDatabases]:
    """One migrated PostgreSQL template per session, and the test databases cloned from it."""
    databases.require_postgres()
    with databases.postgres_template() as name:
        pool = databases.PostgresDatabases(name)
        try:
            yield pool
        finally:
            pool.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind for every test that touches storage."""
    if request.param == "sqlite":
        yield databases.sqlite_copy(sqlite_template, tmp_path)
        return
    with request.getfixturevalue("postgres_databases").database() as url:
        yield url


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
    new = credentials.create_app(
        runtime.uow, name=name, organization=org, products=products, clock=runtime.clock
    )
    return AppCreds(new.app_key, new.app_secret, org)


@pytest.fixture
def app_creds(runtime: Runtime) -> AppCreds:
    return register(runtime)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """The real application in-process, without the background worker: tests run jobs explicitly."""
    with TestClient(build_app(runtime), base_url="http://127.0.0.1") as c:
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


# --- API test suite helpers (appended) -------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """A runtime with its own settings over the test's database and clock, and a client of its app."""

    runtime: Runtime
    client: TestClient


@pytest.fixture
def serve_with(settings: Settings, clock: FakeClock) -> Iterator[Callable[..., Served]]:
    """Serve the test's database with some settings changed, e.g. `serve_with(max_batch_records=2)`."""
    opened: list[tuple[Runtime, TestClient]] = []

    def serve(**changes: Any) -> Served:
        tuned = settings.replace(**changes)
        rt = Runtime(settings=tuned, engine=make_engine(tuned), clock=clock)
        test_client = TestClient(build_app(rt), base_url="http://127.0.0.1")
        test_client.__enter__()
        opened.append((rt, test_client))
        return Served(rt, test_client)

    yield serve
    for rt, test_client in reversed(opened):
        test_client.__exit__(None, None, None)
        rt.close()


@pytest.fixture
def other_creds(runtime: Runtime) -> AppCreds:
    """An application of another organization ("other")."""
    return register(runtime, name="other-app", org="other")


@pytest.fixture
def other_headers(client: TestClient, other_creds: AppCreds) -> dict[str, str]:
    """Authorization and AppKey headers of a valid caller of organization "other"."""
    return {"Authorization": f"Bearer {mint(client, other_creds)}", "AppKey": other_creds.app_key}


ERROR_MEMBERS = ["code", "message", "trackingId", "transient", "errors"]
# The codes of the answers that the same request, sent again unchanged, may get past (contract section 4).
TRANSIENT_CODES = {"request.rate.limited", "service.unavailable", "idempotency.key.in.use"}
OAUTH_ERROR_MEMBERS = [*ERROR_MEMBERS, "error", "error_description"]


def assert_error(response: Any, status: int, code: str, *, oauth: bool = False) -> dict[str, Any]:
    """Check an answer is the contract's error body (section 4) with this status and code; return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert list(body) == (OAUTH_ERROR_MEMBERS if oauth else ERROR_MEMBERS)
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["transient"] is (code in TRANSIENT_CODES)
    assert isinstance(body["errors"], list)
    for detail in body["errors"]:
        assert list(detail) == ["field", "location", "reason"]
        assert detail["location"] in ("path", "query", "header", "body")
    assert response.headers["requesttrackingid"] == body["trackingId"]
    return body


@pytest.fixture
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with the cheapest parameters: same code paths and hash format, a fraction of the time."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(credentials, "_hasher", lambda: cheap)
