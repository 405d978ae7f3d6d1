"""The fast record validation path must be observationally identical to the slow one.

`validate_raw(raw)` is compared with `validate_record` on the record decoded by the worker's decoder,
for generated records both valid and broken, encoded in several JSON spellings.

Set PENDINGTX_FAST_EXAMPLES to run the property tests with more examples than the default. Run this
module as a script (`.venv/bin/python -m tests.unit.test_fast_validation`) for a micro-benchmark of
both paths; it is never part of the test run.
"""

import dataclasses
import json
import os
import random
import re
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pendingtx.domain import fast_validation
from pendingtx.domain.decimals import parse_quantity
from pendingtx.domain.fast_validation import validate_raw
from pendingtx.domain.transactions import (
    NO_QUANTITY_TYPES,
    ONE_QUANTITY_TYPES,
    SWITCH_TYPES,
    TRANSFER_TYPES,
    PendingTransaction,
    Problem,
    TransactionType,
    record_external_id,
    validate_record,
)

EXAMPLES = int(os.environ.get("PENDINGTX_FAST_EXAMPLES", "2000"))
# No deadline: the first currency check loads pycountry's database. No example database, so the run
# leaves no files behind.
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FIELDS = (
    "externalId", "type", "status", "productExternalId", "investorExternalId",
    "contactExternalId", "toProductExternalId", "toInvestorExternalId", "amount", "units",
    "currency", "tradeDate", "settlementDate", "comments", "createDate", "changeDate",
)  # fmt: skip
UNKNOWN_NAMES = ("ammount", "ExternalId", "external_id", "tradedate", "extra", "", "é", "status ")
ARABIC_DATE = "\u0662\u0660\u0662\u0664-\u0660\u0665-\u0660\u0661"
FULLWIDTH_ONE = "\uff11"


def _decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(float_hook=Decimal)


def repeated_at_top(raw: bytes) -> list[str]:
    """The member names the outermost object of `raw` repeats, found by the standard library's decoder."""
    if not raw.lstrip().startswith(b"{"):
        return []
    pairs = json.loads(raw, object_pairs_hook=lambda pairs: pairs, parse_int=str, parse_float=str)
    names = [name for name, _ in pairs]
    return list(dict.fromkeys(name for i, name in enumerate(names) if name in names[:i]))


def slow(raw: bytes, *, transfers_only: bool = False) -> object:
    """What the rules say of one record: validation result and externalId."""
    try:
        decoded = _decoder().decode(raw)
    except msgspec.DecodeError as exc:
        return ("raises", type(exc))
    result = validate_record(decoded, transfers_only=transfers_only, repeated=repeated_at_top(raw))
    return result, record_external_id(decoded)


def fast(raw: bytes | msgspec.Raw, *, transfers_only: bool = False) -> object:
    try:
        return validate_raw(raw, transfers_only=transfers_only)
    except msgspec.DecodeError as exc:
        return ("raises", type(exc))


def fast_path_accepts(raw: bytes, *, transfers_only: bool = False) -> bool:
    """Whether the record is settled without falling back to the slow path."""
    try:
        record = fast_validation._record_decoder().decode(raw)
    except msgspec.DecodeError:
        return False
    return fast_validation._accept(record, transfers_only=transfers_only) is not None


def _member_types(result: object) -> object:
    if isinstance(result, PendingTransaction):
        return [type(getattr(result, f.name)) for f in dataclasses.fields(result)]
    if isinstance(result, list):
        return [type(p) for p in result]
    return type(result)


def assert_same(raw: bytes, *, transfers_only: bool = False) -> object:
    """Both paths agree on `raw`: equal, equally spelt (Decimal exponents show in repr), same types."""
    expected = slow(raw, transfers_only=transfers_only)
    got = fast(raw, transfers_only=transfers_only)
    assert got == expected, raw
    assert repr(got) == repr(expected), raw
    if isinstance(got, tuple) and isinstance(expected, tuple):
        assert _member_types(got[0]) == _member_types(expected[0]), raw
        assert type(got[1]) is type(expected[1]), raw
    return got


# --- encoding -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Text:
    """A JSON value written verbatim: number literals, escaped strings, odd spellings."""

    json: str


