"""Modification jobs: re-validation, cancellation, immutables, order per transaction, tenancy."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from pendingtx import errors
from pendingtx.bootstrap import Runtime
from pendingtx.services import job_status, modifications
from pendingtx.services.authentication import Caller
from pendingtx.services.enqueue import AcceptedJob
from pendingtx.services.processing import process_job
from pendingtx.storage import transactions as tx_repo
from tests.conftest import register
from tests.services.conftest import Submit, job_view, store
from tests.support import FakeClock, record

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture
def modify(runtime: Runtime, caller: Caller) -> Any:
    def _modify(
        external_id: str, patch: Any, media_type: str = JSON_PATCH, who: Caller = caller
    ) -> AcceptedJob:
        job = modifications.modification_job(
            runtime.uow,
            who,
            external_id,
            body=msgspec.json.encode(patch),
            media_type=media_type,
            limits=runtime.settings.patch_limits,
        )
        return store(runtime, who, job)

    return _modify


def stored(runtime: Runtime, caller: Caller, external_id: str) -> tx_repo.StoredTransaction:
    with runtime.uow.read() as conn:
        found = tx_repo.find_transaction(conn, caller.org_id, external_id)
    assert found is not None
    return found


def verdict(runtime: Runtime, caller: Caller, accepted: AcceptedJob) -> job_status.JobView:
    runtime.new_worker().run_until_idle()
    return job_view(runtime, caller, accepted.key)


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
    assert all(job_view(runtime, caller, j.key).job.status.value == "Completed" for j in jobs)


# --- patches that cost: bounded, and applied with no transaction open ----------------------------

# ~22 copies of a member into itself: the document doubles with each, to gigabytes if nothing stops it.
DOUBLING = [{"op": "add", "path": "/x", "value": [1]}] + [{"op": "copy", "from": "/x", "path": "/x/-"}] * 22


def test_a_doubling_json_patch_fails_its_job_at_once(
    runtime: Runtime, caller: Caller, modify: Any, existing: str
) -> None:
    before = stored(runtime, caller, existing)
    began = time.perf_counter()
    view = verdict(runtime, caller, modify(existing, DOUBLING))
    assert time.perf_counter() - began < 3  # unbounded: ten seconds and gigabytes
    assert view.job.status.value == "Failed"
    assert [(p.field, p.reason) for p in view.problems] == [
        ("patch", "operation 14 (copy) refused: it would make the transaction larger than 65536 bytes")
    ]
    assert stored(runtime, caller, existing) == before


def test_the_document_limit_is_a_setting(
    runtime: Runtime, caller: Caller, modify: Any, existing: str, serve_with: Any
) -> None:
    accepted = modify(existing, [{"op": "add", "path": "/comments", "value": "c" * 300}])
    serve_with(max_patch_document_bytes=500).runtime.new_worker().run_until_idle()
    view = job_view(runtime, caller, accepted.key)
    assert [p.reason for p in view.problems] == [
        "operation 0 (add) refused: it would make the transaction larger than 500 bytes"
    ]
    assert stored(runtime, caller, existing).tx.comments == "first"


def _write_meanwhile(runtime: Runtime, found: tx_repo.StoredTransaction, comments: str) -> bool:
    """Change the transaction from another thread; whether that finished within 3 seconds."""

    def write() -> None:
        with runtime.uow.write() as conn:
            changed = dataclasses.replace(found.tx, comments=comments)
            tx_repo.update_transaction(conn, found.id, changed, now=found.changed_at + timedelta(seconds=1))

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(3)
    return not writer.is_alive()


def test_a_patch_is_applied_with_no_transaction_open_and_again_if_its_transaction_changed(
    runtime: Runtime, caller: Caller, modify: Any, existing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    unblocked: list[bool] = []
    apply = modifications.apply_stored_patch

    def applied_while_another_writes(found: tx_repo.StoredTransaction, *args: Any) -> Any:
        seen.append(found.tx.comments)
        if len(seen) == 1:
            # Another writer is not held up by the patch being applied, nor is its change lost.
            unblocked.append(_write_meanwhile(runtime, found, "meanwhile"))
        return apply(found, *args)

    monkeypatch.setattr(modifications, "apply_stored_patch", applied_while_another_writes)
    view = verdict(runtime, caller, modify(existing, [{"op": "replace", "path": "/amount", "value": "7"}]))
    assert unblocked == [True]
    assert seen == ["first", "meanwhile"]
    assert view.job.status.value == "Completed"
    after = stored(runtime, caller, existing)
    assert (after.tx.comments, str(after.tx.amount)) == ("meanwhile", "7")


def test_a_transaction_that_keeps_changing_leaves_the_job_to_a_retry(
    runtime: Runtime, caller: Caller, modify: Any, existing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply = modifications.apply_stored_patch
    edits = iter(range(100))

    def always_changed(found: tx_repo.StoredTransaction, *args: Any) -> Any:
        assert _write_meanwhile(runtime, found, f"edit-{next(edits)}")
        return apply(found, *args)

    monkeypatch.setattr(modifications, "apply_stored_patch", always_changed)
    accepted = modify(existing, {"comments": "mine"}, MERGE_PATCH)
    worker = runtime.new_worker()
    job = worker.claim()
    assert job is not None
    with pytest.raises(modifications.ChangedMeanwhile):
        process_job(runtime.uow, job, lease=worker.lease, chunk_size=10, clock=runtime.clock)
    assert stored(runtime, caller, existing).tx.comments == f"edit-{modifications.ATTEMPTS - 1}"
    assert job_view(runtime, caller, accepted.key).job.status.value == "In Progress"
