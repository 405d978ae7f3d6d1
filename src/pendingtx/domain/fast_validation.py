"""A fast path for validating one stored record, observationally identical to `validate_record`.

msgspec decodes the record straight into a typed Struct, checking in C every rule that is a property
of one member (types, nulls, lengths, the externalId pattern, calendar dates, the value sets of
`type` and `status`, unknown members). The cross-member rules then run on the decoded Struct. Only a
record that passes every rule takes this path; on any doubt the record is decoded as the worker
always did and handed to `validate_record`, so a refused record gets exactly the slow path's
problems, in the same order.

Every shortcut here only ever *accepts*: what it accepts must be accepted by `validate_record` with
an equal result, and anything else falls back. The property tests in
tests/unit/test_fast_validation.py compare both paths on valid and broken records alike.
"""

import functools
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from pendingtx.domain.decimals import MAX_QUANTITY, HugeNumber, parse_quantity, read_number
from pendingtx.domain.json_text import name_bound, repeated_names
from pendingtx.domain.transactions import (
    AMOUNT_PLACES,
    DEFAULT_CURRENCY,
    EXTERNAL_ID_CHARACTERS,
    MAX_COMMENT_LENGTH,
    MAX_ID_LENGTH,
    NO_QUANTITY_TYPES,
    ONE_QUANTITY_TYPES,
    SWITCH_TYPES,
    TRANSFER_TYPES,
    UNITS_PLACES,
    PendingTransaction,
    Problem,
    TransactionStatus,
    TransactionType,
    _is_currency,
    record_external_id,
    validate_record,
)

# msgspec applies `pattern` with re.search: anchored with \Z, since $ would also match before a final
# newline. The same character class and length as the slow path's _EXTERNAL_ID.
_ExternalId = Annotated[str, msgspec.Meta(pattern=rf"^[{EXTERNAL_ID_CHARACTERS}]{{1,{MAX_ID_LENGTH}}}\Z")]
# Lengths count code points in msgspec as in len(), so these match _is_id_length / _is_comment_length.
# NUL, which the slow path refuses in any string, is looked for in _accept: a pattern here would cost
# about four times as much (a re.search call per member).
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
_Comment = Annotated[str, msgspec.Meta(max_length=MAX_COMMENT_LENGTH)]


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel", gc=False):
    """The members of a record that can only be valid, as far as msgspec can tell on its own.

    A null optional member decodes to None, as absent; a null required member fails to decode.
    """

    external_id: _ExternalId
    # A plain string, looked up in _type_rules(): a str key hashes faster than an enum member.
    type: str
    product_external_id: _Id
    investor_external_id: _Id
    trade_date: date
    # Only Active: Cancel is a problem on create, and validate_raw never updates.
    status: Literal["Active"] | None = None
    contact_external_id: _Id | None = None
    to_product_external_id: _Id | None = None
    to_investor_external_id: _Id | None = None
    # Decoded untyped, as the slow path's decoder does; the float hook keeps a float literal's text.
    amount: object = None
    units: object = None
    currency: str | None = None
    settlement_date: date | None = None
    comments: _Comment | None = None
    # Server-owned: only null (meaning absent) is acceptable.
    create_date: None = None
    change_date: None = None


_FIELD_COUNT = len(_Record.__struct_fields__)


class _FloatText(str):
    """The text of a JSON float literal, which the slow path's decoder turns into Decimal(text)."""

    __slots__ = ()


@functools.cache
def _record_decoder() -> msgspec.json.Decoder[_Record]:
    return msgspec.json.Decoder(_Record, float_hook=_FloatText)


@functools.cache
def _untyped_decoder() -> msgspec.json.Decoder[Any]:
    # Numbers become Decimal (or int): money never passes through a binary float.
    return msgspec.json.Decoder(float_hook=read_number)


@functools.cache
def _members_decoder() -> msgspec.json.Decoder[dict[str, msgspec.Raw]]:
    return msgspec.json.Decoder(dict[str, msgspec.Raw])


