"""Unit tests for applying JSON Patch and merge patch modifications (API spec 3.4)."""

import copy
import re
import time
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import jsonpatch
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendingtx.domain.json_text import json_depth_exceeds
from pendingtx.domain.patching import (
    IMMUTABLE,
    PatchFormat,
    PatchLimits,
    apply_patch,
    changed_immutables,
    check_patch_shape,
    format_for,
    merge_patch,
    patch_transaction,
)
from pendingtx.domain.transactions import (
    SWITCH_TYPES,
    TRANSFER_TYPES,
    PendingTransaction,
    Problem,
    TransactionStatus,
    TransactionType,
    to_json,
    validate_record,
)

JSON = PatchFormat.JSON_PATCH
LIMITS = PatchLimits()
MERGE = PatchFormat.MERGE_PATCH
CREATED = "2026-01-15T10:00:00.000-05:00"
CHANGED = "2026-01-16T11:30:00.250-05:00"
CANCELLED = [Problem("status", "the transaction is cancelled and cannot be modified")]

TX = PendingTransaction(
    external_id="TX-1",
    type=TransactionType.NEW_SUBSCRIPTION,
    status=TransactionStatus.ACTIVE,
    product_external_id="P1",
    investor_external_id="I1",
    contact_external_id=None,
    to_product_external_id=None,
    to_investor_external_id=None,
    amount=Decimal("100.5"),
    units=None,
    currency="USD",
    trade_date=date(2026, 1, 15),
    settlement_date=None,
    comments="first",
)


def document(tx: PendingTransaction = TX) -> dict[str, object]:
    return {**to_json(tx), "createDate": CREATED, "changeDate": CHANGED}


def patched(patch: object, fmt: PatchFormat, tx: PendingTransaction = TX) -> PendingTransaction:
    result = patch_transaction(
        tx, create_date=CREATED, change_date=CHANGED, patch=patch, fmt=fmt, limits=LIMITS
    )
    assert isinstance(result, PendingTransaction), f"expected a transaction, got {result!r}"
    return result


def refused(patch: object, fmt: PatchFormat, tx: PendingTransaction = TX) -> list[Problem]:
    result = patch_transaction(
        tx, create_date=CREATED, change_date=CHANGED, patch=patch, fmt=fmt, limits=LIMITS
    )
    assert isinstance(result, list), f"expected problems, got {result!r}"
    assert result, "a refusal must name at least one problem"
    return result


def applied(patch: object, fmt: PatchFormat = JSON) -> dict[str, object]:
    result = apply_patch(document(), patch, fmt, LIMITS)
    assert isinstance(result, dict), f"expected a document, got {result!r}"
    return result


def failed(patch: object, fmt: PatchFormat = JSON) -> list[Problem]:
    result = apply_patch(document(), patch, fmt, LIMITS)
    assert isinstance(result, list), f"expected problems, got {result!r}"
    return result


# --- format_for -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/json-patch+json", JSON),
        ("application/merge-patch+json", MERGE),
        ("application/json", MERGE),
        ("application/json; charset=utf-8", MERGE),
        ("Application/JSON-Patch+JSON", JSON),
        (" application/merge-patch+json ;charset=UTF-8", MERGE),
        ("text/plain", None),
        ("application/xml", None),
        ("application/json-patch", None),
        ("", None),
    ],
)
def test_format_for(media_type: str, expected: PatchFormat | None) -> None:
    assert format_for(media_type) is expected


def test_formats_are_their_media_types() -> None:
    assert JSON == "application/json-patch+json"
    assert MERGE == "application/merge-patch+json"


