"""The client's exception tree, and the one function that turns an error answer into an exception.

```
PendingTxError                  anything this client raises on purpose
├── ApiError                    the server answered with an error (or with a body this client cannot read)
│   ├── ValidationError         400 request.validation.failure
│   ├── AuthenticationError     401 gateway.authentication.failure (bad credentials, expired token)
│   ├── PermissionDenied        403 not entitled to the product, or not on the IP allow-list
│   ├── NotFound                404 unknown job key or externalId
│   ├── Conflict                409 the Idempotency-Key's first request is still being stored (transient)
│   ├── IdempotencyKeyReused    422 the Idempotency-Key was used with a different request
│   ├── RateLimited             429 (transient: retried before it is raised)
│   ├── ServerError             5xx
│   │   └── ServiceUnavailable  503 (transient: retried before it is raised)
│   └── UnexpectedResponse      a 2xx answer whose body is not what the contract promises
├── ConnectionFailed            no answer at all (connection refused, reset, timed out) after the retries
├── WaitTimeout                 `wait` reached its deadline before the job was terminal
└── ConfigurationError          `from_env` found no URL or credentials, or could not read the profile file
```

Every `ApiError` carries `status`, `code`, `message`, `tracking_id` (the server's `requesttrackingid`,
to quote in a support request), `errors` (the per-field details) and `transient`. No message ever
contains an access token or an application secret: they are built from the server's error body only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

if TYPE_CHECKING:
    from pendingtx_client._models import JobStatus


class PendingTxError(Exception):
    """Base of every exception raised by the pendingtx client."""


class ErrorDetail(msgspec.Struct, frozen=True):
    """One problem with one part of the request."""

    field: str = ""
    location: str = ""
    reason: str = ""


class ApiError(PendingTxError):
    """The server answered with an error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        tracking_id: str | None = None,
        errors: tuple[ErrorDetail, ...] = (),
        transient: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.tracking_id = tracking_id
        self.errors = errors
        self.transient = transient
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.status} {self.code}: {self.message}" if self.code else f"{self.status}: {self.message}"
        details = "; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in self.errors)
        if details:
            text += f" ({details})"
        if self.tracking_id:
            text += f" [tracking id {self.tracking_id}]"
        return text


class ValidationError(ApiError):
    """400: the request's path, query or body has the wrong shape."""


class AuthenticationError(ApiError):
    """401: bad application credentials, or a token the server no longer accepts."""


class PermissionDenied(ApiError):
    """403: the application may not use this product, or not from this address."""


class NotFound(ApiError):
    """404: no such job key or transaction in the caller's organization."""


class Conflict(ApiError):
    """409: the request conflicts with the state of the service, such as an Idempotency-Key whose first
    request is still being stored (transient: retried before it is raised)."""


class IdempotencyKeyReused(ApiError):
    """422: the Idempotency-Key was already used with a different request."""


class RateLimited(ApiError):
    """429: too many requests; retried (honouring Retry-After) before it is raised."""


class ServerError(ApiError):
    """5xx: the server failed."""


class ServiceUnavailable(ServerError):
    """503: the service cannot answer right now; retried before it is raised."""


class UnexpectedResponse(ApiError):
    """A successful answer whose body is not what the contract promises."""


class ConnectionFailed(PendingTxError):
    """No answer from the server (connection refused or reset, timeout) after every retry."""


class ConfigurationError(PendingTxError):
    """No server URL or credentials were found, or the profile file could not be read.

    `missing` names what was not found (url, app_key, app_secret); `profile` is the profile file looked at.
    """

    def __init__(self, message: str, *, missing: tuple[str, ...] = (), profile: Path | None = None) -> None:
        self.missing = missing
        self.profile = profile
        super().__init__(message)


class WaitTimeout(PendingTxError):
    """`wait` reached its deadline while the job was still running; `last` is its last status."""

    def __init__(self, key: str, timeout: float, last: JobStatus) -> None:
        self.key = key
        self.timeout = timeout
        self.last = last
        super().__init__(f"job {key} still {last.status.value} after {timeout:g} s")


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: IdempotencyKeyReused,
    429: RateLimited,
    503: ServiceUnavailable,
}


class _ErrorBody(msgspec.Struct, rename="camel"):
    code: str = ""
    message: str = ""
    tracking_id: str | None = None
    transient: bool = False
    errors: tuple[ErrorDetail, ...] = ()


def error_class(status: int) -> type[ApiError]:
    """The exception class for an HTTP status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed exception for an error answer; tolerates bodies that are not the contract's."""
    try:
        body = msgspec.json.decode(response.content, type=_ErrorBody)
    except msgspec.DecodeError:
        body = _ErrorBody(message=response.reason_phrase or "error")
    tracking = body.tracking_id or response.headers.get("requesttrackingid")
    # A proxy's 503 without the contract's body is just as worth retrying.
    transient = body.transient or response.status_code in (429, 503)
    return error_class(response.status_code)(
        response.status_code,
        body.code,
        body.message or response.reason_phrase or "error",
        tracking_id=tracking,
        errors=body.errors,
        transient=transient,
    )


def unexpected(response: httpx.Response, what: str, problem: Any) -> UnexpectedResponse:
    """An `UnexpectedResponse` for a 2xx answer that could not be read as `what`."""
    return UnexpectedResponse(
        response.status_code,
        "client.unexpected.response",
        f"could not read the answer as {what}: {problem}",
        tracking_id=response.headers.get("requesttrackingid"),
    )
