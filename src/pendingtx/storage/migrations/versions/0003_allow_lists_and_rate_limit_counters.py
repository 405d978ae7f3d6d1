"""IP allow-lists on applications; rate-limit counters

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 13:29:28.580203
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_counters")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Counters need no WAL: a crash empties the table, which only restarts the windows.
        op.execute("ALTER TABLE rate_counters SET UNLOGGED")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_ips", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("allowed_ips")

    op.drop_table("rate_counters")