# --- check_patch_shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "add", "path": "/comments", "value": "x"}],
        [{"op": "add", "path": "/comments", "value": None}],
        [{"op": "remove", "path": "/comments"}],
        [{"op": "replace", "path": "/status", "value": "Cancel"}],
        [{"op": "move", "from": "/comments", "path": "/contactExternalId"}],
        [{"op": "copy", "from": "/productExternalId", "path": "/contactExternalId"}],
        [{"op": "test", "path": "/status", "value": "Active"}],
        [{"op": "replace", "path": "", "value": {}}],
        [{"op": "add", "path": "/a~1b~0c", "value": 1, "extra": "ignored, as RFC 6902 says"}],
    ],
)
def test_well_formed_json_patches_pass(patch: object) -> None:
    assert check_patch_shape(patch, JSON, LIMITS) == []


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"op": "add"}, [Problem("body", "must be a JSON array of patch operations")]),
        ("add", [Problem("body", "must be a JSON array of patch operations")]),
        (None, [Problem("body", "must be a JSON array of patch operations")]),
        ([], [Problem("body", "must contain at least one operation")]),
        (["add"], [Problem("body[0]", "must be a JSON object")]),
        ([{"path": "/a", "value": 1}], [Problem("body[0].op", "is required")]),
        (
            [{"op": "append", "path": "/a", "value": 1}],
            [Problem("body[0].op", "must be one of: add, remove, replace, move, copy, test")],
        ),
        (
            [{"op": 1, "path": "/a"}],
            [Problem("body[0].op", "must be one of: add, remove, replace, move, copy, test")],
        ),
        (
            [{"op": {"add": 1}, "path": "/a"}],
            [Problem("body[0].op", "must be one of: add, remove, replace, move, copy, test")],
        ),
        (
            [{"op": ["copy"], "path": "/a", "from": "/b"}],
            [Problem("body[0].op", "must be one of: add, remove, replace, move, copy, test")],
        ),
        ([{"op": "remove"}], [Problem("body[0].path", "is required")]),
        ([{"op": "remove", "path": 3}], [Problem("body[0].path", "must be a string")]),
        (
            [{"op": "remove", "path": "comments"}],
            [Problem("body[0].path", "must be a JSON Pointer (RFC 6901)")],
        ),
        ([{"op": "remove", "path": "/a~2"}], [Problem("body[0].path", "must be a JSON Pointer (RFC 6901)")]),
        ([{"op": "add", "path": "/a"}], [Problem("body[0].value", "is required")]),
        ([{"op": "replace", "path": "/a"}], [Problem("body[0].value", "is required")]),
        ([{"op": "test", "path": "/a"}], [Problem("body[0].value", "is required")]),
        ([{"op": "move", "path": "/a"}], [Problem("body[0].from", "is required")]),
        ([{"op": "copy", "path": "/a", "from": None}], [Problem("body[0].from", "must be a string")]),
        (
            [{"op": "copy", "path": "/a", "from": "b"}],
            [Problem("body[0].from", "must be a JSON Pointer (RFC 6901)")],
        ),
    ],
)
def test_malformed_json_patches_are_named(patch: object, expected: list[Problem]) -> None:
    assert check_patch_shape(patch, JSON, LIMITS) == expected


def test_every_malformed_operation_is_reported() -> None:
    patch = [
        {"op": "remove", "path": "/comments"},
        {"op": "add", "path": 1},
        {"value": 2},
        7,
    ]
    assert check_patch_shape(patch, JSON, LIMITS) == [
        Problem("body[1].path", "must be a string"),
        Problem("body[1].value", "is required"),
        Problem("body[2].op", "is required"),
        Problem("body[2].path", "is required"),
        Problem("body[3]", "must be a JSON object"),
    ]


@pytest.mark.parametrize("patch", [{}, {"comments": None}, {"amount": Decimal("5")}])
def test_merge_patch_objects_pass(patch: object) -> None:
    assert check_patch_shape(patch, MERGE, LIMITS) == []


@pytest.mark.parametrize("patch", [[], [{"op": "remove", "path": "/a"}], "x", None, Decimal(1)])
def test_merge_patch_must_be_an_object(patch: object) -> None:
    assert check_patch_shape(patch, MERGE, LIMITS) == [Problem("body", "must be a JSON object")]


# --- apply_patch: JSON Patch ----------------------------------------------------------------


