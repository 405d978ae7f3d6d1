"""Domain rules for pending-transaction records: validation, normalisation and JSON form."""

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

import pycountry

from pendingtx.domain.decimals import parse_quantity


class TransactionType(StrEnum):
    """The fifteen transaction types, spelt exactly as clients send them."""

    NEW_SUBSCRIPTION = "New Subscription"
    ADDITIONAL_SUBSCRIPTION = "Additional Subscription"
    FULL_REDEMPTION = "Full Redemption"
    PARTIAL_REDEMPTION = "Partial Redemption"
    FULL_TRANSFER = "Full Transfer"
    PARTIAL_TRANSFER = "Partial Transfer"
    FULL_SWITCH_OR_EXCHANGE = "Full Switch or Exchange"
    PARTIAL_SWITCH_OR_EXCHANGE = "Partial Switch or Exchange"
    NEW_COMMITMENT = "New Commitment"
    ACCOUNT_MAINTENANCE = "Account Maintenance"
    DIVIDEND = "Dividend"
    REBATE = "Rebate"
    EQUALIZATION = "Equalization"
    DISTRIBUTION = "Distribution"
    CAPITAL_CALL = "Capital Call"


class TransactionStatus(StrEnum):
    """Lifecycle status of a pending transaction."""

    ACTIVE = "Active"
    CANCEL = "Cancel"


TRANSFER_TYPES: frozenset[TransactionType] = frozenset(
    {TransactionType.FULL_TRANSFER, TransactionType.PARTIAL_TRANSFER}
)
SWITCH_TYPES: frozenset[TransactionType] = frozenset(
    {TransactionType.FULL_SWITCH_OR_EXCHANGE, TransactionType.PARTIAL_SWITCH_OR_EXCHANGE}
)
# Types that move a whole holding or none at all, so a quantity would be meaningless.
NO_QUANTITY_TYPES: frozenset[TransactionType] = frozenset(
    {
        TransactionType.FULL_REDEMPTION,
        TransactionType.FULL_TRANSFER,
        TransactionType.FULL_SWITCH_OR_EXCHANGE,
        TransactionType.ACCOUNT_MAINTENANCE,
    }
)
ONE_QUANTITY_TYPES: frozenset[TransactionType] = frozenset(
    {
        TransactionType.PARTIAL_REDEMPTION,
        TransactionType.PARTIAL_TRANSFER,
        TransactionType.PARTIAL_SWITCH_OR_EXCHANGE,
    }
)

DEFAULT_CURRENCY = "USD"
MAX_COMMENT_LENGTH = 500
# Every identifier is 1 to this many characters; an externalId only of these characters.
MAX_ID_LENGTH = 64
EXTERNAL_ID_CHARACTERS = "A-Za-z0-9._:-"
AMOUNT_PLACES = 2
UNITS_PLACES = 6

# Table order of the contract; problems are reported in this order, unknown members last.
_FIELDS = (
    "externalId", "type", "status", "productExternalId", "investorExternalId",
    "contactExternalId", "toProductExternalId", "toInvestorExternalId", "amount", "units",
    "currency", "tradeDate", "settlementDate", "comments", "createDate", "changeDate",
)  # fmt: skip
_FIELD_RANK = {name: rank for rank, name in enumerate(_FIELDS)}
_READ_ONLY = ("createDate", "changeDate")

