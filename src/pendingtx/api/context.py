"""The outermost layer: request tracking ids, URL length, every failure as an error body, and for every
request one access log line and its metrics.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Collection, Iterator
from time import perf_counter

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pendingtx import errors
from pendingtx.api.limits import MAX_HEADER_BYTES, check_request_head, check_request_target
from pendingtx.api.responses import error_response
from pendingtx.observability.caller import CallerNote, close_note, open_note
from pendingtx.observability.logs import AccessLog
from pendingtx.observability.metrics import RequestMetrics

TRACKING_HEADER = b"requesttrackingid"
TRACKING_SCOPE_KEY = "pendingtx.tracking_id"
OAUTH_SCOPE_KEY = "pendingtx.oauth_errors"
# The route label of a request that matched no route: its raw path is never logged (it may hold a key).
UNMATCHED = "unmatched"

log = logging.getLogger("pendingtx.api")

_CANONICAL_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# The database is unreachable or busy: the same request may well succeed a little later.
DATABASE_UNAVAILABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
)


def tracking_id_of(scope: Scope) -> str:
    """The tracking id of the request being served."""
    return str(scope.get(TRACKING_SCOPE_KEY, ""))


# Random version-4 UUIDs are drawn this many at a time: one getrandom call per batch, not per request.
_BATCH = 256
_VERSION_BITS = 0xF000 << 64 | 0xC000 << 48
_VERSION_4 = 0x4000 << 64 | 0x8000 << 48


def _uuid4_batch() -> list[str]:
    data = os.urandom(16 * _BATCH)
    batch = []
    for start in range(0, len(data), 16):
        text = "%032x" % (int.from_bytes(data[start : start + 16]) & ~_VERSION_BITS | _VERSION_4)
        batch.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return batch


class _NewIds:
    """Fresh random (version 4) UUIDs as text, as `str(uuid.uuid4())` makes them."""

    def __init__(self) -> None:
        self._ids: Iterator[str] = iter(())

    def __call__(self) -> str:
        # next() on a list iterator is atomic: two threads never get the same id.
        fresh = next(self._ids, None)
        if fresh is None:
            self._ids = iter(_uuid4_batch())
            fresh = next(self._ids)
        return fresh


new_tracking_id = _NewIds()


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
    return new_tracking_id()


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name.lower() == b"authorization":
            return str(value.decode("latin-1"))
    return None


def route_of(scope: Scope) -> str:
    """The route template the request matched (`/v1/jobs/{appName}/status/{key}`), or UNMATCHED."""
    route = scope.get("route")
    return UNMATCHED if route is None else str(route.path)


def _as_api_error(exc: Exception, scope: Scope) -> errors.ApiError:
    if isinstance(exc, errors.ApiError):
        return exc
    if isinstance(exc, HTTPException) and exc.status_code == 404:
        return errors.NotFound(f"No route for {scope['method']} {scope['path']}")
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return errors.MethodNotAllowed(
            f"Method {scope['method']} not allowed on {scope['path']}", headers=exc.headers
        )
    # Logged with the route template and the tracking id, which the request's access line repeats.
    where = (scope["method"], route_of(scope), tracking_id_of(scope))
    if isinstance(exc, DATABASE_UNAVAILABLE):
        log.warning("database unavailable serving %s %s (trackingId %s): %s", *where, exc)
        return errors.ServiceUnavailable("Database unavailable; retry later")
    log.exception("unhandled error serving %s %s (trackingId %s)", *where)
    return errors.InternalFailure()


class RequestContext:
    """Tags each request with a tracking id, answers every failure in the contract's format (with
    RFC 6749's members on `oauth_paths`), and records each request in the access log and in `metrics`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_url_length: int,
        max_header_bytes: int = MAX_HEADER_BYTES,
        metrics: RequestMetrics | None = None,
        access_log: AccessLog | None = None,
        oauth_paths: Collection[str] = (),
        answer_headers: Collection[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        # Put on every answer, errors included (a sandbox's `Sandbox: true`), with no layer of its own.
        self.answer_headers = tuple(answer_headers)
        # Errors on these paths also carry RFC 6749's members, those found before the route included.
        self.oauth_paths = frozenset(oauth_paths)
        self.max_url_length = max_url_length
        self.max_header_bytes = max_header_bytes
        self.metrics = metrics
        self.access_log = access_log or AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = perf_counter()
        tracking = _tracking_id(scope["headers"])
        scope[TRACKING_SCOPE_KEY] = tracking
        # With "app" in the scope, Starlette's router raises 404/405 instead of answering in plain text.
        scope["app"] = self
        status = 0  # no answer at all, should the request end without one
        added = ((TRACKING_HEADER, tracking.encode("ascii")), *self.answer_headers)

        async def send_with_tracking(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        # The code that authenticates the caller names it here (observability.identify).
        note, token = open_note()
        try:
            path = scope.get("raw_path") or scope["path"].encode("utf-8")
            query = scope.get("query_string") or b""
            url_length = len(path) + (len(query) + 1 if query else 0)
            if url_length > self.max_url_length:
                raise errors.UriTooLong(f"URL is longer than {self.max_url_length} characters")
            check_request_head(scope, max_header_bytes=self.max_header_bytes)
            check_request_target(scope)
            await self.app(scope, receive, send_with_tracking)
        except Exception as exc:
            if status:
                raise
            oauth = bool(scope.get(OAUTH_SCOPE_KEY)) or scope["path"] in self.oauth_paths
            response = error_response(
                _as_api_error(exc, scope), tracking, oauth=oauth, authorization=_authorization(scope)
            )
            await response(scope, receive, send_with_tracking)
        finally:
            close_note(token)
            self._served(scope, status, perf_counter() - began, tracking, note)

    def _served(self, scope: Scope, status: int, seconds: float, tracking: str, note: CallerNote) -> None:
        route = route_of(scope)
        method: str = scope["method"]
        if self.metrics is not None:
            self.metrics.observe(route, method, status, seconds)
        self.access_log.request(method, route, status, seconds, tracking, caller=note)
