"""Webhooks (contract 7.3): registering endpoints, signed deliveries to a real receiver, retries and the
delivery log, replay, disabling, SSRF refusals, scoping and limits, on both databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from pendingtx.api.openapi import webhooks as documented
from pendingtx.bootstrap import Runtime
from pendingtx.domain.webhooks import MAX_ENDPOINTS_PER_ORG
from pendingtx.storage.tables import webhook_deliveries, webhooks
from pendingtx.worker.webhooks import WebhookDeliverer
from tests.conftest import Served, assert_error, mint, register
from tests.support import FakeClock, record


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers the next scripted status."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    # While set, each request is held unanswered until it is released (a slow endpoint).
    hold: threading.Event | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"

    def wait_for(self, count: int, deadline: float = 10.0) -> list[Received]:
        end = time.monotonic() + deadline
        while len(self.received) < count:
            assert time.monotonic() < end, f"received {len(self.received)} of {count}"
            time.sleep(0.01)
        return self.received


def _serve(state: Receiver) -> Iterator[Receiver]:

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status = state.statuses.pop(0) if state.statuses else 200
            state.received.append(Received(body, {k.lower(): v for k, v in self.headers.items()}))
            if state.hold is not None:
                state.hold.wait(10)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(Receiver())


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    yield from _serve(Receiver(hold=threading.Event()))


@dataclass
class Dev:
    """A service that allows private webhook targets, a caller's headers, and its deliverer."""

    served: Served
    headers: dict[str, str]
    deliverer: WebhookDeliverer

    @property
    def client(self) -> TestClient:
        return self.served.client

    @property
    def runtime(self) -> Runtime:
        return self.served.runtime

    def submit_and_work(self, external_id: str) -> None:
        answer = self.client.post("/v1/transactions", json=[record(external_id)], headers=self.headers)
        assert answer.status_code == 202, answer.text
        self.runtime.new_worker().run_until_idle()

    def deliver(self, until: Callable[[], bool]) -> None:
        """Run the deliverer's passes until the condition holds (sends run on its sender threads)."""
        end = time.monotonic() + 10
        while not until():
            assert time.monotonic() < end, "the deliveries did not happen in time"
            self.deliverer.run_once()
            time.sleep(0.01)

    def log(self, webhook_id: str) -> list[dict[str, Any]]:
        answer = self.client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=self.headers)
        assert answer.status_code == 200, answer.text
        results: list[dict[str, Any]] = answer.json()["data"]["results"]
        return results


@pytest.fixture
def webhook_settings() -> dict[str, Any]:
    """Settings of the `dev` service beyond those every webhook test needs (a test may override it)."""
    return {}


@pytest.fixture
def dev(serve_with: Callable[..., Served], webhook_settings: dict[str, Any]) -> Iterator[Dev]:
    # Tokens outlive the days the fake clock skips.
    served = serve_with(
        webhook_allow_private=True,
        webhook_retry_schedule="5,60",
        token_ttl_seconds=10**8,
        token_idle_seconds=10**8,
        **webhook_settings,
    )
    creds = register(served.runtime, name="dev-app", org="dev")
    headers = {"Authorization": f"Bearer {mint(served.client, creds)}", "AppKey": creds.app_key}
    deliverer = served.runtime.webhook_deliverer()
    yield Dev(served, headers, deliverer)
    deliverer.request_stop()
    deliverer.join(5)