_EXTERNAL_ID = re.compile(f"[{EXTERNAL_ID_CHARACTERS}]{{1,{MAX_ID_LENGTH}}}")
_EXTERNAL_ID_REASON = f"must be 1-{MAX_ID_LENGTH} characters from A-Z a-z 0-9 . _ : -"
_ID_LENGTH_REASON = f"must be 1-{MAX_ID_LENGTH} characters"
# ASCII so that other scripts' digits are not taken for a date.
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DATE_REASON = "must be a date in yyyy-MM-dd format"
_CURRENCY_TEXT = re.compile(r"[A-Z]{3}")
# Value sets, because `str in EnumClass` raises TypeError before Python 3.12.
_TYPE_VALUES = frozenset(t.value for t in TransactionType)
_STATUS_VALUES = frozenset(s.value for s in TransactionStatus)
_TYPE_REASON = "must be one of: " + ", ".join(TransactionType)
_STATUS_REASON = "must be one of: " + ", ".join(TransactionStatus)
_COMMENT_REASON = f"must be at most {MAX_COMMENT_LENGTH} characters"
_TRANSFERS_ONLY_REASON = "must be Full Transfer or Partial Transfer on /v1/transfers"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a record was refused; `field` is the JSON member, "" for the whole record."""

    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class PendingTransaction:
    """A validated, normalised pending transaction."""

    external_id: str
    type: TransactionType
    status: TransactionStatus
    product_external_id: str
    investor_external_id: str
    contact_external_id: str | None
    to_product_external_id: str | None
    to_investor_external_id: str | None
    amount: Decimal | None
    units: Decimal | None
    currency: str
    trade_date: date
    settlement_date: date | None
    comments: str | None


@functools.cache
def _currency_codes() -> frozenset[str]:
    """ISO 4217 alphabetic codes, read from pycountry's database on first use only."""
    return frozenset(str(currency.alpha_3) for currency in pycountry.currencies)


def _is_currency(code: str) -> bool:
    return _CURRENCY_TEXT.fullmatch(code) is not None and code in _currency_codes()


def _is_comment_length(value: str) -> bool:
    return len(value) <= MAX_COMMENT_LENGTH


def _is_id_length(value: str) -> bool:
    return 1 <= len(value) <= MAX_ID_LENGTH


def _is_external_id(value: str) -> bool:
    return _EXTERNAL_ID.fullmatch(value) is not None


class _Checker:
    """Reads the members of one record, collecting every problem found on the way."""

    def __init__(self, record: Mapping[object, object]) -> None:
        self.record = record
        self.problems: list[Problem] = []

    def fail(self, field: str, reason: str) -> None:
        self.problems.append(Problem(field, reason))

    def present(self, field: str) -> bool:
        """Whether the member is there; JSON null counts as absent."""
        return self.record.get(field) is not None

    def string(self, field: str, *, required: bool, check: Callable[[str], bool], reason: str) -> str | None:
        """The member as a string passing `check`, else None (with a problem if it was wrong)."""
        value = self.record.get(field)
        if value is None:
            if required:
                self.fail(field, "is required")
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        if "\x00" in value:
            # PostgreSQL cannot store NUL in text, and no identifier or comment needs one.
            self.fail(field, "must not contain NUL characters")
            return None
        if not check(value):
            self.fail(field, reason)
            return None
        return value

    def read_date(self, field: str, *, required: bool) -> date | None:
        """The member as a yyyy-MM-dd date, else None (with a problem if it was wrong)."""
        value = self.record.get(field)
        if value is None:
            if required:
                self.fail(field, "is required")
            return None
        if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass  # well-formed but not a calendar date, such as 2024-02-30
        self.fail(field, _DATE_REASON)
        return None

    def sorted_problems(self) -> list[Problem]:
        # Stable sort: several problems on one member keep the order they were found in.
        return sorted(self.problems, key=lambda p: (_FIELD_RANK.get(p.field, len(_FIELDS)), p.field))


def _read_id(checker: _Checker, field: str, *, required: bool) -> str | None:
    return checker.string(field, required=required, check=_is_id_length, reason=_ID_LENGTH_REASON)


def _read_type(checker: _Checker, transfers_only: bool) -> TransactionType | None:
    value = checker.string("type", required=True, check=_TYPE_VALUES.__contains__, reason=_TYPE_REASON)
    if value is None:
        return None
    tx_type = TransactionType(value)
    if transfers_only and tx_type not in TRANSFER_TYPES:
        checker.fail("type", _TRANSFERS_ONLY_REASON)
    return tx_type


