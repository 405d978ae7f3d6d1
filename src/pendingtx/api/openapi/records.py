"""The request bodies: pending transactions as clients submit them, batches, and JSON Patch.

Hand-written, because what they say is not one type of the code: before the 202 only a batch's
shape is checked, and each record is then checked by the worker's rules (domain/transactions.py),
whose bounds and value sets are taken from there.
"""

from __future__ import annotations

from typing import Any

import pycountry

from pendingtx.api.answers import NO_NUL
from pendingtx.api.openapi.shapes import DATE_PATTERN, ref
from pendingtx.config import Settings
from pendingtx.domain.decimals import MAX_QUANTITY
from pendingtx.domain.json_text import MAX_JSON_DEPTH
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
    TransactionStatus,
    TransactionType,
)

_STRING = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL}
_OPTIONAL_STRING = {**_STRING, "type": ["string", "null"]}
_EXTERNAL_ID_PATTERN = f"^[{EXTERNAL_ID_CHARACTERS}]{{1,{MAX_ID_LENGTH}}}$"
_JSON_POINTER = "^(/([^~/]|~[01])*)*$"


def _decimal_text(places: int) -> str:
    """A decimal > 0 and <= MAX_QUANTITY written positionally (no exponent, no sign), with at most
    `places` decimal places once trailing zeros are dropped ("1.500" has one)."""
    digits = len(str(int(MAX_QUANTITY))) - 1
    whole = rf"0*[1-9][0-9]{{0,{digits - 1}}}(\.[0-9]{{1,{places}}}0*)?"
    limit = rf"0*{int(MAX_QUANTITY)}(\.0+)?"
    fraction = rf"0+\.[0-9]{{0,{places - 1}}}[1-9]0*"
    return f"^({whole}|{limit}|{fraction})$"


def _quantity(places: int, description: str) -> dict[str, Any]:
    return {
        "description": f"> 0, at most {places} decimal places, at most {MAX_QUANTITY:,}{description}",
        "oneOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_QUANTITY)},
            {"type": "string", "pattern": _decimal_text(places)},
            {"type": "null"},
        ],
    }


def _present(*members: str) -> dict[str, Any]:
    return {"required": list(members), "properties": {m: {"not": {"type": "null"}} for m in members}}


def _absent(*members: str) -> dict[str, Any]:
    """Each member left out, or null (the same thing in a record)."""
    return {"properties": {m: {"type": "null"} for m in members}}


def _for_types(types: frozenset[TransactionType], then: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"required": ["type"], "properties": {"type": {"enum": sorted(t.value for t in types)}}},
        "then": then,
    }


_ALL_TYPES = frozenset(TransactionType)
_SOME_QUANTITY = _ALL_TYPES - NO_QUANTITY_TYPES - ONE_QUANTITY_TYPES
# The rules by type, for records submitted and stored alike.
TYPE_RULES = [
    _for_types(NO_QUANTITY_TYPES, _absent("amount", "units")),
    _for_types(ONE_QUANTITY_TYPES, {"oneOf": [_present("amount"), _present("units")]}),
    _for_types(_SOME_QUANTITY, {"allOf": [_present("amount"), _absent("units")]}),
    _for_types(_ALL_TYPES - SWITCH_TYPES - TRANSFER_TYPES, _absent("toProductExternalId")),
    _for_types(_ALL_TYPES - TRANSFER_TYPES, _absent("toInvestorExternalId")),
    _for_types(SWITCH_TYPES, _present("toProductExternalId")),
    _for_types(
        TRANSFER_TYPES, {"anyOf": [_present("toProductExternalId"), _present("toInvestorExternalId")]}
    ),
]


def _names(types: frozenset[TransactionType]) -> str:
    ordered = [t.value for t in TransactionType if t in types]
    return ", ".join(ordered[:-1]) + " and " + ordered[-1] if len(ordered) > 1 else ordered[0]


RECORD_RULES = (
    "The worker checks every record against these rules after the 202: a record breaking one is "
    "rejected (named in the job's validationMessage and validationDetails), and the other records "
    f"of the batch are created. Rules by type: {_names(NO_QUANTITY_TYPES)} take neither amount nor "
    f"units; {_names(ONE_QUANTITY_TYPES)} take exactly one of them; every other type requires amount "
    f"and takes no units. {_names(SWITCH_TYPES)} require toProductExternalId; transfers need "
    "toInvestorExternalId or toProductExternalId, and only they take toInvestorExternalId. Beyond "
    "JSON Schema: externalId is unique in the organization and in the batch, a member name appears "
    "once in a record, each to*ExternalId differs from its source, and settlementDate is not before "
    "tradeDate."
)


