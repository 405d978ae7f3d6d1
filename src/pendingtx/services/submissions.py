"""Accepting a batch: check its shape, store it durably as one job, wake the workers."""

from __future__ import annotations

from functools import cache

import msgspec

from pendingtx import errors
from pendingtx.domain.jobs import JobKind
from pendingtx.domain.json_text import MAX_JSON_DEPTH, decode_error_reason, json_depth_exceeds
from pendingtx.services.enqueue import NewJob

Batch = list[msgspec.Raw] | dict[str, msgspec.Raw]


@cache
def _shape_decoder() -> msgspec.json.Decoder[Batch]:
    # Records stay undecoded (Raw) here: the worker decodes them once, with Decimal numbers.
    return msgspec.json.Decoder(Batch)


def _body_error(reason: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(errors=[errors.ErrorDetail(field="body", location="body", reason=reason)])


def too_deep(max_depth: int = MAX_JSON_DEPTH, where: str = "") -> errors.ValidationFailed:
    """The 400 for a JSON body that nests deeper than `max_depth` levels."""
    return _body_error(f"must not nest arrays and objects more than {max_depth} levels deep{where}")


def check_json_depth(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """400 naming `body` when the well-formed JSON `body` nests deeper than `max_depth` levels."""
    if json_depth_exceeds(body, max_depth):
        raise too_deep(max_depth)


def count_records(body: bytes, *, max_records: int, max_depth: int = MAX_JSON_DEPTH) -> int:
    """How many records a batch body holds, or ValidationFailed saying what is wrong with its shape."""
    if not body.strip():
        raise _body_error("must be a JSON object or array of objects; the body is empty")
    if not body.isascii():
        # Records stay undecoded here, and msgspec checks the UTF-8 of a string only when decoding it:
        # checked now, the worker never meets a batch it cannot read.
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _body_error(f"is not valid JSON: invalid UTF-8 at byte {exc.start}") from None
    try:
        batch = _shape_decoder().decode(body)
    except msgspec.ValidationError:
        raise _body_error("must be a JSON object or a JSON array of objects") from None
    except msgspec.DecodeError as exc:
        raise _body_error(decode_error_reason(body, exc)) from None
    except RecursionError:
        # msgspec gives up near a thousand levels (the interpreter's recursion limit), which is
        # deeper than allowed anyway.
        raise too_deep(max_depth) from None
    if isinstance(batch, dict):
        check_json_depth(body, max_depth=max_depth)
        return 1
    if not batch:
        raise _body_error("must contain at least one record")
    if len(batch) > max_records:
        raise _body_error(f"must contain at most {max_records} records; got {len(batch)}")
    not_objects = [i for i, raw in enumerate(batch) if not bytes(raw).startswith(b"{")]
    if not_objects:
        shown = ", ".join(str(i) for i in not_objects[:10])
        raise _body_error(f"every record must be a JSON object; not objects at index {shown}")
    # Flat records have no bracket but their own `{`: then the batch is two levels deep, and only
    # otherwise is each record looked at (the batch's array is the first level).
    if body.count(b"[") + body.count(b"{") > len(batch) + 1:
        deep = [i for i, raw in enumerate(batch) if json_depth_exceeds(bytes(raw), max_depth - 1)]
        if deep:
            shown = ", ".join(str(i) for i in deep[:10])
            raise too_deep(max_depth, f"; too deep at index {shown}")
    return len(batch)


def batch_job(body: bytes, *, kind: JobKind, max_records: int) -> NewJob:
    """The job that stores a batch body, once its shape is checked (400 otherwise)."""
    return NewJob(kind, body, count_records(body, max_records=max_records))