def test_add_sets_a_new_member() -> None:
    assert applied([{"op": "add", "path": "/contactExternalId", "value": "C1"}])["contactExternalId"] == "C1"


def test_add_replaces_an_existing_member() -> None:
    assert applied([{"op": "add", "path": "/comments", "value": "new"}])["comments"] == "new"


def test_remove_deletes_a_member() -> None:
    assert "comments" not in applied([{"op": "remove", "path": "/comments"}])


def test_replace_changes_a_member() -> None:
    assert applied([{"op": "replace", "path": "/amount", "value": Decimal("7.25")}])["amount"] == Decimal(
        "7.25"
    )


def test_move_renames_a_member() -> None:
    result = applied([{"op": "move", "from": "/comments", "path": "/contactExternalId"}])
    assert result["contactExternalId"] == "first"
    assert "comments" not in result


def test_copy_duplicates_a_member() -> None:
    result = applied([{"op": "copy", "from": "/productExternalId", "path": "/contactExternalId"}])
    assert result["contactExternalId"] == result["productExternalId"] == "P1"


def test_passing_test_op_changes_nothing() -> None:
    assert applied([{"op": "test", "path": "/amount", "value": Decimal("100.50")}]) == document()


def test_operations_apply_in_order() -> None:
    patch = [
        {"op": "add", "path": "/contactExternalId", "value": "C1"},
        {"op": "test", "path": "/contactExternalId", "value": "C1"},
        {"op": "replace", "path": "/contactExternalId", "value": "C2"},
    ]
    assert applied(patch)["contactExternalId"] == "C2"


def test_apply_leaves_document_and_patch_unchanged() -> None:
    original = document()
    patch = [{"op": "add", "path": "/comments", "value": "x"}, {"op": "remove", "path": "/amount"}]
    before = copy.deepcopy((original, patch))
    apply_patch(original, patch, JSON, LIMITS)
    assert (original, patch) == before


MISMATCH = "failed: the value at path does not match"
NOT_FOUND = "failed: the location does not exist"
CONFLICT = "failed: it conflicts with the document"
UNFOLLOWABLE = "failed: the path cannot be followed in the document"


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ({"op": "test", "path": "/status", "value": "Cancel"}, MISMATCH),
        # Types matter: the string "100.5" is not the number 100.5.
        ({"op": "test", "path": "/amount", "value": "100.5"}, MISMATCH),
        ({"op": "test", "path": "/nothing", "value": 1}, MISMATCH),
        ({"op": "remove", "path": "/contactExternalId"}, NOT_FOUND),
        ({"op": "replace", "path": "/nothing", "value": 1}, NOT_FOUND),
        ({"op": "move", "from": "/nothing", "path": "/x"}, NOT_FOUND),
        ({"op": "copy", "from": "/nothing", "path": "/x"}, NOT_FOUND),
        ({"op": "remove", "path": ""}, CONFLICT),
        ({"op": "move", "from": "", "path": "/inside"}, CONFLICT),
        ({"op": "add", "path": "/comments/x", "value": 1}, UNFOLLOWABLE),
        ({"op": "add", "path": "/nothing/x", "value": 1}, UNFOLLOWABLE),
    ],
)
def test_failing_operations_are_problems(operation: dict[str, object], reason: str) -> None:
    assert failed([operation]) == [Problem("patch", f"operation 0 ({operation['op']}) {reason}")]


def test_failure_names_the_failing_operation() -> None:
    patch = [
        {"op": "replace", "path": "/comments", "value": "x"},
        {"op": "test", "path": "/comments", "value": "first"},
    ]
    assert failed(patch) == [Problem("patch", f"operation 1 (test) {MISMATCH}")]


def test_failure_reason_does_not_quote_the_document() -> None:
    [problem] = failed([{"op": "add", "path": "/nothing/x", "value": 1}])
    assert "P1" not in problem.reason