def number(value: Decimal | int | str) -> Text:
    return Text(str(value))


def escaped(value: str) -> Text:
    """The string as JSON with every character written as a \\u escape (surrogate pairs past U+FFFF)."""
    return Text(
        '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else json.dumps(c)[1:-1] for c in value) + '"'
    )


def encode_value(value: object) -> bytes:
    if isinstance(value, Text):
        return value.json.encode()
    return msgspec.json.encode(value)


WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n  "])


@st.composite
def encode(draw: st.DrawFn, pairs: list[tuple[str, object]]) -> bytes:
    """A JSON object text of the (possibly repeated) members, with some whitespace between tokens."""
    parts = []
    for key, value in pairs:
        name = escaped(key).json.encode() if draw(st.integers(0, 9)) == 0 else msgspec.json.encode(key)
        gap = draw(WHITESPACE).encode()
        parts.append(gap + name + gap + b":" + draw(WHITESPACE).encode() + encode_value(value))
    return b"{" + b",".join(parts) + draw(WHITESPACE).encode() + b"}"


# --- valid records --------------------------------------------------------------------------

EXTERNAL_IDS = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
# Valid text holds anything but NUL (refused in every member).
VALID_TEXT = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
OTHER_IDS = st.text(VALID_TEXT, min_size=1, max_size=64) | st.sampled_from(
    ["P1", "I1", "x" * 64, "é" * 64, "😀"]
)
CURRENCIES = st.sampled_from(["USD", "EUR", "GBP", "JPY", "CHF", "BHD", "XXX"])
COMMENTS = st.text(VALID_TEXT, max_size=500) | st.sampled_from(["", "c" * 500, "😀" * 500])


def _padded(value: Decimal, zeros: int) -> str:
    """The decimal written with extra trailing zeros, which the slow path accepts and drops."""
    text = f"{value:f}"
    return text + ("" if "." in text else ".") + "0" * zeros


def valid_quantities(places: int) -> st.SearchStrategy[object]:
    """A valid amount (places=2) or units (places=6) in every spelling the slow path accepts."""
    step = Decimal(1).scaleb(-places)
    decimals = st.decimals(min_value=step, max_value=Decimal(10**13), places=places)
    return st.one_of(
        decimals.map(lambda d: f"{d:f}"),
        decimals.map(lambda d: number(f"{d:f}")),
        st.tuples(decimals, st.integers(1, 5)).map(lambda t: _padded(*t)),
        st.tuples(decimals, st.integers(1, 3)).map(lambda t: "0" * t[1] + f"{t[0]:f}"),
        decimals.map(lambda d: number(d.normalize())),  # exponent forms such as 1.2E+3
        decimals.map(lambda d: number(f"{d:e}")),
        st.integers(1, 10**13),
        st.integers(1, 10**13).map(number),
        st.sampled_from(["0.01", "1", "10000000000000", "10000000000000.00", "9999999999999.99", "1.500"]),
        st.sampled_from([number("1E+2"), number("1.20e3"), number("0.10"), number("100.00")]),
    )


def _destinations(
    tx_type: TransactionType, draw: st.DrawFn, product: str, investor: str
) -> dict[str, object]:
    other_product = OTHER_IDS.filter(lambda v: v != product)
    other_investor = OTHER_IDS.filter(lambda v: v != investor)
    if tx_type in SWITCH_TYPES:
        return {"toProductExternalId": draw(other_product)}
    if tx_type in TRANSFER_TYPES:
        to_product = draw(st.none() | other_product)
        to_investor = draw(other_investor if to_product is None else st.none() | other_investor)
        return {"toProductExternalId": to_product, "toInvestorExternalId": to_investor}
    return {}


def _quantities(tx_type: TransactionType, draw: st.DrawFn) -> dict[str, object]:
    if tx_type in NO_QUANTITY_TYPES:
        return {}
    if tx_type in ONE_QUANTITY_TYPES and draw(st.booleans()):
        return {"units": draw(valid_quantities(6))}
    return {"amount": draw(valid_quantities(2))}


MAYBE = st.sampled_from(["absent", "null", "value"])


