"""Sending one leased webhook delivery: check and pin the address, sign, POST, log the outcome.

The request goes to the address that was checked (the URL's host is kept as `Host` and as the TLS
server name, so certificates are verified against it), redirects are not followed, and proxies from
the environment are ignored: nothing but the checked address is ever connected to.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from standardwebhooks import Webhook

from pendingtx.clock import Clock
from pendingtx.domain.webhooks import retry_at
from pendingtx.observability.logs import fields
from pendingtx.services.webhook_secrets import WebhookSecrets
from pendingtx.services.webhook_targets import Pinned, RefusedTarget, Resolve, check, resolve
from pendingtx.storage import webhooks as store
from pendingtx.storage.unit_of_work import UnitOfWork

log = logging.getLogger("pendingtx.webhooks")
USER_AGENT = "pendingtx-webhooks/1"
_MAX_ERROR = 256


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """The deliverer's knobs, from Settings."""

    timeout_seconds: float
    lease_seconds: float
    schedule: tuple[float, ...]
    disable_after_seconds: float
    allow_private: bool
    concurrency: int
    poll_seconds: float


def signed_headers(secret: str, event_id: str, body: str, sent_at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of a delivery."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, sent_at, body),
    }


def new_http_client(config: DeliveryConfig) -> httpx.Client:
    """The HTTP client deliveries share: no proxies from the environment, no redirects, the timeout."""
    return httpx.Client(
        timeout=httpx.Timeout(config.timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=config.concurrency * 2, max_keepalive_connections=config.concurrency
        ),
        headers={"user-agent": USER_AGENT},
    )


def _pinned_url(pinned: Pinned) -> tuple[str, str]:
    """The URL naming the checked address, and the Host header naming the URL's host."""
    target = pinned.target
    address = (
        f"[{pinned.address}]" if isinstance(pinned.address, ipaddress.IPv6Address) else str(pinned.address)
    )
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    return f"{target.scheme}://{address}:{target.port}{target.target}", host_header


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave: an HTTP status, or why there was none."""

    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        """Any 2xx answer is success."""
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """Sends leased deliveries; safe from several threads."""

    def __init__(
        self,
        uow: UnitOfWork,
        secrets: WebhookSecrets,
        config: DeliveryConfig,
        *,
        clock: Clock,
        http: httpx.Client,
        resolver: Resolve = resolve,
    ) -> None:
        self.uow = uow
        self.secrets = secrets
        self.config = config
        self.clock = clock
        self.http = http
        self.resolver = resolver

    def send(self, delivery_id: int, attempt: int) -> Outcome | None:
        """Make attempt number `attempt` of a delivery this worker leased and record it; None when
        its endpoint is gone."""
        with self.uow.read() as conn:
            found = store.outgoing(conn, delivery_id)
        if found is None:
            return None
        began = time.perf_counter()
        attempted_at = self.clock()
        outcome = self._post(found)
        duration_ms = int((time.perf_counter() - began) * 1000)
        now = self.clock()
        record = store.Attempt(
            webhook_id=found.webhook_id,
            delivery_id=delivery_id,
            event_public_id=found.event.public_id,
            attempt=attempt,
            attempted_at=attempted_at,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=duration_ms,
        )
        again = None if outcome.succeeded else retry_at(now, attempt, self.config.schedule)
        with self.uow.write() as conn:
            disabled = store.finish(
                conn,
                record,
                succeeded=outcome.succeeded,
                retry_at=again,
                now=now,
                disable_before=now - timedelta(seconds=self.config.disable_after_seconds),
            )
        extra = fields(
            event="webhook.attempt",
            webhook=found.public_id,
            event_id=found.event.public_id,
            attempt=attempt,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=duration_ms,
        )
        if outcome.succeeded:
            log.info("webhook delivery %s attempt %d succeeded", delivery_id, attempt, extra=extra)
        else:
            when = "given up" if again is None else f"retry at {again.isoformat()}"
            log.warning("webhook delivery %s attempt %d failed (%s)", delivery_id, attempt, when, extra=extra)
        if disabled:
            log.warning("webhook %s disabled after failing for too long", found.public_id, extra=extra)
        return outcome

    def _post(self, found: store.Outgoing) -> Outcome:
        try:
            secret = self.secrets.open(found.secret, found.public_id)
            pinned = check(found.url, allow_private=self.config.allow_private, resolver=self.resolver)
        except RefusedTarget as exc:
            return Outcome(None, f"refused: {exc}"[:_MAX_ERROR])
        body = msgspec.json.encode(found.event.to_json()).decode("utf-8")
        # The signature's time is the real time of sending: receivers check it against their clock.
        headers = signed_headers(
            secret, found.event.public_id, body, datetime.fromtimestamp(time.time(), UTC)
        )
        url, host = _pinned_url(pinned)
        headers.update({"host": host, "content-type": "application/json"})
        extensions = {"sni_hostname": pinned.target.host} if pinned.target.scheme == "https" else {}
        try:
            with self.http.stream(
                "POST", url, content=body, headers=headers, extensions=extensions
            ) as answer:
                # The body is never read: only the status matters, and it bounds what a receiver can send.
                return Outcome(answer.status_code, None)
        except httpx.TimeoutException:
            return Outcome(None, f"timeout after {self.config.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR])
