"""repl schema: private to repl's owner role, with a record of each setup run.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nobody but repl's owner reads this schema (it will hold the masking secret).
    op.execute("REVOKE ALL ON SCHEMA repl FROM PUBLIC")
    op.execute(
        """
        CREATE TABLE repl.setup_run (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            target      text NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            steps       integer NOT NULL,
            repl_version text NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE repl.setup_run")
