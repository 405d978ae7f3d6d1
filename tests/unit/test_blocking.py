"""Blocking database calls run off the event loop (pendingtx.blocking): results, errors, the
request's context variables, and the deadline that turns a hung call into 503.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from pendingtx import errors
from pendingtx.blocking import InlineCalls, ThreadCalls

_request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def _in_thread(value: int) -> tuple[int, str, bool]:
    return value * 2, _request.get(), threading.current_thread() is threading.main_thread()


def test_a_call_returns_its_result_from_another_thread_with_the_callers_context() -> None:
    calls = ThreadCalls(timeout=5, threads=2)

    async def main() -> tuple[int, str, bool]:
        _request.set("req-1")
        return await calls(_in_thread, 21)

    assert asyncio.run(main()) == (42, "req-1", False)


def test_inline_calls_run_on_the_event_loop() -> None:
    calls = InlineCalls()
    assert asyncio.run(calls(_in_thread, 1))[2] is True


def test_an_error_is_raised_to_the_caller() -> None:
    calls = ThreadCalls(timeout=5, threads=1)

    def fail() -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        asyncio.run(calls(fail))


def test_a_hung_call_is_503_at_the_deadline_and_later_calls_still_run() -> None:
    calls = ThreadCalls(timeout=0.2, threads=2)
    release = threading.Event()

    async def main() -> list[object]:
        hung = asyncio.ensure_future(calls(release.wait, 10))
        queued = [asyncio.ensure_future(calls(_in_thread, n)) for n in range(5)]
        outcomes: list[object] = []
        for future in [hung, *queued]:
            try:
                outcomes.append(await future)
            except errors.ServiceUnavailable:
                outcomes.append("503")
        return outcomes

    try:
        outcomes = asyncio.run(main())
    finally:
        release.set()
    assert outcomes[0] == "503"
    # The other thread serves the calls queued behind the hung one.
    assert [o[0] for o in outcomes[1:] if isinstance(o, tuple)] == [0, 2, 4, 6, 8]


def test_calls_beyond_the_threads_wait_for_one_and_all_complete() -> None:
    calls = ThreadCalls(timeout=5, threads=3)
    running = 0
    most = 0
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=5)

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if n < 3:
            gate.wait()  # the first three run at once
        with lock:
            running -= 1
        return n

    async def main() -> list[int]:
        return list(await asyncio.gather(*(calls(work, n) for n in range(12))))

    assert asyncio.run(main()) == list(range(12))
    assert most == 3


def test_an_awaited_read_is_503_at_the_deadline_without_waiting_for_its_cleanup() -> None:
    calls = ThreadCalls(timeout=0.1, threads=1)
    cleaned = asyncio.Event()

    async def read() -> int:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.5)  # as psycopg asks a hung server to cancel the query
            cleaned.set()
        return 1

    async def main() -> tuple[bool, bool]:
        with pytest.raises(errors.ServiceUnavailable):
            await calls.wait(read())
        answered_before_cleanup = not cleaned.is_set()
        await asyncio.wait_for(cleaned.wait(), 5)
        return answered_before_cleanup, await calls.wait(asyncio.sleep(0, result=True))

    assert asyncio.run(main()) == (True, True)
