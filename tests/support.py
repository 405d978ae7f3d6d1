"""Test helpers shared by every test package: a movable clock and small HTTP conveniences."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from typing import Any


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 15, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def basic(app_key: str, app_secret: str) -> str:
    """An HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{app_key}:{app_secret}".encode()).decode()


def record(external_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid New Subscription record, with any field overridden (None removes it)."""
    base: dict[str, Any] = {
        "externalId": external_id,
        "type": "New Subscription",
        "productExternalId": "FUND-A",
        "investorExternalId": "INV-1",
        "amount": "100.50",
        "tradeDate": "2026-11-27",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


class StopAfter(threading.Event):
    """A stop signal that turns on after `checks` looks at it: a stop request arriving mid-job."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0
