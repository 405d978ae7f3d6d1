"""The outermost layer: request tracking ids, URL length, and turning every failure into an error body."""

from __future__ import annotations

import logging
import re
import uuid

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pendingtx import errors
from pendingtx.api.responses import error_response

TRACKING_HEADER = b"requesttrackingid"
TRACKING_SCOPE_KEY = "pendingtx.tracking_id"
OAUTH_SCOPE_KEY = "pendingtx.oauth_errors"

log = logging.getLogger("pendingtx.api")

_CANONICAL_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# The database is unreachable or busy: the same request may well succeed a little later.
_DATABASE_UNAVAILABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
)


def tracking_id_of(scope: Scope) -> str:
    """The tracking id of the request being served."""
    return str(scope.get(TRACKING_SCOPE_KEY, ""))


def _tracking_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == TRACKING_HEADER:
            text = value.decode("latin-1")
            try:
                parsed = uuid.UUID(text)
            except ValueError:
                break
            # Reused exactly as sent (case included) so that the client can find its own id.
            return text if _CANONICAL_UUID.fullmatch(text) else str(parsed)
    return str(uuid.uuid4())


def _as_api_error(exc: Exception, scope: Scope) -> errors.ApiError:
    if isinstance(exc, errors.ApiError):
        return exc
    if isinstance(exc, HTTPException) and exc.status_code == 404:
        return errors.NotFound(f"No route for {scope['method']} {scope['path']}")
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return errors.MethodNotAllowed(
            f"Method {scope['method']} not allowed on {scope['path']}", headers=exc.headers
        )
    if isinstance(exc, _DATABASE_UNAVAILABLE):
        log.warning("database unavailable serving %s %s: %s", scope["method"], scope["path"], exc)
        return errors.ServiceUnavailable("Database unavailable; retry later")
    log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
    return errors.InternalFailure()


class RequestContext:
    """Tags each request with a tracking id and answers every failure in the contract's format."""

    def __init__(self, app: ASGIApp, *, max_url_length: int) -> None:
        self.app = app
        self.max_url_length = max_url_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracking = _tracking_id(scope["headers"])
        scope[TRACKING_SCOPE_KEY] = tracking
        # With "app" in the scope, Starlette's router raises 404/405 instead of answering in plain text.
        scope["app"] = self
        started = False
        tracking_header = (TRACKING_HEADER, tracking.encode("ascii"))

        async def send_with_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), tracking_header]
            await send(message)

        try:
            path = scope.get("raw_path") or scope["path"].encode("utf-8")
            query = scope.get("query_string") or b""
            url_length = len(path) + (len(query) + 1 if query else 0)
            if url_length > self.max_url_length:
                raise errors.UriTooLong(f"URL is longer than {self.max_url_length} characters")
            await self.app(scope, receive, send_with_tracking)
        except Exception as exc:
            if started:
                raise
            response = error_response(
                _as_api_error(exc, scope), tracking, oauth=bool(scope.get(OAUTH_SCOPE_KEY))
            )
            await response(scope, receive, send_with_tracking)