def create(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/webhooks", json=body, headers=headers)


def test_a_receiver_gets_a_delivery_that_standardwebhooks_verifies(dev: Dev, receiver: Receiver) -> None:
    answer = create(dev.client, dev.headers, url=receiver.url, events=["job.completed"], description="ops")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert list(created) == ["id", "url", "events", "description", "secret", "enabled", "createdAt"]
    assert created["id"].startswith("wh_")
    assert created["secret"].startswith("whsec_")
    assert answer.headers["location"] == f"/v1/webhooks/{created['id']}"

    dev.submit_and_work("W-1")
    dev.deliver(lambda: len(dev.log(created["id"])) == 1)

    (got,) = receiver.wait_for(1)
    event = Webhook(created["secret"]).verify(got.body, got.headers)
    assert event["type"] == "job.completed"
    assert event["data"]["status"] == "Completed"
    assert got.headers["webhook-id"] == event["id"]
    assert got.headers["host"] == receiver.url.split("/")[2]
    (logged,) = dev.log(created["id"])
    assert (logged["eventId"], logged["attempt"], logged["statusCode"]) == (event["id"], 1, 200)
    assert logged["error"] is None
    assert logged["durationMs"] >= 0


def test_a_failed_delivery_is_retried_and_the_log_shows_both(
    dev: Dev, receiver: Receiver, clock: FakeClock
) -> None:
    webhook = create(dev.client, dev.headers, url=receiver.url, events=["job.completed"]).json()
    receiver.statuses = [500, 200]
    dev.submit_and_work("W-2")
    dev.deliver(lambda: len(dev.log(webhook["id"])) == 1)
    # Not due again before its backoff (5 s ± 20 %).
    dev.deliverer.run_once()
    assert len(receiver.received) == 1
    clock.advance(7)
    dev.deliver(lambda: len(dev.log(webhook["id"])) == 2)

    second, first = dev.log(webhook["id"])
    assert (first["attempt"], first["statusCode"]) == (1, 500)
    assert (second["attempt"], second["statusCode"]) == (2, 200)
    assert first["eventId"] == second["eventId"]
    bodies = receiver.wait_for(2)
    assert bodies[0].body == bodies[1].body


def test_replay_sends_the_matching_events_again(dev: Dev, receiver: Receiver) -> None:
    webhook = create(
        dev.client, dev.headers, url=receiver.url, events=["job.submitted", "job.completed"]
    ).json()
    dev.submit_and_work("W-3")
    dev.deliver(lambda: len(dev.log(webhook["id"])) == 2)

    answer = dev.client.post(f"/v1/webhooks/{webhook['id']}/replay", json={"after": 0}, headers=dev.headers)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"queued": 2}
    dev.deliver(lambda: len(dev.log(webhook["id"])) == 4)
    ids = [r.headers["webhook-id"] for r in receiver.wait_for(4)]
    assert sorted(ids[:2]) == sorted(ids[2:])
    # Deleted with its deliveries and their log.
    assert dev.client.delete(f"/v1/webhooks/{webhook['id']}", headers=dev.headers).status_code == 204
    with dev.runtime.uow.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries)).scalar() == 0


def attempts_logged(dev: Dev, webhook_id: str) -> int:
    answer = dev.client.get(f"/v1/webhooks/{webhook_id}/deliveries?limit=100", headers=dev.headers)
    assert answer.status_code == 200, answer.text
    results: list[object] = answer.json()["data"]["results"]
    assert len(results) < 100
    return len(results)


def test_an_endpoint_failing_for_five_days_is_disabled(
    dev: Dev, receiver: Receiver, clock: FakeClock
) -> None:
    webhook = create(dev.client, dev.headers, url=receiver.url).json()
    receiver.statuses = [500] * 100
    for day in range(6):
        dev.submit_and_work(f"D-{day}")
        logged = attempts_logged(dev, webhook["id"])
        # Waits for the attempt's outcome to be stored, not just sent: the streak is counted from it.
        dev.deliver(lambda logged=logged: attempts_logged(dev, webhook["id"]) > logged)  # type: ignore[misc]
        clock.advance(86400)
    found = dev.client.get(f"/v1/webhooks/{webhook['id']}", headers=dev.headers).json()
    assert found["enabled"] is False
    # Disabled: nothing more is sent.
    sent = len(receiver.received)
    dev.submit_and_work("D-after")
    dev.deliverer.run_once()
    time.sleep(0.05)
    assert len(receiver.received) == sent


def test_a_success_resets_the_failing_streak(dev: Dev, receiver: Receiver, clock: FakeClock) -> None:
    webhook = create(dev.client, dev.headers, url=receiver.url, events=["job.completed"]).json()
    for day in range(6):
        receiver.statuses = [200] if day == 3 else [500]
        dev.submit_and_work(f"R-{day}")
        sent = len(receiver.received)
        dev.deliver(lambda sent=sent: len(dev.log(webhook["id"])) > sent)  # type: ignore[misc]
        clock.advance(86400)
    found = dev.client.get(f"/v1/webhooks/{webhook['id']}", headers=dev.headers).json()
    assert found["enabled"] is True


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",
        "https://localhost/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://0.0.0.0/",
        "http://example.com/",
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https://" + "a" * 2100 + ".com/",
    ],
)
def test_private_and_non_https_targets_are_refused(
    client: TestClient, headers: dict[str, str], url: str
) -> None:
    body = assert_error(create(client, headers, url=url), 400, "request.validation.failure")
    assert body["errors"][0]["field"] == "url"


