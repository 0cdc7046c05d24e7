"""The initial copy of a new target from one exported snapshot (`repl setup`'s default):
per table, how far it got. Each chunk of a table is one transaction on the target that
also counts itself here, so the counts are exact; `status` and `setup --wait` read them,
and a copy that did not finish (its setup killed) is told from one under way by the
snapshot's walsender, which lives exactly as long as the copy.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE repl.initial_copy (
            schema_name    text NOT NULL,   -- the target table
            table_name     text NOT NULL,
            slot_name      text NOT NULL,   -- the slot whose snapshot the copy reads
            walsender_pid  int NOT NULL,    -- on the source: holds that snapshot
            chunks         int NOT NULL,
            chunks_done    int NOT NULL DEFAULT 0,
            -- The chunks committed, by number: a chunk whose commit was not acknowledged
            -- (its connection lost at that moment) is found here, not copied twice.
            done_chunks    int[] NOT NULL DEFAULT '{}',
            rows_copied    bigint NOT NULL DEFAULT 0,
            estimated_rows bigint,
            started_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
            finished_at    timestamptz,     -- its last chunk, and its indexes, are done
            PRIMARY KEY (schema_name, table_name)
        )""")
    op.execute("REVOKE ALL ON repl.initial_copy FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE repl.initial_copy")
