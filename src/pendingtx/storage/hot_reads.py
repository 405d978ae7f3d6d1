"""The reads every /v1 request makes: its token with its application, and for a status GET its job
(and its problems, when its answer has to be rendered). Each is one statement outside any
transaction (storage.driver.detached): a round trip per request, no BEGIN and COMMIT around it.

Where the database tells whether anything was committed since the last look (SQLite), what a token
resolves to is kept in memory with its organization's cache generation (storage/generations.py)
and handed out again while that generation holds: checked by a shared-memory read when nothing was
committed, by one small read of the generation when something was. Never stale: every change that
could alter the answer bumps the generation in its own transaction.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.credentials import PRODUCT
from pendingtx.domain.jobs import RecordProblem
from pendingtx.storage.apps import TokenRecord
from pendingtx.storage.driver import Statement, record_of
from pendingtx.storage.driver.detached import AwaitedStatements, DetachedStatements
from pendingtx.storage.generations import CURRENT
from pendingtx.storage.jobs import FIRST_PROBLEMS, STATUS_COLUMNS, JobRecord, job_record, problems_of_rows
from pendingtx.storage.retention import TOMBSTONE
from pendingtx.storage.tables import apps, entitlements, jobs, organizations, tokens

# Labelled after the fields of TokenRecord, which each row fills.
_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.app_id,
    apps.c.app_key,
    apps.c.name.label("app_name"),
    apps.c.org_id,
    apps.c.disabled.label("app_disabled"),
    sa.exists()
    .where(entitlements.c.app_id == apps.c.id, entitlements.c.product == sa.bindparam("product"))
    .label("entitled"),
    tokens.c.expires_at,
    tokens.c.last_used_at,
    tokens.c.revoked_at.is_not(None).label("revoked"),
    apps.c.allowed_ips.label("allowed_networks"),
    organizations.c.cache_generation.label("generation"),
)
_TOKEN_APP_ORG = tokens.join(apps, apps.c.id == tokens.c.app_id).join(
    organizations, organizations.c.id == apps.c.org_id
)
_TOKEN = Statement(
    sa.select(*_TOKEN_COLUMNS).select_from(_TOKEN_APP_ORG).where(tokens.c.digest == sa.bindparam("digest"))
)
# The job is looked up only within the token's organization: another tenant's key finds nothing.
_TOKEN_AND_JOB = Statement(
    sa.select(*_TOKEN_COLUMNS, *STATUS_COLUMNS)
    .select_from(
        _TOKEN_APP_ORG.outerjoin(
            jobs, sa.and_(jobs.c.key == sa.bindparam("key"), jobs.c.org_id == apps.c.org_id)
        )
    )
    .where(tokens.c.digest == sa.bindparam("digest"))
)


# A held status read's job again, its caller admitted when the request arrived.
_JOB = Statement(
    sa.select(*STATUS_COLUMNS).where(
        jobs.c.key == sa.bindparam("key"), jobs.c.org_id == sa.bindparam("org_id")
    )
)


def _token_and_job(row: Any) -> tuple[TokenRecord | None, JobRecord | None]:
    if row is None:
        return None, None
    return record_of(TokenRecord, row), job_record(row)


# How many tokens a process keeps; beyond, the oldest kept is dropped (and read again when used).
MAX_KEPT_TOKENS = 10_000


class HotReads:
    """One round trip per /v1 request for authentication, and one for a status GET as a whole, or
    none for a token kept in memory whose organization's generation holds.

    `token_and_job_awaited` needs `awaited` statements (PostgreSQL); the composition root decides.
    """

    def __init__(
        self,
        detached: DetachedStatements,
        awaited: AwaitedStatements | None = None,
        *,
        max_kept_tokens: int = MAX_KEPT_TOKENS,
    ) -> None:
        self._detached = detached
        self._awaited = awaited
        # Only where a commit elsewhere can be seen without a read can keeping save one.
        self.keeps = detached.sees_commits and max_kept_tokens > 0
        self._max_kept = max_kept_tokens
        self._kept: dict[str, TokenRecord] = {}
        # Per thread, as SQLite's data version is per connection: generations read since the last commit seen.
        self._seen = threading.local()

    def generation(self, org_id: int) -> int | None:
        """The organization's cache generation now (None where nothing is kept): read at most once
        between two commits anywhere."""
        if not self.keeps:
            return None
        seen: dict[int, int] | None = self._seen.__dict__.get("generations")
        if seen is None:
            seen = self._seen.generations = {}
        if self._detached.committed_elsewhere():
            seen.clear()
        current = seen.get(org_id)
        if current is None:
            current = seen[org_id] = int(self._detached.one(CURRENT, {"org_id": org_id})[0])
        return current

    def kept_token(self, digest: str) -> TokenRecord | None:
        """The token with this digest as kept in memory, if its organization's generation still holds."""
        kept = self._kept.get(digest) if self.keeps else None
        if kept is None or self.generation(kept.org_id) != kept.generation:
            return None
        return kept

    def touched(self, digest: str, now: datetime) -> None:
        """The token's last use was written down: its kept record says so too."""
        kept = self._kept.get(digest)
        if kept is not None:
            self._kept[digest] = dataclasses.replace(kept, last_used_at=now)

    def _keep(self, digest: str, found: TokenRecord | None) -> None:
        if found is None or not self.keeps:
            return
        kept = self._kept
        if digest not in kept and len(kept) >= self._max_kept:
            kept.pop(next(iter(kept)), None)
        kept[digest] = found

    def close(self) -> None:
        """Close the reading connections."""
        self._detached.close()
        if self._awaited is not None:
            self._awaited.close()

    def token(self, digest: str, *, fresh: bool = False) -> TokenRecord | None:
        """The token with this digest and its application's standing; `fresh`: read, not kept."""
        found = None if fresh else self.kept_token(digest)
        if found is None:
            row = self._detached.one(_TOKEN, {"digest": digest, "product": PRODUCT})
            found = record_of(TokenRecord, row) if row is not None else None
            self._keep(digest, found)
        return found

    def token_and_job(self, digest: str, key: str) -> tuple[TokenRecord | None, JobRecord | None]:
        """The token, and the job with this key in the token's organization."""
        found, job = _token_and_job(
            self._detached.one(_TOKEN_AND_JOB, {"digest": digest, "key": key, "product": PRODUCT})
        )
        self._keep(digest, found)
        return found, job

    async def token_and_job_awaited(
        self, digest: str, key: str
    ) -> tuple[TokenRecord | None, JobRecord | None]:
        """As `token_and_job`, awaited on the event loop."""
        assert self._awaited is not None, "awaited reads are not configured for this database"
        row = await self._awaited.one(_TOKEN_AND_JOB, {"digest": digest, "key": key, "product": PRODUCT})
        return _token_and_job(row)

    def job(self, org_id: int, key: str) -> JobRecord | None:
        """The organization's job with this key."""
        row = self._detached.one(_JOB, {"org_id": org_id, "key": key})
        return None if row is None else job_record(row)

    async def job_awaited(self, org_id: int, key: str) -> JobRecord | None:
        """As `job`, awaited on the event loop."""
        assert self._awaited is not None, "awaited reads are not configured for this database"
        row = await self._awaited.one(_JOB, {"org_id": org_id, "key": key})
        return None if row is None else job_record(row)

    def problems(self, job_id: int, limit: int) -> list[RecordProblem]:
        """The first `limit` recorded problems of a job, in record order."""
        return problems_of_rows(
            self._detached.all(FIRST_PROBLEMS, {"job_id": job_id, "limit": limit, "offset": 0})
        )

    def swept(self, org_id: int, key: str) -> bool:
        """Whether retention deleted the organization's job with this key (read only for a missing job)."""
        return self._detached.one(TOMBSTONE, {"key": key, "org_id": org_id}) is not None
