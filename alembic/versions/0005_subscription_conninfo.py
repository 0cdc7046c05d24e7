"""A salted digest of the connection string each subscription was given: a role that is
not a superuser cannot read pg_subscription.subconninfo, and without this `setup` could
not tell that subscriber_dsn changed (a rotated password, a moved source).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE repl.subscription_conninfo (
            subscription text PRIMARY KEY,
            salt         bytea NOT NULL,
            digest       bytea NOT NULL
        )""")
    op.execute("REVOKE ALL ON repl.subscription_conninfo FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE repl.subscription_conninfo")
