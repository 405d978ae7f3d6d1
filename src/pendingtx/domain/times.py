"""How times are shown to clients: ISO 8601 in US Eastern time, with its offset."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo


@cache
def eastern() -> ZoneInfo:
    """The contract's display zone, America/New_York (daylight saving honoured)."""
    return ZoneInfo("America/New_York")


def to_eastern_iso(moment: datetime) -> str:
    """`2026-11-29T06:15:02.120-05:00`: milliseconds and the offset in force at that moment."""
    return moment.astimezone(eastern()).isoformat(timespec="milliseconds")
