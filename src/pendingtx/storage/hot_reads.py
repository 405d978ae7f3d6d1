"""The reads every /v1 request makes: its token with its application, and for a status GET its job
(and its problems, when its answer has to be rendered)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.credentials import PRODUCT
from pendingtx.domain.jobs import RecordProblem
from pendingtx.domain.networks import allow_list_from_text
from pendingtx.storage.apps import TokenRecord
from pendingtx.storage.jobs import JOB_COLUMNS, JobRecord, job_record
from pendingtx.storage.prepared import AsyncReads, DirectReads, utc
from pendingtx.storage.tables import apps, entitlements, job_problems, jobs, tokens

_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.app_id,
    apps.c.app_key,
    apps.c.name,
    apps.c.org_id,
    apps.c.disabled,
    sa.exists()
    .where(entitlements.c.app_id == apps.c.id, entitlements.c.product == sa.bindparam("product"))
    .label("entitled"),
    tokens.c.expires_at,
    tokens.c.last_used_at,
    tokens.c.revoked_at,
    apps.c.allowed_ips,
)
_TOKEN_WIDTH = len(_TOKEN_COLUMNS)


def _token(row: Any) -> TokenRecord:
    return TokenRecord(
        id=row[0],
        app_id=row[1],
        app_key=row[2],
        app_name=row[3],
        org_id=row[4],
        app_disabled=bool(row[5]),
        entitled=bool(row[6]),
        expires_at=utc(row[7]),
        last_used_at=utc(row[8]),
        revoked=row[9] is not None,
        # Parsed once per distinct text: the same few allow-lists come back on every request.
        allowed_networks=allow_list_from_text(row[10]),
    )


def _job(row: Any) -> JobRecord | None:
    return None if row[0] is None else job_record(row, utc)


class HotReads:
    """One round trip per /v1 request for authentication, and one for a status GET as a whole."""

    def __init__(self, engine: sa.Engine) -> None:
        # As many idle reading connections as the pool holds: as many as read at once.
        size = getattr(engine.pool, "size", None)
        max_idle = size() if callable(size) else 10
        self._direct = DirectReads(engine, max_idle=max_idle)
        self._async = AsyncReads(engine, size=max_idle) if engine.dialect.name == "postgresql" else None

    @property
    def reads_async(self) -> bool:
        """Whether `token_and_job_async` is available (PostgreSQL): the status GET reads on the event loop."""
        return self._async is not None

    def close(self) -> None:
        """Close the reading connections."""
        self._direct.close()
        if self._async is not None:
            self._async.close()

    @cached_property
    def _token_query(self) -> Any:
        query = sa.select(*_TOKEN_COLUMNS).join(apps, apps.c.id == tokens.c.app_id)
        return self._direct.prepare(query.where(tokens.c.digest == sa.bindparam("digest")))

    @cached_property
    def _status_query(self) -> Any:
        # The job is looked up only within the token's organization: another tenant's key finds nothing.
        job = sa.and_(jobs.c.key == sa.bindparam("key"), jobs.c.org_id == apps.c.org_id)
        query = (
            sa.select(*_TOKEN_COLUMNS, *JOB_COLUMNS)
            .select_from(tokens.join(apps, apps.c.id == tokens.c.app_id).outerjoin(jobs, job))
            .where(tokens.c.digest == sa.bindparam("digest"))
        )
        return self._direct.prepare(query)

    @cached_property
    def _problems_query(self) -> Any:
        query = (
            sa.select(
                job_problems.c.record_index,
                job_problems.c.external_id,
                job_problems.c.field,
                job_problems.c.reason,
            )
            .where(job_problems.c.job_id == sa.bindparam("job_id"))
            .order_by(job_problems.c.record_index, job_problems.c.id)
            .limit(sa.bindparam("limit"))
            # Named, as SQLite renders an OFFSET with any LIMIT and the prepared read binds by name.
            .offset(sa.bindparam("offset"))
        )
        return self._direct.prepare(query)

    def token(self, digest: str) -> TokenRecord | None:
        """The token with this digest and its application's standing."""
        row = self._direct.one(self._token_query, {"digest": digest, "product": PRODUCT})
        return _token(row) if row is not None else None

    def token_and_job(self, digest: str, key: str) -> tuple[TokenRecord | None, JobRecord | None]:
        """The token, and the job with this key in the token's organization."""
        row = self._direct.one(self._status_query, {"digest": digest, "key": key, "product": PRODUCT})
        if row is None:
            return None, None
        return _token(row), _job(row[_TOKEN_WIDTH:])

    async def token_and_job_async(self, digest: str, key: str) -> tuple[TokenRecord | None, JobRecord | None]:
        """As `token_and_job`, awaited on the event loop (PostgreSQL only)."""
        assert self._async is not None
        row = await self._async.one(self._status_query, {"digest": digest, "key": key, "product": PRODUCT})
        if row is None:
            return None, None
        return _token(row), _job(row[_TOKEN_WIDTH:])

    def problems(self, job_id: int, limit: int) -> list[RecordProblem]:
        """The first `limit` recorded problems of a job, in record order."""
        rows = self._direct.all(self._problems_query, {"job_id": job_id, "limit": limit, "offset": 0})
        return [RecordProblem(r[0], r[1], r[2], r[3]) for r in rows]
