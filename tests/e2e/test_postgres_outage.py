"""A PostgreSQL outage the test controls: the service reaches the database only through a proxy.

The test cuts the proxy (the shared server itself is never stopped or touched): the service answers
503 in the contract's format, quickly, while the database is away, and serves normally again once it
is back, without being restarted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import assert_error
from tests.e2e.conftest import StartServer
from tests.e2e.pgproxy import PgProxy
from tests.e2e.server import (
    TERMINAL_STATUSES,
    Server,
    caller_headers,
    create_app_via_cli,
    pg_connect,
    wait_until,
)
from tests.support import record

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# A request must be answered within this many seconds while the database is down: no hang.
QUICK = 3.0
ROUNDS = 5


@pytest.fixture
def proxy(postgres_e2e_url: str) -> Iterator[PgProxy]:
    upstream = sa.make_url(postgres_e2e_url)
    with PgProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as running:
        yield running


@pytest.fixture
def e2e_database_url(postgres_e2e_url: str, proxy: PgProxy) -> str:
    """The service's database URL: the test's own database, through the proxy."""
    return (
        sa.make_url(postgres_e2e_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )


def timed_within(limit: float, send: Callable[[], httpx.Response]) -> httpx.Response:
    """Send a request and require an answer within `limit` seconds."""
    began = time.monotonic()
    answer = send()
    elapsed = time.monotonic() - began
    assert elapsed < limit, f"{answer.request.method} {answer.request.url.path} took {elapsed:.1f} s"
    return answer


def timed(send: Callable[[], httpx.Response]) -> httpx.Response:
    """Send a request and require an answer within QUICK seconds."""
    return timed_within(QUICK, send)


def assert_unavailable(answer: httpx.Response, tracking_id: str, *, oauth: bool = False) -> None:
    """503 service.unavailable in the contract's error body, transient, with Retry-After."""
    body = assert_error(answer, 503, "service.unavailable", oauth=oauth)
    assert body["transient"] is True
    assert body["trackingId"] == tracking_id == answer.headers["requesttrackingid"]
    assert isinstance(body["errors"], list)
    retry_after = answer.headers.get("retry-after", "")
    assert retry_after.isdigit(), answer.headers
    assert int(retry_after) >= 1


def status_of(http: httpx.Client, key: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = http.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def submit(http: httpx.Client, headers: dict[str, str], batch: list[dict[str, Any]]) -> str:
    accepted = http.post("/v1/transactions", json=batch, headers=headers)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["jobStatusQueryKey"])


