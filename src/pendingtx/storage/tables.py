"""The schema, in one place; Alembic migrations create and evolve it."""

from __future__ import annotations

import sqlalchemy as sa

from pendingtx.domain.events import EventType
from pendingtx.domain.jobs import JobKind, JobStatus
from pendingtx.domain.transactions import TransactionStatus, TransactionType
from pendingtx.domain.webhooks import DeliveryState
from pendingtx.storage.driver.types import AllowList, Enumerated, ExactDecimal, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits for growth.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # When a worker last claimed one of its jobs: organizations waiting longest since are served first.
    sa.Column("served_at", UTCDateTime(), nullable=True),
    # The last event sequence given out (storage/events.py). Taking the next one locks this row until
    # commit, so an organization's events become visible in sequence order.
    sa.Column("event_sequence", sa.BigInteger(), nullable=False, server_default="0"),
    # Bumped with any change to what a process may keep in memory about the organization (a token's
    # or an application's standing, a job deleted): storage/generations.py.
    sa.Column("cache_generation", sa.BigInteger(), nullable=False, server_default="0"),
)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("org_id", Id, sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("app_key", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # The IP allow-list (contract section 2, rule 6): normalized CIDRs joined by commas; NULL = any address.
    sa.Column("allowed_ips", AllowList(), nullable=True),
)

entitlements = sa.Table(
    "entitlements",
    metadata,
    sa.Column("app_id", Id, sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("product", sa.String(64), primary_key=True),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("app_id", Id, sa.ForeignKey("apps.id"), nullable=False, index=True),
    sa.Column("issued_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("last_used_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", Id, primary_key=True),  # also the client-visible batchId
    sa.Column("key", sa.String(32), nullable=False, unique=True),
    sa.Column("org_id", Id, sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("app_id", Id, sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("kind", Enumerated(JobKind, 16), nullable=False),
    sa.Column("status", Enumerated(JobStatus, 24), nullable=False),
    sa.Column("payload", sa.LargeBinary(), nullable=False),
    sa.Column("record_count", sa.Integer(), nullable=False),
    sa.Column("processed_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("created_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("failed_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("worker_id", sa.String(128), nullable=True),
    sa.Column("lease_until", UTCDateTime(), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    # A modification job's transaction: such jobs run one at a time per transaction, in id order.
    sa.Column("target", sa.String(64), nullable=True),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("request_digest", sa.String(64), nullable=True),
    # When the client cancelled the job while a worker held it: the worker stops at its next chunk.
    sa.Column("cancel_requested_at", UTCDateTime(), nullable=True),
    # Claims find the organizations with waiting jobs, then each one's oldest, along this index; the
    # job list filtered by status walks it too (status and org_id are both equalities there).
    sa.Index("ix_jobs_status_org_id_id", "status", "org_id", "id"),
    sa.Index("ix_jobs_org_id_target_id", "org_id", "target", "id"),
    # The organization's jobs listed newest first (GET /v1/jobs/{appName}).
    sa.Index("ix_jobs_org_id_id", "org_id", "id"),
    # Retention finds the jobs that ended before its cutoff along this index.
    sa.Index("ix_jobs_completed_at", "completed_at"),
    sa.UniqueConstraint("app_id", "idempotency_key"),
)

# One row per claim of a job: who held it and until when, to audit that no two workers overlapped.
job_claims = sa.Table(
    "job_claims",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("job_id", Id, sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("worker_id", sa.String(128), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=False),
    sa.Column("lease_until", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
)

job_problems = sa.Table(
    "job_problems",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("job_id", Id, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("record_index", sa.Integer(), nullable=False),
    sa.Column("external_id", sa.Text(), nullable=True),
    sa.Column("field", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    # Problems are read in record order, a page of records at a time (status answers, results).
    sa.Index("ix_job_problems_job_id_record_index", "job_id", "record_index", "id"),
)

# The keys of jobs deleted by retention (storage/retention.py): their status and results answer 410,
# not 404, to their own organization.
job_tombstones = sa.Table(
    "job_tombstones",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("org_id", Id, sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("batch_id", sa.BigInteger(), nullable=False),
    sa.Column("swept_at", UTCDateTime(), nullable=False),
)

# The event log (storage/events.py): one row per job transition, written in the transition's own
# transaction; the job's counts are copied as they were then.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("org_id", Id, sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("sequence", sa.BigInteger(), nullable=False),
    sa.Column("public_id", sa.String(32), nullable=False),
    sa.Column("type", Enumerated(EventType, 16), nullable=False),
    # Retention deletes a job's events, and a stream or replay narrowed to one job reads them, along
    # the index of this column.
    sa.Column("job_id", Id, sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("job_key", sa.String(32), nullable=False),
    sa.Column("status", Enumerated(JobStatus, 24), nullable=False),
    sa.Column("record_count", sa.Integer(), nullable=False),
    sa.Column("processed_count", sa.Integer(), nullable=False),
    sa.Column("failed_count", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("org_id", "sequence"),
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("id", Id, primary_key=True),  # the paging sequence: creation order
    sa.Column("org_id", Id, sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("external_id", sa.String(64), nullable=False),
    # The job that created it; no foreign key, as retention deletes jobs and keeps their transactions.
    sa.Column("job_id", Id, nullable=False),
    sa.Column("type", Enumerated(TransactionType, 32), nullable=False),
    sa.Column("status", Enumerated(TransactionStatus, 16), nullable=False),
    sa.Column("product_external_id", sa.String(64), nullable=False),
    sa.Column("investor_external_id", sa.String(64), nullable=False),
    sa.Column("contact_external_id", sa.String(64), nullable=True),
    sa.Column("to_product_external_id", sa.String(64), nullable=True),
    sa.Column("to_investor_external_id", sa.String(64), nullable=True),
    sa.Column("amount", ExactDecimal(), nullable=True),
    sa.Column("units", ExactDecimal(), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("trade_date", sa.Date(), nullable=False),
    sa.Column("settlement_date", sa.Date(), nullable=True),
    sa.Column("comments", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("org_id", "external_id"),
    # Listing filters by organization and one equality or range, and pages in id order.
    sa.Index("ix_transactions_org_id_id", "org_id", "id"),
    sa.Index("ix_transactions_org_id_status_id", "org_id", "status", "id"),
    sa.Index("ix_transactions_org_id_type_id", "org_id", "type", "id"),
    sa.Index("ix_transactions_org_id_product_id", "org_id", "product_external_id", "id"),
    sa.Index("ix_transactions_org_id_investor_id", "org_id", "investor_external_id", "id"),
    sa.Index("ix_transactions_org_id_contact_id", "org_id", "contact_external_id", "id"),
    sa.Index("ix_transactions_org_id_created_at", "org_id", "created_at"),
    sa.Index("ix_transactions_org_id_changed_at", "org_id", "changed_at"),
)

# Rate-limit counters shared by every API process (storage/rate_counters.py): one row per limit and
# caller, counting hits until `expires_at` (seconds since the epoch). UNLOGGED on PostgreSQL: counts
# are worth no WAL, and losing them in a crash only restarts the windows.
rate_counters = sa.Table(
    "rate_counters",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("hits", sa.BigInteger(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
)

# The service's own secret keys (storage/server_keys.py), one row per use, made on first use. Anyone who
# can read this table can read every other one too, so it holds the keys in the clear.
server_keys = sa.Table(
    "server_keys",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("secret", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Webhook endpoints (storage/webhooks.py, contract 7.3). `secret` is the signing secret encrypted with
# the webhook key (services/webhook_secrets.py); `cursor` is the last event sequence of the
# organization already turned into deliveries; `failing_since` the first failure since the last success.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("org_id", Id, sa.ForeignKey("organizations.id"), nullable=False, index=True),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.String(128), nullable=False),
    sa.Column("description", sa.String(256), nullable=True),
    sa.Column("secret", sa.LargeBinary(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("cursor", sa.BigInteger(), nullable=False),
    sa.Column("failing_since", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# The webhook outbox: one row per event to send to one endpoint (a replay adds more), claimed under a
# lease like a job, so that a worker dying mid-send leaves it to be sent again.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("webhook_id", Id, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False, index=True),
    # Cascades: retention deletes events with their jobs, and their deliveries go with them.
    sa.Column("event_id", Id, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("state", Enumerated(DeliveryState, 16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    sa.Column("lease_until", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # Workers look for pending deliveries that are due.
    sa.Index("ix_webhook_deliveries_state_due_at", "state", "due_at"),
)

# The delivery log: every attempt's outcome (GET /v1/webhooks/{id}/deliveries, newest first).
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("webhook_id", Id, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "delivery_id",
        Id,
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("event_public_id", sa.String(32), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("attempted_at", UTCDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.String(256), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Index("ix_webhook_attempts_webhook_id_id", "webhook_id", "id"),
)
