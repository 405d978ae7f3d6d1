"""Jobs: their states, keys, and how their outcome is summarised for the client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pendingtx.domain.transactions import Problem


class JobStatus(StrEnum):
    """The six statuses a client can see; all but the first two are terminal."""

    SUBMITTED = "Submitted"
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    PARTIALLY_COMPLETED = "Partially Completed"
    FAILED = "Failed"
    # Stopped by the client (contract 7.4): before any record, or at a chunk boundary.
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the status can never change again."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {JobStatus.COMPLETED, JobStatus.PARTIALLY_COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
)


class JobKind(StrEnum):
    """What a job does with its records."""

    CREATE = "create"
    TRANSFER = "transfer"
    MODIFY = "modify"


KEY_BYTES = 16
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_=+-]{1,128}")


def new_job_key() -> str:
    """16 random bytes in URL-safe base64 with padding: 24 characters."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def seeded_job_key(seed: str, *position: int) -> str:
    """A sandbox's key (contract 7.6): derived from the seed and where the job stands (numbers that
    the same script against a fresh sandbox repeats), shaped as a random one."""
    message = "job-key:" + ":".join(str(n) for n in position)
    digest = hmac.new(seed.encode("utf-8"), message.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:KEY_BYTES]).decode("ascii")


def is_possible_key(key: str) -> bool:
    """Whether `key` could be a job key at all (else the request is malformed, not unknown)."""
    return _KEY_SHAPE.fullmatch(key) is not None


LABEL_LIMIT = 64
# A record keeps at most this many problems, the last saying how many more there were: a record of
# thousands of unknown members costs a few rows, not thousands.
MAX_RECORD_PROBLEMS = 20
# Member names come from clients and can be as long as a body: a problem names at most this much of one.
FIELD_LIMIT = 128
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """One reason one record of a batch was rejected."""

    index: int
    external_id: str | None
    field: str
    reason: str

    def message(self) -> str:
        """The human-readable line, prefixed with the record's index and externalId."""
        label = self.external_id if self.external_id is not None else "?"
        if len(label) > LABEL_LIMIT:
            # An invalid externalId can be huge: the message names it, it need not repeat it whole.
            label = label[:LABEL_LIMIT] + "…"
        where = f"{self.field}: " if self.field else ""
        return f"[{self.index}] externalId={label}: {where}{self.reason}"


def record_problems(index: int, external_id: str | None, problems: Sequence[Problem]) -> list[RecordProblem]:
    """A rejected record's problems as stored: at most MAX_RECORD_PROBLEMS, each field name bounded.

    When there were more, the last one kept says how many more there were.
    """
    label = None if external_id is None else external_id[:LABEL_LIMIT]
    kept = [
        RecordProblem(index, label, clipped(p.field, FIELD_LIMIT), p.reason)
        for p in problems[:MAX_RECORD_PROBLEMS]
    ]
    more = len(problems) - MAX_RECORD_PROBLEMS
    if more > 0:
        last = kept[-1]
        noun = "problem" if more == 1 else "problems"
        kept[-1] = RecordProblem(index, label, last.field, f"{last.reason}; and {more} more {noun}")
    return kept


def clipped(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def storable(text: str) -> str:
    """`text` as any database can store it: NUL and lone surrogates become U+FFFD."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def outcome(*, record_count: int, created: int) -> tuple[JobStatus, str]:
    """The terminal status and message of a job that processed every record."""
    rejected = record_count - created
    if rejected == 0:
        status = JobStatus.COMPLETED
        detail = f"{created} of {record_count} transactions created"
    else:
        status = JobStatus.FAILED if created == 0 else JobStatus.PARTIALLY_COMPLETED
        detail = f"{created} of {record_count} transactions created; {rejected} rejected"
    return status, f"{status.value}: {detail}"


def modification_outcome(external_id: str, *, problems: int, cancelled: bool) -> tuple[JobStatus, str]:
    """The terminal status and message of a job that modified (or failed to modify) one transaction."""
    if problems:
        noun = "problem" if problems == 1 else "problems"
        return JobStatus.FAILED, f"Failed: transaction {external_id} not modified; {problems} {noun}"
    verb = "cancelled" if cancelled else "modified"
    return JobStatus.COMPLETED, f"Completed: transaction {external_id} {verb}"


def abandoned(*, record_count: int, processed: int, created: int, reason: str) -> tuple[JobStatus, str]:
    """The terminal status and message of a job given up on before every record was processed."""
    status = JobStatus.FAILED if created == 0 else JobStatus.PARTIALLY_COMPLETED
    return status, (
        f"{status.value}: {reason}; {created} of {record_count} transactions created, "
        f"{record_count - processed} not processed"
    )


def cancelled(*, record_count: int, processed: int, created: int) -> str:
    """The message of a job the client cancelled; what was applied before the cancel stays."""
    if processed == 0:
        return f"Cancelled: before any record was processed; {record_count} not processed"
    return (
        f"Cancelled: {created} of {record_count} transactions created, "
        f"{record_count - processed} not processed"
    )


def progress_message(status: JobStatus, *, processed: int, record_count: int) -> str:
    """The message of a job that is not finished yet."""
    if status is JobStatus.SUBMITTED:
        return f"Submitted: {record_count} records waiting for a worker"
    return f"In Progress: {processed} of {record_count} records processed"


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """The jobs as the database has them at one moment (what /metrics reports)."""

    jobs_by_status: dict[str, int]
    waiting: int
    oldest_waiting_seconds: float
    takeovers: int
