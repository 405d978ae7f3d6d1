"""Exact decimal rules for amounts and units: parsing, bounds and normalisation."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Caps amounts and units alike. Units have no business limit of their own, but an unbounded value
# would make storage, sums and client parsers (many read JSON numbers as doubles) a hazard; 10^13
# with 6 decimal places stays within 20 significant digits.
MAX_QUANTITY = Decimal(10**13)

NOT_A_NUMBER = "must be a decimal number"
NOT_EXACT = "must be an exact decimal; send it as a string"

# Plain positional notation only: no exponent, no NaN/Infinity, no surrounding spaces.
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


# A JSON number literal, in groups: sign, integer digits, fraction digits, exponent.
_NUMBER_TEXT = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?)[0-9]+)?")


@dataclass(frozen=True, slots=True)
class HugeNumber:
    """A JSON number that neither Decimal nor int can hold, kept as its literal text.

    Decimal refuses exponents beyond about ±10^18, and Python's int() refuses integer literals of
    more than a few thousand digits (sys.get_int_max_str_digits()). Such a number is far above
    MAX_QUANTITY, or a positive number with far more decimal places than any rule allows, or zero.
    """

    text: str

    def quantity_reason(self, max_places: int) -> str:
        """Why this number is not a quantity, as parse_quantity says it for a number it can read."""
        match = _NUMBER_TEXT.fullmatch(self.text)
        if match is None:
            return NOT_A_NUMBER
        sign, whole, fraction, exponent_sign = match.groups()
        if sign or not (whole + (fraction or "")).strip("0"):
            return "must be greater than 0"
        if exponent_sign == "-":  # a positive number with an exponent of -10^18 or less
            return f"must have at most {max_places} decimal places"
        return f"must be at most {MAX_QUANTITY}"


def read_number(text: str) -> Decimal | HugeNumber:
    """A JSON number literal (as a decoder's float hook receives it) as an exact Decimal, if it can be one."""
    try:
        return Decimal(text)
    except InvalidOperation:
        return HugeNumber(text)


def parse_quantity(value: object, max_places: int) -> Decimal | str:
    """Return `value` as a positive, bounded, normalised Decimal, or the reason it is not one."""
    if isinstance(value, HugeNumber):
        return value.quantity_reason(max_places)
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
