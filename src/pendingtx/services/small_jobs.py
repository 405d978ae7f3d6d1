"""Small jobs claimed, applied and finished together: one transaction and one commit for many jobs.

A job of a few records costs far more in transactions than in records. Waiting jobs at the head of
the queue are therefore taken in a batch and done inside the transaction that claims them: if the
worker dies on the way, nothing of the batch is committed and the jobs are simply still waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobKind, JobStatus, outcome
from pendingtx.services.processing import RETRIES, sort_out, validated, worth_retrying
from pendingtx.storage import jobs as job_repo
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.claim import Candidate, next_candidates
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Finished:
    """A job of a batch, with the status it ended in."""

    job: ClaimedJob
    status: JobStatus
    created: int


def pick_small(candidates: Sequence[Candidate], *, max_records: int) -> list[ClaimedJob]:
    """The longest head of the queue that can be done in one transaction, in queue order.

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
    uow: UnitOfWork, *, worker_id: str, clock: Clock, max_jobs: int, max_records: int
) -> list[Finished] | None:
    """Claim, apply and finish the oldest small waiting jobs in one transaction.

    None when no job is claimable at all; an empty list when the next job is not small.
    """
    for attempt in range(RETRIES):
        try:
            return _run_once(
                uow, worker_id=worker_id, now=clock(), max_jobs=max_jobs, max_records=max_records
            )
        except sa.exc.DBAPIError as exc:
            # Another worker inserted one of these externalIds concurrently, or the database chose
            # this transaction as a deadlock victim: the batch rolled back whole, so look again.
            if attempt == RETRIES - 1 or not worth_retrying(exc):
                raise
    raise AssertionError("unreachable")


def _run_once(
    uow: UnitOfWork, *, worker_id: str, now: datetime, max_jobs: int, max_records: int
) -> list[Finished] | None:
    with uow.write(redoable=True) as conn:
        candidates = next_candidates(conn, now=now, limit=max_jobs, max_records=max_records)
        if not candidates:
            return None
        taken = pick_small(candidates, max_records=max_records)
        if not taken:
            return []
        judged = [(job, *validated(job)) for job in taken]
        # What each organization holds already, read once for the whole batch; what earlier jobs of
        # the batch create joins it as they go, exactly as if the jobs ran one after the other.
        wanted: dict[int, list[str]] = {}
        for job, valid, _ in judged:
            wanted.setdefault(job.org_id, []).extend(tx.external_id for _, tx in valid)
        known = {org: tx_repo.existing_external_ids(conn, org, ids) for org, ids in wanted.items()}
        rows: list[tuple[object, ...]] = []
        problems_by_job = []
        completions = []
        finished = []
        for job, valid, invalid in judged:
            held = known.setdefault(job.org_id, set())
            fresh, problems = sort_out(valid, invalid, held)
            held.update(tx.external_id for tx in fresh)
            rows += tx_repo.transaction_rows(org_id=job.org_id, job_id=job.id, records=fresh, now=now)
            problems_by_job.append((job.id, sorted(problems, key=lambda p: p.index)))
            verdict = job_repo.Verdict(*outcome(record_count=job.record_count, created=len(fresh)))
            failed = len({p.index for p in problems})
            completions.append(job_repo.Completion(job.id, job.record_count, len(fresh), failed, verdict))
            finished.append(Finished(job, verdict.status, len(fresh)))
        job_repo.complete_waiting(conn, completions, worker_id=worker_id, now=now)
        tx_repo.insert_transaction_rows(conn, rows)
        job_repo.insert_problems_of(conn, problems_by_job)
    return finished