def test_a_hostname_resolving_to_loopback_is_refused_at_delivery_too(
    dev: Dev, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered while private targets were allowed; a process without the setting refuses to send."""
    webhook = create(dev.client, dev.headers, url=receiver.url.replace("127.0.0.1", "localhost")).json()
    strict = dev.runtime.settings.replace(webhook_allow_private=False)
    monkeypatch.setattr(dev.runtime, "settings", strict)
    deliverer = dev.runtime.webhook_deliverer()
    dev.deliverer = deliverer
    try:
        dev.submit_and_work("S-1")
        dev.deliver(lambda: len(dev.log(webhook["id"])) >= 1)
    finally:
        deliverer.request_stop()
        deliverer.join(5)
    logged = dev.log(webhook["id"])[-1]
    assert logged["statusCode"] is None
    assert logged["error"].startswith("refused:")
    assert receiver.received == []


def test_another_organizations_webhook_is_not_found(
    dev: Dev, receiver: Receiver, client: TestClient, headers: dict[str, str]
) -> None:
    theirs = create(dev.client, dev.headers, url=receiver.url).json()["id"]
    for method, path, body in [
        ("GET", f"/v1/webhooks/{theirs}", None),
        ("PATCH", f"/v1/webhooks/{theirs}", {"enabled": False}),
        ("DELETE", f"/v1/webhooks/{theirs}", None),
        ("GET", f"/v1/webhooks/{theirs}/deliveries", None),
        ("POST", f"/v1/webhooks/{theirs}/replay", {"after": 0}),
    ]:
        answer = client.request(method, path, json=body, headers=headers)
        assert_error(answer, 404, "resource.not.found")
    assert client.get("/v1/webhooks", headers=headers).json() == {"data": {"results": []}}
    assert dev.client.get(f"/v1/webhooks/{theirs}", headers=dev.headers).status_code == 200


def test_crud_and_limits(dev: Dev, receiver: Receiver) -> None:
    ids = [
        create(dev.client, dev.headers, url=receiver.url).json()["id"] for _ in range(MAX_ENDPOINTS_PER_ORG)
    ]
    assert_error(create(dev.client, dev.headers, url=receiver.url), 400, "request.validation.failure")
    listed = dev.client.get("/v1/webhooks", headers=dev.headers).json()["data"]["results"]
    assert [w["id"] for w in listed] == ids
    assert all("secret" not in w for w in listed)
    assert listed[0]["events"] == ["job.submitted", "job.started", "job.progress", "job.completed"]

    changed = dev.client.patch(
        f"/v1/webhooks/{ids[0]}", json={"events": ["job.started"], "enabled": False}, headers=dev.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["job.started"]
    assert changed.json()["enabled"] is False
    assert "secret" not in changed.json()

    assert dev.client.delete(f"/v1/webhooks/{ids[0]}", headers=dev.headers).status_code == 204
    assert_error(dev.client.get(f"/v1/webhooks/{ids[0]}", headers=dev.headers), 404, "resource.not.found")
    assert create(dev.client, dev.headers, url=receiver.url).status_code == 201


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"url": "https://example.com/", "events": ["job.exploded"]}, "events"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "events": "job.completed"}, "events"),
        ({"url": "https://example.com/", "description": "x" * 257}, "description"),
        ({"url": "https://example.com/", "description": 5}, "description"),
        ({"url": "https://example.com/", "secret": "whsec_mine"}, "secret"),
        ({"events": ["job.completed"]}, "url"),
        ({"url": 7}, "url"),
    ],
)
def test_bad_bodies_are_refused_naming_the_member(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], field_name: str
) -> None:
    answer = assert_error(create(client, headers, **body), 400, "request.validation.failure")
    assert answer["errors"][0]["field"] == field_name
    assert answer["errors"][0]["location"] == "body"


def test_the_delivery_log_pages_newest_first_with_opaque_cursors(dev: Dev, receiver: Receiver) -> None:
    webhook = create(dev.client, dev.headers, url=receiver.url, events=["job.submitted"]).json()
    for n in range(3):
        dev.submit_and_work(f"P-{n}")
    dev.deliver(lambda: len(dev.log(webhook["id"])) == 3)
    everything = dev.log(webhook["id"])
    first = dev.client.get(f"/v1/webhooks/{webhook['id']}/deliveries?limit=2", headers=dev.headers).json()
    assert first["data"]["results"] == everything[:2]
    following = dev.client.get(first["paging"]["next"], headers=dev.headers).json()
    assert following["data"]["results"] == everything[2:]
    assert following["paging"]["next"] is None
    bad = dev.client.get(f"/v1/webhooks/{webhook['id']}/deliveries?after=1", headers=dev.headers)
    assert_error(bad, 400, "request.validation.failure")


def test_real_answers_and_deliveries_are_their_documented_types(dev: Dev, receiver: Receiver) -> None:
    def decoded(kind: type[Any], response: Any, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return msgspec.json.decode(response.content, type=kind)

    made = decoded(documented.NewWebhook, create(dev.client, dev.headers, url=receiver.url), 201)
    path = f"/v1/webhooks/{made.id}"
    decoded(documented.Webhook, dev.client.get(path, headers=dev.headers))
    decoded(documented.Webhook, dev.client.patch(path, json={"description": None}, headers=dev.headers))
    decoded(documented.WebhookList, dev.client.get("/v1/webhooks", headers=dev.headers))
    dev.submit_and_work("T-1")
    dev.deliver(lambda: len(dev.log(made.id)) == 3)
    page = decoded(documented.DeliveryPage, dev.client.get(f"{path}/deliveries", headers=dev.headers))
    assert len(page.data.results) == 3
    replayed = dev.client.post(f"{path}/replay", json={"after": 0}, headers=dev.headers)
    decoded(documented.Replayed, replayed, 202)
    for got in receiver.wait_for(3):
        msgspec.json.decode(got.body, type=documented.WebhookEvent)


@pytest.mark.parametrize("webhook_settings", [{"webhook_concurrency": 2}])
def test_slow_endpoints_hold_up_no_other_organization(
    dev: Dev, receiver: Receiver, slow_receiver: Receiver
) -> None:
    """Two senders: the slow organization's two endpoints get one of them, whatever their backlog."""
    slow = [
        create(dev.client, dev.headers, url=slow_receiver.url, events=["job.submitted"]).json()["id"]
        for _ in range(2)
    ]
    creds = register(dev.runtime, name="fast-app", org="fast")
    fast_headers = {"Authorization": f"Bearer {mint(dev.client, creds)}", "AppKey": creds.app_key}
    create(dev.client, fast_headers, url=receiver.url, events=["job.submitted"])
    for n in range(6):
        answer = dev.client.post("/v1/transactions", json=[record(f"SLOW-{n}")], headers=dev.headers)
        assert answer.status_code == 202, answer.text
    answer = dev.client.post("/v1/transactions", json=[record("FAST-1")], headers=fast_headers)
    assert answer.status_code == 202, answer.text

    dev.deliver(lambda: len(receiver.received) == 1 and len(slow_receiver.received) == 1)
    dev.deliverer.run_once()
    # One delivery of the slow organization in flight (leased), not one per endpoint or per event.
    leased = (
        sa.select(sa.func.count())
        .select_from(webhook_deliveries.join(webhooks))
        .where(webhook_deliveries.c.lease_until.is_not(None), webhooks.c.public_id.in_(slow))
    )
    with dev.runtime.uow.read() as conn:
        assert conn.execute(leased).scalar() == 1
    assert len(slow_receiver.received) == 1
    assert slow_receiver.hold is not None
    slow_receiver.hold.set()
    dev.deliver(lambda: [len(dev.log(w)) for w in slow] == [6, 6])


def test_commits_of_organizations_without_endpoints_do_not_wake_the_deliverer(
    dev: Dev, receiver: Receiver
) -> None:
    # Before its first pass the deliverer knows nothing, so any news wakes it.
    dev.deliverer._wake.clear()
    dev.deliverer.wake({999: 1})
    assert dev.deliverer._wake.is_set()
    # After a pass that saw no endpoint, a job's commits leave it asleep...
    dev.deliverer.run_once()
    dev.deliverer._wake.clear()
    dev.submit_and_work("QUIET-1")
    assert not dev.deliverer._wake.is_set()
    # ...until a pass has seen the organization's endpoint; then its commits wake it again.
    created = create(dev.client, dev.headers, url=receiver.url)
    assert created.status_code == 201, created.text
    dev.deliverer.run_once()
    dev.deliverer._wake.clear()
    dev.submit_and_work("LOUD-1")
    assert dev.deliverer._wake.is_set()
    dev.deliver(lambda: len(receiver.received) >= 3)
    assert [msgspec.json.decode(r.body)["type"] for r in receiver.received] == [
        "job.submitted",
        "job.started",
        "job.completed",
    ]
