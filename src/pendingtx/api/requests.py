"""Reading request bodies and headers within the contract's limits."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from starlette.requests import Request

from pendingtx import errors

GIVEN_ONCE = "must be given once"


def media_type(request: Request) -> str:
    """The request's media type, lower-cased, without parameters."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_media_type(request: Request, *accepted: str) -> None:
    """415 unless the body is one of the accepted media types."""
    if media_type(request) not in accepted:
        raise errors.UnsupportedMediaType(
            f"Content-Type must be {' or '.join(accepted)}",
            errors=[errors.ErrorDetail("Content-Type", "header", f"must be {' or '.join(accepted)}")],
        )


async def read_body(request: Request, *, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.TooLarge(f"Request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.TooLarge(f"Request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def given_once(
    items: Iterable[tuple[str, str]], *, location: str, names: Collection[str] | None = None
) -> dict[str, str]:
    """The (name, value) items as a mapping; 400 naming each of `names` (by default, any name) that is
    given more than once, rather than letting the first or the last one win.
    """
    values: dict[str, str] = {}
    repeated: list[str] = []
    for name, value in items:
        if name in values and (names is None or name in names) and name not in repeated:
            repeated.append(name)
        values.setdefault(name, value)
    if repeated:
        raise errors.ValidationFailed(
            errors=[errors.ErrorDetail(name, location, GIVEN_ONCE) for name in repeated]
        )
    return values