_INTEGER_TEXT = re.compile(rb"-?[0-9]+")


def read_record(raw: bytes | msgspec.Raw) -> Any:
    """One record decoded as the worker reads it: numbers as int, Decimal or HugeNumber.

    Raises msgspec.DecodeError if `raw` is not JSON.
    """
    try:
        return _untyped_decoder().decode(raw)
    except msgspec.ValidationError:
        pass  # an integer literal longer than int() accepts: the only way an untyped decode fails so
    try:
        members = _members_decoder().decode(raw)
    except msgspec.ValidationError:
        return None  # not an object: refused as such
    return {name: _read_member(value) for name, value in members.items()}


def _read_member(raw: msgspec.Raw) -> Any:
    try:
        return _untyped_decoder().decode(raw)
    except msgspec.ValidationError:
        text = bytes(raw)
    if _INTEGER_TEXT.fullmatch(text):
        return HugeNumber(text.decode("ascii"))
    # An array or object holding such an integer: no member takes one, so only its kind matters.
    return [] if text.startswith(b"[") else {}


def _repeated(raw: bytes, present: int) -> list[str]:
    """The member names the record's text repeats, given that it has at least `present` distinct ones.

    Every name is followed by a colon, so when the text has no more colons (or name ends) than
    distinct names, none repeats: the common case costs a count or a regex search, no decoding.
    """
    if raw.count(b":") <= present:
        return []
    bound = name_bound(raw)
    if bound <= present or bound <= len(_members_decoder().decode(raw)):
        return []
    return repeated_names(raw)


@dataclass(frozen=True, slots=True)
class _TypeRule:
    """What one transaction type takes, derived from the type sets of the slow path."""

    member: TransactionType
    transfer: bool
    to_product_allowed: bool
    to_product_required: bool
    to_investor_allowed: bool
    destination_required: bool
    amount_allowed: bool
    units_allowed: bool
    exactly_one_quantity: bool
    amount_required: bool


@functools.cache
def _type_rules() -> dict[str, _TypeRule]:
    """Per-type rules keyed by the type's spelling, mirroring _read_destinations/_read_quantities."""
    rules = {}
    for member in TransactionType:
        amount_allowed = member not in NO_QUANTITY_TYPES
        units_allowed = member in ONE_QUANTITY_TYPES
        rules[member.value] = _TypeRule(
            member=member,
            transfer=member in TRANSFER_TYPES,
            to_product_allowed=member in SWITCH_TYPES | TRANSFER_TYPES,
            to_product_required=member in SWITCH_TYPES,
            to_investor_allowed=member in TRANSFER_TYPES,
            destination_required=member in TRANSFER_TYPES,
            amount_allowed=amount_allowed,
            units_allowed=units_allowed,
            exactly_one_quantity=member in ONE_QUANTITY_TYPES,
            amount_required=amount_allowed and not units_allowed,
        )
    return rules


@functools.cache
def _plain_quantity(places: int) -> re.Pattern[str]:
    """Positive quantities below MAX_QUANTITY written plainly, in groups that spell the canonical form.

    Group 1 is the integer part without leading zeros, with fewer digits than MAX_QUANTITY has (13 for
    10^13), so the number is below it; group 2 the fraction without its trailing zeros, at most
    `places` digits. An all-zero fraction is dropped. Zero itself matches: the caller refuses it.
    """
    digits = len(str(int(MAX_QUANTITY))) - 1
    return re.compile(rf"(0|[1-9][0-9]{{0,{digits - 1}}})(?:\.(?:([0-9]{{0,{places - 1}}}[1-9])0*|0+))?")


