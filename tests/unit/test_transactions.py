"""Unit tests for the pending-transaction domain rules (section 5 of the API spec)."""

from datetime import date
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendingtx.domain.decimals import canonical_decimal
from pendingtx.domain.transactions import (
    TRANSFER_TYPES,
    PendingTransaction,
    Problem,
    TransactionStatus,
    TransactionType,
    record_external_id,
    to_json,
    validate_record,
)

ABSENT = object()  # marks a member to delete from the base record

BASE: dict[str, object] = {
    "externalId": "TX-1",
    "type": "New Subscription",
    "productExternalId": "P1",
    "investorExternalId": "I1",
    "amount": "100.50",
    "tradeDate": "2024-05-01",
}
ID_REASON = "must be 1-64 characters from A-Z a-z 0-9 . _ : -"
LENGTH_REASON = "must be 1-64 characters"
DATE_REASON = "must be a date in yyyy-MM-dd format"
NUMBER_REASON = "must be a decimal number"
# Digits of another script, written as escapes to keep the source unambiguous.
ARABIC_ONE = "\u0661"
ARABIC_DATE = "\u0662\u0660\u0662\u0664-\u0660\u0665-\u0660\u0661"
TYPE_REASON = "must be one of: " + ", ".join(t.value for t in TransactionType)


def make(**changes: object) -> dict[str, object]:
    """The valid base record with members replaced, added, or removed (value ABSENT)."""
    record = {**BASE, **changes}
    return {name: value for name, value in record.items() if value is not ABSENT}


def problems(record: object, **options: bool) -> list[Problem]:
    result = validate_record(record, **options)
    assert isinstance(result, list), f"expected problems, got {result!r}"
    assert result, "a refusal must name at least one problem"
    return result


def valid(record: object, **options: bool) -> PendingTransaction:
    result = validate_record(record, **options)
    assert isinstance(result, PendingTransaction), f"expected a transaction, got {result!r}"
    return result


