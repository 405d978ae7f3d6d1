"""Processing a claimed job: validate every record, apply the valid ones, record the outcome.

Each chunk of records is applied in one transaction together with the job's progress, so a job
taken over after a crash resumes exactly where the last commit left it: nothing is applied twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, partial

import msgspec
import sqlalchemy as sa

from pendingtx.clock import Clock
from pendingtx.domain import transactions as domain
from pendingtx.domain.fast_validation import validate_raw
from pendingtx.domain.jobs import JobKind, JobStatus, RecordProblem, outcome, record_problems
from pendingtx.domain.patching import PatchLimits
from pendingtx.services.errors import Lease, LeaseLost, PoisonedPayload
from pendingtx.services.modifications import DEFAULT_LIMITS, process_modification
from pendingtx.services.sandbox_triggers import Triggers
from pendingtx.storage import cancellation, holds
from pendingtx.storage import jobs as job_repo
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork


@dataclass(slots=True)
class _Progress:
    processed: int
    created: int
    # The client cancelled the job: it ended at this chunk instead (storage.cancellation).
    cancelled: bool = False


@cache
def _batch_decoder() -> msgspec.json.Decoder[list[msgspec.Raw] | dict[str, msgspec.Raw]]:
    # Records stay JSON text here: each is decoded once, straight into its typed form when valid.
    return msgspec.json.Decoder(list[msgspec.Raw] | dict[str, msgspec.Raw])


def split_records(payload: bytes) -> list[msgspec.Raw]:
    """The records of a stored batch as JSON texts; a single object is a batch of one."""
    try:
        decoded = _batch_decoder().decode(payload)
    except msgspec.MsgspecError as exc:
        raise PoisonedPayload(str(exc)) from None
    return decoded if isinstance(decoded, list) else [msgspec.Raw(payload)]


Checked = tuple[domain.PendingTransaction | list[domain.Problem], str | None]


def check_all(records: list[msgspec.Raw], *, transfers_only: bool) -> list[Checked]:
    """Every record's verdict and externalId (the whole batch: repeats are judged across chunks)."""
    try:
        return [validate_raw(raw, transfers_only=transfers_only) for raw in records]
    except msgspec.DecodeError as exc:
        raise PoisonedPayload(str(exc)) from None


def _repeats(checked: list[Checked]) -> set[int]:
    seen: set[str] = set()
    repeated: set[int] = set()
    for index, (_, external_id) in enumerate(checked):
        if external_id is None:
            continue
        if external_id in seen:
            repeated.add(index)
        seen.add(external_id)
    return repeated


def _validate(
    checked: list[Checked], start: int, end: int, *, repeats: set[int]
) -> tuple[list[tuple[int, domain.PendingTransaction]], list[RecordProblem]]:
    valid: list[tuple[int, domain.PendingTransaction]] = []
    problems: list[RecordProblem] = []
    for index in range(start, end):
        result, external_id = checked[index]
        if index in repeats:
            result = [domain.Problem("externalId", "repeats an earlier record of this batch")]
        elif isinstance(result, domain.PendingTransaction):
            valid.append((index, result))
            continue
        problems.extend(record_problems(index, external_id, result))
    return valid, problems


def sort_out(
    valid: list[tuple[int, domain.PendingTransaction]], problems: list[RecordProblem], existing: set[str]
) -> tuple[list[domain.PendingTransaction], list[RecordProblem]]:
    """The valid records to create, and every problem, those of records the organization holds included."""
    fresh = [tx for _, tx in valid if tx.external_id not in existing]
    problems = problems + [
        RecordProblem(i, tx.external_id, "externalId", "already exists in the organization")
        for i, tx in valid
        if tx.external_id in existing
    ]
    return fresh, problems


def checked_records(job: ClaimedJob) -> tuple[list[Checked], set[int]]:
    """Every record's verdict, and the indexes of records that repeat an earlier externalId."""
    records = split_records(job.payload)
    if len(records) != job.record_count:
        raise PoisonedPayload(f"holds {len(records)} records, expected {job.record_count}")
    checked = check_all(records, transfers_only=job.kind is JobKind.TRANSFER)
    return checked, _repeats(checked)


