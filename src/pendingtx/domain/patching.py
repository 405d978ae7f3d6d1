"""Client modifications of a stored transaction: RFC 6902 JSON Patch and RFC 7396 merge patch."""

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import jsonpatch
import jsonpointer
import msgspec

from pendingtx.domain.json_text import MAX_JSON_DEPTH, json_depth_exceeds
from pendingtx.domain.transactions import (
    PendingTransaction,
    Problem,
    TransactionStatus,
    to_json,
    validate_record,
)


@dataclass(frozen=True, slots=True)
class PatchLimits:
    """Bounds on a JSON Patch, whose copy operations could otherwise double the document each time.

    The document is counted as its JSON size plus the size of every value an operation adds,
    replaces or copies in, and may never exceed `max_document_bytes`, nor nest deeper than
    MAX_JSON_DEPTH levels: it is refused before the operation that would make it so.
    """

    max_operations: int = 100
    max_document_bytes: int = 64 * 1024


class PatchFormat(StrEnum):
    """The two patch documents a client may send, named by their media types."""

    JSON_PATCH = "application/json-patch+json"
    MERGE_PATCH = "application/merge-patch+json"


IMMUTABLE = ("externalId", "createDate", "changeDate")
SERVER_FIELDS = ("createDate", "changeDate")
CANCELLED_REASON = "the transaction is cancelled and cannot be modified"

_OPS_WITH_VALUE = frozenset({"add", "replace", "test"})
_OPS_WITH_FROM = frozenset({"move", "copy"})
_OPS = ("add", "remove", "replace", "move", "copy", "test")
_OP_REASON = "must be one of: " + ", ".join(_OPS)
_MISSING = object()  # marks a member absent from a document, as distinct from JSON null


def format_for(media_type: str) -> PatchFormat | None:
    """The patch format a Content-Type announces, or None when it names neither format.

    Parameters such as `; charset=utf-8` are ignored and the type is matched case-insensitively,
    as media types are.
    """
    essence = media_type.split(";", 1)[0].strip().lower()
    if essence == PatchFormat.JSON_PATCH:
        return PatchFormat.JSON_PATCH
    if essence in (PatchFormat.MERGE_PATCH, "application/json"):
        return PatchFormat.MERGE_PATCH
    return None


def check_patch_shape(patch: object, fmt: PatchFormat, limits: PatchLimits) -> list[Problem]:
    """Problems with the patch document's shape alone, found before any transaction is read."""
    if fmt is PatchFormat.MERGE_PATCH:
        return [] if isinstance(patch, dict) else [Problem("body", "must be a JSON object")]
    if not isinstance(patch, list):
        return [Problem("body", "must be a JSON array of patch operations")]
    if not patch:
        return [Problem("body", "must contain at least one operation")]
    if len(patch) > limits.max_operations:
        return [Problem("body", f"must contain at most {limits.max_operations} operations; got {len(patch)}")]
    problems: list[Problem] = []
    for index, operation in enumerate(patch):
        problems.extend(_operation_problems(f"body[{index}]", operation))
    return problems


def _operation_problems(field: str, operation: object) -> list[Problem]:
    """Shape problems of one JSON Patch operation, named `body[i].member`."""
    if not isinstance(operation, dict):
        return [Problem(field, "must be a JSON object")]
    op = operation.get("op", _MISSING)
    if op is _MISSING:
        problems = [Problem(f"{field}.op", "is required")]
    elif not isinstance(op, str) or op not in _OPS:
        # Any other value, an object or array included, is no operation: only strings are looked up.
        problems = [Problem(f"{field}.op", _OP_REASON)]
        op = None
    else:
        problems = []
    problems.extend(_pointer_problems(f"{field}.path", operation.get("path", _MISSING)))
    if op in _OPS_WITH_VALUE and "value" not in operation:
        # Membership, not a None test: `"value": null` is a legitimate value to add or test.
        problems.append(Problem(f"{field}.value", "is required"))
    if op in _OPS_WITH_FROM:
        problems.extend(_pointer_problems(f"{field}.from", operation.get("from", _MISSING)))
    return problems


def _pointer_problems(field: str, pointer: object) -> list[Problem]:
    if pointer is _MISSING:
        return [Problem(field, "is required")]
    if not isinstance(pointer, str):
        return [Problem(field, "must be a string")]
    try:
        jsonpointer.JsonPointer(pointer)
    except jsonpointer.JsonPointerException:
        return [Problem(field, "must be a JSON Pointer (RFC 6901)")]
    return []


def apply_patch(
    document: dict[str, object], patch: object, fmt: PatchFormat, limits: PatchLimits
) -> dict[str, object] | list[Problem]:
    """The patched copy of `document` (which is left unchanged), or why the patch cannot apply."""
    if fmt is PatchFormat.MERGE_PATCH:
        return _as_object(merge_patch(document, patch))
    # Checked again here, as it also refuses operations jsonpatch adds to RFC 6902 (its "append").
    problems = check_patch_shape(patch, fmt, limits)
    if problems:
        return problems
    assert isinstance(patch, list)  # checked by check_patch_shape
    return _apply_json_patch(document, patch, limits)