@st.composite
def valid_members(draw: st.DrawFn) -> tuple[TransactionType, list[tuple[str, object]]]:
    """A valid record of any type, as (name, value) pairs in a random order; nulls where allowed."""
    tx_type = draw(st.sampled_from(TransactionType))
    product, investor = draw(OTHER_IDS), draw(OTHER_IDS)
    trade_date = draw(st.dates())
    members: dict[str, object] = {
        "externalId": draw(EXTERNAL_IDS),
        "type": tx_type.value,
        "productExternalId": product,
        "investorExternalId": investor,
        "tradeDate": trade_date.isoformat(),
        **_destinations(tx_type, draw, product, investor),
        **_quantities(tx_type, draw),
    }
    optional: dict[str, st.SearchStrategy[object]] = {
        "status": st.just("Active"),
        "contactExternalId": OTHER_IDS,
        "currency": CURRENCIES,
        "settlementDate": st.dates(min_value=trade_date).map(date.isoformat),
        "comments": COMMENTS,
        "createDate": st.none(),
        "changeDate": st.none(),
    }
    for name in [*optional, "toProductExternalId", "toInvestorExternalId", "amount", "units"]:
        choice = draw(MAYBE)
        if name in optional and choice == "value":
            members[name] = draw(optional[name])
        elif choice == "null" and members.get(name) is None:
            members[name] = None
    pairs = list(members.items())
    return tx_type, draw(st.permutations(pairs))


# --- broken records -------------------------------------------------------------------------

