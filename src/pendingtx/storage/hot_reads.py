"""The reads every /v1 request makes: its token with its application, and for a status GET its job
(and its problems, when its answer has to be rendered). Each is one statement outside any
transaction (storage.driver.detached): a round trip per request, no BEGIN and COMMIT around it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pendingtx.domain.credentials import PRODUCT
from pendingtx.domain.jobs import RecordProblem
from pendingtx.storage.apps import TokenRecord
from pendingtx.storage.driver import Statement, record_of
from pendingtx.storage.driver.detached import AwaitedStatements, DetachedStatements
from pendingtx.storage.jobs import FIRST_PROBLEMS, STATUS_COLUMNS, JobRecord, job_record, problems_of_rows
from pendingtx.storage.retention import TOMBSTONE
from pendingtx.storage.tables import apps, entitlements, jobs, tokens

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
)
_TOKEN = Statement(
    sa.select(*_TOKEN_COLUMNS)
    .join(apps, apps.c.id == tokens.c.app_id)
    .where(tokens.c.digest == sa.bindparam("digest"))
)
# The job is looked up only within the token's organization: another tenant's key finds nothing.
_TOKEN_AND_JOB = Statement(
    sa.select(*_TOKEN_COLUMNS, *STATUS_COLUMNS)
    .select_from(
        tokens.join(apps, apps.c.id == tokens.c.app_id).outerjoin(
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


class HotReads:
    """One round trip per /v1 request for authentication, and one for a status GET as a whole.

    `token_and_job_awaited` needs `awaited` statements (PostgreSQL); the composition root decides.
    """

    def __init__(self, detached: DetachedStatements, awaited: AwaitedStatements | None = None) -> None:
        self._detached = detached
        self._awaited = awaited

    def close(self) -> None:
        """Close the reading connections."""
        self._detached.close()
        if self._awaited is not None:
            self._awaited.close()

    def token(self, digest: str) -> TokenRecord | None:
        """The token with this digest and its application's standing."""
        row = self._detached.one(_TOKEN, {"digest": digest, "product": PRODUCT})
        return record_of(TokenRecord, row) if row is not None else None

    def token_and_job(self, digest: str, key: str) -> tuple[TokenRecord | None, JobRecord | None]:
        """The token, and the job with this key in the token's organization."""
        return _token_and_job(
            self._detached.one(_TOKEN_AND_JOB, {"digest": digest, "key": key, "product": PRODUCT})
        )

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
