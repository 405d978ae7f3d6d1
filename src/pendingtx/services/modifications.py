"""Modifying one transaction: a patch accepted as a job, then applied by the worker.

Applying a patch can take time (a patch holds up to the operation limit, each bounded in size), so
it never runs while a write transaction is open: on SQLite that would hold up every other writer.
The transaction is read, the patch applied with no transaction open, and the verdict written in a
short transaction that first checks the transaction is still as it was read; if it changed
meanwhile, the patch is applied again to what it is now.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec
import sqlalchemy as sa

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain import patching
from pendingtx.domain.decimals import HugeNumber, read_number
from pendingtx.domain.jobs import (
    FIELD_LIMIT,
    JobKind,
    JobStatus,
    clipped,
    modification_outcome,
    record_problems,
)
from pendingtx.domain.json_text import MAX_JSON_DEPTH, decode_error_reason, name_bound, repeated_names
from pendingtx.domain.times import to_eastern_iso
from pendingtx.domain.transactions import PendingTransaction, Problem, TransactionStatus
from pendingtx.services.authentication import Caller
from pendingtx.services.enqueue import NewJob
from pendingtx.services.errors import Lease, LeaseLost, PoisonedPayload
from pendingtx.services.submissions import check_json_depth
from pendingtx.storage import cancellation, holds
from pendingtx.storage import jobs as job_repo
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork

DEFAULT_LIMITS = patching.PatchLimits()


class Envelope(msgspec.Struct, frozen=True):
    """A stored modification job: the patch exactly as the client sent it, and how to read it."""

    format: patching.PatchFormat
    patch: msgspec.Raw


class _InexactNumber(Exception):
    """A number in a patch that no Decimal can hold (its exponent is beyond about ±10^18)."""


def _exact_number(text: str) -> Decimal:
    number = read_number(text)
    if isinstance(number, HugeNumber):
        raise _InexactNumber(number.text)
    return number


@cache
def _decimal_decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(float_hook=_exact_number)


def _body_problem(reason: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(errors=[errors.ErrorDetail("body", "body", reason)])


class Unreadable(Exception):
    """A patch that cannot be read; its message says why."""


def _read_patch(text: bytes) -> Any:
    """The patch document, numbers as Decimal; Unreadable says why it cannot be read."""
    try:
        return _decimal_decoder().decode(text)
    except msgspec.DecodeError as exc:
        raise Unreadable(decode_error_reason(text, exc)) from None
    except _InexactNumber as exc:
        shown = clipped(str(exc), 40)
        raise Unreadable(
            f"holds the number {shown}, whose exponent is too large for an exact decimal"
        ) from None


def decode_patch(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The patch document, numbers as Decimal; 400 when it is not JSON, nests too deep or repeats a name."""
    check_json_depth(body, max_depth=max_depth)
    try:
        patch = _read_patch(body)
    except Unreadable as exc:
        raise _body_problem(str(exc)) from None
    # Every object has its members named once: a decoder would silently keep the last of two.
    if name_bound(body) > 1:
        repeated = repeated_names(body, nested=True)
        if repeated:
            shown = ", ".join(
                msgspec.json.encode(clipped(name, FIELD_LIMIT)).decode() for name in repeated[:10]
            )
            raise _body_problem(f"must not repeat a member name in one object; repeated: {shown}")
    return patch


def modification_job(
    uow: UnitOfWork,
    caller: Caller,
    external_id: str,
    *,
    body: bytes,
    media_type: str,
    limits: patching.PatchLimits = DEFAULT_LIMITS,
) -> NewJob:
    """The job that stores a patch of the externalId, once the patch is checked (404, 415, 400 otherwise)."""
    with uow.read() as conn:
        if tx_repo.find_transaction(conn, caller.org_id, external_id) is None:
            raise errors.NotFound(f"No transaction with externalId {external_id}")
    fmt = patching.format_for(media_type)
    if fmt is None:
        accepted = ", ".join(f.value for f in patching.PatchFormat)
        raise errors.UnsupportedMediaType(
            f"Content-Type must be {accepted} or application/json",
            errors=[errors.ErrorDetail("Content-Type", "header", f"must be {accepted} or application/json")],
        )
    # A merge patch is a record itself, one level shallower than a record inside a batch or a JSON Patch.
    depth = MAX_JSON_DEPTH - 1 if fmt is patching.PatchFormat.MERGE_PATCH else MAX_JSON_DEPTH
    problems = patching.check_patch_shape(decode_patch(body, max_depth=depth), fmt, limits)
    if problems:
        raise errors.ValidationFailed(
            errors=[errors.ErrorDetail(p.field or "body", "body", p.reason) for p in problems]
        )
    payload = msgspec.json.encode(Envelope(fmt, msgspec.Raw(body)))
    return NewJob(JobKind.MODIFY, payload, 1, target=external_id)


def apply_stored_patch(
    stored: tx_repo.StoredTransaction, payload: bytes, limits: patching.PatchLimits = DEFAULT_LIMITS
) -> PendingTransaction | list[Problem]:
    """Apply a stored modification job's patch to the transaction it targets."""
    try:
        envelope = msgspec.json.decode(payload, type=Envelope)
    except msgspec.MsgspecError as exc:
        raise PoisonedPayload(str(exc)) from None
    try:
        patch = _read_patch(bytes(envelope.patch))
    except Unreadable as exc:  # accepted before requests were checked as closely as now
        return [Problem("patch", str(exc))]
    return patching.patch_transaction(
        stored.tx,
        create_date=to_eastern_iso(stored.created_at),
        change_date=to_eastern_iso(stored.changed_at),
        patch=patch,
        fmt=envelope.format,
        limits=limits,
    )


# How often a patch is applied again because its transaction changed while it was being applied.
ATTEMPTS = 5


class ChangedMeanwhile(Exception):
    """The transaction changed each time the patch was applied; the job is retried later."""


def process_modification(
    uow: UnitOfWork, job: ClaimedJob, *, lease: Lease, clock: Clock, limits: patching.PatchLimits
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
    held = holds.advance(
        conn,
        job_id=job.id,
        org_id=job.org_id,
        worker_id=lease.worker_id,
        from_processed=job.processed_count,
        processed=1,
        created=0 if problems else 1,
        failed=1 if problems else 0,
        now=now,
        lease_until=now + timedelta(seconds=lease.seconds),
        verdict=holds.Verdict(status, message),
    )
    if not held:
        if cancellation.stop_if_cancelled(conn, job_id=job.id, worker_id=lease.worker_id, now=now):
            return JobStatus.CANCELLED
        raise LeaseLost()
    if isinstance(result, PendingTransaction) and stored is not None:
        tx_repo.update_transaction(conn, stored.id, result, now=now)
    job_repo.insert_problems(conn, job.id, record_problems(0, external_id, problems))
    return status
