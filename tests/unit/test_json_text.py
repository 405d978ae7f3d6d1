"""What the text of a JSON body holds beyond its decoded value: lone surrogates, repeated names, bounds.

Also the stored form of a record's problems: capped per record, and storable in any database.
"""

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendingtx import errors
from pendingtx.domain.decimals import HugeNumber, parse_quantity, read_number
from pendingtx.domain.fast_validation import validate_raw
from pendingtx.domain.jobs import MAX_RECORD_PROBLEMS, RecordProblem, record_problems, storable
from pendingtx.domain.json_text import decode_error_reason, lone_surrogate, name_bound, repeated_names
from pendingtx.domain.patching import PatchFormat, PatchLimits, check_patch_shape, patch_transaction
from pendingtx.domain.transactions import PendingTransaction, Problem
from pendingtx.services.modifications import decode_patch
from pendingtx.services.submissions import count_records
from tests.unit.test_patching import CHANGED, CREATED, TX


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (rb'"\ud800"', ("\\ud800", 1)),
        (rb'"ab\udc00"', ("\\udc00", 3)),
        (rb'{"\uD83D": 1}', ("\\uD83D", 2)),
        (rb'"\ud800\u0041"', ("\\ud800", 1)),
        (rb'"\\\ud800"', ("\\ud800", 3)),  # an escaped backslash, then the escape
        (rb'"\ud83d\ude00"', None),  # a pair: one character
        (rb'"\\ud800"', None),  # an escaped backslash, then plain text
        (rb'"\udc00\ud800"', ("\\udc00", 1)),  # low before high is no pair
        (b'"plain"', None),
    ],
)
def test_lone_surrogates_are_found_in_the_text(text: bytes, expected: tuple[str, int] | None) -> None:
    assert lone_surrogate(text) == expected


@pytest.mark.parametrize("text", [rb'["\ud800"]', rb'{"\ud800": 1}', rb'"x\udfff"', rb'"\ud800x"'])
def test_a_lone_surrogate_is_named_not_called_truncated(text: bytes) -> None:
    with pytest.raises(msgspec.DecodeError) as raised:
        msgspec.json.decode(text)
    reason = decode_error_reason(text, raised.value)
    assert reason.startswith("is not valid JSON: \\ud")
    assert "is a lone UTF-16 surrogate, not a character" in reason
    assert "truncated" not in reason


def test_other_decode_errors_keep_the_decoders_words() -> None:
    with pytest.raises(msgspec.DecodeError) as raised:
        msgspec.json.decode(b'{"a": ')
    assert decode_error_reason(b'{"a": ', raised.value) == f"is not valid JSON: {raised.value}"


def test_an_integer_too_long_for_int_is_named() -> None:
    text = b'[{"value": 1' + b"0" * 5000 + b"}]"
    with pytest.raises(msgspec.DecodeError) as raised:
        msgspec.json.decode(text)
    assert decode_error_reason(text, raised.value) == (
        "holds an integer of more than 4300 digits; send such a number as a string or with an exponent"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"a": 1, "b": 2}', []),
        (b'{"a": 1, "a": 2}', ["a"]),
        (rb'{"amount": 1, "\u0061mount": 2}', ["amount"]),
        (b'{"a": 1, "b": 1, "a": 2, "b": 2, "a": 3}', ["a", "b"]),
        (b'{"a": {"b": 1, "b": 2}}', []),
        (b'[{"a": 1, "a": 2}]', []),
        (b'{"a": 1' + b"0" * 5000 + b', "a": 1e999999999999999999999}', ["a"]),
        (rb'{"\ud800": 1, "\ud800": 2}', ["\ud800"]),
    ],
)
def test_repeated_names_of_the_outermost_object(text: bytes, expected: list[str]) -> None:
    assert repeated_names(text) == expected


def test_repeated_names_anywhere() -> None:
    text = b'[{"op": "add", "op": "remove"}, {"a": {"b": 1, "b": 2}}, {"c": 1}]'
    assert repeated_names(text, nested=True) == ["op", "b"]


NAMES = st.text(alphabet=st.sampled_from('ab:" \\\n\u00e9'), max_size=3)
VALUES = st.recursive(
    st.none() | st.integers() | st.text(alphabet=st.sampled_from('a:" \\{}'), max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(NAMES, inner), max_size=3).map(tuple),
    max_leaves=8,
)


def _text(value: Any, indent: int | None) -> str:
    """JSON text of `value`, where a tuple of pairs is an object whose names may repeat."""
    if isinstance(value, tuple):
        inner = ", ".join(
            f"{json.dumps(name)}{' ' * (indent or 0)}: {_text(item, indent)}" for name, item in value
        )
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(item, indent) for item in value) + "]"
    return json.dumps(value)


def _names(value: Any) -> int:
    if isinstance(value, tuple):
        return len(value) + sum(_names(item) for _, item in value)
    if isinstance(value, list):
        return sum(_names(item) for item in value)
    return 0


@settings(deadline=None, database=None, max_examples=500)
@given(pairs=st.lists(st.tuples(NAMES, VALUES), max_size=6).map(tuple), indent=st.sampled_from([None, 0, 2]))
def test_name_bound_never_undercounts_and_repeats_are_found(
    pairs: tuple[Any, ...], indent: int | None
) -> None:
    text = _text(pairs, indent).encode()
    assert name_bound(text) >= _names(pairs)
    names = [name for name, _ in pairs]
    expected = list(dict.fromkeys(name for i, name in enumerate(names) if name in names[:i]))
    assert repeated_names(text) == expected


