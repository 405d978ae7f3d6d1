"""The worker's side of a modification: apply the patch, re-validate, store, in one transaction."""

from __future__ import annotations

from datetime import timedelta

from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobStatus, RecordProblem, modification_outcome
from pendingtx.domain.transactions import PendingTransaction, Problem, TransactionStatus
from pendingtx.services.errors import Lease, LeaseLost
from pendingtx.services.modifications import apply_stored_patch
from pendingtx.storage import jobs as job_repo
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork


def process_modification(uow: UnitOfWork, job: ClaimedJob, *, lease: Lease, clock: Clock) -> JobStatus:
    """Apply one modification job; its verdict commits together with the change, or not at all."""
    external_id = job.target or ""
    with uow.write(redoable=True) as conn:
        stored = tx_repo.find_transaction(conn, job.org_id, external_id, for_update=True)
        result: PendingTransaction | list[Problem]
        if stored is None:
            result = [Problem("externalId", "the transaction no longer exists")]
        else:
            result = apply_stored_patch(stored, job.payload)
        problems = result if isinstance(result, list) else []
        cancelled = isinstance(result, PendingTransaction) and result.status is TransactionStatus.CANCEL
        status, message = modification_outcome(external_id, problems=len(problems), cancelled=cancelled)
        now = clock()
        held = job_repo.advance(
            conn,
            job_id=job.id,
            worker_id=lease.worker_id,
            from_processed=job.processed_count,
            processed=1,
            created=0 if problems else 1,
            failed=1 if problems else 0,
            now=now,
            lease_until=now + timedelta(seconds=lease.seconds),
            verdict=job_repo.Verdict(status, message),
        )
        if not held:
            raise LeaseLost()
        if isinstance(result, PendingTransaction) and stored is not None:
            tx_repo.update_transaction(conn, stored.id, result, now=now)
        job_repo.insert_problems(
            conn, job.id, [RecordProblem(0, external_id, p.field, p.reason) for p in problems]
        )
        return status