# Each case breaks exactly one rule of the base record: (changes, field, reason).
SINGLE_PROBLEMS = [
    # externalId
    ({"externalId": ABSENT}, "externalId", "is required"),
    ({"externalId": None}, "externalId", "is required"),
    ({"externalId": ""}, "externalId", ID_REASON),
    ({"externalId": "has space"}, "externalId", ID_REASON),
    ({"externalId": "x" * 65}, "externalId", ID_REASON),
    ({"externalId": "TX-1\n"}, "externalId", ID_REASON),
    ({"externalId": "Ünïcode"}, "externalId", ID_REASON),
    ({"externalId": 42}, "externalId", "must be a string"),
    # type
    ({"type": ABSENT}, "type", "is required"),
    ({"type": "new subscription"}, "type", TYPE_REASON),
    ({"type": "Subscription"}, "type", TYPE_REASON),
    ({"type": 1}, "type", "must be a string"),
    # status
    ({"status": "Cancel"}, "status", "cannot be created as Cancel"),
    ({"status": "Pending"}, "status", "must be one of: Active, Cancel"),
    ({"status": "active"}, "status", "must be one of: Active, Cancel"),
    ({"status": True}, "status", "must be a string"),
    # productExternalId / investorExternalId / contactExternalId
    ({"productExternalId": ABSENT}, "productExternalId", "is required"),
    ({"productExternalId": None}, "productExternalId", "is required"),
    ({"productExternalId": ""}, "productExternalId", LENGTH_REASON),
    ({"productExternalId": "p" * 65}, "productExternalId", LENGTH_REASON),
    ({"productExternalId": 7}, "productExternalId", "must be a string"),
    ({"investorExternalId": ABSENT}, "investorExternalId", "is required"),
    ({"investorExternalId": ""}, "investorExternalId", LENGTH_REASON),
    ({"investorExternalId": "i" * 65}, "investorExternalId", LENGTH_REASON),
    ({"investorExternalId": ["I1"]}, "investorExternalId", "must be a string"),
    ({"contactExternalId": ""}, "contactExternalId", LENGTH_REASON),
    ({"contactExternalId": "c" * 65}, "contactExternalId", LENGTH_REASON),
    ({"contactExternalId": 3}, "contactExternalId", "must be a string"),
    # toProductExternalId / toInvestorExternalId outside their types
    ({"toProductExternalId": "P2"}, "toProductExternalId", "not allowed for type New Subscription"),
    ({"toInvestorExternalId": "I2"}, "toInvestorExternalId", "not allowed for type New Subscription"),
    # amount
    ({"amount": 0}, "amount", "must be greater than 0"),
    ({"amount": "0.00"}, "amount", "must be greater than 0"),
    ({"amount": "-1"}, "amount", "must be greater than 0"),
    ({"amount": Decimal("-0.5")}, "amount", "must be greater than 0"),
    ({"amount": "1.001"}, "amount", "must have at most 2 decimal places"),
    ({"amount": Decimal("0.001")}, "amount", "must have at most 2 decimal places"),
    ({"amount": Decimal("1E-400")}, "amount", "must have at most 2 decimal places"),
    ({"amount": 10**13 + 1}, "amount", "must be at most 10000000000000"),
    ({"amount": "10000000000000.01"}, "amount", "must be at most 10000000000000"),
    ({"amount": 10**40}, "amount", "must be at most 10000000000000"),
    ({"amount": Decimal("1E+400")}, "amount", "must be at most 10000000000000"),
    ({"amount": "1" + "0" * 5000}, "amount", "must be at most 10000000000000"),
    ({"amount": 1.5}, "amount", "must be an exact decimal; send it as a string"),
    ({"amount": True}, "amount", NUMBER_REASON),
    ({"amount": False}, "amount", NUMBER_REASON),
    ({"amount": "1e2"}, "amount", NUMBER_REASON),
    ({"amount": "NaN"}, "amount", NUMBER_REASON),
    ({"amount": "Infinity"}, "amount", NUMBER_REASON),
    ({"amount": Decimal("NaN")}, "amount", NUMBER_REASON),
    ({"amount": Decimal("sNaN")}, "amount", NUMBER_REASON),
    ({"amount": Decimal("-Infinity")}, "amount", NUMBER_REASON),
    ({"amount": " 1"}, "amount", NUMBER_REASON),
    ({"amount": "1\n"}, "amount", NUMBER_REASON),
    ({"amount": "+1"}, "amount", NUMBER_REASON),
    ({"amount": ".5"}, "amount", NUMBER_REASON),
    ({"amount": "1."}, "amount", NUMBER_REASON),
    ({"amount": "1,5"}, "amount", NUMBER_REASON),
    ({"amount": ARABIC_ONE}, "amount", NUMBER_REASON),
    ({"amount": ""}, "amount", NUMBER_REASON),
    ({"amount": {"value": 1}}, "amount", NUMBER_REASON),
    # currency
    ({"currency": "usd"}, "currency", "must be an ISO 4217 currency code"),
    ({"currency": "ZZZ"}, "currency", "must be an ISO 4217 currency code"),
    ({"currency": "US"}, "currency", "must be an ISO 4217 currency code"),
    ({"currency": "USDX"}, "currency", "must be an ISO 4217 currency code"),
    ({"currency": 840}, "currency", "must be a string"),
    # tradeDate / settlementDate
    ({"tradeDate": ABSENT}, "tradeDate", "is required"),
    ({"tradeDate": None}, "tradeDate", "is required"),
    ({"tradeDate": "2024-5-1"}, "tradeDate", DATE_REASON),
    ({"tradeDate": "20240501"}, "tradeDate", DATE_REASON),
    ({"tradeDate": "01/05/2024"}, "tradeDate", DATE_REASON),
    ({"tradeDate": "2024-05-01T00:00:00"}, "tradeDate", DATE_REASON),
    ({"tradeDate": "2024-05-01\n"}, "tradeDate", DATE_REASON),
    ({"tradeDate": "2023-02-29"}, "tradeDate", DATE_REASON),
    ({"tradeDate": "2024-13-01"}, "tradeDate", DATE_REASON),
    ({"tradeDate": "0000-01-01"}, "tradeDate", DATE_REASON),
    ({"tradeDate": ARABIC_DATE}, "tradeDate", DATE_REASON),
    ({"tradeDate": 20240501}, "tradeDate", DATE_REASON),
    ({"settlementDate": "2024-04-30"}, "settlementDate", "must not be before tradeDate"),
    ({"settlementDate": "2024/05/02"}, "settlementDate", DATE_REASON),
    # comments
    ({"comments": "c" * 501}, "comments", "must be at most 500 characters"),
    ({"comments": 5}, "comments", "must be a string"),
    # server-owned and unknown members
    ({"createDate": "2024-05-01T00:00:00Z"}, "createDate", "is read-only; set by the server"),
    ({"changeDate": "2024-05-01T00:00:00Z"}, "changeDate", "is read-only; set by the server"),
    ({"ammount": "5"}, "ammount", "unknown field"),
    ({"ExternalId": "TX-2"}, "ExternalId", "unknown field"),
]


