"""Bursts at the token endpoint: the failure limit counts attempts before their secret is checked, and
each process checks only a few secrets at once (each real Argon2 check holds 64 MiB).

The requests of a burst are sent at once over one event loop; each secret check waits at a gate
that the test opens once the burst has gone as far as it can, so that they all overlap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Literal

import httpx
import pytest
from argon2 import PasswordHasher

from pendingtx.config import Settings
from pendingtx.services import credentials
from tests.api.peers import Site, serving_with
from tests.conftest import AppCreds, assert_error
from tests.support import FakeClock, basic

LIMIT = 10
WINDOW = 300
WRONG = "not-the-secret"
PEER = ("198.51.100.7", 50123)


class GatedHasher(PasswordHasher):
    """Cheap Argon2 whose checks wait for `gate`, counting how many ran and how many at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self.calls = self.running = self.most = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.gate.wait(30), "the test never opened the gate"
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> GatedHasher:
    gated = GatedHasher()
    monkeypatch.setattr(credentials, "_hasher", lambda: gated)
    return gated


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(auth_failure_limit=LIMIT, auth_failure_window_seconds=WINDOW)


@pytest.fixture
def site_with(settings: Settings, clock: FakeClock) -> Iterator[Callable[..., Site]]:
    yield from serving_with(settings, clock)


def client(site: Site) -> httpx.AsyncClient:
    """An HTTP client of the site, from one address (use it as an async context manager)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site.app, client=PEER), base_url="http://127.0.0.1"
    )


async def token_request(http: httpx.AsyncClient, app_key: str, secret: str) -> httpx.Response:
    return await http.post(
        "/v2/oauthtoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(app_key, secret)},
    )


def start(http: httpx.AsyncClient, app_key: str, secrets: list[str]) -> list[asyncio.Task[httpx.Response]]:
    """One token request per secret, all started at once."""
    return [asyncio.ensure_future(token_request(http, app_key, secret)) for secret in secrets]


def in_turn(site: Site, app_key: str, secrets: list[str]) -> list[httpx.Response]:
    """One token request per secret, one after the other."""

    async def run() -> list[httpx.Response]:
        async with client(site) as http:
            return [await token_request(http, app_key, secret) for secret in secrets]

    return asyncio.run(run())


async def until(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


def test_a_burst_of_wrong_secrets_checks_no_more_secrets_than_the_limit(
    hasher: GatedHasher, site_with: Callable[..., Site], app_creds: AppCreds
) -> None:
    # As many slots as the limit: only the failure limit may hold the checks back here.
    site = site_with(max_concurrent_secret_checks=LIMIT)

    async def burst() -> list[httpx.Response]:
        async with client(site) as http:
            tasks = start(http, app_creds.app_key, [WRONG] * 40)
            await until(lambda: hasher.running + sum(t.done() for t in tasks) == 40, "the burst to settle")
            hasher.gate.set()
            return list(await asyncio.gather(*tasks))

    answers = asyncio.run(burst())
    # Attempts refused while they were counted in flight may have held back a few more.
    checked = hasher.calls
    assert 1 <= checked <= LIMIT
    assert statuses(answers) == {401: checked, 429: 40 - checked}
    for answer in answers:
        if answer.status_code == 429:
            assert_error(answer, 429, "request.rate.limited", oauth=True)
            assert answer.headers["retry-after"] == "1"  # refused while the others were in flight
    # The failures of the limit lock the AppKey out, the right secret included, for the window.
    rest = in_turn(site, app_creds.app_key, [WRONG] * (LIMIT - checked) + [app_creds.app_secret])
    assert [answer.status_code for answer in rest] == [401] * (LIMIT - checked) + [429]
    assert_error(rest[-1], 429, "request.rate.limited", oauth=True)
    assert rest[-1].headers["retry-after"] == str(WINDOW)
    assert hasher.calls == LIMIT


def test_right_secrets_in_flight_do_not_count_as_failures(
    hasher: GatedHasher, site_with: Callable[..., Site], app_creds: AppCreds
) -> None:
    site = site_with(max_concurrent_secret_checks=LIMIT)

    async def burst() -> tuple[list[httpx.Response], httpx.Response]:
        async with client(site) as http:
            tasks = start(http, app_creds.app_key, [app_creds.app_secret] * LIMIT)
            await until(lambda: hasher.running == LIMIT, "every check to start")
            [crowded] = start(http, app_creds.app_key, [app_creds.app_secret])
            await until(lambda: crowded.done() or hasher.running > LIMIT, "the extra request to get on")
            hasher.gate.set()
            return list(await asyncio.gather(*tasks)), await crowded

    answers, crowded = asyncio.run(burst())
    assert statuses(answers) == {200: LIMIT}
    assert_error(crowded, 429, "request.rate.limited", oauth=True)
    assert crowded.headers["retry-after"] == "1"
    # None of it was a failure: the whole limit is still there.
    assert statuses(in_turn(site, app_creds.app_key, [WRONG] * (LIMIT - 1))) == {401: LIMIT - 1}
    assert in_turn(site, app_creds.app_key, [app_creds.app_secret])[0].status_code == 200


def test_no_more_secrets_are_checked_at_once_than_the_setting(
    hasher: GatedHasher, site_with: Callable[..., Site], app_creds: AppCreds
) -> None:
    site = site_with(max_concurrent_secret_checks=2, secret_check_wait_seconds=60)
    requests = 8

    def settled() -> bool:
        # Either every check started at once (no bound), or two did and the rest wait for a slot.
        waiting = getattr(site.runtime.abuse, "secret_checks", None)
        return hasher.running == requests or (
            hasher.running == 2 and waiting is not None and waiting.waiting == requests - 2
        )

    async def burst() -> list[httpx.Response]:
        async with client(site) as http:
            tasks = start(http, app_creds.app_key, [app_creds.app_secret] * requests)
            await until(settled, "the checks to start or wait")
            hasher.gate.set()
            return list(await asyncio.gather(*tasks))

    answers = asyncio.run(burst())
    assert hasher.most == 2
    assert statuses(answers) == {200: requests}


def test_a_check_that_finds_no_slot_in_time_is_503_and_not_a_failure(
    hasher: GatedHasher, site_with: Callable[..., Site], app_creds: AppCreds
) -> None:
    site = site_with(max_concurrent_secret_checks=1, secret_check_wait_seconds=0.2)

    async def crowded() -> tuple[httpx.Response, httpx.Response]:
        async with client(site) as http:
            [first] = start(http, app_creds.app_key, [app_creds.app_secret])
            await until(lambda: hasher.running == 1, "the first check to start")
            [refused] = start(http, app_creds.app_key, [WRONG])
            await until(lambda: refused.done() or hasher.running > 1, "the second request to get on")
            hasher.gate.set()
            return await first, await refused

    first, refused = asyncio.run(crowded())
    assert first.status_code == 200
    assert_error(refused, 503, "service.unavailable", oauth=True)
    assert int(refused.headers["retry-after"]) >= 1
    assert hasher.calls == 1  # the refused secret was never checked...
    # ... nor counted: the limit's failures are all still to come.
    assert statuses(in_turn(site, app_creds.app_key, [WRONG] * (LIMIT - 1))) == {401: LIMIT - 1}
    assert in_turn(site, app_creds.app_key, [app_creds.app_secret])[0].status_code == 200