def wait_completed(
    http: httpx.Client, key: str, headers: dict[str, str], timeout: float, server: Server
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def terminal() -> bool:
        seen.update(status_of(http, key, headers))
        return seen["status"] in TERMINAL_STATUSES

    try:
        wait_until(terminal, timeout, interval=0.05, what=f"job {key}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen {seen}; server log:\n{server.log()[-6000:]}") from None
    return seen


def test_database_outage_is_503_then_service_recovers_without_restart(
    postgres_e2e_url: str, proxy: PgProxy, e2e_database_url: str, start_server: StartServer
) -> None:
    app = create_app_via_cli(e2e_database_url)
    server = start_server()  # with its in-process worker
    pid = server.pid
    token_form = {"grant_type": "client_credentials"}
    client_auth = (app["appKey"], app["appSecret"])

    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        # Up: a token, a job, its status.
        headers = caller_headers(http, app)
        before_key = submit(http, headers, [record("UP-1"), record("UP-2")])
        before = wait_completed(http, before_key, headers, 15, server)
        assert before["status"] == "Completed"
        assert http.get("/readyz").json() == {"status": "ready", "database": "ok"}
        assert proxy.open_links > 0

        proxy.cut()
        assert proxy.open_links == 0
        # Let the outage last until the in-process worker and its listener have been turned away a few
        # times each (nothing else connects: the test has sent no request yet).
        wait_until(lambda: proxy.refused >= 6, 15, interval=0.05, what="the worker to retry while down")
        refused_before = proxy.refused

        for _ in range(ROUNDS):
            tracking = {name: str(uuid.uuid4()) for name in ("status", "post", "token", "ready")}
            answer = timed(
                lambda t=tracking: http.get(
                    f"/v1/jobs/insight/status/{before_key}",
                    headers={**headers, "requesttrackingid": t["status"]},
                )
            )
            assert_unavailable(answer, tracking["status"])

            answer = timed(
                lambda t=tracking: http.post(
                    "/v1/transactions",
                    json=[record("DOWN-1")],
                    headers={**headers, "requesttrackingid": t["post"]},
                )
            )
            assert_unavailable(answer, tracking["post"])

            answer = timed(
                lambda t=tracking: http.post(
                    "/v2/oauthtoken",
                    data=token_form,
                    auth=client_auth,
                    headers={"requesttrackingid": t["token"]},
                )
            )
            assert_unavailable(answer, tracking["token"], oauth=True)
            assert answer.json()["error"]

            answer = timed(lambda t=tracking: http.get("/readyz", headers={"requesttrackingid": t["ready"]}))
            assert_unavailable(answer, tracking["ready"])

            # Liveness does not depend on the database: the process is fine, only not ready.
            assert timed(lambda: http.get("/healthz")).status_code == 200
        # The answers came from trying the database (and being turned away).
        assert proxy.refused > refused_before
        assert server.process.poll() is None, server.log()

        # Nothing submitted while down was stored.
        with pg_connect(postgres_e2e_url) as db:
            row = db.execute("SELECT count(*) FROM jobs").fetchone()
            assert row == (1,)

        proxy.restore()

        # Back: the same process answers normally again, and its worker works again.
        def ready() -> bool:
            return http.get("/readyz").status_code == 200

        wait_until(ready, 20, interval=0.1, what="/readyz to answer 200 again")
        assert status_of(http, before_key, headers) == before
        minted = http.post("/v2/oauthtoken", data=token_form, auth=client_auth)
        assert minted.status_code == 200, minted.text
        fresh_headers = {"Authorization": f"Bearer {minted.json()['access_token']}", "AppKey": app["appKey"]}
        after_key = submit(http, fresh_headers, [record("AFTER-1"), record("AFTER-2", amount="0")])
        after = wait_completed(http, after_key, fresh_headers, 20, server)
        assert after["status"] == "Partially Completed"
        assert (after["recordCount"], after["processedCount"], after["failedCount"]) == (2, 2, 1)

    assert server.pid == pid
    assert server.process.poll() is None, server.log()
    with pg_connect(postgres_e2e_url) as db:
        stored = sorted(r[0] for r in db.execute("SELECT external_id FROM transactions"))
    assert stored == ["AFTER-1", "UP-1", "UP-2"]
    # Every failure was a clean 503: nothing was answered as an internal error.
    assert "unhandled error serving" not in server.log(), server.log()


# A hung database (connections open, nothing answers) may take the connect timeout to detect.
HUNG_QUICK = 10.0


def test_hung_database_is_503_within_seconds_and_liveness_never_blocks(
    postgres_e2e_url: str, proxy: PgProxy, e2e_database_url: str, start_server: StartServer
) -> None:
    """A database that stops answering (a frozen server: TCP stays up, no byte comes back).

    /healthz must keep answering at once while requests wait on the database, and those requests must
    end, as 503, within seconds rather than hang; afterwards the same process serves normally again.
    """
    app = create_app_via_cli(e2e_database_url)
    server = start_server()
    pid = server.pid
    with (
        httpx.Client(base_url=server.base_url, timeout=HUNG_QUICK + 5) as http,
        ThreadPoolExecutor(2) as pool,
    ):
        headers = caller_headers(http, app)
        key = submit(http, headers, [record("HUNG-1")])
        assert wait_completed(http, key, headers, 15, server)["status"] == "Completed"

        proxy.stall()
        try:
            tracking = str(uuid.uuid4())
            began = time.monotonic()
            waiting = pool.submit(
                http.get,
                f"/v1/jobs/insight/status/{key}",
                headers={**headers, "requesttrackingid": tracking},
            )
            wait_until(lambda: proxy.held > 0, 5, interval=0.01, what="the request to wait on the database")
            # The process is alive and must say so, even while a request waits on the database.
            alive = pool.submit(http.get, "/healthz")
            try:
                assert alive.result(timeout=2).status_code == 200
            except FutureTimeout:
                pytest.fail("/healthz did not answer within 2 s while a request waited on a hung database")
            try:
                answer = waiting.result(timeout=HUNG_QUICK)
            except FutureTimeout:
                pytest.fail(f"a request on a hung database was not answered within {HUNG_QUICK} s")
            assert time.monotonic() - began < HUNG_QUICK
            assert_unavailable(answer, tracking)
            ready = timed_within(HUNG_QUICK, lambda: http.get("/readyz"))
            assert ready.status_code == 503, ready.text
        finally:
            proxy.restore()

        wait_until(lambda: http.get("/readyz").status_code == 200, 20, interval=0.1, what="/readyz")
        after = submit(http, headers, [record("HUNG-2")])
        assert wait_completed(http, after, headers, 20, server)["status"] == "Completed"
    assert server.pid == pid
    assert server.process.poll() is None, server.log()