@pytest.mark.parametrize(("changes", "field", "reason"), SINGLE_PROBLEMS)
def test_single_rule_violation_is_reported(changes: dict[str, object], field: str, reason: str) -> None:
    assert problems(make(**changes)) == [Problem(field, reason)]


# Each case satisfies a rule in a less obvious way: (changes, attribute, expected value).
ACCEPTED = [
    ({"externalId": "A.b_c:d-9"}, "external_id", "A.b_c:d-9"),
    ({"externalId": "x" * 64}, "external_id", "x" * 64),
    ({"status": ABSENT}, "status", TransactionStatus.ACTIVE),
    ({"status": None}, "status", TransactionStatus.ACTIVE),
    ({"status": "Active"}, "status", TransactionStatus.ACTIVE),
    ({"productExternalId": "p" * 64}, "product_external_id", "p" * 64),
    ({"productExternalId": "Fund A / class é"}, "product_external_id", "Fund A / class é"),
    ({"investorExternalId": "i" * 64}, "investor_external_id", "i" * 64),
    ({"contactExternalId": ABSENT}, "contact_external_id", None),
    ({"contactExternalId": None}, "contact_external_id", None),
    ({"contactExternalId": "C 1"}, "contact_external_id", "C 1"),
    ({"toProductExternalId": None}, "to_product_external_id", None),
    ({"amount": 1}, "amount", Decimal(1)),
    ({"amount": "0.01"}, "amount", Decimal("0.01")),
    ({"amount": Decimal("12.3")}, "amount", Decimal("12.3")),
    ({"amount": Decimal("1.500")}, "amount", Decimal("1.5")),
    ({"amount": "00012.50"}, "amount", Decimal("12.5")),
    ({"amount": 10**13}, "amount", Decimal(10**13)),
    ({"amount": "10000000000000.00"}, "amount", Decimal(10**13)),
    ({"amount": Decimal("1E+2")}, "amount", Decimal(100)),
    ({"amount": "1." + "0" * 5000}, "amount", Decimal(1)),
    ({"currency": ABSENT}, "currency", "USD"),
    ({"currency": None}, "currency", "USD"),
    ({"currency": "EUR"}, "currency", "EUR"),
    ({"currency": "JPY"}, "currency", "JPY"),
    ({"tradeDate": "2024-02-29"}, "trade_date", date(2024, 2, 29)),
    ({"settlementDate": ABSENT}, "settlement_date", None),
    ({"settlementDate": None}, "settlement_date", None),
    ({"settlementDate": "2024-05-01"}, "settlement_date", date(2024, 5, 1)),
    ({"settlementDate": "2024-05-03"}, "settlement_date", date(2024, 5, 3)),
    ({"comments": "c" * 500}, "comments", "c" * 500),
    ({"comments": ""}, "comments", ""),
    ({"comments": None}, "comments", None),
    ({"createDate": None, "changeDate": None}, "external_id", "TX-1"),
]


@pytest.mark.parametrize(("changes", "attribute", "expected"), ACCEPTED)
def test_rule_satisfied_is_accepted(changes: dict[str, object], attribute: str, expected: object) -> None:
    assert getattr(valid(make(**changes)), attribute) == expected


def test_base_record_is_normalized() -> None:
    assert valid(make()) == PendingTransaction(
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
        trade_date=date(2024, 5, 1),
        settlement_date=None,
        comments=None,
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1E+2"), "100"),
        (Decimal("1.20E+3"), "1200"),
        (Decimal("1.500"), "1.5"),
        ("100.00", "100"),
        (Decimal("0.10"), "0.1"),
        (Decimal("12345678901.23"), "12345678901.23"),
    ],
)
def test_amount_is_stored_exactly_without_exponent_form(value: object, text: str) -> None:
    assert str(valid(make(amount=value)).amount) == text


