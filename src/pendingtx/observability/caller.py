"""Who is calling: told by the code that authenticates a request, read by the request layer for its log line.

The request layer opens a `CallerNote` for each request in a context variable; `identify` fills it
in. A context variable reaches the code that authenticates wherever it runs: on the event loop, or
in a worker thread (anyio copies the context into the thread, and the note is the same object).
Outside a request (the worker, the command line) `identify` does nothing.
"""

from __future__ import annotations

from contextvars import ContextVar, Token


class CallerNote:
    """The authenticated application's AppKey and its organization, once known."""

    __slots__ = ("app", "org")

    def __init__(self) -> None:
        self.app: str | None = None
        self.org: int | str | None = None


_current: ContextVar[CallerNote | None] = ContextVar("pendingtx_caller", default=None)


def identify(app: str, org: int | str) -> None:
    """Name the caller of the request being served (its AppKey, never a secret, and its organization)."""
    note = _current.get()
    if note is not None:
        note.app = app
        note.org = org


def open_note() -> tuple[CallerNote, Token[CallerNote | None]]:
    """Start noting the caller of a new request; pass the token to `close_note` when it ends."""
    note = CallerNote()
    return note, _current.set(note)


def close_note(token: Token[CallerNote | None]) -> None:
    """Stop noting for the request that `open_note` started."""
    _current.reset(token)
