"""Exact decimal rules for amounts and units: parsing, bounds and normalisation."""

import re
from decimal import Decimal

# Caps amounts and units alike. Units have no business limit of their own, but an unbounded value
# would make storage, sums and client parsers (many read JSON numbers as doubles) a hazard; 10^13
# with 6 decimal places stays within 20 significant digits.
MAX_QUANTITY = Decimal(10**13)

NOT_A_NUMBER = "must be a decimal number"
NOT_EXACT = "must be an exact decimal; send it as a string"

# Plain positional notation only: no exponent, no NaN/Infinity, no surrounding spaces.
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def parse_quantity(value: object, max_places: int) -> Decimal | str:
    """Return `value` as a positive, bounded, normalised Decimal, or the reason it is not one."""
    number = _to_decimal(value)
    if isinstance(number, str):
        return number
    if number <= 0:
        return "must be greater than 0"
    # Checked before touching the exponent, so a value like 1E+400 is refused cheaply.
    if number > MAX_QUANTITY:
        return f"must be at most {MAX_QUANTITY}"
    canonical = canonical_decimal(number)
    if decimal_places(canonical) > max_places:
        return f"must have at most {max_places} decimal places"
    return canonical


def _to_decimal(value: object) -> Decimal | str:
    """Convert a decoded JSON value to a finite Decimal, or give the reason it cannot be."""
    # bool is an int subclass, yet `true` is never a quantity.
    if isinstance(value, bool):
        return NOT_A_NUMBER
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return NOT_EXACT
    if isinstance(value, Decimal):
        return value if value.is_finite() else NOT_A_NUMBER
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    return NOT_A_NUMBER


def canonical_decimal(number: Decimal) -> Decimal:
    """Drop trailing fractional zeros and any exponent form (1E+2 -> 100), without rounding."""
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite decimal: {number!r}")
    if not any(digits):
        return Decimal((sign, (0,), 0))
    # Works on the digit tuple because Decimal.normalize() rounds to the context precision.
    kept = list(digits)
    while exponent < 0 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    if exponent > 0:
        kept.extend([0] * exponent)
        exponent = 0
    return Decimal((sign, tuple(kept), exponent))


def decimal_places(number: Decimal) -> int:
    """Number of digits after the decimal point as written (so 1.500 has 3, 1.5 has 1)."""
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite decimal: {number!r}")
    return max(0, -exponent)