@pytest.mark.parametrize(
    ("units", "problem"),
    [
        (0, "must be greater than 0"),
        ("-0.5", "must be greater than 0"),
        ("0.0000001", "must have at most 6 decimal places"),
        (10**13 + 1, "must be at most 10000000000000"),
        (Decimal("1E+400"), "must be at most 10000000000000"),
        (True, NUMBER_REASON),
        (2.5, "must be an exact decimal; send it as a string"),
        ("1E3", NUMBER_REASON),
    ],
)
def test_units_rules_refuse(units: object, problem: str) -> None:
    record = make(type="Partial Redemption", amount=ABSENT, units=units)
    assert problems(record) == [Problem("units", problem)]


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("0.000001", "0.000001"),
        ("1.123456", "1.123456"),
        (Decimal("2.5000000"), "2.5"),
        (10**13, "10000000000000"),
        (Decimal("3E+1"), "30"),
    ],
)
def test_units_rules_accept(units: object, expected: str) -> None:
    record = make(type="Partial Redemption", amount=ABSENT, units=units)
    assert str(valid(record).units) == expected


# The right amount/units shape (and destinations) for each of the fifteen types.
SHAPES: dict[TransactionType, dict[str, object]] = {
    TransactionType.NEW_SUBSCRIPTION: {"amount": "10"},
    TransactionType.ADDITIONAL_SUBSCRIPTION: {"amount": "10"},
    TransactionType.FULL_REDEMPTION: {},
    TransactionType.PARTIAL_REDEMPTION: {"units": "1.5"},
    TransactionType.FULL_TRANSFER: {"toInvestorExternalId": "I2"},
    TransactionType.PARTIAL_TRANSFER: {"amount": "10", "toProductExternalId": "P2"},
    TransactionType.FULL_SWITCH_OR_EXCHANGE: {"toProductExternalId": "P2"},
    TransactionType.PARTIAL_SWITCH_OR_EXCHANGE: {"units": "3", "toProductExternalId": "P2"},
    TransactionType.NEW_COMMITMENT: {"amount": "10"},
    TransactionType.ACCOUNT_MAINTENANCE: {},
    TransactionType.DIVIDEND: {"amount": "10"},
    TransactionType.REBATE: {"amount": "10"},
    TransactionType.EQUALIZATION: {"amount": "10"},
    TransactionType.DISTRIBUTION: {"amount": "10"},
    TransactionType.CAPITAL_CALL: {"amount": "10"},
}
FULL_TYPES = ["Full Redemption", "Full Transfer", "Full Switch or Exchange", "Account Maintenance"]
PARTIAL_TYPES = ["Partial Redemption", "Partial Transfer", "Partial Switch or Exchange"]
AMOUNT_TYPES = [
    "New Subscription", "Additional Subscription", "New Commitment", "Dividend", "Rebate",
    "Equalization", "Distribution", "Capital Call",
]  # fmt: skip


def shaped(tx_type: str, **changes: object) -> dict[str, object]:
    """A valid record of `tx_type`, then with `changes` applied."""
    members = {"type": tx_type, "amount": ABSENT, **SHAPES[TransactionType(tx_type)], **changes}
    return make(**members)


def test_type_lists_cover_all_fifteen_types() -> None:
    assert len(TransactionType) == 15
    assert set(SHAPES) == set(TransactionType)
    assert {*FULL_TYPES, *PARTIAL_TYPES, *AMOUNT_TYPES} == {t.value for t in TransactionType}
    assert {TransactionType.FULL_TRANSFER, TransactionType.PARTIAL_TRANSFER} == TRANSFER_TYPES


@pytest.mark.parametrize("tx_type", list(TransactionType))
def test_every_type_is_accepted_with_its_shape(tx_type: TransactionType) -> None:
    transaction = valid(shaped(tx_type.value))
    assert transaction.type is tx_type
    assert transaction.amount == (Decimal(10) if "amount" in SHAPES[tx_type] else None)


@pytest.mark.parametrize("tx_type", FULL_TYPES)
@pytest.mark.parametrize("member", ["amount", "units"])
def test_full_types_take_no_quantity(tx_type: str, member: str) -> None:
    assert problems(shaped(tx_type, **{member: "5"})) == [Problem(member, f"not allowed for type {tx_type}")]


