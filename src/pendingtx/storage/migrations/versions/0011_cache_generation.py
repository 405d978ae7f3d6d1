"""organizations: a cache generation, bumped in the same transaction as any change to what a
process may keep in memory about the organization (a token's or application's standing, a job
deleted), so a cache can be checked instead of re-read

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cache_generation", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("cache_generation")