def test_apply_refuses_a_malformed_patch() -> None:
    # jsonpatch itself would accept its non-standard "append"; the contract does not.
    patch = [{"op": "append", "path": "/comments", "value": "!"}]
    assert failed(patch) == check_patch_shape(patch, JSON, LIMITS) != []


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "replace", "path": "", "value": ["not", "an", "object"]}],
        [{"op": "add", "path": "", "value": "text"}],
    ],
)
def test_json_patch_result_must_be_an_object(patch: object) -> None:
    assert failed(patch) == [Problem("patch", "must leave the transaction a JSON object")]


# --- apply_patch and merge_patch: RFC 7396 --------------------------------------------------


def test_merge_patch_sets_and_removes_members() -> None:
    result = applied({"comments": None, "contactExternalId": "C1", "amount": Decimal("3")}, MERGE)
    assert "comments" not in result
    assert result["contactExternalId"] == "C1"
    assert result["amount"] == Decimal("3")


def test_merge_patch_null_for_an_absent_member_is_harmless() -> None:
    assert applied({"settlementDate": None}, MERGE) == document()


def test_empty_merge_patch_changes_nothing() -> None:
    assert applied({}, MERGE) == document()


@pytest.mark.parametrize("patch", [["a"], "text", Decimal(1), None])
def test_non_object_merge_patch_replaces_the_whole_document(patch: object) -> None:
    assert merge_patch(document(), patch) == patch
    assert failed(patch, MERGE) == [Problem("patch", "must leave the transaction a JSON object")]


# Examples from RFC 7396 appendix A: (target, patch, result).
RFC_7396_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_7396_EXAMPLES)
def test_merge_patch_follows_rfc_7396(target: object, patch: object, expected: object) -> None:
    before = copy.deepcopy((target, patch))
    assert merge_patch(target, patch) == expected
    assert (target, patch) == before


# --- changed_immutables ---------------------------------------------------------------------


def test_immutables_are_the_contract_members() -> None:
    assert IMMUTABLE == ("externalId", "createDate", "changeDate")


def test_unchanged_immutables_pass() -> None:
    assert changed_immutables(document(), {**document(), "comments": "other"}) == []


@pytest.mark.parametrize("name", IMMUTABLE)
def test_changed_immutable_is_named(name: str) -> None:
    assert changed_immutables(document(), {**document(), name: "other"}) == [
        Problem(name, "cannot be changed")
    ]


@pytest.mark.parametrize("name", IMMUTABLE)
def test_removed_immutable_is_named(name: str) -> None:
    after = {key: value for key, value in document().items() if key != name}
    assert changed_immutables(document(), after) == [Problem(name, "cannot be changed")]


def test_added_immutable_is_named() -> None:
    assert changed_immutables({}, {"externalId": "TX-1"}) == [Problem("externalId", "cannot be changed")]


def test_every_changed_immutable_is_named() -> None:
    after = {"comments": "kept"}
    assert changed_immutables(document(), after) == [Problem(name, "cannot be changed") for name in IMMUTABLE]


# --- patch_transaction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "fmt"),
    [
        ([{"op": "replace", "path": "/amount", "value": Decimal("250.00")}], JSON),
        ({"amount": Decimal("250.00")}, MERGE),
        ({"amount": "250"}, MERGE),
    ],
)
def test_modification_is_validated_and_normalised(patch: object, fmt: PatchFormat) -> None:
    assert patched(patch, fmt) == replace(TX, amount=Decimal("250"))


@pytest.mark.parametrize(
    ("patch", "fmt"),
    [
        ([{"op": "replace", "path": "/status", "value": "Cancel"}], JSON),
        ({"status": "Cancel"}, MERGE),
    ],
)
def test_setting_status_to_cancel_cancels(patch: object, fmt: PatchFormat) -> None:
    assert patched(patch, fmt) == replace(TX, status=TransactionStatus.CANCEL)


