"""The event log's vocabulary: which job transitions are recorded, and how an event reads to clients."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pendingtx.domain.jobs import JobStatus
from pendingtx.domain.times import to_eastern_iso


class EventType(StrEnum):
    """A job transition the log records, once, in the transaction that makes it."""

    SUBMITTED = "job.submitted"
    STARTED = "job.started"
    PROGRESS = "job.progress"
    COMPLETED = "job.completed"


EVENT_ID_PREFIX = "evt_"


def new_event_id() -> str:
    """A public event id: unguessable, so that it says nothing about other organizations' events."""
    return EVENT_ID_PREFIX + secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded transition with the job's counts as they were at that moment."""

    public_id: str
    sequence: int
    type: EventType
    created_at: datetime
    job_key: str
    job_id: int
    status: JobStatus
    record_count: int
    processed_count: int
    failed_count: int

    def to_json(self) -> dict[str, object]:
        """The event as clients read it (replay, stream and webhook body alike)."""
        return {
            "id": self.public_id,
            "sequence": self.sequence,
            "type": self.type.value,
            "createdAt": to_eastern_iso(self.created_at),
            "data": {
                "jobStatusQueryKey": self.job_key,
                "batchId": str(self.job_id),
                "status": self.status.value,
                "recordCount": self.record_count,
                "processedCount": self.processed_count,
                "failedCount": self.failed_count,
            },
        }
