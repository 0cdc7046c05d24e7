"""Which config and target this database is the target of, and a random id for it.

A target database belongs to one config: two configs replicating into it would share
repl's schema (its key, its roles, its recorded filters), and one's teardown would drop
the other's masking triggers. The id also marks the publications made for this database
on the source (COMMENT ON PUBLICATION), so that a config of another team that happens to
use the same names (the default `name` and a target `dev`) is refused instead of taking
them over. An id, not the server's system identifier, which pg_upgrade changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE repl.owner (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            config   text NOT NULL,
            target   text NOT NULL,
            id       uuid NOT NULL
        )""")
    op.execute("REVOKE ALL ON repl.owner FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE repl.owner")
