"""How long a status read may be held (contract 7.1): `?wait=N` or `Prefer: wait=N` (RFC 7240).

`?wait=` is a parameter: anything but an integer 0..60, or a repeated one, is 400. `Prefer` is a
preference: one the server cannot read is ignored (RFC 7240, section 2), and a longer wait than 60 s
is honoured as 60 s; the answer says what was applied in `Preference-Applied`. When both are given,
`?wait=` decides and `Prefer`'s wait is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from pendingtx import errors
from pendingtx.api.preferences import parse_preferences
from pendingtx.api.requests import given_once

MAX_WAIT_SECONDS = 60
WAIT_REASON = f"must be an integer between 0 and {MAX_WAIT_SECONDS}"


@dataclass(frozen=True, slots=True)
class Wait:
    """The wait asked for: seconds (0: answer at once), and whether `Prefer` asked for it."""

    seconds: int = 0
    preferred: bool = False
    # A bad `?wait=`, raised once the caller is known to be admitted (authentication comes first).
    problem: errors.ValidationFailed | None = None


NO_WAIT = Wait()


def requested_wait(query_string: bytes, prefer: str | None) -> Wait:
    """The wait a status GET asks for."""
    if query_string:
        items = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        try:
            given = given_once(items, location="query", names=("wait",)).get("wait")
        except errors.ValidationFailed as exc:
            return Wait(problem=exc)
        if given is not None:
            if not (
                given.isascii() and given.isdigit() and len(given) <= 3 and int(given) <= MAX_WAIT_SECONDS
            ):
                detail = errors.ErrorDetail("wait", "query", WAIT_REASON)
                return Wait(problem=errors.ValidationFailed(errors=[detail]))
            return Wait(int(given))
    if prefer is not None:
        seconds = preferred_wait(prefer)
        if seconds is not None:
            return Wait(seconds, preferred=True)
    return NO_WAIT


def preferred_wait(prefer: str) -> int | None:
    """The `wait` of a `Prefer` value in seconds (at most 60); None when absent or unreadable."""
    value = parse_preferences([prefer]).get("wait")
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 9:
        return None
    return min(int(value), MAX_WAIT_SECONDS)
