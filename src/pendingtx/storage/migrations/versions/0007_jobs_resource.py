"""jobs as a resource: cancel requests, listing indexes, problems in record order, tombstones

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_jobs_org_id_id", ["org_id", "id"], unique=False)
        batch_op.create_index("ix_jobs_org_id_status_id", ["org_id", "status", "id"], unique=False)
        batch_op.create_index("ix_jobs_completed_at", ["completed_at"], unique=False)
    with op.batch_alter_table("job_problems", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_problems_job_id_record_index", ["job_id", "record_index", "id"], unique=False
        )
        batch_op.drop_index("ix_job_problems_job_id")
    # Retention deletes jobs and keeps the transactions they created.
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_transactions_job_id_jobs", type_="foreignkey")
    op.create_table(
        "job_tombstones",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("swept_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_job_tombstones_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_job_tombstones")),
    )


def downgrade() -> None:
    op.drop_table("job_tombstones")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_transactions_job_id_jobs", "jobs", ["job_id"], ["id"])
    with op.batch_alter_table("job_problems", schema=None) as batch_op:
        batch_op.create_index("ix_job_problems_job_id", ["job_id"], unique=False)
        batch_op.drop_index("ix_job_problems_job_id_record_index")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_completed_at")
        batch_op.drop_index("ix_jobs_org_id_status_id")
        batch_op.drop_index("ix_jobs_org_id_id")
        batch_op.drop_column("cancel_requested_at")