# --- numbers no Decimal can hold -------------------------------------------------------------------


def test_read_number_keeps_what_decimal_cannot_hold() -> None:
    assert read_number("1.50") == Decimal("1.50")
    assert read_number("1e999999999999999999") == Decimal("1e999999999999999999")
    assert read_number("1e1000000000000000000") == HugeNumber("1e1000000000000000000")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1e1000000000000000000", "must be at most 10000000000000"),
        ("-1e1000000000000000000", "must be greater than 0"),
        ("0.0e1000000000000000000", "must be greater than 0"),
        ("25.5e-3000000000000000000", "must have at most 2 decimal places"),
        ("9" * 5000, "must be at most 10000000000000"),
        ("not a number", "must be a decimal number"),
    ],
)
def test_a_huge_number_is_refused_as_a_quantity_as_its_value_would_be(text: str, reason: str) -> None:
    assert parse_quantity(HugeNumber(text), 2) == reason


# --- stored problems ---------------------------------------------------------------------------


def test_a_record_keeps_at_most_20_problems_the_last_counting_the_rest() -> None:
    problems = [Problem(f"m{i}", "unknown field") for i in range(50)]
    kept = record_problems(7, "TX-1", problems)
    assert len(kept) == MAX_RECORD_PROBLEMS == 20
    assert kept[:19] == [RecordProblem(7, "TX-1", f"m{i}", "unknown field") for i in range(19)]
    assert kept[19] == RecordProblem(7, "TX-1", "m19", "unknown field; and 30 more problems")


def test_problems_up_to_the_limit_are_kept_as_they_are() -> None:
    problems = [Problem(f"m{i}", "unknown field") for i in range(20)]
    assert [p.reason for p in record_problems(0, None, problems)] == ["unknown field"] * 20
    one_more = record_problems(0, None, [*problems, Problem("z", "unknown field")])
    assert one_more[-1].reason == "unknown field; and 1 more problem"


def test_a_problem_names_at_most_128_characters_of_a_member() -> None:
    (kept,) = record_problems(0, "x" * 100, [Problem("n" * 10_000, "unknown field")])
    assert kept.field == "n" * 127 + "…"
    assert kept.external_id == "x" * 64


def test_stored_text_has_no_nul_and_no_lone_surrogate() -> None:
    assert storable("plain") == "plain"
    assert storable("a\x00b") == "a\ufffdb"
    assert storable("é\ud800\x00") == "é\ufffd\ufffd"
    assert storable("😀") == "😀"


# --- any text of the families above: a verdict or a 400, never an exception --------------------------

POISON_TOKENS = [
    "1e99999999999999999999",
    "-1E-99999999999999999999",
    "0e99999999999999999999",
    "1" * 4301,
    "-" + "9" * 4400,
    '"\\ud800"',
    '"\\udc00x"',
    '"a\\u0000b"',
    '"\\ud83d\\ude00"',
    '"Active"',
    '"/comments"',
    '"/x/-"',
    '"add"',
    '"copy"',
    "null",
    "true",
]
NAMES_IN_TEXT = [
    '"op"',
    '"path"',
    '"from"',
    '"value"',
    '"amount"',
    '"\\u0061mount"',
    '"comments"',
    '"\\u0000"',
]
LEAVES = st.sampled_from(POISON_TOKENS) | st.integers().map(str) | st.text(max_size=4).map(json.dumps)


def _compose(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    arrays = st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
    members = st.lists(st.tuples(st.sampled_from(NAMES_IN_TEXT), inner), max_size=4)
    objects = members.map(lambda pairs: "{" + ",".join(f"{name}: {value}" for name, value in pairs) + "}")
    return arrays | objects


HOSTILE_TEXTS = st.recursive(LEAVES, _compose, max_leaves=10)


@settings(deadline=None, database=None, max_examples=400)
@given(text=HOSTILE_TEXTS, fmt=st.sampled_from(list(PatchFormat)))
def test_any_patch_text_is_a_400_with_reasons_or_gets_a_verdict(text: str, fmt: PatchFormat) -> None:
    try:
        patch = decode_patch(text.encode())
    except errors.ValidationFailed as refused:
        details = refused.errors
    else:
        details = []
    if details:
        assert all(detail.field and detail.reason for detail in details)
        return
    if check_patch_shape(patch, fmt, PatchLimits()):
        return
    result = patch_transaction(
        TX, create_date=CREATED, change_date=CHANGED, patch=patch, fmt=fmt, limits=PatchLimits()
    )
    assert isinstance(result, PendingTransaction) or all(p.reason for p in result)


@settings(deadline=None, database=None, max_examples=400)
@given(members=st.lists(st.tuples(st.sampled_from(NAMES_IN_TEXT), HOSTILE_TEXTS), max_size=5))
def test_any_record_the_post_accepts_gets_a_verdict(members: list[tuple[str, str]]) -> None:
    text = ("{" + ",".join(f"{name}: {value}" for name, value in members) + "}").encode()
    try:
        count_records(b"[" + text + b"]", max_records=10)
    except errors.ValidationFailed:
        return  # refused at POST (a lone surrogate): never reaches a worker
    result, _ = validate_raw(text)
    assert isinstance(result, PendingTransaction) or all(p.reason for p in result)
