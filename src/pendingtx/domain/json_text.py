"""What a JSON text holds that a decoder does not report, or not well: its depth, lone surrogates,
repeated member names.

msgspec, like most decoders, keeps the last of two members with the same name and says "Input data
was truncated" for a lone UTF-16 surrogate escape. Both are looked for here on the text itself.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import msgspec

_HIGH = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
# An escape preceded by an even number of backslashes (an odd number would escape its backslash):
# a high surrogate not followed by a low one, or a low one not preceded by a high one.
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*+(?:(" + _HIGH + rb")(?!" + _LOW + rb")|(?<!" + _HIGH + rb")(" + _LOW + rb"))"
)
# Where a member name ends: its closing quote, optional whitespace, the colon.
_NAME_END = re.compile(rb'"[ \t\r\n]*:')
_INT_OUT_OF_RANGE = "Integer value out of range"

# A JSON body may nest arrays and objects this deep: `[]` is 1 level, a batch of flat records 2.
# Deeper bodies are refused when they arrive, so no decoder (here, in the worker) ever recurses far.
MAX_JSON_DEPTH = 32


def _depth_pattern(depth: int) -> re.Pattern[bytes]:
    """Matches brackets that balance without nesting deeper than `depth`; linear (it never backtracks)."""
    pattern = b""
    for _ in range(depth):
        pattern = rb"(?>[\[{]" + pattern + rb"[\]}])*+"
    return re.compile(pattern)


_DEPTH_PATTERNS: dict[int, re.Pattern[bytes]] = {}
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth_exceeds(document: bytes, max_depth: int) -> bool:
    """Whether the well-formed JSON text `document` nests arrays and objects deeper than `max_depth`.

    Brackets inside strings do not count. Nearly free when the text has at most `max_depth` opening
    brackets; otherwise escapes and strings are dropped and the remaining brackets matched, all with
    byte and regex primitives (no Python loop over the text).
    """
    if document.count(b"[") + document.count(b"{") <= max_depth:
        return False
    text = _ESCAPE.sub(b"", document) if b"\\" in document else document
    # With the escapes gone, a quote only opens or closes a string: every other piece is outside one.
    brackets = b"".join(text.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    pattern = _DEPTH_PATTERNS.get(max_depth)
    if pattern is None:
        pattern = _DEPTH_PATTERNS.setdefault(max_depth, _depth_pattern(max_depth))
    return pattern.fullmatch(brackets) is None


def lone_surrogate(text: bytes) -> tuple[str, int] | None:
    """The first \\uD800-\\uDFFF escape in `text` that is not half of a surrogate pair, and its offset."""
    found = _LONE_SURROGATE.search(text)
    if found is None:
        return None
    group = 1 if found.group(1) is not None else 2
    return found.group(group).decode("ascii"), found.start(group)


def decode_error_reason(text: bytes, error: msgspec.DecodeError) -> str:
    """Why `text` could not be decoded, in words that name the actual problem."""
    message = str(error)
    if message.startswith(_INT_OUT_OF_RANGE):
        # msgspec's place for it says `[...]` for any member name: left out.
        return (
            f"holds an integer of more than {sys.get_int_max_str_digits()} digits; "
            "send such a number as a string or with an exponent"
        )
    if "truncated" in message or "surrogate" in message:
        lone = lone_surrogate(text)
        if lone is not None:
            escape, offset = lone
            return f"is not valid JSON: {escape} at byte {offset} is a lone UTF-16 surrogate, not a character"
    return f"is not valid JSON: {message}"


def name_bound(text: bytes) -> int:
    """At least as many as the member names of every object in the JSON text `text`.

    Each name is followed by a colon after its closing quote; only an escaped quote inside a string
    can be too, and then the count is higher than the number of names, never lower.
    """
    return len(_NAME_END.findall(text))


def _unread(text: str) -> str:
    return ""  # numbers are not needed to find repeated names, and int() of a long one is refused


def repeated_names(text: bytes | str, *, nested: bool = False) -> list[str]:
    """The member names that appear more than once in one object of `text`, in order of first repetition.

    Only the outermost object is looked at, unless `nested`. Names are compared after decoding, so
    "am\\u006fount" repeats "amount". `text` must be valid JSON.
    """
    found: list[list[str]] = []

    def note(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        seen: set[str] = set()
        repeats = []
        for name, _ in pairs:
            if name in seen:
                repeats.append(name)
            seen.add(name)
        found.append(repeats)
        return pairs

    document = text if isinstance(text, str) else text.decode("utf-8")
    decoder = json.JSONDecoder(
        object_pairs_hook=note, parse_int=_unread, parse_float=_unread, parse_constant=_unread
    )
    decoder.decode(document)
    if nested:
        names = [name for names in found for name in names]
    else:
        # The outermost object is the last one completed.
        names = found[-1] if found and document.lstrip().startswith("{") else []
    return list(dict.fromkeys(names))
