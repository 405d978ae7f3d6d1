"""The event log's vocabulary: which job transitions are recorded, and how an event reads to clients."""

from __future__ import annotations

import base64
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


# Random bytes per id: a multiple of 3, so that ids made from one draw never share a character.
_ID_BYTES = 18
_ID_CHARS = _ID_BYTES // 3 * 4


def new_event_ids(count: int) -> list[str]:
    """`count` public event ids, unguessable so that they say nothing about other organizations'
    events; one draw for all (a commit records many)."""
    text = base64.urlsafe_b64encode(secrets.token_bytes(_ID_BYTES * count)).decode()
    return [EVENT_ID_PREFIX + text[i : i + _ID_CHARS] for i in range(0, len(text), _ID_CHARS)]


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
