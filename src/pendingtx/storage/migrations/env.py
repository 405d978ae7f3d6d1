"""Alembic environment: runs on the engine handed over in `config.attributes`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from pendingtx.storage.tables import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, sa.Engine):
    raise RuntimeError("run migrations through pendingtx.storage.migrate (`pendingtx db upgrade`)")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Many processes may start at once on several hosts: one migrates, the others wait for it.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7305541)")
        context.run_migrations()
