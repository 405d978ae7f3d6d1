"""`GET /v1/events` (contract 7.2): the organization's event log replayed as JSON pages, or with
`Accept: text/event-stream` streamed as server-sent events (framing, heartbeats and disconnects by
sse-starlette), from `after` or `Last-Event-ID` on and then live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from pendingtx.api.dependencies import ApiServices
from pendingtx.api.responses import encode_json, json_response
from pendingtx.services import event_log
from pendingtx.services.authentication import Caller

EVENT_STREAM = "text/event-stream"


def wants_stream(accept: str | None) -> bool:
    """Whether the `Accept` header names the event stream (with a q above 0)."""
    for media_range in (accept or "").split(","):
        kind, *params = (part.strip().lower() for part in media_range.split(";"))
        if kind == EVENT_STREAM:
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
    return False


class EventsEndpoint:
    """Answers GET /v1/events."""

    def __init__(self, services: ApiServices, caller: Callable[[Request], Awaitable[Caller]]) -> None:
        self.services = services
        self.caller = caller

    async def handle(self, request: Request) -> Response:
        """A page of the log, or the stream."""
        caller = await self.caller(request)
        stream = wants_stream(request.headers.get("accept"))
        query = event_log.event_query(
            request.query_params.multi_items(),
            last_event_id=request.headers.get("last-event-id"),
        )
        services = self.services
        if not stream:
            page = await services.calls(event_log.replay, services.uow, caller, query)
            return json_response(
                {
                    "data": {"results": [event.to_json() for event in page.events]},
                    "paging": {"limit": query.limit, "next": page.next},
                }
            )
        return stream_response(services, caller, query)


def stream_response(services: ApiServices, caller: Caller, query: event_log.EventQuery) -> Response:
    """The caller's organization's events matching `query` as server-sent events (the dashboard's
    live updates use it too)."""
    # Before the answer starts: past the organization's bound this is a 429 like any other.
    news = services.events.subscribe(caller.org_id)
    events = event_log.stream(services.uow, services.calls, caller, query, news)
    return EventSourceResponse(
        _frames(events),
        ping=services.settings.event_heartbeat_seconds,
        headers={"Cache-Control": "no-store"},
        # Should the stream end before its generator ever ran, the subscription still ends.
        background=BackgroundTask(news.release),
    )


async def _frames(events: AsyncIterator[event_log.Event]) -> AsyncIterator[ServerSentEvent]:
    async for event in events:
        yield ServerSentEvent(
            data=encode_json(event.to_json()).decode("utf-8"), event=event.type.value, id=str(event.sequence)
        )