@pytest.mark.parametrize(
    ("patch", "fmt"),
    [
        ([{"op": "replace", "path": "/status", "value": "Active"}], JSON),
        ([{"op": "test", "path": "/status", "value": "Cancel"}], JSON),
        ({"comments": "again"}, MERGE),
        ({}, MERGE),
        ("not even a patch", JSON),
    ],
)
def test_cancelled_transaction_cannot_be_modified(patch: object, fmt: PatchFormat) -> None:
    assert refused(patch, fmt, tx=replace(TX, status=TransactionStatus.CANCEL)) == CANCELLED


@pytest.mark.parametrize(
    ("patch", "fmt"),
    [
        ([{"op": "remove", "path": "/comments"}], JSON),
        ({"comments": None}, MERGE),
    ],
)
def test_optional_member_can_be_removed(patch: object, fmt: PatchFormat) -> None:
    assert patched(patch, fmt) == replace(TX, comments=None)


def test_merge_patch_null_removes_several_optional_members() -> None:
    tx = replace(TX, contact_external_id="C1", settlement_date=date(2026, 1, 20), currency="EUR")
    patch = {"contactExternalId": None, "settlementDate": None, "currency": None, "comments": None}
    # currency falls back to its default, USD.
    assert patched(patch, MERGE, tx=tx) == replace(TX, comments=None)


@pytest.mark.parametrize(
    ("patch", "fmt", "field"),
    [
        ([{"op": "remove", "path": "/tradeDate"}], JSON, "tradeDate"),
        ({"productExternalId": None}, MERGE, "productExternalId"),
        ({"type": None}, MERGE, "type"),
    ],
)
def test_removing_a_required_member_is_a_validation_problem(
    patch: object, fmt: PatchFormat, field: str
) -> None:
    assert refused(patch, fmt) == [Problem(field, "is required")]


def test_invalid_result_reports_every_problem() -> None:
    patch = {"amount": Decimal("-1"), "currency": "XXXX", "nickname": "x"}
    assert refused(patch, MERGE) == [
        Problem("amount", "must be greater than 0"),
        Problem("currency", "must be an ISO 4217 currency code"),
        Problem("nickname", "unknown field"),
    ]


def test_changing_the_type_revalidates_the_whole_record() -> None:
    patch = [{"op": "replace", "path": "/type", "value": "Full Redemption"}]
    assert refused(patch, JSON) == [Problem("amount", "not allowed for type Full Redemption")]
    fixed = [*patch, {"op": "remove", "path": "/amount"}]
    assert patched(fixed, JSON) == replace(TX, type=TransactionType.FULL_REDEMPTION, amount=None)


@pytest.mark.parametrize(
    ("patch", "fmt", "name"),
    [
        ([{"op": "replace", "path": "/externalId", "value": "TX-2"}], JSON, "externalId"),
        ({"externalId": "TX-2"}, MERGE, "externalId"),
        ([{"op": "replace", "path": "/createDate", "value": CHANGED}], JSON, "createDate"),
        ({"createDate": CHANGED}, MERGE, "createDate"),
        ([{"op": "replace", "path": "/changeDate", "value": CREATED}], JSON, "changeDate"),
        ({"changeDate": CREATED}, MERGE, "changeDate"),
        ([{"op": "remove", "path": "/changeDate"}], JSON, "changeDate"),
        ({"createDate": None}, MERGE, "createDate"),
    ],
)
def test_immutable_members_cannot_be_changed(patch: object, fmt: PatchFormat, name: str) -> None:
    assert refused(patch, fmt) == [Problem(name, "cannot be changed")]


def test_removed_external_id_is_one_problem_not_two() -> None:
    assert refused({"externalId": None}, MERGE) == [Problem("externalId", "cannot be changed")]


def test_immutable_and_validation_problems_are_reported_together() -> None:
    assert refused({"externalId": "TX-2", "amount": "abc"}, MERGE) == [
        Problem("externalId", "cannot be changed"),
        Problem("amount", "must be a decimal number"),
    ]


def test_server_fields_may_be_tested_and_left_as_they_are() -> None:
    patch = [
        {"op": "test", "path": "/createDate", "value": CREATED},
        {"op": "replace", "path": "/changeDate", "value": CHANGED},
        {"op": "replace", "path": "/comments", "value": "checked"},
    ]
    assert patched(patch, JSON) == replace(TX, comments="checked")
    assert patched({"createDate": CREATED, "externalId": "TX-1"}, MERGE) == TX


