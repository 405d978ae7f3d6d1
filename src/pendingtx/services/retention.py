"""The retention sweep: delete terminal jobs older than the retention period, a small batch per
transaction, leaving tombstones so that their keys answer 410 (storage/retention.py)."""

from __future__ import annotations

from datetime import timedelta

from pendingtx.clock import Clock
from pendingtx.storage import retention
from pendingtx.storage.unit_of_work import UnitOfWork

# A batch takes at most this many jobs, and stops adding jobs once it holds this many records (their
# problems are deleted with them): each transaction stays short, whatever the jobs' sizes.
BATCH_JOBS = 100
BATCH_RECORDS = 5_000


def _batch(candidates: list[retention.Expired]) -> list[retention.Expired]:
    taken: list[retention.Expired] = []
    records = 0
    for job in candidates:
        if taken and records + job.record_count > BATCH_RECORDS:
            break
        taken.append(job)
        records += job.record_count
    return taken


def sweep(
    uow: UnitOfWork, *, retention_period: timedelta, clock: Clock, max_batches: int | None = None
) -> int:
    """Delete every terminal job that ended more than `retention_period` ago; returns how many.

    Each batch commits on its own; `max_batches` bounds one call (None: until none is left).
    """
    deleted = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        with uow.write() as conn:
            now = clock()
            doomed = _batch(retention.expired(conn, cutoff=now - retention_period, limit=BATCH_JOBS))
            retention.delete_jobs(conn, doomed, now=now)
        if not doomed:
            break
        deleted += len(doomed)
        batches += 1
    return deleted
