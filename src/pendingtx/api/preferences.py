"""The `Prefer` request header (RFC 7240), shared by the routes that honour a preference.

Several preferences may come in one header or in several; a preference given more than once counts
the first time only (RFC 7240, section 2); one that cannot be parsed is ignored, as are parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from starlette.types import Scope

PREFER = b"prefer"


def _split(text: str, separator: str) -> Iterator[str]:
    """The parts of `text` between separators outside quoted strings."""
    start = 0
    quoted = escaped = False
    for at, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            yield text[start:at]
            start = at + 1
    yield text[start:]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out = []
        escaped = False
        for char in inner:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return value


def parse_preferences(values: Iterable[str]) -> dict[str, str]:
    """Each preference's name (lower case) and value (`""` when it has none), from `Prefer` values."""
    found: dict[str, str] = {}
    for value in values:
        for element in _split(value, ","):
            head = next(_split(element, ";")).strip()
            name, _, given = head.partition("=")
            name = name.strip().lower()
            if name and name.isprintable() and " " not in name:
                found.setdefault(name, _unquote(given.strip()))
    return found


def preferences(scope: Scope) -> dict[str, str]:
    """The request's preferences (every `Prefer` header it carries)."""
    return parse_preferences(
        value.decode("latin-1") for name, value in scope["headers"] if name.lower() == PREFER
    )