def _quantity(value: object, places: int) -> Decimal | None:
    """`value` as parse_quantity would return it, or None where parse_quantity would refuse it.

    Plain spellings (the common case) are read here; every other value is left to parse_quantity.
    """
    if isinstance(value, str):  # a JSON string, or a float literal's _FloatText
        match = _plain_quantity(places).fullmatch(value)
        if match is not None:
            whole, fraction = match.groups()
            if fraction is not None:
                return Decimal(f"{whole}.{fraction}")
            if whole != "0":
                return Decimal(whole)
        if type(value) is _FloatText:
            value = read_number(value)  # what the slow path's decoder makes of a float literal
    elif type(value) is int and 0 < value < MAX_QUANTITY:  # not bool, which is never a quantity
        return Decimal(value)
    parsed = parse_quantity(value, places)
    return None if isinstance(parsed, str) else parsed


def _accept(record: _Record, *, transfers_only: bool) -> PendingTransaction | None:
    """The transaction if the decoded record passes the cross-member rules, else None."""
    rule = _type_rules().get(record.type)
    if rule is None or (transfers_only and not rule.transfer):
        return None
    # Destinations: only for their types, different from their source; required for some types.
    to_product = record.to_product_external_id
    to_investor = record.to_investor_external_id
    if to_product is None:
        if rule.to_product_required or (rule.destination_required and to_investor is None):
            return None
    elif not rule.to_product_allowed or to_product == record.product_external_id:
        return None
    if to_investor is not None and (
        not rule.to_investor_allowed or to_investor == record.investor_external_id
    ):
        return None
    # Quantities: which of amount and units the type takes, each a valid decimal.
    amount = units = None
    if record.amount is not None:
        if not rule.amount_allowed:
            return None
        amount = _quantity(record.amount, AMOUNT_PLACES)
        if amount is None:
            return None
    if record.units is not None:
        if not rule.units_allowed:
            return None
        units = _quantity(record.units, UNITS_PLACES)
        if units is None:
            return None
    if rule.exactly_one_quantity:
        if (amount is None) == (units is None):
            return None
    elif rule.amount_required and amount is None:
        return None
    # The slow path refuses NUL in every string member; externalId, type and currency cannot hold one.
    for text in (
        record.product_external_id,
        record.investor_external_id,
        record.contact_external_id,
        to_product,
        to_investor,
        record.comments,
    ):
        if text is not None and "\x00" in text:
            return None
    currency = record.currency
    if currency is not None and not _is_currency(currency):
        return None
    settlement_date = record.settlement_date
    if settlement_date is not None and settlement_date < record.trade_date:
        return None
    return PendingTransaction(
        external_id=record.external_id,
        type=rule.member,
        status=TransactionStatus.ACTIVE,
        product_external_id=record.product_external_id,
        investor_external_id=record.investor_external_id,
        contact_external_id=record.contact_external_id,
        to_product_external_id=to_product,
        to_investor_external_id=to_investor,
        amount=amount,
        units=units,
        currency=currency or DEFAULT_CURRENCY,
        trade_date=record.trade_date,
        settlement_date=settlement_date,
        comments=record.comments,
    )


def validate_raw(
    raw: bytes | msgspec.Raw, *, transfers_only: bool = False
) -> tuple[PendingTransaction | list[Problem], str | None]:
    """Validate one record given as JSON text, for creation (as on POST), with its externalId.

    Returns what `validate_record(decoded, transfers_only=transfers_only, repeated=names)` returns for
    the record decoded by `read_record`, `names` being the member names its text repeats, and
    `record_external_id(decoded)`. Raises msgspec.DecodeError if `raw` is not JSON, as that decoder would.
    """
    text = raw if isinstance(raw, bytes) else bytes(raw)
    try:
        record = _record_decoder().decode(text)
    except msgspec.DecodeError:
        record = None
    if record is not None and not _repeated(text, _FIELD_COUNT - msgspec.structs.astuple(record).count(None)):
        transaction = _accept(record, transfers_only=transfers_only)
        if transaction is not None:
            return transaction, transaction.external_id
    decoded = read_record(text)
    repeated = _repeated(text, len(decoded)) if isinstance(decoded, dict) else []
    result = validate_record(decoded, transfers_only=transfers_only, repeated=repeated)
    return result, record_external_id(decoded)
