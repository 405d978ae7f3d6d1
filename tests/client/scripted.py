"""A scripted pendingtx server for httpx.MockTransport: queued answers per route, counted token mints."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from pendingtx_client import Client
from tests.client.conftest import FakeTime
from tests.client.flavours import open_client

APP_KEY = "app-key-1"
APP_SECRET = "s3cr3t-app-secret-value"
STATUS_PATH = "/v1/jobs/insight/status/KEY"
Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception


def token_value(n: int) -> str:
    return f"tok3n-{n}-0123456789abcdef"


def error(
    status: int, code: str, *, transient: bool = False, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "code": code,
        "message": f"{code} happened",
        "trackingId": f"track-{status}",
        "transient": transient,
        "errors": [],
    }
    return httpx.Response(status, json=body, headers=headers)


def accepted(key: str = "KEY") -> httpx.Response:
    return httpx.Response(202, json={"jobStatusQueryKey": key, "batchId": "7"})


def job(status: str, *, retry_after: str | None = None, processed: int = 0) -> httpx.Response:
    body = {
        "status": status,
        "batchId": "7",
        "message": f"{status}: details",
        "validationMessage": [],
        "recordCount": 2,
        "processedCount": processed,
        "failedCount": 0,
        "submittedAt": "2026-11-29T06:15:02.120-05:00",
        "completedAt": None,
        "validationDetails": [],
    }
    return httpx.Response(200, json=body, headers={"Retry-After": retry_after} if retry_after else None)


class ScriptedServer:
    """Answers the token endpoint itself; every other route answers from its queue (the last one repeats).

    `client()` is a `Client`, or with `flavour="async"` an `AsyncClient` (see flavours.py).
    """

    def __init__(self, *, flavour: str = "sync", expires_in: int = 3600) -> None:
        self.flavour = flavour
        self.expires_in = expires_in
        self.mints = 0
        self.mint_answers: list[Answer] = []
        self.queues: dict[str, list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, route: str, *answers: Answer) -> None:
        """Queue answers for "METHOD /path"."""
        self.queues.setdefault(route, []).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # A copy: an auth flow sends the same request object again with other headers.
        self.requests.append(
            httpx.Request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.read(),
                extensions=request.extensions,
            )
        )
        if request.url.path == "/v2/oauthtoken":
            return self._mint(request)
        queue = self.queues[f"{request.method} {request.url.path}"]
        return _answer(queue.pop(0) if len(queue) > 1 else queue[0], request)

    def _mint(self, request: httpx.Request) -> httpx.Response:
        if self.mint_answers:
            return _answer(self.mint_answers.pop(0), request)
        self.mints += 1
        body = {
            "access_token": token_value(self.mints),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        return httpx.Response(200, json=body, headers={"Cache-Control": "no-store"})

    def sent(self, route: str) -> list[httpx.Request]:
        return [r for r in self.requests if f"{r.method} {r.url.path}" == route]

    def client(self, time: FakeTime, **options: Any) -> Client:
        options.setdefault("random", lambda: 0.5)
        return open_client(
            self.flavour,
            "http://api.test",
            APP_KEY,
            APP_SECRET,
            transport=httpx.MockTransport(self),
            sleep=time.sleep,
            clock=time.clock,
            **options,
        )


def _answer(answer: Answer, request: httpx.Request) -> httpx.Response:
    if isinstance(answer, Exception):
        raise answer
    if isinstance(answer, httpx.Response):  # a fresh copy: the last answer of a queue is sent again
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
    return answer(request)


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)