ODD_QUANTITIES = st.sampled_from(
    [
        "0", "0.00", "-1", "-0", "1.001", "0.0000001", "10000000000000.01", "10000000000001",
        "1e2", "1E2", "NaN", "nan", "Infinity", "-Infinity", "sNaN", " 1", "1 ", "1\n", "+1", ".5",
        "1.", "1,5", "", "\u0661", FULLWIDTH_ONE, "1_000", "0x10", "1" + "0" * 40, "1." + "0" * 300,
        "00012.50", "0.10", "1.000001", "12345678901.234567",
    ]
)  # fmt: skip
ODD_NUMBERS = st.sampled_from(
    [
        "0", "-0", "0.0", "-0.0", "-1", "1.001", "1e400", "1E-400", "1e-2", "1.5e1", "-1.5", "1.0000001",
        "10000000000000", "10000000000001", "10000000000000.01", "1" + "0" * 40, "1.10", "0.000001",
    ]
)  # fmt: skip
ODD_DATES = st.sampled_from(
    [
        "2026-02-30", "2024-02-29", "2023-02-29", "0000-01-01", "0001-01-01", "9999-12-31", "2024-13-01",
        "2024-00-10", "2024-01-00", "2024-5-1", "20240501", "2024/05/01", "2024-05-01T00:00:00",
        "2024-05-01\n", " 2024-05-01", "2024-05-01Z", "+2024-05-01", "-2024-05-01", "02024-05-01",
        "2024-W18-3", "2024-122", ARABIC_DATE, "2024-0\u0665-01", "",
    ]
)  # fmt: skip
ODD_STRINGS = st.sampled_from(
    [
        "", " ", "\x00", "P\x001", "x" * 64, "x" * 65, "é" * 64, "é" * 65, "😀" * 64, "😀" * 65,
        "TX-1\n", "TX 1", "TX-1\x00",
        "Active", "Cancel", "active", "ACTIVE", "New Subscription", "new subscription", "Dividend ",
        "Full Transfer", "Partial Switch or Exchange", "USD", "usd", "ZZZ", "US", "USDX", "EUR",
        "c" * 499, "c" * 500, "c" * 501, "😀" * 501, "P1", "I1", "P2", "I2", "null", "true",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=70),
    ODD_STRINGS,
    ODD_STRINGS.map(escaped),
    ODD_QUANTITIES,
    ODD_NUMBERS.map(number),
    ODD_DATES,
    ODD_DATES.map(escaped),
    st.dates().map(date.isoformat),
    st.sampled_from(TransactionType).map(str),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
KEYS = st.sampled_from(FIELDS) | st.sampled_from(UNKNOWN_NAMES)
# Values just inside or just outside the rules of one member.
_ID_NEAR = st.one_of(
    OTHER_IDS,
    st.text(min_size=63, max_size=66),
    st.text(min_size=1, max_size=64),  # NUL included
    st.sampled_from(["", "x" * 65, "😀" * 65, "P1", "I1", "P1\n", "\n", "\x00", "P\x001", "\x01"]),
    st.sampled_from(["", "x" * 65, "P1\n", "P\x001"]).map(escaped),
)
_QUANTITY_NEAR = st.one_of(
    valid_quantities(2), valid_quantities(6), ODD_QUANTITIES, ODD_NUMBERS.map(number), st.integers(-2, 2),
    st.sampled_from([10**13 - 1, 10**13, 10**13 + 1, True, False, 1.5, 100.0]),
)  # fmt: skip
NEAR: dict[str, st.SearchStrategy[object]] = {
    "externalId": st.one_of(
        EXTERNAL_IDS,
        st.tuples(EXTERNAL_IDS, st.sampled_from(["\n", " ", "é", "\x00", "/", "\u0661"])).map("".join),
        st.sampled_from(["", "x" * 65, "TX-1\n", "\nTX-1"]),
        st.sampled_from(["TX-1\n", "T\u0058"]).map(escaped),
    ),
    "type": st.sampled_from([*TransactionType, "Dividend ", "dividend", "", "Full transfer"]).map(str),
    "status": st.sampled_from(["Active", "Cancel", "active", "", None, 1, "Active\n"]),
    "productExternalId": _ID_NEAR,
    "investorExternalId": _ID_NEAR,
    "contactExternalId": _ID_NEAR,
    "toProductExternalId": _ID_NEAR,
    "toInvestorExternalId": _ID_NEAR,
    "amount": _QUANTITY_NEAR,
    "units": _QUANTITY_NEAR,
    "currency": CURRENCIES | st.sampled_from(["usd", "ZZZ", "US", "USDX", "", "USD\n", "EU€"]),
    "tradeDate": st.dates().map(date.isoformat) | ODD_DATES | ODD_DATES.map(escaped),
    "settlementDate": st.dates().map(date.isoformat) | ODD_DATES | ODD_DATES.map(escaped),
    "comments": COMMENTS
    | st.text(min_size=499, max_size=502)
    | st.sampled_from(["c" * 501, "😀" * 501, "\x00", "a\x00b", "\x01\x1f"]),
    "createDate": st.sampled_from([None, "", "2024-05-01T00:00:00Z", 0, False, []]),
    "changeDate": st.sampled_from([None, "", "2024-05-01T00:00:00Z", 0, False, {}]),
}


@st.composite
def mutation(draw: st.DrawFn, pairs: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """One change to the members: a value replaced, removed, repeated, swapped or made to collide."""
    members = dict(pairs)
    kind = draw(
        st.sampled_from(["near", "near", "near", "set", "delete", "repeat", "type", "collide", "dates"])
    )
    if kind == "near":
        key = draw(st.sampled_from(FIELDS))
        return [p for p in pairs if p[0] != key] + [(key, draw(NEAR[key]))]
    key = draw(KEYS)
    if kind == "set":
        return [p for p in pairs if p[0] != key] + [(key, draw(JSON_VALUES))]
    if kind == "delete":
        return [p for p in pairs if p[0] != key]
    if kind == "repeat":  # the same member twice: refused, whatever the decoders keep
        repeated = (key, draw(JSON_VALUES | st.just(members.get(key))))
        return [repeated, *pairs] if draw(st.booleans()) else [*pairs, repeated]
    if kind == "type":  # a valid record of one type relabelled as another
        return [p for p in pairs if p[0] != "type"] + [("type", draw(st.sampled_from(TransactionType)).value)]
    if kind == "collide":  # a destination equal to its source
        source, destination = draw(
            st.sampled_from(
                [("productExternalId", "toProductExternalId"), ("investorExternalId", "toInvestorExternalId")]
            )
        )
        return [p for p in pairs if p[0] != destination] + [(destination, members.get(source))]
    # dates: settlement around the trade date
    trade = members.get("tradeDate")
    if not isinstance(trade, str):
        return pairs
    days = timedelta(days=draw(st.integers(-2, 2)))
    try:
        shifted = date.fromisoformat(trade) + days
    except (ValueError, OverflowError):  # tradeDate already broken, or shifted past date.min/max
        return pairs
    return [p for p in pairs if p[0] != "settlementDate"] + [("settlementDate", shifted.isoformat())]


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A valid record, with none to a few mutations, as JSON text."""
    _, pairs = draw(valid_members())
    for _ in range(draw(st.integers(0, 3))):
        pairs = draw(mutation(pairs))
    return draw(encode(pairs))


# --- properties ------------------------------------------------------------------------------


@PROPERTY
@given(raw=records(), transfers_only=st.booleans())
def test_fast_path_equals_slow_path(raw: bytes, transfers_only: bool) -> None:
    event("fast path" if fast_path_accepts(raw, transfers_only=transfers_only) else "fallback")
    result = assert_same(raw, transfers_only=transfers_only)
    event("valid" if isinstance(result, tuple) and isinstance(result[0], PendingTransaction) else "refused")


@PROPERTY
@given(members=valid_members(), transfers_only=st.booleans(), data=st.data())
def test_valid_records_take_the_fast_path(
    members: tuple[TransactionType, list[tuple[str, object]]], transfers_only: bool, data: st.DataObject
) -> None:
    tx_type, pairs = members
    raw = data.draw(encode(pairs))
    result = assert_same(raw, transfers_only=transfers_only)
    assert isinstance(result, tuple)
    refused = transfers_only and tx_type not in TRANSFER_TYPES
    assert isinstance(result[0], list) == refused
    assert fast_path_accepts(raw, transfers_only=transfers_only) != refused


ABSENT = object()  # a member to remove


@PROPERTY
@given(members=valid_members(), data=st.data(), transfers_only=st.booleans())
def test_one_change_near_the_rules(
    members: tuple[TransactionType, list[tuple[str, object]]], data: st.DataObject, transfers_only: bool
) -> None:
    """A valid record with one member removed, nulled, or set to a value at the edge of its rules."""
    _, pairs = members
    key = data.draw(st.sampled_from(FIELDS))
    value = data.draw(NEAR[key] | st.sampled_from([ABSENT, None]))
    changed = [p for p in pairs if p[0] != key] + ([] if value is ABSENT else [(key, value)])
    assert_same(data.draw(encode(changed)), transfers_only=transfers_only)


JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# Decimal spellings around every edge of the plain form: signs, zeros, digits, places, exponents.
QUANTITY_TEXTS = st.from_regex(r"-?[0-9]{1,16}(\.[0-9]{0,9})?([eE][-+]?[0-9]{1,2})?", fullmatch=True)
QUANTITY_EDGES = st.one_of(
    QUANTITY_TEXTS,
    QUANTITY_TEXTS.filter(JSON_NUMBER.fullmatch).map(number),
    st.integers(-2, 2) | st.integers(10**13 - 2, 10**13 + 2) | st.integers(-(10**20), 10**20),
    st.decimals(allow_nan=False, allow_infinity=False).map(number),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


def check_quantity(value: object, places: int) -> None:
    """The shortcut for amounts and units returns what parse_quantity does, spelt the same."""
    decoded = _decoder().decode(encode_value(value))
    expected = parse_quantity(decoded, places)
    seen = msgspec.json.Decoder(float_hook=fast_validation._FloatText).decode(encode_value(value))
    got = fast_validation._quantity(seen, places)
    if isinstance(expected, str):
        assert got is None
    else:
        assert got is not None
        assert type(got) is Decimal
        assert got.as_tuple() == expected.as_tuple()


@PROPERTY
@given(
    value=QUANTITY_EDGES | JSON_VALUES | valid_quantities(2) | valid_quantities(6),
    places=st.sampled_from([2, 6]),
)
def test_quantity_shortcut_equals_parse_quantity(value: object, places: int) -> None:
    check_quantity(value, places)


QUANTITY_CASES = [
    True, False, None, 0, 1, -1, 10**13 - 1, 10**13, 10**13 + 1, 10**40, 1.5, 100.0, [], {}, [1], {"v": 1},
    "0", "0.0", "1", "1.50", "1.500", "0.01", "0.001", "0.000001", "0.0000001", "00.5", "01", "1.", ".5",
    "-1", "-0", "+1", " 1", "1 ", "1e2", "NaN", "Infinity", "", "\u0661", "9999999999999.99",
    "10000000000000", "10000000000000.00", "10000000000000.01", "99999999999999",
    *map(number, ["1.50", "1e2", "1E-2", "-0.0", "0.0", "0.10", "1e400", "1e-400", "9999999999999.99"]),
    *map(number, ["10000000000000.0", "10000000000000.01", "12.345", "12.3456789"]),
]  # fmt: skip


@pytest.mark.parametrize("value", QUANTITY_CASES)
@pytest.mark.parametrize("places", [2, 6])
def test_quantity_shortcut_cases(value: object, places: int) -> None:
    check_quantity(value, places)
    member = "amount" if places == 2 else "units"  # Partial Redemption takes either (the last type wins)
    assert_same(with_base(f'"type": "Partial Redemption", "{member}": {encode_value(value).decode()}'))


# --- hand-written texts ----------------------------------------------------------------------

BASE = (
    '"externalId": "TX-1", "type": "New Subscription", "productExternalId": "P1",'
    ' "investorExternalId": "I1", "tradeDate": "2024-05-01"'
)


def with_base(members: str) -> bytes:
    return ("{" + BASE + (", " + members if members else "") + "}").encode()


TEXTS = [
    with_base('"amount": "100.50"'),
    with_base('"amount": 100.50'),
    with_base('"amount": 1.0050e2'),
    with_base('"amount": 100'),
    with_base('"amount": -0.0'),
    with_base('"amount": 1e400'),
    with_base('"amount": 1E-400'),
    with_base('"amount": "1e2"'),
    with_base('"amount": "NaN"'),
    with_base('"amount": " 1"'),
    with_base('"amount": "\\u0031.5"'),
    with_base('"amount": "100.50", "amount": null'),
    with_base('"amount": null, "amount": "100.50"'),
    with_base('"amount": "1.5", "units": null, "status": null, "currency": null'),
    with_base('"amount": "1.5", "externalId": "TX-2"'),
    with_base('"amount": "1.5", "externalId": 2'),
    with_base('"amount": "1.5", "externalId": "bad id"'),
    with_base('"amount": "1.5", "tradeDate": "2024\\u002d05-01"'),
    with_base('"amount": "1.5", "tradeDate": "2026-02-30"'),
    with_base('"amount": "1.5", "settlementDate": "2024-04-30"'),
    with_base('"amount": "1.5", "createDate": null, "changeDate": null'),
    with_base('"amount": "1.5", "createDate": "2024-05-01T00:00:00Z"'),
    with_base('"amount": "1.5", "externalid": "x"'),
    with_base('"amount": "1.5", "status": "Cancel"'),
    with_base('"amount": "1.5", "status": "Active"'),
    with_base('"amount": "1.5", "comments": "\\ud83d\\ude00"'),
    with_base('"amount": "1.5", "comments": "\\ud800"'),
    with_base('"amount": "1.5", "productExternalId": "\\n"'),
    with_base('"amount": "1.5", "productExternalId": "P\\u00001"'),
    with_base('"amount": "1.5", "comments": "\\u0000"'),
    with_base('"amount": {"a": 1.5, "a": 2}'),
    with_base('"\\u0061mount": "1.5"'),
    with_base('"amount": "1.5", "\\u0063omments": "x"'),
    with_base('"amount": "1.5", "currency": "\\u0055SD"'),
    with_base(""),
    b"{}",
    b"[]",
    b'["TX-1"]',
    b'"TX-1"',
    b"5",
    b"null",
    b"true",
    b"{",
    b'{"externalId": "TX-1"} x',
    b"",
    with_base('"amount": "-5", "amount": "5"'),
    with_base('"amount": "5", "\\u0061mount": "-5"'),
    with_base('"amount" : "5", "amount"\n:"5"'),
    with_base('"amount": "5", "zeta": 1, "zeta": 2, "comments": "x", "comments": "x"'),
    with_base('"amount": "5", "comments": "a:b", "contactExternalId": "C:1"'),
    with_base('"amount": "5", "comments": "a\\":b"'),
    with_base('"amount": "5", "comments": {"a": 1, "a": 2}'),
    with_base('"amount": "5", "tradeDate": null, "tradeDate": "2024-05-02"'),
]


@pytest.mark.parametrize("raw", TEXTS)
@pytest.mark.parametrize("transfers_only", [False, True])
def test_hand_written_texts(raw: bytes, transfers_only: bool) -> None:
    assert_same(raw, transfers_only=transfers_only)


def test_a_repeated_member_is_refused_naming_it() -> None:
    assert validate_raw(with_base('"amount": "-5", "amount": "5"')) == (
        [Problem("amount", "duplicate member")],
        "TX-1",
    )
    spelt_apart = validate_raw(with_base('"\\u0061mount": "5", "amount": "5", "zeta": 1, "zeta": 1'))
    assert spelt_apart == (
        [
            Problem("amount", "duplicate member"),
            Problem("zeta", "duplicate member"),
            Problem("zeta", "unknown field"),
        ],
        "TX-1",
    )


HUGE_QUANTITIES = [
    ("1e99999999999999999999", "must be at most 10000000000000"),
    ("1.5E+99999999999999999999", "must be at most 10000000000000"),
    ("-1e99999999999999999999", "must be greater than 0"),
    ("0e99999999999999999999", "must be greater than 0"),
    ("0.00e-99999999999999999999", "must be greater than 0"),
    ("1e-99999999999999999999", "must have at most {places} decimal places"),
    ("1" + "0" * 5000, "must be at most 10000000000000"),
    ("-" + "9" * 5001, "must be greater than 0"),
]


@pytest.mark.parametrize(("literal", "reason"), HUGE_QUANTITIES)
def test_numbers_no_decimal_can_hold_are_refused_as_quantities(literal: str, reason: str) -> None:
    amount = validate_raw(with_base(f'"amount": {literal}'))
    assert amount == ([Problem("amount", reason.format(places=2))], "TX-1")
    units = validate_raw(with_base(f'"units": {literal}').replace(b"New Subscription", b"Partial Redemption"))
    assert units == ([Problem("units", reason.format(places=6))], "TX-1")


@pytest.mark.parametrize("literal", [literal for literal, _ in HUGE_QUANTITIES])
def test_numbers_no_decimal_can_hold_are_refused_anywhere(literal: str) -> None:
    raw = with_base(
        f'"amount": "1", "comments": {literal}, "settlementDate": [{literal}], "zeta": {{"a": {literal}}}'
    )
    assert validate_raw(raw) == (
        [
            Problem("settlementDate", "must be a date in yyyy-MM-dd format"),
            Problem("comments", "must be a string"),
            Problem("zeta", "unknown field"),
        ],
        "TX-1",
    )
    whole = f"[{literal}]".encode()
    assert validate_raw(whole) == ([Problem("", "must be a JSON object")], None)


HUGE_LITERALS = st.one_of(
    st.builds(
        "{}{}{}e{}{}".format,
        st.sampled_from(["", "-"]),
        st.integers(0, 10**6),
        st.sampled_from(["", ".0", ".5", ".000"]),
        st.sampled_from(["", "+", "-"]),
        st.integers(10**18 + 10**17, 10**30),
    ),
    st.builds(
        "{}{}{}".format,
        st.sampled_from(["", "-"]),
        st.integers(1, 9),
        st.integers(4300, 4400).map("7".__mul__),
    ),
)


@PROPERTY
@given(literal=HUGE_LITERALS, field=KEYS, nest=st.sampled_from(["{}", "[{}]", '{{"x": {}}}']))
def test_huge_numbers_in_any_member_are_a_problem_of_that_member(literal: str, field: str, nest: str) -> None:
    base = {
        "externalId": "TX-1",
        "type": "Partial Redemption",
        "productExternalId": "P1",
        "investorExternalId": "I1",
    }
    base["tradeDate"] = "2024-05-01"
    members = {**base, field: "@"}
    raw = json.dumps(members).replace('"@"', nest.format(literal)).encode()
    result, external_id = validate_raw(raw)
    assert isinstance(result, list)
    assert field in {p.field for p in result}
    assert external_id == (None if field == "externalId" else "TX-1")


def test_hand_written_valid_text_takes_the_fast_path() -> None:
    raw = with_base('"amount": 100.50')
    assert fast_path_accepts(raw)
    transaction, external_id = validate_raw(raw)
    assert isinstance(transaction, PendingTransaction)
    assert (str(transaction.amount), external_id) == ("100.5", "TX-1")


def test_refused_record_names_the_slow_paths_problems() -> None:
    assert validate_raw(with_base('"amount": "1e2", "zeta": 1')) == (
        [Problem("amount", "must be a decimal number"), Problem("zeta", "unknown field")],
        "TX-1",
    )
    assert validate_raw(b"[1]") == ([Problem("", "must be a JSON object")], None)


def test_malformed_json_raises_like_the_decoder() -> None:
    with pytest.raises(msgspec.DecodeError):
        validate_raw(b'{"externalId": ')


def _decodes(raw: bytes) -> bool:
    try:
        _decoder().decode(raw)
    except msgspec.DecodeError:
        return False
    return True


def test_records_of_a_batch_decoded_as_raw() -> None:
    batch = b"[" + b",".join(raw for raw in TEXTS if _decodes(raw)) + b"]"
    raws = msgspec.json.decode(batch, type=list[msgspec.Raw])
    for raw in raws:
        assert fast(raw) == slow(bytes(raw))
        assert fast(raw, transfers_only=True) == slow(bytes(raw), transfers_only=True)


def test_struct_names_the_contract_members() -> None:
    names = {field.encode_name for field in msgspec.structs.fields(fast_validation._Record)}
    assert names == set(FIELDS)


# --- micro-benchmark (run as a script, never as a test) -----------------------------------------


def _benchmark_records(count: int, seed: int = 7) -> list[bytes]:
    """`count` valid records of every type, as a client would send them."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        tx_type = list(TransactionType)[index % len(TransactionType)]
        record: dict[str, object] = {
            "externalId": f"TX-{index:08d}",
            "type": tx_type.value,
            "productExternalId": f"FUND-{rng.randrange(100):03d}-CLASS-A",
            "investorExternalId": f"INV-{rng.randrange(10**6):06d}",
            "currency": rng.choice(["USD", "EUR", "GBP"]),
            "tradeDate": "2024-05-01",
            "settlementDate": "2024-05-03",
        }
        if tx_type in SWITCH_TYPES or tx_type in TRANSFER_TYPES:
            record["toProductExternalId"] = "FUND-999-CLASS-B"
        quantity = f"{rng.randrange(1, 10**8)}.{rng.randrange(100):02d}"
        if tx_type in ONE_QUANTITY_TYPES:
            record["units"] = quantity
        elif tx_type not in NO_QUANTITY_TYPES:
            record["amount"] = quantity if index % 2 else Decimal(quantity)
        if index % 3 == 0:
            record["comments"] = "monthly instruction"
        out.append(msgspec.json.Encoder(decimal_format="number").encode(record))
    return out


def _best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _benchmark(count: int = 10_000, repeats: int = 7) -> None:
    raws = _benchmark_records(count)
    batch = b"[" + b",".join(raws) + b"]"
    decoder = _decoder()
    decoded = [decoder.decode(raw) for raw in raws]
    assert all(fast_path_accepts(raw) for raw in raws)
    assert all(fast(raw) == slow(raw) for raw in raws)

    def slow_validate_only() -> None:
        for record in decoded:
            validate_record(record)
            record_external_id(record)

    def slow_batch() -> None:  # the worker today: one untyped decode, then every record
        for record in decoder.decode(batch):
            validate_record(record)
            record_external_id(record)

    def fast_records() -> None:
        for raw in raws:
            validate_raw(raw)

    def fast_batch() -> None:  # the batch as raw records, then every record on the fast path
        for raw in msgspec.json.decode(batch, type=list[msgspec.Raw]):
            validate_raw(raw)

    print(f"{count} valid records, best of {repeats}, microseconds per record:")
    for label, run in [
        ("slow: validate_record on decoded records", slow_validate_only),
        ("slow: decode batch + validate_record", slow_batch),
        ("fast: validate_raw on record texts", fast_records),
        ("fast: decode batch as Raw + validate_raw", fast_batch),
    ]:
        print(f"  {label:44s} {_best_of(repeats, run) / count * 1e6:6.2f}")


if __name__ == "__main__":
    _benchmark()