def _read_status(checker: _Checker, for_update: bool) -> TransactionStatus:
    value = checker.record.get("status")
    if value is None:
        return TransactionStatus.ACTIVE
    if not isinstance(value, str):
        checker.fail("status", "must be a string")
    elif value not in _STATUS_VALUES:
        checker.fail("status", _STATUS_REASON)
    elif value == TransactionStatus.CANCEL and not for_update:
        checker.fail("status", "cannot be created as Cancel")
    else:
        return TransactionStatus(value)
    return TransactionStatus.ACTIVE  # placeholder; the problem above rejects the record


def _read_destination(
    checker: _Checker,
    field: str,
    tx_type: TransactionType | None,
    allowed: frozenset[TransactionType],
    source: tuple[str, str | None],
) -> str | None:
    """Read a to*ExternalId member, which must differ from its (field name, value) source."""
    if tx_type is not None and tx_type not in allowed and checker.present(field):
        checker.fail(field, f"not allowed for type {tx_type}")
        return None
    value = _read_id(checker, field, required=False)
    source_field, source_value = source
    if value is not None and value == source_value:
        checker.fail(field, f"must differ from {source_field}")
        return None
    return value


def _read_destinations(
    checker: _Checker, tx_type: TransactionType | None, product: str | None, investor: str | None
) -> tuple[str | None, str | None]:
    """Read toProductExternalId and toInvestorExternalId with their per-type rules."""
    to_product = _read_destination(
        checker, "toProductExternalId", tx_type, SWITCH_TYPES | TRANSFER_TYPES, ("productExternalId", product)
    )
    to_investor = _read_destination(
        checker, "toInvestorExternalId", tx_type, TRANSFER_TYPES, ("investorExternalId", investor)
    )
    if tx_type in SWITCH_TYPES and not checker.present("toProductExternalId"):
        checker.fail("toProductExternalId", f"required for type {tx_type}")
    has_either = checker.present("toProductExternalId") or checker.present("toInvestorExternalId")
    if tx_type in TRANSFER_TYPES and not has_either:
        checker.fail(
            "toInvestorExternalId",
            f"at least one of toInvestorExternalId or toProductExternalId is required for type {tx_type}",
        )
    return to_product, to_investor


def _read_quantity(
    checker: _Checker, field: str, tx_type: TransactionType | None, *, allowed: bool, places: int
) -> Decimal | None:
    value = checker.record.get(field)
    if value is None:
        return None
    if not allowed:
        checker.fail(field, f"not allowed for type {tx_type}")
        return None
    parsed = parse_quantity(value, places)
    if isinstance(parsed, str):
        checker.fail(field, parsed)
        return None
    return parsed


def _read_quantities(
    checker: _Checker, tx_type: TransactionType | None
) -> tuple[Decimal | None, Decimal | None]:
    """Read amount and units, enforcing which of them the type takes."""
    amount_allowed = tx_type not in NO_QUANTITY_TYPES
    units_allowed = tx_type is None or tx_type in ONE_QUANTITY_TYPES
    amount = _read_quantity(checker, "amount", tx_type, allowed=amount_allowed, places=AMOUNT_PLACES)
    units = _read_quantity(checker, "units", tx_type, allowed=units_allowed, places=UNITS_PLACES)
    has_amount, has_units = checker.present("amount"), checker.present("units")
    if tx_type in ONE_QUANTITY_TYPES and has_amount == has_units:
        checker.fail("amount", f"exactly one of amount or units is required for type {tx_type}")
    elif tx_type is not None and amount_allowed and not units_allowed and not has_amount:
        checker.fail("amount", f"required for type {tx_type}")
    return amount, units


def _read_settlement(checker: _Checker, trade_date: date | None) -> date | None:
    settlement = checker.read_date("settlementDate", required=False)
    if settlement is not None and trade_date is not None and settlement < trade_date:
        checker.fail("settlementDate", "must not be before tradeDate")
        return None
    return settlement