@pytest.mark.parametrize("tx_type", PARTIAL_TYPES)
@pytest.mark.parametrize("quantities", [{}, {"amount": "5", "units": "5"}])
def test_partial_types_take_exactly_one_quantity(tx_type: str, quantities: dict[str, object]) -> None:
    record = shaped(tx_type, **{"amount": ABSENT, "units": ABSENT, **quantities})
    reason = f"exactly one of amount or units is required for type {tx_type}"
    assert problems(record) == [Problem("amount", reason)]


@pytest.mark.parametrize("tx_type", PARTIAL_TYPES)
@pytest.mark.parametrize("member", ["amount", "units"])
def test_partial_types_accept_either_quantity(tx_type: str, member: str) -> None:
    transaction = valid(shaped(tx_type, **{"amount": ABSENT, "units": ABSENT, member: "5"}))
    assert getattr(transaction, member) == Decimal(5)


@pytest.mark.parametrize("tx_type", AMOUNT_TYPES)
def test_other_types_require_amount(tx_type: str) -> None:
    assert problems(shaped(tx_type, amount=ABSENT)) == [Problem("amount", f"required for type {tx_type}")]


@pytest.mark.parametrize("tx_type", AMOUNT_TYPES)
def test_other_types_refuse_units(tx_type: str) -> None:
    assert problems(shaped(tx_type, units="5")) == [Problem("units", f"not allowed for type {tx_type}")]


@pytest.mark.parametrize("tx_type", ["Full Switch or Exchange", "Partial Switch or Exchange"])
def test_switch_requires_a_different_to_product(tx_type: str) -> None:
    missing = problems(shaped(tx_type, toProductExternalId=ABSENT))
    assert missing == [Problem("toProductExternalId", f"required for type {tx_type}")]
    same = problems(shaped(tx_type, toProductExternalId="P1"))
    assert same == [Problem("toProductExternalId", "must differ from productExternalId")]
    assert valid(shaped(tx_type, toProductExternalId="P2")).to_product_external_id == "P2"


@pytest.mark.parametrize("tx_type", ["Full Switch or Exchange", "Partial Switch or Exchange"])
def test_switch_refuses_to_investor(tx_type: str) -> None:
    assert problems(shaped(tx_type, toInvestorExternalId="I2")) == [
        Problem("toInvestorExternalId", f"not allowed for type {tx_type}")
    ]


@pytest.mark.parametrize("tx_type", ["Full Transfer", "Partial Transfer"])
@pytest.mark.parametrize(
    ("destinations", "expected"),
    [
        ({"toInvestorExternalId": "I2"}, ("I2", None)),
        ({"toProductExternalId": "P2"}, (None, "P2")),
        ({"toInvestorExternalId": "I2", "toProductExternalId": "P2"}, ("I2", "P2")),
    ],
)
def test_transfer_accepts_any_destination(
    tx_type: str, destinations: dict[str, object], expected: tuple[str | None, str | None]
) -> None:
    record = shaped(tx_type, toInvestorExternalId=ABSENT, toProductExternalId=ABSENT)
    transaction = valid({**record, **destinations})
    assert (transaction.to_investor_external_id, transaction.to_product_external_id) == expected


AT_LEAST_ONE = "at least one of toInvestorExternalId or toProductExternalId is required for type {}"


@pytest.mark.parametrize("tx_type", ["Full Transfer", "Partial Transfer"])
@pytest.mark.parametrize(
    ("destinations", "field", "reason"),
    [
        ({}, "toInvestorExternalId", AT_LEAST_ONE),
        ({"toInvestorExternalId": None}, "toInvestorExternalId", AT_LEAST_ONE),
        ({"toInvestorExternalId": "I1"}, "toInvestorExternalId", "must differ from investorExternalId"),
        ({"toProductExternalId": "P1"}, "toProductExternalId", "must differ from productExternalId"),
        (
            {"toProductExternalId": "P1", "toInvestorExternalId": "I2"},
            "toProductExternalId",
            "must differ from productExternalId",
        ),
        ({"toInvestorExternalId": ""}, "toInvestorExternalId", LENGTH_REASON),
        ({"toProductExternalId": 9}, "toProductExternalId", "must be a string"),
    ],
)
def test_transfer_destination_rules(
    tx_type: str, destinations: dict[str, object], field: str, reason: str
) -> None:
    record = shaped(tx_type, toInvestorExternalId=ABSENT, toProductExternalId=ABSENT)
    assert problems({**record, **destinations}) == [Problem(field, reason.format(tx_type))]


