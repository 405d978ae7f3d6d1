"""jobs: one index on (status, org_id, id) serves both the claims and a status-filtered job list
(both compare status and org_id for equality, then walk id), so (org_id, status, id) goes: every
status change of every job updated both

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:25:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_org_id_status_id")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.create_index("ix_jobs_org_id_status_id", ["org_id", "status", "id"], unique=False)
