"""The masking key: HMAC inner and outer padded keys, precomputed at setup.

Readable only by repl's owner role (the schema is already closed to PUBLIC; the
table is closed too, so a later GRANT USAGE on the schema cannot expose it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE repl.secret (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            ikey     bytea NOT NULL CHECK (octet_length(ikey) = 64),
            okey     bytea NOT NULL CHECK (octet_length(okey) = 64),
            source   text NOT NULL CHECK (source IN ('config', 'generated'))
        )
        """
    )
    op.execute("REVOKE ALL ON repl.secret FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE repl.secret")
