"""Limits on the request head, checked before any route: the size of its headers, headers that may
be sent only once, and NUL in its target.

The lead calls these from the outermost layer (api/context.py). Each raises `errors.ValidationFailed`
(400 `request.validation.failure`) naming what is refused, so that the answer is the contract's error
body. The depth limit of JSON bodies lives with the body's shape check (services/submissions.py).
"""

from __future__ import annotations

import re
from typing import NoReturn
from urllib.parse import parse_qsl

from starlette.types import Scope

from pendingtx import errors

# The header lines of one request, `name: value` and CRLF each, may total this many bytes, and one
# header's value may take half of it. Common servers and proxies allow 8-16 KiB.
MAX_HEADER_BYTES = 16 * 1024

_LINE_OVERHEAD = len(b": \r\n")
# Headers that may be sent only once (ASGI names, lower case), as they are usually written. When one
# is repeated, which copy wins differs from one HTTP stack to the next, so none is chosen: 400.
SINGLE_HEADERS = {
    b"authorization": "Authorization",
    b"appkey": "AppKey",
    b"idempotency-key": "Idempotency-Key",
}
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")


def check_request_head(scope: Scope, *, max_header_bytes: int, max_value_bytes: int | None = None) -> None:
    """400 when the request's headers total more than `max_header_bytes`, counted as sent (each line
    `name: value` and CRLF), or a header's value is longer than `max_value_bytes` (by default half of
    `max_header_bytes`), or one of SINGLE_HEADERS is repeated. The error names each oversized or
    repeated header, or else the largest one.
    """
    value_limit = max_header_bytes // 2 if max_value_bytes is None else max_value_bytes
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    # Every request passes through here: the common, small head is judged in one quick pass.
    longest = total = 0
    singles: list[bytes] = []
    for name, value in headers:
        size = len(value)
        total += len(name) + size
        longest = max(longest, size)
        if name in SINGLE_HEADERS:
            singles.append(name)
    if longest > value_limit or total + _LINE_OVERHEAD * len(headers) > max_header_bytes:
        _refuse_oversized(headers, max_header_bytes, value_limit)
    if len(singles) > 1 and len(set(singles)) < len(singles):
        repeated = dict.fromkeys(name for name in singles if singles.count(name) > 1)
        raise errors.ValidationFailed(
            "Repeated request header",
            errors=[
                errors.ErrorDetail(SINGLE_HEADERS[name], "header", "must be given once") for name in repeated
            ],
        )


def _refuse_oversized(
    headers: list[tuple[bytes, bytes]], max_header_bytes: int, value_limit: int
) -> NoReturn:
    total = 0
    largest_size, largest_name = -1, b""
    details: list[errors.ErrorDetail] = []
    for name, value in headers:
        size = len(name) + len(value) + _LINE_OVERHEAD
        total += size
        if size > largest_size:
            largest_size, largest_name = size, name
        if len(value) > value_limit:
            reason = f"is {len(value)} bytes long; a header value may be at most {value_limit} bytes"
            details.append(errors.ErrorDetail(_shown(name), "header", reason))
    if details:
        raise errors.ValidationFailed("Request header too large", errors=details)
    reason = (
        f"is the largest of request headers totalling {total} bytes; "
        f"they may total at most {max_header_bytes} bytes"
    )
    raise errors.ValidationFailed(
        "Request headers too large", errors=[errors.ErrorDetail(_shown(largest_name), "header", reason)]
    )


def _shown(name: bytes) -> str:
    # A header name is a token (RFC 9110); anything else is shown escaped rather than as sent.
    return name.decode("ascii") if _TOKEN.fullmatch(name) else repr(name)[2:-1]


def check_request_target(scope: Scope) -> None:
    """400 when the decoded path, or a query parameter's name or value, holds NUL (U+0000).

    No identifier of the contract can hold one, and PostgreSQL cannot even compare text with one
    (psycopg refuses to send it), so it is refused before any route looks at it.
    """
    details: list[errors.ErrorDetail] = []
    if "\x00" in scope.get("path", ""):
        details.append(errors.ErrorDetail("path", "path", "must not contain NUL (%00)"))
    query: bytes = scope.get("query_string") or b""
    if b"\x00" in query or b"%00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                shown = name if "\x00" not in name else name.replace("\x00", "%00")
                details.append(errors.ErrorDetail(shown, "query", "must not contain NUL (%00)"))
    if details:
        raise errors.ValidationFailed(errors=details)