def record_schema(types: list[TransactionType], description: str) -> dict[str, Any]:
    """A pending transaction as a client submits it; JSON null counts as an absent optional member."""
    currencies = sorted(str(currency.alpha_3) for currency in pycountry.currencies)
    return {
        "type": "object",
        "description": f"{description} {RECORD_RULES}",
        "additionalProperties": False,
        "allOf": TYPE_RULES,
        "required": ["externalId", "type", "productExternalId", "investorExternalId", "tradeDate"],
        "properties": {
            "externalId": {
                "type": "string",
                "pattern": _EXTERNAL_ID_PATTERN,
                "description": "unique within the organization and within the batch",
            },
            "type": {"type": "string", "enum": [t.value for t in types]},
            "status": {
                "type": ["string", "null"],
                "enum": [TransactionStatus.ACTIVE.value, None],
                "default": TransactionStatus.ACTIVE.value,
                "description": f"a transaction cannot be created as {TransactionStatus.CANCEL.value}",
            },
            "productExternalId": _STRING,
            "investorExternalId": _STRING,
            "contactExternalId": _OPTIONAL_STRING,
            "toProductExternalId": {
                **_OPTIONAL_STRING,
                "description": f"required for {_names(SWITCH_TYPES)}, allowed for transfers; must differ "
                "from productExternalId",
            },
            "toInvestorExternalId": {
                **_OPTIONAL_STRING,
                "description": "transfers only; must differ from investorExternalId",
            },
            "amount": _quantity(AMOUNT_PLACES, "; a string keeps it exact"),
            "units": _quantity(UNITS_PLACES, ""),
            "currency": {
                "type": ["string", "null"],
                "enum": [*currencies, None],
                "default": DEFAULT_CURRENCY,
                "description": "ISO 4217 alphabetic code",
            },
            "tradeDate": {"type": "string", "pattern": DATE_PATTERN, "description": "yyyy-MM-dd"},
            "settlementDate": {
                "type": ["string", "null"],
                "pattern": DATE_PATTERN,
                "description": "yyyy-MM-dd, not before tradeDate",
            },
            "comments": {"type": ["string", "null"], "maxLength": MAX_COMMENT_LENGTH, "pattern": NO_NUL},
        },
    }


def _batch_schema(record: str, max_records: int) -> dict[str, Any]:
    """What is checked of a batch before the 202: its shape, not its records."""
    return {
        "description": f"One record, or an array of 1 to {max_records:,} (a setting) records; arrays "
        f"and objects nest at most {MAX_JSON_DEPTH} levels deep. Each record is checked by the worker "
        f"after the 202 against the {record} schema: a record breaking it is rejected in the job's "
        "status, not with a 400.",
        "oneOf": [
            ref("Record"),
            {"type": "array", "minItems": 1, "maxItems": max_records, "items": ref("Record")},
        ],
    }


_POINTER = {"type": "string", "pattern": _JSON_POINTER}
JSON_PATCH = {
    "type": "array",
    "description": "RFC 6902; pointers are RFC 6901.",
    "minItems": 1,
    "items": {
        "oneOf": [
            {
                "type": "object",
                "required": ["op", "path", "value"],
                "properties": {"op": {"enum": ["add", "replace", "test"]}, "path": _POINTER, "value": {}},
            },
            {
                "type": "object",
                "required": ["op", "path"],
                "properties": {"op": {"enum": ["remove"]}, "path": _POINTER},
            },
            {
                "type": "object",
                "required": ["op", "path", "from"],
                "properties": {"op": {"enum": ["move", "copy"]}, "path": _POINTER, "from": _POINTER},
            },
        ]
    },
}


def request_schemas(settings: Settings) -> dict[str, Any]:
    """The request bodies' schema components."""
    return {
        "PendingTransaction": record_schema(list(TransactionType), "A pending transaction to create."),
        "PendingTransfer": record_schema(
            [t for t in TransactionType if t in TRANSFER_TYPES], "A pending transfer to create."
        ),
        "Batch": _batch_schema("PendingTransaction", settings.max_batch_records),
        "TransferBatch": _batch_schema("PendingTransfer", settings.max_batch_records),
        "Record": {
            "type": "object",
            "description": "One record of a batch. Any JSON object is accepted with the batch; the "
            "worker then creates it or rejects it by the rules of the PendingTransaction schema "
            "(PendingTransfer on /v1/transfers).",
        },
        "JsonPatch": JSON_PATCH,
        "MergePatch": {"type": "object", "description": "RFC 7396 (also when sent as application/json)."},
    }