def test_patch_failure_is_returned_as_is() -> None:
    patch = [{"op": "test", "path": "/comments", "value": "other"}]
    assert refused(patch, JSON) == [
        Problem("patch", "operation 0 (test) failed: the value at path does not match")
    ]


def test_malformed_patch_is_refused() -> None:
    assert refused([], JSON) == [Problem("body", "must contain at least one operation")]


def test_non_object_merge_patch_is_refused() -> None:
    assert refused(["x"], MERGE) == [Problem("patch", "must leave the transaction a JSON object")]


# --- properties -----------------------------------------------------------------------------

EXTERNAL_IDS = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
# Valid text: anything but NUL, which no member may hold.
VALID_TEXT = st.characters(exclude_characters="\x00")
OTHER_IDS = st.text(VALID_TEXT, min_size=1, max_size=64)
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**13), places=2)
UNITS = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**13), places=6)
CURRENCIES = st.sampled_from(["USD", "EUR", "GBP", "JPY", "CHF"])
DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))
COMMENTS = st.text(VALID_TEXT, max_size=80)


def _destinations(
    draw: st.DrawFn, tx_type: TransactionType, product: str, investor: str
) -> dict[str, object]:
    other_product = OTHER_IDS.filter(lambda v: v != product)
    other_investor = OTHER_IDS.filter(lambda v: v != investor)
    if tx_type in SWITCH_TYPES:
        return {"toProductExternalId": draw(other_product)}
    if tx_type not in TRANSFER_TYPES:
        return {}
    to_product = draw(st.none() | other_product)
    to_investor = draw(other_investor if to_product is None else st.none() | other_investor)
    return {
        name: value
        for name, value in (("toProductExternalId", to_product), ("toInvestorExternalId", to_investor))
        if value is not None
    }


def _quantities(draw: st.DrawFn, tx_type: TransactionType) -> dict[str, object]:
    if tx_type.value in {
        "Full Redemption",
        "Full Transfer",
        "Full Switch or Exchange",
        "Account Maintenance",
    }:
        return {}
    if tx_type.value.startswith("Partial") and draw(st.booleans()):
        return {"units": draw(UNITS)}
    # Strings and numbers alike, as clients send both.
    return {"amount": draw(AMOUNTS | AMOUNTS.map(str))}


@st.composite
def transactions(draw: st.DrawFn) -> PendingTransaction:
    """Any valid, Active transaction, built from a record through validate_record."""
    tx_type = draw(st.sampled_from(TransactionType))
    product, investor, trade_date = draw(OTHER_IDS), draw(OTHER_IDS), draw(DATES)
    record: dict[str, object] = {
        "externalId": draw(EXTERNAL_IDS),
        "type": tx_type.value,
        "productExternalId": product,
        "investorExternalId": investor,
        "tradeDate": trade_date.isoformat(),
        **_destinations(draw, tx_type, product, investor),
        **_quantities(draw, tx_type),
    }
    optional = {
        "contactExternalId": draw(st.none() | OTHER_IDS),
        "currency": draw(st.none() | CURRENCIES),
        "settlementDate": draw(
            st.none() | st.integers(0, 30).map(lambda d: (trade_date + timedelta(d)).isoformat())
        ),
        "comments": draw(st.none() | COMMENTS),
    }
    record.update({name: value for name, value in optional.items() if value is not None})
    tx = validate_record(record)
    assert isinstance(tx, PendingTransaction), (record, tx)
    return tx


