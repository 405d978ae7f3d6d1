"""JSON answers encoded with msgspec, and the contract's error body."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import msgspec
from starlette.responses import Response

from pendingtx import errors

JSON = "application/json"


@cache
def _encoder() -> msgspec.json.Encoder:
    # Decimals go out as JSON numbers with exactly their stored digits.
    return msgspec.json.Encoder(decimal_format="number")


def encode_json(content: Any) -> bytes:
    """JSON bytes, with Decimals as numbers."""
    return _encoder().encode(content)


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer."""
    return Response(_encoder().encode(content), status_code=status, headers=headers, media_type=JSON)


def error_body(exc: errors.ApiError, tracking_id: str, *, oauth: bool = False) -> dict[str, Any]:
    """The contract's error body; on the token endpoint also RFC 6749's `error` members."""
    body: dict[str, Any] = {
        "code": exc.code,
        "message": exc.message,
        "trackingId": tracking_id,
        "transient": exc.transient,
        "errors": exc.errors,
    }
    if oauth:
        body["error"] = exc.oauth_error or "invalid_request"
        body["error_description"] = exc.message
    return body


def challenge(exc: errors.ApiError, authorization: str | None, *, oauth: bool) -> str:
    """The `WWW-Authenticate` of a 401: Basic where clients authenticate (RFC 6749, 5.2), else Bearer,
    with RFC 6750's `invalid_token` when the request carried a Bearer token."""
    if oauth:
        return 'Basic realm="pendingtx"'
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return 'Bearer realm="pendingtx"'
    description = exc.message.replace("\\", "").replace('"', "'")
    return f'Bearer realm="pendingtx", error="invalid_token", error_description="{description}"'


def error_response(
    exc: errors.ApiError, tracking_id: str, *, oauth: bool = False, authorization: str | None = None
) -> Response:
    """The answer for an error, with its status and headers; `authorization` is the request's
    Authorization header, which a 401's challenge depends on."""
    headers = dict(exc.headers)
    if exc.status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = challenge(exc, authorization, oauth=oauth)
    if exc.transient and "Retry-After" not in headers:
        headers["Retry-After"] = "1"
    return json_response(error_body(exc, tracking_id, oauth=oauth), exc.status, headers)
