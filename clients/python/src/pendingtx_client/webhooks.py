"""Webhooks: verify a delivery's signature, and the calls that manage endpoints (contract 7.3).

```python
from pendingtx_client.webhooks import verify

event = verify(request_body, request_headers, secret)  # the event JSON, or WebhookVerificationError
```

Deliveries are signed the Standard Webhooks way; `verify` is the `standardwebhooks` library's check
(signature, and a timestamp within five minutes), so any of that library's ports verify them too.
Deliveries come at least once: deduplicate on the event `id` (the `webhook-id` header).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import msgspec
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from pendingtx_client._core import Flow, Pacing, Timeout, send

__all__ = ["WebhookVerificationError", "verify"]

COLLECTION = "/v1/webhooks"
JSON = "application/json"


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The delivered event, once its `webhook-signature` is checked against `secret` (`whsec_…`).

    `payload` is the request body exactly as received; `headers` its headers (any case).
    Raises `WebhookVerificationError` when the signature or timestamp does not hold.
    """
    event: dict[str, Any] = Webhook(secret).verify(payload, dict(headers))
    return event


def _path(webhook_id: str, tail: str = "") -> str:
    return f"{COLLECTION}/{quote(webhook_id, safe='')}{tail}"


def _json(response: Any) -> Any:
    return msgspec.json.decode(response.content)


def create(
    pacing: Pacing, url: str, events: Iterable[str] | None, description: str | None, timeout: Timeout
) -> Flow[dict[str, Any]]:
    """POST /v1/webhooks: the new endpoint, with its `secret` (shown only now)."""
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = list(events)
    if description is not None:
        body["description"] = description
    content = msgspec.json.encode(body)
    response = yield from send(
        pacing, "POST", COLLECTION, content=content, content_type=JSON, timeout=timeout
    )
    found: dict[str, Any] = _json(response)
    return found


def listing(pacing: Pacing, timeout: Timeout) -> Flow[list[dict[str, Any]]]:
    """GET /v1/webhooks."""
    response = yield from send(pacing, "GET", COLLECTION, timeout=timeout)
    found: list[dict[str, Any]] = _json(response)["data"]["results"]
    return found


def read(pacing: Pacing, webhook_id: str, timeout: Timeout) -> Flow[dict[str, Any]]:
    """GET /v1/webhooks/{id}."""
    response = yield from send(pacing, "GET", _path(webhook_id), timeout=timeout)
    found: dict[str, Any] = _json(response)
    return found


def update(
    pacing: Pacing, webhook_id: str, changes: Mapping[str, Any], timeout: Timeout
) -> Flow[dict[str, Any]]:
    """PATCH /v1/webhooks/{id} with any of url, events, description, enabled."""
    content = msgspec.json.encode(dict(changes))
    response = yield from send(
        pacing, "PATCH", _path(webhook_id), content=content, content_type=JSON, timeout=timeout
    )
    found: dict[str, Any] = _json(response)
    return found


def delete(pacing: Pacing, webhook_id: str, timeout: Timeout) -> Flow[None]:
    """DELETE /v1/webhooks/{id}."""
    yield from send(pacing, "DELETE", _path(webhook_id), timeout=timeout)


def replay(pacing: Pacing, webhook_id: str, after: int, timeout: Timeout) -> Flow[int]:
    """POST /v1/webhooks/{id}/replay: how many deliveries were queued."""
    content = msgspec.json.encode({"after": after})
    response = yield from send(
        pacing, "POST", _path(webhook_id, "/replay"), content=content, content_type=JSON, timeout=timeout
    )
    return int(_json(response)["queued"])


class DeliveryPages:
    """The pages of an endpoint's delivery log, newest first, one flow per page."""

    def __init__(self, pacing: Pacing, webhook_id: str, limit: int | None, timeout: Timeout) -> None:
        self._pacing = pacing
        self._url: str | None = _path(webhook_id, "/deliveries")
        self._query: dict[str, str] | None = {"limit": str(limit)} if limit is not None else None
        self._timeout = timeout

    def next_page(self) -> Flow[list[dict[str, Any]]] | None:
        """The flow that reads the next page, or None after the last."""
        if self._url is None:
            return None
        return self._read(self._url, self._query)

    def _read(self, url: str, query: dict[str, str] | None) -> Flow[list[dict[str, Any]]]:
        response = yield from send(self._pacing, "GET", url, params=query, timeout=self._timeout)
        page = _json(response)
        self._url, self._query = page["paging"]["next"], None
        found: list[dict[str, Any]] = page["data"]["results"]
        return found
