"""alembic environment for repl's own `repl` schema in each target database.

repl runs this programmatically (replication/migrations.py) with an open connection
in `config.attributes["connection"]`; there is no alembic.ini and no URL.
"""

from alembic import context

connection = context.config.attributes["connection"]
# The version table lives in the schema it versions.
connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS repl")
context.configure(
    connection=connection,
    target_metadata=None,
    version_table="alembic_version",
    version_table_schema="repl",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