# Members a patch may touch, with valid values for each; optional ones may also be removed.
MUTABLE_VALUES: dict[str, st.SearchStrategy[object]] = {
    "status": st.sampled_from(["Active", "Cancel"]),
    "productExternalId": OTHER_IDS,
    "investorExternalId": OTHER_IDS,
    "tradeDate": DATES.map(date.isoformat),
    "contactExternalId": OTHER_IDS,
    "currency": CURRENCIES,
    "settlementDate": DATES.map(date.isoformat),
    "comments": COMMENTS,
}
OPTIONAL = frozenset({"contactExternalId", "currency", "settlementDate", "comments"})


@st.composite
def json_patches(draw: st.DrawFn, present: frozenset[str]) -> list[dict[str, object]]:
    """1-5 add/replace/remove operations, each applicable to the document as left by the previous."""
    members = set(present)
    operations: list[dict[str, object]] = []
    for _ in range(draw(st.integers(1, 5))):
        name = draw(st.sampled_from(sorted(MUTABLE_VALUES)))
        choices = ["add"] + (["replace"] if name in members else [])
        choices += ["remove"] if name in members and name in OPTIONAL else []
        op = draw(st.sampled_from(choices))
        operation: dict[str, object] = {"op": op, "path": f"/{name}"}
        if op == "remove":
            members.discard(name)
        else:
            operation["value"] = draw(MUTABLE_VALUES[name])
            members.add(name)
        operations.append(operation)
    return operations


def without_server_fields(record: object) -> dict[str, object]:
    assert isinstance(record, dict)
    return {name: value for name, value in record.items() if name not in {"createDate", "changeDate"}}


@settings(deadline=None, database=None, max_examples=200)
@given(st.data())
def test_json_patch_equals_applying_then_validating(data: st.DataObject) -> None:
    tx = data.draw(transactions())
    doc = document(tx)
    ops = data.draw(json_patches(frozenset(doc)))
    expected = validate_record(without_server_fields(jsonpatch.apply_patch(doc, ops)), for_update=True)
    assert (
        patch_transaction(tx, create_date=CREATED, change_date=CHANGED, patch=ops, fmt=JSON, limits=LIMITS)
        == expected
    )


@st.composite
def merge_patches(draw: st.DrawFn) -> dict[str, object]:
    """Up to five mutable members set to valid values, or (optional ones only) removed with null."""
    patch: dict[str, object] = {}
    for name in draw(st.lists(st.sampled_from(sorted(MUTABLE_VALUES)), unique=True, max_size=5)):
        removable = st.none() if name in OPTIONAL else st.nothing()
        patch[name] = draw(removable | MUTABLE_VALUES[name])
    return patch


@settings(deadline=None, database=None, max_examples=200)
@given(transactions(), merge_patches())
def test_merge_patch_equals_updating_then_validating(
    tx: PendingTransaction, patch: dict[str, object]
) -> None:
    # A flat merge patch is a dict update in which null deletes: an independent reference.
    record = {name: value for name, value in {**to_json(tx), **patch}.items() if value is not None}
    expected = validate_record(record, for_update=True)
    assert (
        patch_transaction(tx, create_date=CREATED, change_date=CHANGED, patch=patch, fmt=MERGE, limits=LIMITS)
        == expected
    )


@settings(deadline=None, database=None, max_examples=200)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]),
                "path": st.sampled_from(
                    ["", "/", "/comments", "/amount/0", "/x/y", "/status", "/externalId"]
                ),
                "from": st.sampled_from(["", "/comments", "/nothing", "/tradeDate"]),
                "value": st.none()
                | st.text(max_size=5)
                | st.integers()
                | st.lists(st.integers(), max_size=2),
            }
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_well_formed_json_patch_gets_a_verdict_without_raising(ops: list[dict[str, object]]) -> None:
    result = patch_transaction(
        TX, create_date=CREATED, change_date=CHANGED, patch=ops, fmt=JSON, limits=LIMITS
    )
    assert isinstance(result, PendingTransaction) or (result and all(p.reason for p in result))


# --- limits -------------------------------------------------------------------------------------

# ~22 copies of a member into itself: the document doubles with each, to gigabytes if nothing stops it.
DOUBLING = [{"op": "add", "path": "/x", "value": [1]}] + [{"op": "copy", "from": "/x", "path": "/x/-"}] * 22


