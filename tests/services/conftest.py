"""Fixtures for service-level tests: an organization's caller and a way to submit without HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from pendingtx.bootstrap import Runtime
from pendingtx.domain.jobs import JobKind
from pendingtx.services import submissions
from pendingtx.services.credentials import Caller
from pendingtx.storage import apps as app_repo
from tests.conftest import AppCreds

Submit = Callable[..., submissions.AcceptedJob]


@pytest.fixture
def caller(runtime: Runtime, app_creds: AppCreds) -> Caller:
    with runtime.uow.read() as conn:
        app = app_repo.find_app(conn, app_creds.app_key)
    assert app is not None
    return Caller(app.id, app.app_key, app.name, app.org_id)


@pytest.fixture
def submit(runtime: Runtime, caller: Caller) -> Submit:
    def _submit(
        records: Any, *, kind: JobKind = JobKind.CREATE, who: Caller = caller
    ) -> submissions.AcceptedJob:
        return submissions.submit_batch(
            runtime.uow,
            who,
            msgspec.json.encode(records),
            kind=kind,
            max_records=runtime.settings.max_batch_records,
            clock=runtime.clock,
            notify=runtime.wakeup.notify,
        )

    return _submit
