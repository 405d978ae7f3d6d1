"""Modifying one transaction: accept a patch as a job, then apply it in the worker."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain import patching
from pendingtx.domain.jobs import JobKind
from pendingtx.domain.times import to_eastern_iso
from pendingtx.domain.transactions import PendingTransaction, Problem
from pendingtx.services.credentials import Caller
from pendingtx.services.enqueue import AcceptedJob, Idempotency, NewJob, enqueue
from pendingtx.services.errors import PoisonedPayload
from pendingtx.services.submissions import MAX_JSON_DEPTH, check_json_depth
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.unit_of_work import UnitOfWork


class Envelope(msgspec.Struct, frozen=True):
    """A stored modification job: the patch exactly as the client sent it, and how to read it."""

    format: patching.PatchFormat
    patch: msgspec.Raw


@cache
def _decimal_decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(float_hook=Decimal)


def decode_patch(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The patch document, numbers as Decimal; 400 when it is not JSON or nests too deep."""
    check_json_depth(body, max_depth=max_depth)
    try:
        return _decimal_decoder().decode(body)
    except msgspec.DecodeError as exc:
        raise errors.ValidationFailed(
            errors=[errors.ErrorDetail("body", "body", f"is not valid JSON: {exc}")]
        ) from None


def request_modification(
    uow: UnitOfWork,
    caller: Caller,
    external_id: str,
    *,
    body: bytes,
    media_type: str,
    clock: Clock,
    notify: Callable[[], None],
    idempotency: Idempotency | None = None,
) -> AcceptedJob:
    """404 for an unknown externalId, 415 for another media type, 400 for a malformed patch; else a job."""
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
    problems = patching.check_patch_shape(decode_patch(body, max_depth=depth), fmt)
    if problems:
        raise errors.ValidationFailed(
            errors=[errors.ErrorDetail(p.field or "body", "body", p.reason) for p in problems]
        )
    payload = msgspec.json.encode(Envelope(fmt, msgspec.Raw(body)))
    return enqueue(
        uow,
        caller,
        NewJob(JobKind.MODIFY, payload, 1, target=external_id),
        idempotency=idempotency,
        clock=clock,
        notify=notify,
    )


def apply_stored_patch(
    stored: tx_repo.StoredTransaction, payload: bytes
) -> PendingTransaction | list[Problem]:
    """Apply a stored modification job's patch to the transaction it targets."""
    try:
        envelope = msgspec.json.decode(payload, type=Envelope)
        patch = _decimal_decoder().decode(envelope.patch)
    except msgspec.MsgspecError as exc:
        raise PoisonedPayload(str(exc)) from None
    return patching.patch_transaction(
        stored.tx,
        create_date=to_eastern_iso(stored.created_at),
        change_date=to_eastern_iso(stored.changed_at),
        patch=patch,
        fmt=envelope.format,
    )