@pytest.mark.parametrize("tx_type", ["Full Transfer", "Partial Transfer"])
def test_transfers_endpoint_accepts_transfer_types(tx_type: str) -> None:
    assert valid(shaped(tx_type), transfers_only=True).type == tx_type


@pytest.mark.parametrize("tx_type", [t for t in TransactionType if t not in TRANSFER_TYPES])
def test_transfers_endpoint_refuses_other_types(tx_type: TransactionType) -> None:
    assert problems(shaped(tx_type.value), transfers_only=True) == [
        Problem("type", "must be Full Transfer or Partial Transfer on /v1/transfers")
    ]


def test_cancel_is_allowed_on_update_only() -> None:
    assert problems(make(status="Cancel")) == [Problem("status", "cannot be created as Cancel")]
    assert valid(make(status="Cancel"), for_update=True).status is TransactionStatus.CANCEL
    assert valid(make(), for_update=True).status is TransactionStatus.ACTIVE
    assert problems(make(status="Closed"), for_update=True) == [
        Problem("status", "must be one of: Active, Cancel")
    ]


@pytest.mark.parametrize("record", [None, [], [BASE], "TX-1", 5, True])
def test_non_object_record_is_one_problem(record: object) -> None:
    assert problems(record) == [Problem("", "must be a JSON object")]


def test_all_problems_are_reported_in_table_order() -> None:
    record = {
        "zeta": 1,
        "comments": "c" * 501,
        "amount": True,
        "type": "Dividend",
        "units": "1",
        "alpha": None,
        "externalId": "bad id",
        "tradeDate": "yesterday",
        "currency": "usd",
        "createDate": "2024-01-01T00:00:00Z",
    }
    assert problems(record) == [
        Problem("externalId", ID_REASON),
        Problem("productExternalId", "is required"),
        Problem("investorExternalId", "is required"),
        Problem("amount", NUMBER_REASON),
        Problem("units", "not allowed for type Dividend"),
        Problem("currency", "must be an ISO 4217 currency code"),
        Problem("tradeDate", DATE_REASON),
        Problem("comments", "must be at most 500 characters"),
        Problem("createDate", "is read-only; set by the server"),
        Problem("alpha", "unknown field"),
        Problem("zeta", "unknown field"),
    ]


def test_empty_object_names_every_required_member() -> None:
    assert [p.field for p in problems({})] == [
        "externalId", "type", "productExternalId", "investorExternalId", "tradeDate",
    ]  # fmt: skip


def test_unknown_type_still_checks_quantities_generically() -> None:
    record = make(type="Gift", amount="1.001", units="2")
    assert problems(record) == [
        Problem("type", TYPE_REASON),
        Problem("amount", "must have at most 2 decimal places"),
    ]


def test_json_decoded_numbers_are_handled() -> None:
    decoder = msgspec.json.Decoder(float_hook=Decimal)
    record = decoder.decode(
        b'{"externalId": "J1", "type": "Dividend", "productExternalId": "P",'
        b' "investorExternalId": "I", "amount": 1.20e2, "tradeDate": "2024-01-02"}'
    )
    assert str(valid(record).amount) == "120"
    for huge in (b"1E+400", b"1" + b"0" * 40, b"1e-400"):
        assert len(problems({**record, "amount": decoder.decode(huge)})) == 1


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"externalId": "TX-9"}, "TX-9"),
        ({"externalId": "not valid but a string"}, "not valid but a string"),
        ({"externalId": 9}, None),
        ({}, None),
        (["TX-9"], None),
        (None, None),
    ],
)
def test_record_external_id(record: object, expected: str | None) -> None:
    assert record_external_id(record) == expected


def test_to_json_omits_absent_members() -> None:
    assert to_json(valid(make(settlementDate="2024-05-03", comments="hi"))) == {
        "externalId": "TX-1",
        "type": "New Subscription",
        "status": "Active",
        "productExternalId": "P1",
        "investorExternalId": "I1",
        "amount": Decimal("100.5"),
        "currency": "USD",
        "tradeDate": "2024-05-01",
        "settlementDate": "2024-05-03",
        "comments": "hi",
    }


