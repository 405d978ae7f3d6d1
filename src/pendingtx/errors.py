"""The one exception tree of the service: each class is one row of the contract's error table.

    ApiError
    ├── ValidationFailed        400 request.validation.failure
    ├── AuthenticationFailed    401 gateway.authentication.failure
    │   ├── TokenExpired
    │   └── InvalidClient       (token endpoint: also carries RFC 6749 `error`)
    ├── NotEntitled             403 gateway.authentication.failure
    ├── AccessDenied            403 gateway.access.failure
    ├── NotFound                404 resource.not.found
    ├── MethodNotAllowed        405 request.method.not.allowed
    ├── IdempotencyKeyInUse     409 idempotency.key.in.use (transient)
    ├── TooLarge                413 request.too.large
    ├── UriTooLong              414 request.uri.too.long
    ├── UnsupportedMediaType    415 request.unsupported.media.type
    ├── IdempotencyKeyReused    422 idempotency.key.reused
    ├── RateLimited             429 request.rate.limited (transient)
    ├── InternalFailure         500 internal.server.failure
    └── ServiceUnavailable      503 service.unavailable (transient)

The class docstring is the default message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import msgspec


class ErrorDetail(msgspec.Struct, frozen=True):
    """One offending input: which field, where it was sent, and what is wrong with it."""

    field: str
    location: str
    reason: str


class ApiError(Exception):
    """Request failed"""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal.server.failure"
    transient: ClassVar[bool] = False
    oauth_error: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.errors = list(errors)
        self.headers = dict(headers or {})
        super().__init__(self.message)


class ValidationFailed(ApiError):
    """Request validation failed"""

    status = 400
    code = "request.validation.failure"
    oauth_error = "invalid_request"


class AuthenticationFailed(ApiError):
    """Invalid access token"""

    status = 401
    code = "gateway.authentication.failure"


class TokenExpired(AuthenticationFailed):
    """Access Token expired"""


class InvalidClient(AuthenticationFailed):
    """Invalid client credentials"""

    oauth_error = "invalid_client"


class UnsupportedGrantType(ValidationFailed):
    """Unsupported grant type"""

    oauth_error = "unsupported_grant_type"


class NotEntitled(ApiError):
    """Invalid ApiKey for given resource"""

    status = 403
    code = "gateway.authentication.failure"


class AccessDenied(ApiError):
    """Access denied for the caller's address"""

    status = 403
    code = "gateway.access.failure"


class NotFound(ApiError):
    """Resource not found"""

    status = 404
    code = "resource.not.found"


class MethodNotAllowed(ApiError):
    """Method not allowed"""

    status = 405
    code = "request.method.not.allowed"


class IdempotencyKeyInUse(ApiError):
    """The request with this Idempotency-Key is still being stored; retry shortly"""

    status = 409
    code = "idempotency.key.in.use"
    # Retried unchanged once the first request is stored, it gets that request's answer.
    transient = True


class JobAlreadyFinished(ApiError):
    """The job has already finished"""

    status = 409
    code = "job.already.finished"


class Gone(ApiError):
    """The job was deleted by retention"""

    status = 410
    code = "resource.gone"


class TooLarge(ApiError):
    """Request body too large"""

    status = 413
    code = "request.too.large"


class UriTooLong(ApiError):
    """Request URI too long"""

    status = 414
    code = "request.uri.too.long"


class UnsupportedMediaType(ApiError):
    """Unsupported media type"""

    status = 415
    code = "request.unsupported.media.type"


class IdempotencyKeyReused(ApiError):
    """Idempotency-Key was already used with a different request"""

    status = 422
    code = "idempotency.key.reused"


class RateLimited(ApiError):
    """Too many requests"""

    status = 429
    code = "request.rate.limited"
    transient = True


class InternalFailure(ApiError):
    """Internal server error"""


class ServiceUnavailable(ApiError):
    """Service temporarily unavailable"""

    status = 503
    code = "service.unavailable"
    transient = True
