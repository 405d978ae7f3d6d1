"""Accepting a batch: check its shape, store it durably as one job, wake the workers."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import msgspec

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobKind
from pendingtx.services.credentials import Caller
from pendingtx.services.enqueue import AcceptedJob, Idempotency, NewJob, enqueue
from pendingtx.storage.unit_of_work import UnitOfWork

Batch = list[msgspec.Raw] | dict[str, msgspec.Raw]


@cache
def _shape_decoder() -> msgspec.json.Decoder[Batch]:
    # Records stay undecoded (Raw) here: the worker decodes them once, with Decimal numbers.
    return msgspec.json.Decoder(Batch)


def _body_error(reason: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(errors=[errors.ErrorDetail(field="body", location="body", reason=reason)])


def count_records(body: bytes, *, max_records: int) -> int:
    """How many records a batch body holds, or ValidationFailed saying what is wrong with its shape."""
    if not body.strip():
        raise _body_error("must be a JSON object or array of objects; the body is empty")
    try:
        batch = _shape_decoder().decode(body)
    except msgspec.ValidationError:
        raise _body_error("must be a JSON object or a JSON array of objects") from None
    except msgspec.DecodeError as exc:
        raise _body_error(f"is not valid JSON: {exc}") from None
    if isinstance(batch, dict):
        return 1
    if not batch:
        raise _body_error("must contain at least one record")
    if len(batch) > max_records:
        raise _body_error(f"must contain at most {max_records} records; got {len(batch)}")
    bad = [i for i, raw in enumerate(batch) if not bytes(raw).startswith(b"{")]
    if bad:
        shown = ", ".join(str(i) for i in bad[:10])
        raise _body_error(f"every record must be a JSON object; not objects at index {shown}")
    return len(batch)


def submit_batch(
    uow: UnitOfWork,
    caller: Caller,
    body: bytes,
    *,
    kind: JobKind,
    max_records: int,
    clock: Clock,
    notify: Callable[[], None],
    idempotency: Idempotency | None = None,
) -> AcceptedJob:
    """Commit the batch as one job before answering, then wake a worker."""
    record_count = count_records(body, max_records=max_records)
    return enqueue(
        uow,
        caller,
        NewJob(kind, body, record_count),
        idempotency=idempotency,
        clock=clock,
        notify=notify,
    )
