"""Fixtures for service-level tests: an organization's caller, a way to submit without HTTP, and a
job's status read the way the status endpoint reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from pendingtx.bootstrap import Runtime
from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobKind
from pendingtx.services import credentials, job_status, submissions
from pendingtx.services.authentication import Caller, Credentials
from pendingtx.services.enqueue import AcceptedJob, NewJob, enqueue
from pendingtx.storage import apps as app_repo
from pendingtx.storage.driver.detached import DetachedStatements
from pendingtx.storage.rate_counters import DatabaseCounters
from tests.conftest import AppCreds

Submit = Callable[..., AcceptedJob]


@pytest.fixture
def caller(runtime: Runtime, app_creds: AppCreds) -> Caller:
    with runtime.uow.read() as conn:
        app = app_repo.find_app(conn, app_creds.app_key)
    assert app is not None
    return Caller(app.id, app.app_key, app.name, app.org_id)


def store(runtime: Runtime, caller: Caller, job: NewJob) -> AcceptedJob:
    """Commit a job as the API's acceptance does (without the group commit's thread)."""
    return enqueue(
        runtime.uow, caller, job, idempotency=None, clock=runtime.clock, notify=runtime.notify_workers
    )


@pytest.fixture
def submit(runtime: Runtime, caller: Caller) -> Submit:
    def _submit(records: Any, *, kind: JobKind = JobKind.CREATE, who: Caller = caller) -> AcceptedJob:
        body = msgspec.json.encode(records)
        return store(
            runtime,
            who,
            submissions.batch_job(body, kind=kind, max_records=runtime.settings.max_batch_records),
        )

    return _submit


def job_view(runtime: Runtime, caller: Caller, key: str) -> job_status.JobView:
    """The caller's job as the status endpoint sees it: read through its own path (a fresh token of the
    caller's application, the hot read, the contract's checks), the view kept instead of rendered."""
    with runtime.uow.read() as conn:
        app = app_repo.find_app(conn, caller.app_key)
    assert app is not None
    token = credentials.mint_token(runtime.uow, app, lifetimes=runtime.lifetimes, clock=runtime.clock)
    views: list[job_status.JobView] = []

    def keep(view: job_status.JobView) -> bytes:
        views.append(view)
        return b"{}"

    service = job_status.StatusService(
        authenticator=runtime.authenticator,
        budget=runtime.abuse.status_reads,
        render=keep,
        answers=job_status.FinishedAnswerCache(max_bytes=0),
        max_problems=runtime.settings.status_max_problems,
    )
    presented = Credentials(f"Bearer {token.access_token}", caller.app_key, None)
    job_status.read_status(service, job_status.StatusRequest(presented, job_status.APP_NAME, key))
    return views[0]


CountersOn = Callable[[sa.Engine, Clock], DatabaseCounters]


@pytest.fixture
def counters_on(request: pytest.FixtureRequest) -> CountersOn:
    """Database counters of one process over an engine, closed at the end of the test."""

    def make(engine: sa.Engine, clock: Clock) -> DatabaseCounters:
        statements = DetachedStatements(engine)
        request.addfinalizer(statements.close)
        return DatabaseCounters(statements, clock)

    return make
