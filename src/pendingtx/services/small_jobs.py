"""Small jobs done together: claimed in one transaction, applied and finished in one more.

A job of a few records costs far more in transactions than in records. Waiting jobs at the head of
the queue are therefore claimed together (each attempt counted, as for any claim), judged outside
any transaction, then applied and finished in a single commit. A worker that dies on the way leaves
claimed jobs that are resumed one at a time like any other, so a job that kills its worker is still
given up after its attempts run out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import sqlalchemy as sa

from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobKind, JobStatus, RecordProblem, abandoned, outcome
from pendingtx.domain.transactions import PendingTransaction
from pendingtx.services.errors import LeaseLost, PoisonedPayload
from pendingtx.services.processing import sort_out, validated
from pendingtx.services.sandbox_triggers import Triggers
from pendingtx.storage import cancellation, holds
from pendingtx.storage import jobs as job_repo
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.claim import Candidate, mark_served, next_candidates
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork

# Why a job is given up without processing a record, as the one-job path says it.
UNDECODABLE = "the stored batch could not be decoded"


@dataclass(frozen=True, slots=True)
class Finished:
    """A job of a batch, with the status it ended in (and why, when it was given up)."""

    job: ClaimedJob
    status: JobStatus
    created: int
    given_up: str | None = None


def pick_small(candidates: Sequence[Candidate], *, max_records: int) -> list[ClaimedJob]:
    """The longest head of the candidates that can be done in one transaction, in their order.

    Only waiting jobs qualify (one that was claimed before goes through the leased path, which counts
    its attempts), and no modification (those keep their own ordering rules).
    """
    taken: list[ClaimedJob] = []
    records = 0
    for candidate in candidates:
        records += candidate.record_count
        if (
            candidate.status is not JobStatus.SUBMITTED
            or candidate.kind is JobKind.MODIFY
            or records > max_records
        ):
            break
        taken.append(candidate.claimed())
    return taken


def run_small_jobs(
    uow: UnitOfWork,
    *,
    worker_id: str,
    clock: Clock,
    lease_seconds: float,
    max_jobs: int,
    max_records: int,
    triggers: Triggers | None = None,
) -> list[Finished] | None:
    """Claim the oldest small waiting jobs together, then apply and finish them in one transaction.

    None when no job is claimable at all; an empty list when the next job is not small. If the
    batch fails, its jobs are handed back as never claimed and the error is raised: the caller then
    takes them one at a time. Should the process die instead, its jobs are resumed like any other
    claimed job, with the attempt counted.
    """
    with uow.write(redoable=True) as conn:
        now = clock()
        candidates = next_candidates(conn, now=now, limit=max_jobs, max_records=max_records)
        if not candidates:
            return None
        taken = pick_small(candidates, max_records=max_records)
        if not taken:
            return []
        lease_until = now + timedelta(seconds=lease_seconds)
        holds.claim_waiting(
            conn, [j.id for j in taken], worker_id=worker_id, now=now, lease_until=lease_until
        )
        mark_served(conn, {j.org_id for j in taken}, now=now)
    try:
        # Judged outside any transaction: other writers need not wait for it.
        judged = [(job, _judge(job, triggers)) for job in taken]
        return uow.write_retrying(
            partial(_apply, judged=judged, worker_id=worker_id, clock=clock), redoable=True
        )
    except BaseException:
        with uow.write(redoable=True) as conn:
            # A job the client cancelled meanwhile ends here, with nothing applied; the others wait again.
            for job in taken:
                cancellation.stop_if_cancelled(conn, job_id=job.id, worker_id=worker_id, now=clock())
            holds.unclaim(conn, [j.id for j in taken], worker_id=worker_id)
        raise


_Judged = tuple[list[tuple[int, PendingTransaction]], list[RecordProblem]] | str


def _judge(job: ClaimedJob, triggers: Triggers | None) -> _Judged:
    """The job's valid records and problems, or why it cannot be processed at all."""
    try:
        judged = validated(job)
    except PoisonedPayload:
        return UNDECODABLE
    # A crash trigger fails the batch: its jobs then go one at a time, where attempts are counted.
    return judged if triggers is None else triggers.apply(judged)


def _apply(
    conn: sa.Connection, *, judged: list[tuple[ClaimedJob, _Judged]], worker_id: str, clock: Clock
) -> list[Finished]:
    now = clock()
    # What each organization holds already, read once for the whole batch; what earlier jobs of
    # the batch create joins it as they go, exactly as if the jobs ran one after the other.
    wanted: dict[int, list[str]] = {}
    for job, verdict in judged:
        if not isinstance(verdict, str):
            wanted.setdefault(job.org_id, []).extend(tx.external_id for _, tx in verdict[0])
    known = {org: tx_repo.existing_external_ids(conn, org, ids) for org, ids in wanted.items()}
    rows: list[tuple[object, ...]] = []
    problems_by_job = []
    completions = []
    finished = []
    for job, verdict in judged:
        if isinstance(verdict, str):
            given_up = holds.Verdict(
                *abandoned(record_count=job.record_count, processed=0, created=0, reason=verdict)
            )
            completions.append(holds.Completion(job.id, job.org_id, 0, 0, 0, given_up))
            finished.append(Finished(job, given_up.status, 0, verdict))
            continue
        held = known.setdefault(job.org_id, set())
        fresh, problems = sort_out(*verdict, held)
        held.update(tx.external_id for tx in fresh)
        rows += tx_repo.transaction_rows(org_id=job.org_id, job_id=job.id, records=fresh, now=now)
        problems_by_job.append((job.id, sorted(problems, key=lambda p: p.index)))
        done = holds.Verdict(*outcome(record_count=job.record_count, created=len(fresh)))
        failed = len({p.index for p in problems})
        completions.append(holds.Completion(job.id, job.org_id, job.record_count, len(fresh), failed, done))
        finished.append(Finished(job, done.status, len(fresh)))
    # First, as in a chunk: a worker whose lease ran out stops here, before writing anything.
    if not holds.complete_held(conn, completions, worker_id=worker_id, now=now):
        raise LeaseLost()
    tx_repo.insert_transaction_rows(conn, rows)
    job_repo.insert_problems_of(conn, problems_by_job)
    return finished
