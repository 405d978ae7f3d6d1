"""Registering webhook endpoints, reading their delivery log, and replaying events (contract 7.3).

Every call is scoped to the caller's organization: another organization's endpoint id is a 404.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import msgspec

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain.cursors import MAX_POSITION, ListKind
from pendingtx.domain.events import EventType
from pendingtx.domain.json_text import decode_error_reason
from pendingtx.domain.times import to_eastern_iso
from pendingtx.domain.webhooks import (
    ALL_EVENT_TYPES,
    MAX_DESCRIPTION_LENGTH,
    MAX_ENDPOINTS_PER_ORG,
    events_text,
    new_secret,
    new_webhook_id,
)
from pendingtx.services.authentication import Caller
from pendingtx.services.webhook_secrets import WebhookSecrets
from pendingtx.services.webhook_targets import RefusedTarget, Resolve, check, resolve
from pendingtx.storage import events as event_log
from pendingtx.storage import webhooks as store
from pendingtx.storage.server_keys import ServerKeys
from pendingtx.storage.unit_of_work import UnitOfWork

MAX_BODY_BYTES = 16 * 1024
DEFAULT_PAGE = 20
MAX_PAGE = 100
# Events one replay may queue; a larger backlog is replayed in several calls.
MAX_REPLAY = 10_000
_CREATE_MEMBERS = ("url", "events", "description")
_PATCH_MEMBERS = ("url", "events", "description", "enabled")


def _invalid(field: str, reason: str, location: str = "body") -> errors.ValidationFailed:
    return errors.ValidationFailed(errors=[errors.ErrorDetail(field, location, reason)])


def _object(body: bytes, allowed: Sequence[str]) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise errors.TooLarge(f"Request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        found = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise _invalid("body", decode_error_reason(body, exc)) from None
    except RecursionError:
        raise _invalid("body", "nests too deep") from None
    if not isinstance(found, dict):
        raise _invalid("body", "must be a JSON object")
    unknown = [name for name in found if name not in allowed]
    if unknown:
        raise errors.ValidationFailed(
            errors=[
                errors.ErrorDetail(name[:64], "body", "is not a member of this request")
                for name in unknown[:10]
            ]
        )
    return found


def _event_types(value: object) -> tuple[EventType, ...]:
    if not isinstance(value, list) or not value:
        raise _invalid("events", f"must be a non-empty array of {', '.join(ALL_EVENT_TYPES)}")
    if len(value) > len(ALL_EVENT_TYPES) * 4 or not all(
        isinstance(v, str) and v in ALL_EVENT_TYPES for v in value
    ):
        raise _invalid("events", f"must hold only {', '.join(ALL_EVENT_TYPES)}")
    return tuple(EventType(v) for v in value)


def _description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH or "\x00" in value:
        raise _invalid("description", f"must be a string of at most {MAX_DESCRIPTION_LENGTH} characters")
    return value


@dataclass(frozen=True, slots=True)
class EndpointOverview:
    """An endpoint as clients read it, since when it has been failing (None when it is not), and its
    latest delivery attempts, newest first."""

    endpoint: dict[str, object]
    failing_since: datetime | None
    attempts: list[dict[str, object]]


@dataclass(frozen=True)
class WebhookService:
    """The webhook endpoints' use cases, with what they need from the process."""

    uow: UnitOfWork
    clock: Clock
    secrets: WebhookSecrets
    keys: ServerKeys
    allow_private: bool
    resolver: Resolve = resolve

    def _checked_url(self, value: object) -> str:
        if not isinstance(value, str):
            raise _invalid("url", "must be a string")
        try:
            check(value, allow_private=self.allow_private, resolver=self.resolver)
        except RefusedTarget as exc:
            raise _invalid("url", str(exc)) from None
        return value

    def create(self, caller: Caller, body: bytes) -> dict[str, object]:
        """POST /v1/webhooks: the new endpoint with its secret (shown only here)."""
        given = _object(body, _CREATE_MEMBERS)
        if "url" not in given:
            raise _invalid("url", "is required")
        types = _event_types(given["events"]) if "events" in given else tuple(EventType)
        description = _description(given.get("description"))
        # Last: it resolves the host.
        url = self._checked_url(given["url"])
        public_id, secret = new_webhook_id(), new_secret()
        now = self.clock()
        values = {
            "org_id": caller.org_id,
            "public_id": public_id,
            "url": url,
            "events": events_text(types),
            "description": description,
            "secret": self.secrets.seal(secret, public_id),
            "enabled": True,
            "failing_since": None,
            "created_at": now,
        }
        with self.uow.write() as conn:
            store.lock_organization(conn, caller.org_id)
            if store.count(conn, caller.org_id) >= MAX_ENDPOINTS_PER_ORG:
                raise _invalid(
                    "url", f"an organization may register at most {MAX_ENDPOINTS_PER_ORG} endpoints"
                )
            # Only events from now on: earlier ones can be replayed.
            values["cursor"] = event_log.last_sequence(conn, caller.org_id)
            store.insert(conn, values)
            found = store.find(conn, caller.org_id, public_id)
        assert found is not None
        return endpoint_json(found, secret=secret)

    def list(self, caller: Caller) -> list[dict[str, object]]:
        """GET /v1/webhooks: the organization's endpoints, oldest first, without secrets."""
        with self.uow.read() as conn:
            return [endpoint_json(e) for e in store.list_endpoints(conn, caller.org_id)]

    def overview(self, caller: Caller, *, recent: int) -> Sequence[EndpointOverview]:
        """The organization's endpoints, oldest first, each with its `recent` latest attempts (the
        dashboard's webhooks page), in one read."""
        with self.uow.read() as conn:
            return [
                EndpointOverview(
                    endpoint_json(endpoint),
                    endpoint.failing_since,
                    [
                        attempt_json(a)
                        for a in store.attempts(conn, endpoint.id, before=MAX_POSITION, limit=recent)
                    ],
                )
                for endpoint in store.list_endpoints(conn, caller.org_id)
            ]

    def _find(self, conn: Any, caller: Caller, public_id: str) -> store.Endpoint:
        found = store.find(conn, caller.org_id, public_id) if len(public_id) <= 64 else None
        if found is None:
            raise errors.NotFound("No webhook endpoint with this id")
        return found

    def get(self, caller: Caller, public_id: str) -> dict[str, object]:
        """GET /v1/webhooks/{id}."""
        with self.uow.read() as conn:
            return endpoint_json(self._find(conn, caller, public_id))

    def change(self, caller: Caller, public_id: str, body: bytes) -> dict[str, object]:
        """PATCH /v1/webhooks/{id}: change url, events, description and/or enabled."""
        given = _object(body, _PATCH_MEMBERS)
        types = _event_types(given["events"]) if "events" in given else None
        enabled = given.get("enabled")
        if "enabled" in given and not isinstance(enabled, bool):
            raise _invalid("enabled", "must be true or false")
        if "description" in given:
            _description(given["description"])
        url = self._checked_url(given["url"]) if "url" in given else None
        with self.uow.write() as conn:
            found = self._find(conn, caller, public_id)
            changed = found
            if url is not None:
                changed = replace(changed, url=url)
            if types is not None:
                changed = replace(changed, events=events_text(types))
            if "description" in given:
                changed = replace(changed, description=_description(given["description"]))
            if isinstance(enabled, bool) and enabled != found.enabled:
                changed = replace(changed, enabled=enabled, failing_since=None)
                if enabled:
                    # Events while disabled are not sent on re-enabling (replay them if wanted).
                    changed = replace(changed, cursor=event_log.last_sequence(conn, caller.org_id))
            store.update(conn, changed)
        return endpoint_json(changed)

    def delete(self, caller: Caller, public_id: str) -> None:
        """DELETE /v1/webhooks/{id}: the endpoint, its pending deliveries and its log."""
        with self.uow.write() as conn:
            if len(public_id) > 64 or not store.delete(conn, caller.org_id, public_id):
                raise errors.NotFound("No webhook endpoint with this id")

    def deliveries(
        self, caller: Caller, public_id: str, query: Mapping[str, str], *, path: str
    ) -> dict[str, object]:
        """GET /v1/webhooks/{id}/deliveries: the attempts, newest first, cursor-paged."""
        unknown = [name for name in query if name not in ("limit", "after")]
        if unknown:
            raise errors.ValidationFailed(
                errors=[
                    errors.ErrorDetail(n[:64], "query", "is not a parameter of this listing")
                    for n in unknown[:10]
                ]
            )
        limit = DEFAULT_PAGE
        if "limit" in query:
            text = query["limit"]
            if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PAGE):
                raise _invalid("limit", f"must be between 1 and {MAX_PAGE}", "query")
            limit = int(text)
        cursors = self.keys.cursor_key().for_listing(ListKind.WEBHOOK_DELIVERIES, caller.org_id)
        before = MAX_POSITION
        if "after" in query:
            opened = cursors.open(query["after"])
            if opened is None:
                raise _invalid("after", "is not a valid cursor", "query")
            before = opened
        with self.uow.read() as conn:
            endpoint = self._find(conn, caller, public_id)
            found = store.attempts(conn, endpoint.id, before=before, limit=limit + 1)
        page, more = found[:limit], len(found) > limit
        following = f"{path}?limit={limit}&after={cursors.seal(page[-1].id)}" if more else None
        return {
            "data": {"results": [attempt_json(a) for a in page]},
            "paging": {"limit": limit, "next": following},
        }

    def replay(self, caller: Caller, public_id: str, body: bytes) -> dict[str, object]:
        """POST /v1/webhooks/{id}/replay: queue the matching events after `after` to be sent again."""
        given = _object(body, ("after",))
        after = given.get("after")
        if isinstance(after, float) and after.is_integer():
            after = int(after)  # JSON has one kind of number: 5.0 is the integer 5
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_POSITION:
            raise _invalid("after", "is required: an event sequence, 0 or more")
        with self.uow.write() as conn:
            endpoint = self._find(conn, caller, public_id)
            queued = store.replay(conn, endpoint, after=after, limit=MAX_REPLAY, now=self.clock())
        return {"queued": queued}


def endpoint_json(endpoint: store.Endpoint, *, secret: str | None = None) -> dict[str, object]:
    """An endpoint as clients read it; the secret only when just created."""
    body: dict[str, object] = {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "events": [t.value for t in endpoint.event_types],
        "description": endpoint.description,
    }
    if secret is not None:
        body["secret"] = secret
    body["enabled"] = endpoint.enabled
    body["createdAt"] = to_eastern_iso(endpoint.created_at)
    return body


def attempt_json(attempt: store.LoggedAttempt) -> dict[str, object]:
    """One attempt of the delivery log as clients read it."""
    return {
        "eventId": attempt.event_public_id,
        "attempt": attempt.attempt,
        "attemptedAt": to_eastern_iso(attempt.attempted_at),
        "statusCode": attempt.status_code,
        "error": attempt.error,
        "durationMs": attempt.duration_ms,
    }
