"""The migrations build exactly the schema that storage/tables.py declares, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pendingtx.bootstrap import Runtime
from pendingtx.storage.tables import metadata


def test_the_migrated_schema_matches_the_declared_tables(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = [d for d in compare_metadata(context, metadata) if not _alembic_own(d)]
    assert differences == []


def _alembic_own(difference: object) -> bool:
    # Alembic's version table is not part of the declared schema.
    return (
        isinstance(difference, tuple)
        and difference[0] == "remove_table"
        and isinstance(difference[1], sa.Table)
        and difference[1].name == "alembic_version"
    )
