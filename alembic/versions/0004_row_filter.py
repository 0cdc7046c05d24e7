"""Each row filter of this target as the source parsed it at the last setup, keyed by its
text in the config, so that `status` need not ask the source to parse it again (which
takes a transaction ID and writes WAL on production, at every refresh of a dashboard).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE repl.row_filter (
            schema_name text NOT NULL,
            table_name  text NOT NULL,
            config_text text NOT NULL,
            canonical   text NOT NULL,
            columns     text[] NOT NULL,
            PRIMARY KEY (schema_name, table_name)
        )""")
    op.execute("REVOKE ALL ON repl.row_filter FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE repl.row_filter")
