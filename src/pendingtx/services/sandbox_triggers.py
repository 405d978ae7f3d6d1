"""Sandbox mode's trigger values (contract 7.6): an `externalId` prefix makes its record fail, its
job slow, or its job's processing crash, so that a client can watch each path on demand.

- `SBX-REJECT-`: the record is rejected (`sandbox: rejected by trigger`): a partial or failed job.
- `SBX-SLOW-`: the worker takes 2 s over the record, outside any transaction: `In Progress`.
- `SBX-CRASH-`: the job's processing fails as an internal error would: retries, then `Failed`.

The table of what each shows a client is in README.md and docs/API.md.

Triggers are looked at only by a sandbox's workers (`Triggers` is None otherwise), and only in
create and transfer jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pendingtx.domain.jobs import RecordProblem
from pendingtx.domain.transactions import PendingTransaction

REJECT = "SBX-REJECT-"
SLOW = "SBX-SLOW-"
CRASH = "SBX-CRASH-"
REJECTED_REASON = "sandbox: rejected by trigger"


class SandboxCrash(RuntimeError):
    """A job's processing failing on purpose (an `SBX-CRASH-` record): retried, then given up."""


Judged = tuple[list[tuple[int, PendingTransaction]], list[RecordProblem]]


@dataclass(frozen=True)
class Triggers:
    """How a sandbox's worker acts on trigger values."""

    slow_seconds: float = 2.0
    # A chunk never sleeps longer than this in all, so that its job keeps its lease.
    max_sleep_seconds: float = 10.0
    sleep: Callable[[float], None] = time.sleep

    def apply(self, judged: Judged) -> Judged:
        """The chunk's verdicts with the triggers applied: call outside any transaction (it may sleep)."""
        valid, problems = judged
        external_ids = [tx.external_id for _, tx in valid] + [
            p.external_id for p in problems if p.external_id is not None
        ]
        if any(i.startswith(CRASH) for i in external_ids):
            raise SandboxCrash("sandbox: processing crashed by trigger")
        slow = sum(1 for i in set(external_ids) if i.startswith(SLOW))
        if slow:
            self.sleep(min(slow * self.slow_seconds, self.max_sleep_seconds))
        rejected = [(i, tx) for i, tx in valid if tx.external_id.startswith(REJECT)]
        if not rejected:
            return judged
        kept = [(i, tx) for i, tx in valid if not tx.external_id.startswith(REJECT)]
        extra = [RecordProblem(i, tx.external_id, "externalId", REJECTED_REASON) for i, tx in rejected]
        return kept, sorted(problems + extra, key=lambda p: p.index)
