"""The sans-I/O core by hand: a flow says what to send and when to pause; whoever runs it does the I/O."""

from __future__ import annotations

import httpx
import pytest

from pendingtx_client import RetryPolicy, ServiceUnavailable
from pendingtx_client._core import Pacing, Pause, Send, send
from pendingtx_client._models import JobStatus
from pendingtx_client._operations import Operations

PACING = Pacing(RetryPolicy(max_attempts=3), clock=lambda: 0.0, random=lambda: 0.5)
BUSY = httpx.Response(
    503, json={"code": "service.unavailable", "transient": True}, headers={"Retry-After": "2"}
)


def test_a_request_is_retried_through_steps_alone() -> None:
    flow = send(PACING, "POST", "/v1/transactions", content=b"[]", content_type="application/json")

    first = next(flow)
    assert isinstance(first, Send)
    assert (first.method, first.url, first.content) == ("POST", "/v1/transactions", b"[]")
    assert flow.send(BUSY) == Pause(2.0)
    again = flow.send(None)
    assert again == first  # the same request, Idempotency-Key included
    with pytest.raises(StopIteration) as done:
        flow.send(httpx.Response(202, json={"jobStatusQueryKey": "K", "batchId": "1"}))
    assert done.value.value.status_code == 202


def test_a_transport_error_is_retried_and_the_last_failure_raised() -> None:
    flow = send(PACING, "GET", "/v1/transactions")
    next(flow)
    assert isinstance(flow.send(httpx.ConnectError("refused")), Pause)
    flow.send(None)
    assert isinstance(flow.send(BUSY), Pause)
    flow.send(None)
    with pytest.raises(ServiceUnavailable):
        flow.send(BUSY)  # the third and last try


def test_wait_pauses_between_polls_as_the_server_says() -> None:
    now = [0.0]
    pacing = Pacing(RetryPolicy(), clock=lambda: now[0], random=lambda: 0.5)
    flow = Operations(pacing, RetryPolicy()).wait("KEY", timeout=60, on_poll=None, request_timeout=None)

    poll = next(flow)
    assert isinstance(poll, Send)
    assert poll.url == "/v1/jobs/insight/status/KEY"
    running = {"status": "In Progress", "batchId": "1", "message": "In Progress"}
    assert flow.send(httpx.Response(200, json=running, headers={"Retry-After": "3"})) == Pause(3.0)
    assert flow.send(None) == poll
    with pytest.raises(StopIteration) as done:
        flow.send(httpx.Response(200, json={**running, "status": "Completed"}))
    assert isinstance(done.value.value, JobStatus)
    assert done.value.value.terminal
