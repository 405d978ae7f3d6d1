"""What the worker's use cases signal to the worker loop (never seen by HTTP clients)."""

from __future__ import annotations

from dataclasses import dataclass


class LeaseLost(Exception):
    """Another worker has taken the job over; this worker must stop touching it."""


class PoisonedPayload(Exception):
    """The stored job cannot be decoded, so no number of retries will help."""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a job, and how far each renewal extends the lease."""

    worker_id: str
    seconds: float
