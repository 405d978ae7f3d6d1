"""Webhook deliveries survive a worker SIGKILLed mid-send: after a restart the delivery is sent again
(at least once, never dropped), signed so that `standardwebhooks` verifies it; on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import StartServer, StartWorker
from tests.e2e.server import caller_headers, create_app_via_cli, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e

WEBHOOK_SETTINGS = {
    "PENDINGTX_WEBHOOK_ALLOW_PRIVATE": "true",
    "PENDINGTX_WEBHOOK_TIMEOUT_SECONDS": "1",
    "PENDINGTX_WEBHOOK_LEASE_SECONDS": "2",
    "PENDINGTX_WEBHOOK_POLL_SECONDS": "0.1",
    "PENDINGTX_WORKER_POLL_SECONDS": "0.1",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def e2e_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'e2e.db'}"
    return str(request.getfixturevalue("postgres_e2e_url"))


class HangingReceiver:
    """Records every POST; holds the first one open until released (the worker dies meanwhile)."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
                if len(receiver.received) == 1:
                    receiver.release.wait(30)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HangingReceiver]:
    found = HangingReceiver()
    yield found
    found.close()


def test_a_worker_killed_mid_delivery_delivers_after_restart(
    start_server: StartServer, start_worker: StartWorker, e2e_database_url: str, receiver: HangingReceiver
) -> None:
    app = create_app_via_cli(e2e_database_url)
    server = start_server(WEBHOOK_SETTINGS, no_worker=True)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        headers = caller_headers(http, app)
        made = http.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["job.submitted"]}, headers=headers
        )
        assert made.status_code == 201, made.text
        webhook = made.json()
        accepted = http.post("/v1/transactions", json=[record("K-1")], headers=headers)
        assert accepted.status_code == 202, accepted.text

        worker = start_worker(WEBHOOK_SETTINGS)
        wait_until(lambda: len(receiver.received) == 1, 30, what="the first attempt to arrive")
        worker.kill()  # mid-delivery: the receiver has not answered
        receiver.release.set()

        restarted = start_worker(WEBHOOK_SETTINGS)
        wait_until(lambda: len(receiver.received) == 2, 30, what="the delivery to be sent again")
        log_path = f"/v1/webhooks/{webhook['id']}/deliveries"
        wait_until(lambda: http.get(log_path, headers=headers).json()["data"]["results"], 15, what="the log")
        (logged,) = http.get(log_path, headers=headers).json()["data"]["results"]

    (first_body, first), (body, again) = receiver.received
    assert first["webhook-id"] == again["webhook-id"]
    assert first_body == body
    event = Webhook(webhook["secret"]).verify(body, again)
    assert event["type"] == "job.submitted"
    assert event["data"]["jobStatusQueryKey"] == accepted.json()["jobStatusQueryKey"]
    # The killed attempt counted (its lease ran out), and the one that answered is logged.
    assert (logged["eventId"], logged["attempt"], logged["statusCode"]) == (event["id"], 2, 200)
    assert restarted.stop() == 0, restarted.log()