def _apply_json_patch(
    document: dict[str, object], operations: list[object], limits: PatchLimits
) -> dict[str, object] | list[Problem]:
    """Apply the operations one by one, so that a failure can name the operation that failed."""
    target: object = copy.deepcopy(document)
    size = len(_encoded(document))
    for index, operation in enumerate(operations):
        assert isinstance(operation, dict)  # checked by check_patch_shape
        try:
            size, refusal = _account(target, operation, size, limits)
            if refusal is not None:
                return [Problem("patch", f"operation {index} ({operation['op']}) refused: it {refusal}")]
            target = jsonpatch.apply_patch(target, [operation], in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
            return [Problem("patch", f"operation {index} ({operation['op']}) {_failure(error)}")]
    return _as_object(target)


def _account(
    target: object, operation: dict[str, object], size: int, limits: PatchLimits
) -> tuple[int, str | None]:
    """The document's counted size once the operation has run, or why it must not run.

    Counted before the operation runs, from the value it brings in: a copy that would double a
    huge document is refused without ever being made.
    """
    value = _brought_in(target, operation)
    if value is _MISSING:
        return size, None
    path = operation["path"]
    assert isinstance(path, str)  # checked by check_patch_shape
    encoded = _encoded(value)
    if operation["op"] != "move":
        size += len(encoded) + len(path)  # the path's length covers a new member's name
        if size > limits.max_document_bytes:
            return size, f"would make the transaction larger than {limits.max_document_bytes} bytes"
    if isinstance(value, dict | list):
        room = MAX_JSON_DEPTH - len(jsonpointer.JsonPointer(path).parts)
        if room < 1 or json_depth_exceeds(encoded, room):
            return size, f"would nest the transaction more than {MAX_JSON_DEPTH} levels deep"
    return size, None


def _encoded(value: object) -> bytes:
    """`value` as JSON text, to measure it."""
    try:
        return msgspec.json.encode(value)
    except UnicodeEncodeError:
        # A lone surrogate, which no decoded request holds but a value built in code may: escaped.
        return json.dumps(value, default=str).encode()


def _brought_in(target: object, operation: dict[str, object]) -> object:
    """The value an operation puts into the document, or _MISSING for one that puts none."""
    op = operation["op"]
    if op in ("add", "replace"):
        return operation["value"]
    if op in ("copy", "move"):
        source = operation["from"]
        assert isinstance(source, str)  # checked by check_patch_shape
        # A source that does not resolve is left for jsonpatch to report as it always did.
        return jsonpointer.JsonPointer(source).resolve(target, _MISSING)
    return _MISSING


def _as_object(result: object) -> dict[str, object] | list[Problem]:
    if isinstance(result, dict):
        return result
    return [Problem("patch", "must leave the transaction a JSON object")]


def _failure(error: Exception) -> str:
    """A short reason for a jsonpatch error; the library's own text can quote the whole document."""
    if isinstance(error, jsonpatch.JsonPatchTestFailed):
        return "failed: the value at path does not match"
    if isinstance(error, jsonpatch.JsonPatchPathNotFound):
        return "failed: the location does not exist"
    if isinstance(error, jsonpatch.JsonPatchConflict):
        return "failed: it conflicts with the document"
    if isinstance(error, jsonpatch.InvalidJsonPatch):
        return "is not a valid operation"
    return "failed: the path cannot be followed in the document"


def merge_patch(target: object, patch: object) -> object:
    """RFC 7396 MergePatch(Target, Patch), returning a new value and changing neither argument."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


def changed_immutables(before: Mapping[str, object], after: Mapping[str, object]) -> list[Problem]:
    """A problem for each immutable member whose value differs, is added or is removed."""
    return [
        Problem(name, "cannot be changed")
        for name in IMMUTABLE
        if not _same(before.get(name, _MISSING), after.get(name, _MISSING))
    ]


def _same(left: object, right: object) -> bool:
    # Types too, so that `true` never stands in for `1`.
    return type(left) is type(right) and left == right


def patch_transaction(
    tx: PendingTransaction,
    *,
    create_date: str,
    change_date: str,
    patch: object,
    fmt: PatchFormat,
    limits: PatchLimits,
) -> PendingTransaction | list[Problem]:
    """The transaction as modified by `patch` and re-validated as a whole, or every problem."""
    if tx.status == TransactionStatus.CANCEL:
        return [Problem("status", CANCELLED_REASON)]
    document = {**to_json(tx), "createDate": create_date, "changeDate": change_date}
    patched = apply_patch(document, patch, fmt, limits)
    if isinstance(patched, list):
        return patched
    problems = changed_immutables(document, patched)
    record = {name: value for name, value in patched.items() if name not in SERVER_FIELDS}
    result = validate_record(record, for_update=True)
    if not isinstance(result, list) and not problems:
        return result
    # One reason per immutable member: a removed externalId is "cannot be changed", not also "is required".
    reported = {problem.field for problem in problems}
    later = result if isinstance(result, list) else []
    return problems + [problem for problem in later if problem.field not in reported]
