"""Reproducible job keys in sandbox mode (contract 7.6): drawn from PENDINGTX_SANDBOX_SEED and the
batch id, so that the same script against a fresh sandbox gets the same keys; on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import build_app, build_runtime
from pendingtx.config import Settings
from pendingtx.storage import tables
from tests import databases
from tests.conftest import mint, register
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")


@pytest.fixture
def other_database_url(
    request: pytest.FixtureRequest, database_url: str, sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """A second fresh database of the same kind as `database_url`."""
    if database_url.startswith("sqlite"):
        directory = tmp_path / "other"
        directory.mkdir()
        yield databases.sqlite_copy(sqlite_template, directory)
        return
    with request.getfixturevalue("postgres_databases").database() as url:
        yield url


def first_answers(database_url: str, seed: str, *, sandbox: bool = True) -> list[tuple[str, str]]:
    """The (key, batchId) of the first two submissions of a script against a fresh server."""
    runtime = build_runtime(
        Settings(database_url=database_url, sandbox=sandbox, sandbox_seed=seed, log_level="warning"),
        migrate=False,
    )
    try:
        creds = register(runtime)
        with TestClient(build_app(runtime), base_url="http://127.0.0.1") as client:
            headers = {"Authorization": f"Bearer {mint(client, creds)}", "AppKey": creds.app_key}
            answers = []
            for n in range(2):
                accepted = client.post("/v1/transactions", json=[record(f"K-{n}")], headers=headers)
                assert accepted.status_code == 202, accepted.text
                body = accepted.json()
                answers.append((body["jobStatusQueryKey"], body["batchId"]))
                # The job is found under its seeded key, its events too.
                status = client.get(f"/v1/jobs/insight/status/{body['jobStatusQueryKey']}", headers=headers)
                assert status.status_code == 200, status.text
        with runtime.engine.connect() as conn:
            event_keys = set(conn.execute(sa.select(tables.events.c.job_key)).scalars())
        assert event_keys == {key for key, _ in answers}
        return answers
    finally:
        runtime.close()


def test_two_fresh_sandboxes_with_the_same_seed_give_the_same_keys(
    database_url: str, other_database_url: str
) -> None:
    first = first_answers(database_url, "seed-1")
    again = first_answers(other_database_url, "seed-1")
    assert first == again
    assert len({key for key, _ in first}) == 2
    assert all(len(key) == 24 for key, _ in first)


def test_another_seed_gives_other_keys(database_url: str, other_database_url: str) -> None:
    assert first_answers(database_url, "seed-1")[0][0] != first_answers(other_database_url, "seed-2")[0][0]


def test_without_sandbox_mode_the_seed_is_ignored(database_url: str, other_database_url: str) -> None:
    assert first_answers(database_url, "seed-1", sandbox=False) != first_answers(
        other_database_url, "seed-1", sandbox=False
    )
