"""Reading the organization's event log (contract 7.2): a replayed page, or a stream of events from a
sequence on, live once it has caught up. Every read is scoped to the caller's organization."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from pendingtx import errors
from pendingtx.blocking import BlockingCalls
from pendingtx.domain.events import Event, EventType
from pendingtx.domain.jobs import is_possible_key
from pendingtx.services.authentication import Caller
from pendingtx.services.event_bus import Subscription
from pendingtx.storage import events
from pendingtx.storage.unit_of_work import UnitOfWork

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
EVENTS_PATH = "/v1/events"
__all__ = ["Event", "EventQuery", "Replay", "event_query", "last_sequence", "replay", "stream"]
_PARAMS = ("after", "limit", "type", "key")
# Sequences are 64-bit integers.
_MAX_DIGITS = 18


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events a replay or a stream asks for."""

    after: int = 0
    limit: int = DEFAULT_LIMIT
    kind: EventType | None = None
    key: str | None = None


def event_query(params: Sequence[tuple[str, str]], *, last_event_id: str | None = None) -> EventQuery:
    """The query's parameters checked; 400 naming each bad, repeated or unknown one. `Last-Event-ID`
    (the sequence of the last event the client saw, sent by a reconnecting stream) takes the place
    of `after`."""
    problems: list[errors.ErrorDetail] = []
    values: dict[str, str] = {}
    for name, value in params:
        if name not in _PARAMS:
            problems.append(errors.ErrorDetail(name, "query", "unknown query parameter"))
        elif name in values:
            problems.append(errors.ErrorDetail(name, "query", "must be given once"))
        else:
            values[name] = value
    after = _integer(values.get("after", "0"), 0, None)
    if after is None:
        problems.append(errors.ErrorDetail("after", "query", "must be an integer of 0 or more"))
    limit = _integer(values.get("limit", str(DEFAULT_LIMIT)), 1, MAX_LIMIT)
    if limit is None:
        problems.append(errors.ErrorDetail("limit", "query", f"must be between 1 and {MAX_LIMIT}"))
    kind = None
    if "type" in values:
        try:
            kind = EventType(values["type"])
        except ValueError:
            kinds = ", ".join(t.value for t in EventType)
            problems.append(errors.ErrorDetail("type", "query", f"must be one of {kinds}"))
    key = values.get("key")
    if key is not None and not is_possible_key(key):
        problems.append(errors.ErrorDetail("key", "query", "must be 1-128 characters of A-Z a-z 0-9 _ = + -"))
    if last_event_id is not None:
        resumed = _integer(last_event_id.strip(), 0, None)
        if resumed is None:
            problems.append(errors.ErrorDetail("Last-Event-ID", "header", "must be an event's sequence"))
        else:
            after = resumed
    if problems:
        raise errors.ValidationFailed(errors=problems)
    assert after is not None
    assert limit is not None
    return EventQuery(after=after, limit=limit, kind=kind, key=key)


def _integer(text: str, low: int, high: int | None) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        return None
    value = int(text)
    return value if value >= low and (high is None or value <= high) else None


@dataclass(frozen=True, slots=True)
class Replay:
    """One page of the log, and the URL of the next when the page is full (there may be more now)."""

    events: list[Event]
    next: str | None


def replay(uow: UnitOfWork, caller: Caller, query: EventQuery) -> Replay:
    """The caller's organization's events after `query.after`, oldest first."""
    found = read(uow, caller.org_id, query, query.after, query.limit)
    following = None
    if len(found) == query.limit:
        params: dict[str, str | int] = {"limit": query.limit}
        if query.kind is not None:
            params["type"] = query.kind.value
        if query.key is not None:
            params["key"] = query.key
        params["after"] = found[-1].sequence
        following = f"{EVENTS_PATH}?{urlencode(params)}"
    return Replay(found, following)


def read(uow: UnitOfWork, org_id: int, query: EventQuery, after: int, limit: int) -> list[Event]:
    """The organization's events matching the query after `after`."""
    with uow.read() as conn:
        return events.page(conn, org_id, after=after, limit=limit, kind=query.kind, job_key=query.key)


def last_sequence(uow: UnitOfWork, caller: Caller) -> int:
    """The sequence of the caller's organization's latest event (0 before any): a page read after it
    can follow the log from there without missing a change."""
    with uow.read() as conn:
        return events.last_sequence(conn, caller.org_id)


def already_over(uow: UnitOfWork, org_id: int, key: str, after: int) -> bool:
    """Whether a stream of the job `key` has nothing to wait for: no such job in the organization, or
    its job.completed is at or before `after`."""
    with uow.read() as conn:
        if not events.page(conn, org_id, after=0, limit=1, job_key=key):
            return True
        done = events.page(conn, org_id, after=0, limit=1, kind=EventType.COMPLETED, job_key=key)
    return bool(done) and done[0].sequence <= after


async def stream(
    uow: UnitOfWork, calls: BlockingCalls, caller: Caller, query: EventQuery, news: Subscription
) -> AsyncIterator[Event]:
    """The matching events after `query.after`, then live ones as the organization's log grows, until
    the job of `query.key` completes or the process shuts down. Releases `news` when done."""
    try:
        after = query.after
        org_id = caller.org_id
        if query.key is not None and await calls(already_over, uow, org_id, query.key, after):
            return
        while not news.closed:
            # Forget the news before reading: news arriving during the read makes the next round read again.
            news.take()
            found = await calls(read, uow, org_id, query, after, query.limit)
            for event in found:
                yield event
                after = event.sequence
                if query.key is not None and event.type is EventType.COMPLETED:
                    return
            if len(found) < query.limit:
                await news.news()
    finally:
        news.release()