def validated(job: ClaimedJob) -> tuple[list[tuple[int, domain.PendingTransaction]], list[RecordProblem]]:
    """A whole job's valid records and problems (before looking at what the organization holds)."""
    checked, repeats = checked_records(job)
    return _validate(checked, 0, len(checked), repeats=repeats)


def _apply_chunk(
    conn: sa.Connection,
    *,
    job: ClaimedJob,
    progress: _Progress,
    end: int,
    checked: tuple[list[tuple[int, domain.PendingTransaction]], list[RecordProblem]],
    lease: Lease,
    clock: Clock,
) -> _Progress:
    valid, problems = checked
    existing = tx_repo.existing_external_ids(conn, job.org_id, [tx.external_id for _, tx in valid])
    fresh, problems = sort_out(valid, problems, existing)
    after = _Progress(end, progress.created + len(fresh))
    # The last chunk and the verdict commit together: one statement and one commit fewer per job.
    verdict = holds.Verdict(*outcome(record_count=job.record_count, created=after.created))
    now = clock()
    held = holds.advance(
        conn,
        job_id=job.id,
        org_id=job.org_id,
        worker_id=lease.worker_id,
        from_processed=progress.processed,
        processed=end,
        created=len(fresh),
        failed=len({p.index for p in problems}),
        now=now,
        lease_until=now + timedelta(seconds=lease.seconds),
        verdict=verdict if end == job.record_count else None,
    )
    if not held:
        if cancellation.stop_if_cancelled(conn, job_id=job.id, worker_id=lease.worker_id, now=now):
            return _Progress(progress.processed, progress.created, cancelled=True)
        raise LeaseLost()
    tx_repo.insert_transactions(conn, org_id=job.org_id, job_id=job.id, records=fresh, now=now)
    job_repo.insert_problems(conn, job.id, sorted(problems, key=lambda p: p.index))
    return after


def _finish(conn: sa.Connection, job: ClaimedJob, created: int, *, lease: Lease, clock: Clock) -> JobStatus:
    status, message = outcome(record_count=job.record_count, created=created)
    if not holds.finish(
        conn,
        job_id=job.id,
        org_id=job.org_id,
        worker_id=lease.worker_id,
        status=status,
        message=message,
        now=clock(),
    ):
        raise LeaseLost()
    return status


def process_job(
    uow: UnitOfWork,
    job: ClaimedJob,
    *,
    lease: Lease,
    chunk_size: int,
    clock: Clock,
    checkpoint: Callable[[], None] | None = None,
    patch_limits: PatchLimits = DEFAULT_LIMITS,
    triggers: Triggers | None = None,
) -> JobStatus:
    """Run a claimed job to its terminal status, resuming after the last committed chunk.

    `checkpoint` is called before each chunk, when everything before it is committed: an exception
    it raises stops the job there (a stopping worker hands the job back this way). A sandbox's
    `triggers` act on each chunk before its transaction begins.
    """
    if job.kind is JobKind.MODIFY:
        return process_modification(uow, job, lease=lease, clock=clock, limits=patch_limits)
    checked, repeats = checked_records(job)
    progress = _Progress(job.processed_count, job.created_count)
    while progress.processed < len(checked):
        if checkpoint is not None:
            checkpoint()
        end = min(progress.processed + chunk_size, len(checked))
        chunk = _validate(checked, progress.processed, end, repeats=repeats)
        if triggers is not None:
            chunk = triggers.apply(chunk)
        # A chunk that lost a race on an externalId with another job rolled back whole: looked at again.
        apply = partial(
            _apply_chunk, job=job, progress=progress, end=end, checked=chunk, lease=lease, clock=clock
        )
        progress = uow.write_retrying(apply, redoable=True)
        if progress.cancelled:
            return JobStatus.CANCELLED
    if job.processed_count < len(checked):
        return outcome(record_count=job.record_count, created=progress.created)[0]
    # Taken over after the last chunk committed but before the verdict: only the verdict is left.
    with uow.write(redoable=True) as conn:
        return _finish(conn, job, progress.created, lease=lease, clock=clock)
