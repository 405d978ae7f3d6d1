"""The error answers: one response per status, its body the contract's error body with the codes that
`pendingtx.errors` gives that status (and, on the token endpoints, RFC 6749's members)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from pendingtx import errors
from pendingtx.api import answers
from pendingtx.api.openapi.shapes import JSON, TRACKING, header, ref, response
from pendingtx.api.token_endpoint import FORM_FIELDS

_REPEATED_HEADERS = "`Authorization`, `AppKey`, `Idempotency-Key`"
# What each status means; its codes and whether it is transient come from `pendingtx.errors`.
STATUSES: dict[int, tuple[str, str]] = {
    400: (
        "BadRequest",
        "The request is malformed: a path or query parameter (each given at most once), a header "
        f"(request headers may total 16 KiB, one value 8 KiB; {_REPEATED_HEADERS} given more than "
        "once), or the body (not JSON, the wrong shape, arrays and objects nested more than 32 levels "
        "deep). `errors` names each offending input.",
    ),
    401: (
        "Unauthorized",
        "Missing, malformed, unknown, revoked or expired token; missing or wrong AppKey; disabled "
        'application. `WWW-Authenticate` says `Bearer`, with `error="invalid_token"` when a token was '
        "sent (RFC 6750).",
    ),
    403: (
        "Forbidden",
        "The application is not entitled to this product (`gateway.authentication.failure`), or the "
        "caller's address is not on the application's allow-list (`gateway.access.failure`).",
    ),
    404: ("NotFound", "Unknown job key or externalId (another organization's are never revealed)."),
    405: (
        "MethodNotAllowed",
        "The path exists but does not take this method; `Allow` lists the methods it does take.",
    ),
    409: (
        "KeyInUse",
        "A request with this Idempotency-Key is still being stored. Sent again unchanged after "
        "`Retry-After` seconds, the request gets the first one's answer.",
    ),
    410: (
        "Gone",
        "The job was deleted by retention (`PENDINGTX_JOB_RETENTION_DAYS` after it ended); only its "
        "organization learns this, another one's key is a 404.",
    ),
    413: ("TooLarge", "The body is larger than the size limit."),
    414: ("UriTooLong", "The URL (path and query) is longer than the limit (2048 characters by default)."),
    415: ("UnsupportedMediaType", "The body's Content-Type is not one this operation accepts."),
    422: (
        "KeyReused",
        "The Idempotency-Key was used before with a different request: another method, path, "
        "query, Content-Type or body.",
    ),
    429: (
        "RateLimited",
        "Too many requests for this application; retry after `Retry-After` seconds.",
    ),
    500: ("InternalFailure", "An unexpected failure; the body never carries a stack trace."),
    503: ("ServiceUnavailable", "The database is unreachable or busy; retry after `Retry-After` seconds."),
}

# Answers whose status another operation gives with other codes: a component of their own
# (name: status, the error class, description); the status's own component leaves their codes out.
VARIANTS: dict[str, tuple[int, type[errors.ApiError], str]] = {
    "AlreadyFinished": (
        409,
        errors.JobAlreadyFinished,
        "The job has already finished (Completed, Partially Completed, Failed or Cancelled).",
    ),
}
_VARIANT_CLASSES = {cls for _, cls, _ in VARIANTS.values()}

# The token endpoints say more about some statuses.
_TOKEN_NOTES = {
    400: f"On this endpoint also: one of {', '.join(sorted(FORM_FIELDS))} given more than once, a "
    "missing or unsupported grant_type, a missing token.",
    401: "Bad client credentials (`invalid_client`); `WWW-Authenticate` says `Basic`.",
    429: "Too many failed authentications of this AppKey or address (for `Retry-After` seconds, even "
    "with the right secret), or too many attempts of one of them in flight (`Retry-After: 1`).",
    503: "No secret check could start in time (a few run at once) or the database is unavailable.",
}


def _classes(base: type[errors.ApiError] = errors.ApiError) -> list[type[errors.ApiError]]:
    found = [base] if base not in _VARIANT_CLASSES else []
    for sub in base.__subclasses__():
        found.extend(_classes(sub))
    return found


def codes_of(status: int) -> list[str]:
    """The codes an answer with this status may carry."""
    return sorted({cls.code for cls in _classes() if cls.status == status})


def transient(status: int) -> bool:
    """Whether an answer with this status is transient (true for all of its codes, or for none)."""
    kinds = {cls.transient for cls in _classes() if cls.status == status}
    assert len(kinds) == 1, f"status {status} is transient for some codes only"
    return kinds.pop()


def _body_type(status: int, *, oauth: bool, variant: str | None = None) -> type[msgspec.Struct]:
    """The body's struct: the error body (or the OAuth one) with the status's codes only."""
    base = answers.OAuthError if oauth else answers.Error
    codes = (VARIANTS[variant][1].code,) if variant is not None else tuple(codes_of(status))
    code = Literal[codes]  # type: ignore[valid-type]
    fields = [(f.name, code if f.name == "code" else f.type) for f in msgspec.structs.fields(base)]
    name = ("Token" if oauth else "") + (variant or STATUSES[status][0]) + "Error"
    return msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=True)


def body_types() -> list[type[msgspec.Struct]]:
    """Every error body's struct, for the document's schema components."""
    plain = [_body_type(status, oauth=False) for status in STATUSES]
    plain += [_body_type(status, oauth=False, variant=name) for name, (status, _, _) in VARIANTS.items()]
    return plain + [_body_type(status, oauth=True) for status in TOKEN_STATUSES]


# What the token endpoints can answer besides 200.
TOKEN_STATUSES = (400, 401, 413, 414, 415, 429, 500, 503)


def _error_response(status: int, *, oauth: bool) -> dict[str, Any]:
    name, description = STATUSES[status]
    if oauth and status in _TOKEN_NOTES:
        description = f"{description} {_TOKEN_NOTES[status]}"
    if oauth:
        description += " The body also carries RFC 6749's `error` and `error_description`."
    headers: dict[str, Any] = dict(TRACKING)
    if transient(status):
        headers["Retry-After"] = header("Retry-After")
    if status == 405:
        headers["Allow"] = header("Allow")
    if status == 401:
        headers["WWW-Authenticate"] = header("WWW-Authenticate")
    schema = ref(("Token" if oauth else "") + name + "Error")
    return {"description": description, "headers": headers, "content": {JSON: {"schema": schema}}}


def _variant_response(name: str) -> dict[str, Any]:
    _, cls, description = VARIANTS[name]
    headers: dict[str, Any] = dict(TRACKING)
    if cls.transient:
        headers["Retry-After"] = header("Retry-After")
    return {
        "description": description,
        "headers": headers,
        "content": {JSON: {"schema": ref(name + "Error")}},
    }


def error_responses() -> dict[str, Any]:
    """The response components: each status's, then the token endpoints' (`Token...`)."""
    found = {STATUSES[s][0]: _error_response(s, oauth=False) for s in STATUSES}
    found.update({name: _variant_response(name) for name in VARIANTS})
    found.update({"Token" + STATUSES[s][0]: _error_response(s, oauth=True) for s in TOKEN_STATUSES})
    return found


def errors_of(*statuses: int, variants: tuple[str, ...] = ()) -> dict[str, Any]:
    """An operation's error answers, by reference (`variants` by name, in place of their status's)."""
    found = {str(s): response(STATUSES[s][0]) for s in statuses}
    found.update({str(VARIANTS[name][0]): response(name) for name in variants})
    return dict(sorted(found.items()))


def token_errors() -> dict[str, Any]:
    """The token endpoints' error answers, by reference."""
    return {str(s): response("Token" + STATUSES[s][0]) for s in TOKEN_STATUSES}
