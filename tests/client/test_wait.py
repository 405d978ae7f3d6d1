"""`Client.wait` with fake time: Retry-After first, capped jittered backoff, a deadline that holds."""

from __future__ import annotations

import pytest

from pendingtx_client import JobState, JobStatus, RetryPolicy, ServiceUnavailable, WaitTimeout
from tests.client.conftest import FakeTime
from tests.client.scripted import STATUS_PATH, ScriptedServer, error, job

STATUS = f"GET {STATUS_PATH}"


@pytest.fixture
def server(flavour: str) -> ScriptedServer:
    return ScriptedServer(flavour=flavour)


def test_wait_polls_as_retry_after_says_until_terminal(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(
        STATUS,
        job("Submitted", retry_after="2"),
        job("In Progress", retry_after="3", processed=1),
        job("Completed", processed=2),
    )
    seen: list[JobStatus] = []
    with server.client(fake_time) as client:
        done = client.wait("KEY", timeout=60, on_poll=seen.append)
    assert done.status is JobState.COMPLETED
    assert fake_time.sleeps == [2.0, 3.0]
    assert [s.status for s in seen] == [JobState.SUBMITTED, JobState.IN_PROGRESS, JobState.COMPLETED]
    assert [s.processed_count for s in seen] == [0, 1, 2]


def test_without_retry_after_polling_backs_off_to_a_cap_with_jitter(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(STATUS, *[job("In Progress")] * 6, job("Completed"))
    draws = iter([0.0, 0.999, 0.0, 0.999, 0.0, 0.999])
    poll = RetryPolicy(base_delay=1.0, max_delay=4.0)
    with server.client(fake_time, poll=poll, random=lambda: next(draws)) as client:
        client.wait("KEY", timeout=600)
    # ceilings 1, 2, 4, 4, 4, 4 scaled by 0.5 + draw / 2
    assert fake_time.sleeps == pytest.approx([0.5, 1.999, 2.0, 3.998, 2.0, 3.998], rel=1e-3)
    assert max(fake_time.sleeps) <= 4.0


def test_a_failed_job_is_returned_not_raised(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(STATUS, job("Failed"))
    with server.client(fake_time) as client:
        done = client.wait("KEY", timeout=5)
    assert done.status is JobState.FAILED
    assert done.terminal
    assert fake_time.sleeps == []


def test_the_deadline_is_never_overslept(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(STATUS, job("In Progress", retry_after="3"))
    start = fake_time.now
    with server.client(fake_time) as client, pytest.raises(WaitTimeout) as caught:
        client.wait("KEY", timeout=10)
    assert fake_time.sleeps == [3.0, 3.0, 3.0, 1.0]  # the last pause is cut to the deadline
    assert fake_time.now - start == 10.0
    assert len(server.sent(STATUS)) == 5  # one last look at the deadline
    timeout = caught.value
    assert timeout.key == "KEY"
    assert timeout.last.status is JobState.IN_PROGRESS
    assert "In Progress" in str(timeout)


def test_a_zero_timeout_looks_once(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(STATUS, job("Submitted", retry_after="1"))
    with server.client(fake_time) as client, pytest.raises(WaitTimeout):
        client.wait("KEY", timeout=0)
    assert fake_time.sleeps == []
    assert len(server.sent(STATUS)) == 1


def test_transient_errors_while_waiting_are_retried(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(
        STATUS,
        job("In Progress", retry_after="1"),
        error(503, "service.unavailable", transient=True, headers={"Retry-After": "2"}),
        job("Completed"),
    )
    with server.client(fake_time) as client:
        assert client.wait("KEY", timeout=30).status is JobState.COMPLETED
    assert fake_time.sleeps == [1.0, 2.0]


def test_retries_while_waiting_stop_at_the_deadline(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(
        STATUS,
        job("In Progress", retry_after="1"),
        error(503, "service.unavailable", transient=True, headers={"Retry-After": "5"}),
    )
    with server.client(fake_time) as client, pytest.raises(ServiceUnavailable):
        client.wait("KEY", timeout=3)
    assert sum(fake_time.sleeps) <= 3


def test_an_unknown_status_is_unknown_and_not_terminal(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(STATUS, job("Paused", retry_after="1"))
    with server.client(fake_time) as client:
        status = client.status("KEY")
        assert status.status is JobState.UNKNOWN
        assert not status.terminal
        assert status.message.startswith("Paused")
        with pytest.raises(WaitTimeout):
            client.wait("KEY", timeout=2)


def test_job_states() -> None:
    assert {s for s in JobState if s.terminal} == {
        JobState.COMPLETED,
        JobState.PARTIALLY_COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
    }
    assert JobState("Partially Completed") is JobState.PARTIALLY_COMPLETED
    assert JobState("something new") is JobState.UNKNOWN
