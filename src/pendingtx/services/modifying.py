"""The worker's side of a modification: apply the patch outside any transaction, then store the outcome.

Applying a patch can take time (a patch holds up to the operation limit, each bounded in size), so
it never runs while a write transaction is open: on SQLite that would hold up every other writer.
The transaction is read, the patch applied with no transaction open, and the verdict written in a
short transaction that first checks the transaction is still as it was read; if it changed
meanwhile, the patch is applied again to what it is now.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobStatus, modification_outcome, record_problems
from pendingtx.domain.patching import PatchLimits
from pendingtx.domain.transactions import PendingTransaction, Problem, TransactionStatus
from pendingtx.services.errors import Lease, LeaseLost
from pendingtx.services.modifications import apply_stored_patch
from pendingtx.storage import jobs as job_repo
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork

# How often a patch is applied again because its transaction changed while it was being applied.
ATTEMPTS = 5


class ChangedMeanwhile(Exception):
    """The transaction changed each time the patch was applied; the job is retried later."""


def process_modification(
    uow: UnitOfWork, job: ClaimedJob, *, lease: Lease, clock: Clock, limits: PatchLimits
) -> JobStatus:
    """Apply one modification job; its verdict commits together with the change, or not at all."""
    external_id = job.target or ""
    for _ in range(ATTEMPTS):
        with uow.read() as conn:
            before = tx_repo.find_transaction(conn, job.org_id, external_id)
        result: PendingTransaction | list[Problem]
        if before is None:
            result = [Problem("externalId", "the transaction no longer exists")]
        else:
            result = apply_stored_patch(before, job.payload, limits)
        with uow.write(redoable=True) as conn:
            if tx_repo.find_transaction(conn, job.org_id, external_id, for_update=True) == before:
                return _store(conn, job, before, result, lease=lease, clock=clock)
    raise ChangedMeanwhile(f"transaction {external_id} changed during each of {ATTEMPTS} attempts")


def _store(
    conn: sa.Connection,
    job: ClaimedJob,
    stored: tx_repo.StoredTransaction | None,
    result: PendingTransaction | list[Problem],
    *,
    lease: Lease,
    clock: Clock,
) -> JobStatus:
    """Write the verdict, and the change if there is one, holding the job's lease."""
    external_id = job.target or ""
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
    job_repo.insert_problems(conn, job.id, record_problems(0, external_id, problems))
    return status