def _check_extra_members(checker: _Checker) -> None:
    """Refuse server-owned members and any member the contract does not name."""
    for field in _READ_ONLY:
        if checker.present(field):
            checker.fail(field, "is read-only; set by the server")
    # Named rather than dropped, so a misspelt optional member is never silently ignored.
    unknown = sorted(str(key) for key in checker.record if key not in _FIELD_RANK)
    for name in unknown:
        checker.fail(name, "unknown field")


REPEATED_REASON = "duplicate member"


def validate_record(
    record: object, *, transfers_only: bool = False, for_update: bool = False, repeated: Sequence[str] = ()
) -> PendingTransaction | list[Problem]:
    """Return the normalized transaction, or every problem found (non-empty list).

    `repeated` names the members the record's JSON text holds more than once (a decoded record keeps
    only one of them): each is a problem, so that no value is silently dropped.
    """
    if not isinstance(record, dict):
        return [Problem("", "must be a JSON object")]
    check = _Checker(record)
    for name in repeated:
        check.fail(name, REPEATED_REASON)
    transaction = _read_transaction(check, transfers_only=transfers_only, for_update=for_update)
    _check_extra_members(check)
    if check.problems or transaction is None:
        return check.sorted_problems()
    return transaction


def _read_transaction(
    check: _Checker, *, transfers_only: bool, for_update: bool
) -> PendingTransaction | None:
    """Read every contract member, in table order; None if a required one is unusable."""
    external_id = check.string("externalId", required=True, check=_is_external_id, reason=_EXTERNAL_ID_REASON)
    tx_type = _read_type(check, transfers_only)
    status = _read_status(check, for_update)
    product = _read_id(check, "productExternalId", required=True)
    investor = _read_id(check, "investorExternalId", required=True)
    contact = _read_id(check, "contactExternalId", required=False)
    to_product, to_investor = _read_destinations(check, tx_type, product, investor)
    amount, units = _read_quantities(check, tx_type)
    currency = check.string(
        "currency", required=False, check=_is_currency, reason="must be an ISO 4217 currency code"
    )
    trade_date = check.read_date("tradeDate", required=True)
    settlement_date = _read_settlement(check, trade_date)
    comments = check.string("comments", required=False, check=_is_comment_length, reason=_COMMENT_REASON)
    if external_id is None or tx_type is None or product is None or investor is None or trade_date is None:
        return None
    return PendingTransaction(
        external_id=external_id,
        type=tx_type,
        status=status,
        product_external_id=product,
        investor_external_id=investor,
        contact_external_id=contact,
        to_product_external_id=to_product,
        to_investor_external_id=to_investor,
        amount=amount,
        units=units,
        currency=currency or DEFAULT_CURRENCY,
        trade_date=trade_date,
        settlement_date=settlement_date,
        comments=comments,
    )


def record_external_id(record: object) -> str | None:
    """The externalId of a raw record if it is a string, for labelling messages; else None."""
    if not isinstance(record, dict):
        return None
    external_id = record.get("externalId")
    return external_id if isinstance(external_id, str) else None


def to_json(tx: PendingTransaction) -> dict[str, object]:
    """The client-facing JSON form: camelCase keys, None values omitted.

    Amount and units stay Decimal (the encoder writes them exactly); dates become yyyy-MM-dd.
    """
    members: dict[str, object] = {
        "externalId": tx.external_id,
        "type": tx.type.value,
        "status": tx.status.value,
        "productExternalId": tx.product_external_id,
        "investorExternalId": tx.investor_external_id,
        "contactExternalId": tx.contact_external_id,
        "toProductExternalId": tx.to_product_external_id,
        "toInvestorExternalId": tx.to_investor_external_id,
        "amount": tx.amount,
        "units": tx.units,
        "currency": tx.currency,
        "tradeDate": tx.trade_date.isoformat(),
        "settlementDate": tx.settlement_date.isoformat() if tx.settlement_date else None,
        "comments": tx.comments,
    }
    return {name: value for name, value in members.items() if value is not None}
