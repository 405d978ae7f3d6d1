"""Modification jobs: re-validation, cancellation, immutables, order per transaction, tenancy."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from pendingtx import errors
from pendingtx.bootstrap import Runtime
from pendingtx.services import job_status, modifications
from pendingtx.services.credentials import Caller
from pendingtx.services.submissions import AcceptedJob
from pendingtx.storage import transactions as tx_repo
from tests.conftest import register
from tests.services.conftest import Submit
from tests.support import FakeClock, record

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture
def modify(runtime: Runtime, caller: Caller) -> Any:
    def _modify(
        external_id: str, patch: Any, media_type: str = JSON_PATCH, who: Caller = caller
    ) -> AcceptedJob:
        return modifications.request_modification(
            runtime.uow,
            who,
            external_id,
            body=msgspec.json.encode(patch),
            media_type=media_type,
            clock=runtime.clock,
            notify=runtime.wakeup.notify,
        )

    return _modify


def stored(runtime: Runtime, caller: Caller, external_id: str) -> tx_repo.StoredTransaction:
    with runtime.uow.read() as conn:
        found = tx_repo.find_transaction(conn, caller.org_id, external_id)
    assert found is not None
    return found


def verdict(runtime: Runtime, caller: Caller, accepted: AcceptedJob) -> job_status.JobView:
    runtime.new_worker().run_until_idle()
    return job_status.job_status(runtime.uow, caller, accepted.key)


@pytest.fixture
def existing(runtime: Runtime, submit: Submit) -> str:
    submit([record("PT-1", comments="first")])
    runtime.new_worker().run_until_idle()
    return "PT-1"


def test_a_json_patch_modifies_and_moves_the_change_date(
    runtime: Runtime, caller: Caller, modify: Any, existing: str, clock: FakeClock
) -> None:
    before = stored(runtime, caller, existing)
    clock.advance(90)
    view = verdict(
        runtime, caller, modify(existing, [{"op": "replace", "path": "/amount", "value": "250.75"}])
    )
    assert (view.job.status.value, view.message) == ("Completed", "Completed: transaction PT-1 modified")
    after = stored(runtime, caller, existing)
    assert str(after.tx.amount) == "250.75"
    assert after.created_at == before.created_at
    assert after.changed_at == before.changed_at.replace() + (clock.now - before.changed_at)


def test_a_merge_patch_removes_with_null(
    runtime: Runtime, caller: Caller, modify: Any, existing: str
) -> None:
    view = verdict(runtime, caller, modify(existing, {"comments": None}, "application/json"))
    assert view.job.status.value == "Completed"
    assert stored(runtime, caller, existing).tx.comments is None


def test_cancel_then_any_modification_is_refused(
    runtime: Runtime, caller: Caller, modify: Any, existing: str
) -> None:
    cancelled = verdict(runtime, caller, modify(existing, {"status": "Cancel"}, MERGE_PATCH))
    assert cancelled.message == "Completed: transaction PT-1 cancelled"
    refused = verdict(runtime, caller, modify(existing, {"comments": "again"}, MERGE_PATCH))
    assert refused.job.status.value == "Failed"
    assert refused.problems[0].field == "status"
    assert stored(runtime, caller, existing).tx.comments == "first"


@pytest.mark.parametrize("member", ["externalId", "createDate", "changeDate"])
def test_immutable_members_cannot_change(
    runtime: Runtime, caller: Caller, modify: Any, existing: str, member: str
) -> None:
    view = verdict(
        runtime, caller, modify(existing, [{"op": "replace", "path": f"/{member}", "value": "X-9"}])
    )
    assert view.job.status.value == "Failed"
    assert any(p.field == member and p.reason == "cannot be changed" for p in view.problems)


def test_the_patched_record_is_revalidated_as_a_whole(
    runtime: Runtime, caller: Caller, modify: Any, existing: str
) -> None:
    view = verdict(runtime, caller, modify(existing, [{"op": "add", "path": "/units", "value": 3}]))
    assert view.job.status.value == "Failed"
    assert [p.message() for p in view.problems] == [
        "[0] externalId=PT-1: units: not allowed for type New Subscription"
    ]


def test_request_time_errors(runtime: Runtime, caller: Caller, modify: Any, existing: str) -> None:
    with pytest.raises(errors.NotFound):
        modify("NOPE", [{"op": "remove", "path": "/comments"}])
    with pytest.raises(errors.UnsupportedMediaType):
        modify(existing, {"comments": "x"}, "text/plain")
    with pytest.raises(errors.ValidationFailed):
        modify(existing, [{"op": "jump", "path": "/comments"}])
    other = register(runtime, name="other-app", org="other")
    with runtime.uow.read() as conn:
        from pendingtx.storage import apps

        app = apps.find_app(conn, other.app_key)
    assert app is not None
    with pytest.raises(errors.NotFound):
        modify(
            existing, {"comments": "x"}, MERGE_PATCH, who=Caller(app.id, app.app_key, app.name, app.org_id)
        )


def test_modifications_apply_in_the_order_they_were_accepted(
    runtime: Runtime, caller: Caller, modify: Any, existing: str
) -> None:
    jobs = [modify(existing, {"comments": f"edit-{i}"}, MERGE_PATCH) for i in range(3)]
    first = runtime.new_worker("host:1:a")
    held = first.claim()
    assert held is not None
    assert held.target == existing
    # While the first is held, the later ones wait, whichever worker asks.
    assert runtime.new_worker("host:2:b").claim() is None
    assert runtime.new_worker("host:3:c").run_until_idle() == 0
    from pendingtx.services.processing import process_job

    process_job(runtime.uow, held, lease=first.lease, chunk_size=10, clock=runtime.clock)
    assert stored(runtime, caller, existing).tx.comments == "edit-0"
    for i in (1, 2):
        assert runtime.new_worker(f"host:{i}:next").run_once()
        assert stored(runtime, caller, existing).tx.comments == f"edit-{i}"
    assert all(
        job_status.job_status(runtime.uow, caller, j.key).job.status.value == "Completed" for j in jobs
    )