# --- round trip -----------------------------------------------------------------------------

EXTERNAL_IDS = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
# Valid text: anything but NUL, which no member may hold.
VALID_TEXT = st.characters(exclude_characters="\x00")
OTHER_IDS = st.text(VALID_TEXT, min_size=1, max_size=64)
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**13), places=2)
UNITS = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**13), places=6)


@st.composite
def transactions(draw: st.DrawFn) -> PendingTransaction:
    """Any valid transaction, with its values already in normalized form."""
    tx_type = draw(st.sampled_from(TransactionType))
    product, investor = draw(OTHER_IDS), draw(OTHER_IDS)
    other_product = OTHER_IDS.filter(lambda v: v != product)
    other_investor = OTHER_IDS.filter(lambda v: v != investor)
    to_product = to_investor = None
    if tx_type in {TransactionType.FULL_SWITCH_OR_EXCHANGE, TransactionType.PARTIAL_SWITCH_OR_EXCHANGE}:
        to_product = draw(other_product)
    if tx_type in TRANSFER_TYPES:
        to_product = draw(st.none() | other_product)
        to_investor = draw(other_investor if to_product is None else st.none() | other_investor)
    amount = units = None
    if tx_type.value in AMOUNT_TYPES:
        amount = draw(AMOUNTS)
    elif tx_type.value in PARTIAL_TYPES:
        if draw(st.booleans()):
            amount = draw(AMOUNTS)
        else:
            units = draw(UNITS)
    trade_date = draw(st.dates())
    return PendingTransaction(
        external_id=draw(EXTERNAL_IDS),
        type=tx_type,
        status=draw(st.sampled_from(TransactionStatus)),
        product_external_id=product,
        investor_external_id=investor,
        contact_external_id=draw(st.none() | OTHER_IDS),
        to_product_external_id=to_product,
        to_investor_external_id=to_investor,
        amount=None if amount is None else canonical_decimal(amount),
        units=None if units is None else canonical_decimal(units),
        currency=draw(st.sampled_from(["USD", "EUR", "GBP", "JPY", "CHF", "BHD"])),
        trade_date=trade_date,
        settlement_date=draw(st.none() | st.dates(min_value=trade_date)),
        comments=draw(st.none() | st.text(VALID_TEXT, max_size=500)),
    )


# No deadline: the first currency check loads pycountry's database. No example database,
# so the run leaves no files behind.
@settings(deadline=None, database=None, max_examples=200)
@given(transactions())
def test_to_json_round_trips(tx: PendingTransaction) -> None:
    encoded = to_json(tx)
    assert validate_record(encoded, for_update=True) == tx
    assert to_json(valid(encoded, for_update=True)) == encoded
    for quantity in (tx.amount, tx.units):
        assert quantity is None or "E" not in str(quantity)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=70)
    | st.sampled_from(["Full Transfer", "Partial Redemption", "Dividend", "P1", "I1", "2024-05-01", "EUR"])
)
MEMBER_NAMES = st.sampled_from([*BASE, "status", "units", "currency", "toProductExternalId"]) | st.text()


@settings(deadline=None, database=None, max_examples=300)
@given(st.dictionaries(MEMBER_NAMES, JSON_SCALARS | st.lists(JSON_SCALARS, max_size=2), max_size=12))
def test_any_decoded_object_gets_a_verdict_without_raising(record: dict[str, object]) -> None:
    result = validate_record(record)
    if isinstance(result, list):
        assert result
        assert all(isinstance(problem, Problem) and problem.reason for problem in result)
    else:
        assert validate_record(to_json(result)) == result


@pytest.mark.parametrize("field", ["externalId", "productExternalId", "investorExternalId", "comments"])
def test_nul_characters_are_refused_in_any_text_member(field: str) -> None:
    record = {
        "externalId": "N-1",
        "type": "New Subscription",
        "productExternalId": "FUND-A",
        "investorExternalId": "INV-1",
        "amount": "1",
        "tradeDate": "2026-11-27",
    }
    record[field] = "a\x00b"
    assert validate_record(record) == [Problem(field, "must not contain NUL characters")]
