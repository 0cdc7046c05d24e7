"""The roles repl manages on this target, so that roles removed from the config lose
the grants repl gave them. Roles are cluster-wide; their grants are per database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE repl.managed_role (name text PRIMARY KEY)")
    op.execute("REVOKE ALL ON repl.managed_role FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE repl.managed_role")
