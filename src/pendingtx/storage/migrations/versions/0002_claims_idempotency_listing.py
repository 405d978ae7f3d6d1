"""claims, idempotency, modification order, listing indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 12:40:28.625778
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_claims",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_claims_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_claims")),
    )
    with op.batch_alter_table("job_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_claims_job_id"), ["job_id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("request_digest", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_jobs_org_id_target_id", ["org_id", "target", "id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_jobs_app_id_idempotency_key"), ["app_id", "idempotency_key"]
        )

    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index("ix_transactions_org_id_changed_at", ["org_id", "changed_at"], unique=False)
        batch_op.create_index(
            "ix_transactions_org_id_contact_id", ["org_id", "contact_external_id", "id"], unique=False
        )
        batch_op.create_index("ix_transactions_org_id_created_at", ["org_id", "created_at"], unique=False)
        batch_op.create_index("ix_transactions_org_id_id", ["org_id", "id"], unique=False)
        batch_op.create_index(
            "ix_transactions_org_id_investor_id", ["org_id", "investor_external_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_transactions_org_id_product_id", ["org_id", "product_external_id", "id"], unique=False
        )
        batch_op.create_index("ix_transactions_org_id_status_id", ["org_id", "status", "id"], unique=False)
        batch_op.create_index("ix_transactions_org_id_type_id", ["org_id", "type", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_org_id_type_id")
        batch_op.drop_index("ix_transactions_org_id_status_id")
        batch_op.drop_index("ix_transactions_org_id_product_id")
        batch_op.drop_index("ix_transactions_org_id_investor_id")
        batch_op.drop_index("ix_transactions_org_id_id")
        batch_op.drop_index("ix_transactions_org_id_created_at")
        batch_op.drop_index("ix_transactions_org_id_contact_id")
        batch_op.drop_index("ix_transactions_org_id_changed_at")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_jobs_app_id_idempotency_key"), type_="unique")
        batch_op.drop_index("ix_jobs_org_id_target_id")
        batch_op.drop_column("request_digest")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("target")

    with op.batch_alter_table("job_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_claims_job_id"))

    op.drop_table("job_claims")
