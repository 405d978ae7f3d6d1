"""Sandbox mode's use cases (contract 7.6): reading and moving the clock, emptying an organization,
and the trigger values that make a record fail, slow down or crash its job on purpose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from pendingtx import errors
from pendingtx.clock import SandboxClock
from pendingtx.domain.times import to_eastern_iso
from pendingtx.services.authentication import Caller
from pendingtx.storage import sandbox as repo
from pendingtx.storage.unit_of_work import UnitOfWork

# The most one POST /sandbox/clock moves the clock: far past any lifetime or retention period.
MAX_ADVANCE_SECONDS = 10 * 366 * 86400
MAX_BODY_BYTES = 1024


class _Advance(msgspec.Struct, forbid_unknown_fields=True):
    advanceSeconds: int


@dataclass(frozen=True)
class Sandbox:
    """The sandbox's controls over this process's clock and an organization's data."""

    uow: UnitOfWork
    clock: SandboxClock
    # Told each organization a reset emptied (the process's cached status answers).
    on_reset: Callable[[int], None] = lambda _org_id: None
    # Told after the clock moved (the retention sweep runs at once).
    on_advance: Callable[[], None] = lambda: None

    def clock_body(self) -> dict[str, Any]:
        """GET /sandbox/clock: the server's time and how far it has been moved."""
        return {"now": to_eastern_iso(self.clock()), "offsetSeconds": self.clock.offset_seconds}

    def advance(self, body: bytes) -> dict[str, Any]:
        """POST /sandbox/clock: move the clock forward by `advanceSeconds` and keep the offset."""
        try:
            wanted = msgspec.json.decode(body, type=_Advance).advanceSeconds
        except msgspec.ValidationError as exc:
            raise _invalid(str(exc)) from None
        except msgspec.DecodeError:
            raise _invalid('must be a JSON object {"advanceSeconds": N}') from None
        if not 0 <= wanted <= MAX_ADVANCE_SECONDS:
            raise _invalid(f"advanceSeconds: must be between 0 and {MAX_ADVANCE_SECONDS}")
        # From where the sandbox's clock stands, should another process have moved it meanwhile.
        self.clock.catch_up(repo.clock_offset(self.uow))
        offset = self.clock.advance(wanted)
        repo.save_clock_offset(self.uow, offset, now=self.clock())
        self.on_advance()
        return self.clock_body()

    def catch_up(self) -> bool:
        """Follow a move of the clock made by another process of the sandbox (kept in the database)."""
        moved = self.clock.catch_up(repo.clock_offset(self.uow))
        if moved:
            self.on_advance()
        return moved

    def reset(self, caller: Caller) -> None:
        """POST /sandbox/reset: delete the caller's organization's transactions, jobs and events."""
        repo.reset_organization(self.uow, caller.org_id)
        self.on_reset(caller.org_id)


def _invalid(reason: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(errors=[errors.ErrorDetail("body", "body", reason)])
