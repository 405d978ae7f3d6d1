"""A delivery connects to the address that was checked, while TLS and Host still name the URL's host;
a host that resolves to a non-public address at delivery time is refused (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest
import trustme
from standardwebhooks import Webhook

from pendingtx.bootstrap import Runtime
from pendingtx.domain.networks import Address
from pendingtx.services.authentication import Caller
from pendingtx.services.webhook_delivery import DeliveryConfig, Sender
from pendingtx.services.webhooks import WebhookService
from pendingtx.storage import webhooks as store
from tests.services.conftest import Submit
from tests.support import record

HOST = "hooks.test"


@dataclass
class TlsReceiver:
    port: int = 0
    server_names: list[str | None] = field(default_factory=list)
    requests: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(ca: trustme.CA) -> Iterator[TlsReceiver]:
    state = TlsReceiver()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    context.sni_callback = lambda _sock, name, _ctx: state.server_names.append(name)  # type: ignore[assignment,func-returns-value]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.requests.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def answers(*texts: str) -> Any:
    def resolve(host: str, port: int) -> Sequence[Address]:
        assert host == HOST
        return [ipaddress.ip_address(t) for t in texts]

    return resolve


def config(*, allow_private: bool) -> DeliveryConfig:
    return DeliveryConfig(
        timeout_seconds=5,
        lease_seconds=10,
        schedule=(5.0,),
        disable_after_seconds=86400,
        allow_private=allow_private,
        concurrency=2,
        poll_seconds=1,
    )


def register_and_dispatch(runtime: Runtime, caller: Caller, submit: Submit, url: str, resolver: Any) -> Any:
    service = WebhookService(
        uow=runtime.uow,
        clock=runtime.clock,
        secrets=runtime.webhook_secrets,
        keys=runtime.keys,
        allow_private=True,
        resolver=resolver,
    )
    made = service.create(caller, msgspec.json.encode({"url": url, "events": ["job.submitted"]}))
    submit([record("TLS-1")])
    with runtime.uow.write() as conn:
        (behind,) = store.behind(conn, limit=10)
        assert store.dispatch(conn, behind, limit=10, now=runtime.clock()) == 1
        (due,) = store.candidates(conn, now=runtime.clock(), limit=10)
        attempt = store.lease(conn, due.id, now=runtime.clock(), until=runtime.clock())
    return made, due.id, attempt


def test_the_connection_goes_to_the_checked_address_with_the_hosts_name(
    runtime: Runtime, caller: Caller, submit: Submit, ca: trustme.CA, tls_receiver: TlsReceiver
) -> None:
    resolver = answers("127.0.0.1")
    url = f"https://{HOST}:{tls_receiver.port}/in"
    made, delivery, attempt = register_and_dispatch(runtime, caller, submit, url, resolver)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with httpx.Client(verify=context, trust_env=False) as http:
        sender = Sender(
            runtime.uow, runtime.webhook_secrets, config(allow_private=True), clock=runtime.clock, http=http,
            resolver=resolver,
        )  # fmt: skip
        outcome = sender.send(delivery, attempt)
    assert outcome is not None
    assert (outcome.status_code, outcome.error) == (204, None)
    assert tls_receiver.server_names == [HOST]
    ((body, headers),) = tls_receiver.requests
    assert headers["host"] == f"{HOST}:{tls_receiver.port}"
    assert Webhook(made["secret"]).verify(body, headers)["type"] == "job.submitted"


def test_a_host_rebound_to_a_private_address_is_refused_at_delivery(
    runtime: Runtime, caller: Caller, submit: Submit, tls_receiver: TlsReceiver
) -> None:
    url = f"https://{HOST}:{tls_receiver.port}/in"
    _, delivery, attempt = register_and_dispatch(runtime, caller, submit, url, answers("8.8.8.8"))
    with httpx.Client(trust_env=False) as http:
        sender = Sender(
            runtime.uow, runtime.webhook_secrets, config(allow_private=False), clock=runtime.clock, http=http,
            resolver=answers("8.8.8.8", "10.0.0.7"),
        )  # fmt: skip
        outcome = sender.send(delivery, attempt)
    assert outcome is not None
    assert outcome.status_code is None
    assert outcome.error == "refused: resolves to 10.0.0.7, which is not a public address"
    assert tls_receiver.requests == []
    with runtime.uow.read() as conn:
        (endpoint,) = store.list_endpoints(conn, caller.org_id)
        (logged,) = store.attempts(conn, endpoint.id, before=2**62, limit=5)
    assert logged.error == outcome.error
