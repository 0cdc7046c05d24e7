"""Production's identity of what each target replicates: for every target table the OID
of its source table and, per target column, the source column's attnum (and type, as it
was), recorded by every setup; for every type repl created on the target, the OID of
its source type.

Names are not identities: production renames tables, columns and types, and drops and
re-adds them under the same names. With these records repl tells a rename (same OID or
attnum, another name) from a drop and an add, a column production added after the
table's first setup (an attnum not recorded: pending under `columns: all`) from one that
was accepted, and a dropped column from a renamed one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE repl.replicated_table (
            schema_name text NOT NULL,     -- the target table, named as it is now
            table_name  text NOT NULL,
            source_oid  oid NOT NULL,      -- pg_class.oid of the source table
            columns     text[] NOT NULL,   -- the target's replicated columns ...
            attnums     int2[] NOT NULL,   -- ... and each one's attnum on the source
            types       text[] NOT NULL,   -- ... and its source type, as it was
            -- The config said `columns: all` then: these are the columns it accepted.
            all_columns boolean NOT NULL,
            -- Columns the config excluded then (classified: they stay in production).
            excluded    text[] NOT NULL,
            excluded_attnums int2[] NOT NULL,
            PRIMARY KEY (schema_name, table_name),
            CHECK (pg_catalog.cardinality(columns) = pg_catalog.cardinality(attnums)
                   AND pg_catalog.cardinality(columns) = pg_catalog.cardinality(types))
        )""")
    op.execute("""
        CREATE TABLE repl.replicated_type (
            schema_name text NOT NULL,     -- the type on the target, named as it is now
            type_name   text NOT NULL,
            source_oid  oid NOT NULL,      -- pg_type.oid of the source type
            PRIMARY KEY (schema_name, type_name)
        )""")
    op.execute("REVOKE ALL ON repl.replicated_table, repl.replicated_type FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE repl.replicated_type")
    op.execute("DROP TABLE repl.replicated_table")
