"""events: a read narrowed to one job goes along the job_id index, and the (org_id, job_key,
sequence) index goes: every event paid for it at insert, three times a job

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 20:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_org_id_job_key_sequence", table_name="events")


def downgrade() -> None:
    op.create_index(
        "ix_events_org_id_job_key_sequence", "events", ["org_id", "job_key", "sequence"], unique=False
    )