def test_more_operations_than_the_limit_is_a_shape_problem() -> None:
    patch = [{"op": "test", "path": "/status", "value": "Active"}] * 4
    assert check_patch_shape(patch, JSON, PatchLimits(max_operations=4)) == []
    assert check_patch_shape([*patch, patch[0]], JSON, PatchLimits(max_operations=4)) == [
        Problem("body", "must contain at most 4 operations; got 5")
    ]


def test_a_doubling_patch_is_refused_before_the_document_grows_past_the_limit() -> None:
    began = time.perf_counter()
    result = apply_patch(document(), DOUBLING, JSON, LIMITS)
    assert time.perf_counter() - began < 2  # unbounded, it takes ten seconds and gigabytes
    assert isinstance(result, list)
    assert len(result) == 1
    assert result[0].field == "patch"
    assert re.fullmatch(
        r"operation \d+ \(copy\) refused: it would make the transaction larger than 65536 bytes",
        result[0].reason,
    )


@pytest.mark.parametrize("limit", [600, 2_000, 10_000])
def test_the_document_never_grows_past_its_limit(limit: int) -> None:
    for count in range(1, len(DOUBLING) + 1):
        result = apply_patch(document(), DOUBLING[:count], JSON, PatchLimits(max_document_bytes=limit))
        if isinstance(result, list):
            assert "larger than" in result[0].reason
        else:
            assert len(msgspec.json.encode(result)) <= limit


def test_a_large_value_counts_whatever_its_operation() -> None:
    limits = PatchLimits(max_document_bytes=1_000)
    big = "x" * 1_000
    for operation in (
        {"op": "add", "path": "/comments", "value": big},
        {"op": "replace", "path": "/comments", "value": big},
    ):
        refused = (
            f"operation 0 ({operation['op']}) refused: it would make the transaction larger than 1000 bytes"
        )
        assert apply_patch(document(), [operation], JSON, limits) == [Problem("patch", refused)]


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_a_patch_cannot_nest_the_document_deeper_than_a_body_may() -> None:
    at_the_limit = [{"op": "add", "path": "/x", "value": nested(31)}]
    assert isinstance(apply_patch(document(), at_the_limit, JSON, LIMITS), dict)
    too_deep = [{"op": "add", "path": "/x", "value": nested(32)}]
    assert apply_patch(document(), too_deep, JSON, LIMITS) == [
        Problem("patch", "operation 0 (add) refused: it would nest the transaction more than 32 levels deep")
    ]
    # Moving one member into another and back nests it one level deeper each round, at no cost in size.
    climbing = [{"op": "add", "path": "/a", "value": []}, {"op": "add", "path": "/b", "value": []}]
    climbing += [
        {"op": "move", "from": "/a", "path": "/b/-"},
        {"op": "move", "from": "/b", "path": "/a"},
        {"op": "add", "path": "/b", "value": []},
    ] * 40
    result = apply_patch(document(), climbing, JSON, PatchLimits(max_operations=200))
    assert isinstance(result, list)
    assert result[0].reason.endswith("(move) refused: it would nest the transaction more than 32 levels deep")


@settings(deadline=None, database=None, max_examples=300)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "copy", "move", "replace", "remove"]),
                "path": st.sampled_from(["/a", "/b", "/a/-", "/b/-", "/a/0", "/c"]),
                "from": st.sampled_from(["/a", "/b", "/comments", "/a/0"]),
                "value": st.just([1, "two"]) | st.text(max_size=40) | st.just({"k": [1]}),
            }
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(300, 3_000),
)
def test_no_patch_makes_the_document_larger_or_deeper_than_allowed(
    ops: list[dict[str, object]], limit: int
) -> None:
    result = apply_patch(document(), ops, JSON, PatchLimits(max_document_bytes=limit))
    if isinstance(result, dict):
        encoded = msgspec.json.encode(result)
        assert len(encoded) <= limit
        assert not json_depth_exceeds(encoded, 32)
