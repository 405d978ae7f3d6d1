"""Persistence: tables, migrations, the unit of work and the queries, on SQLite and PostgreSQL."""
