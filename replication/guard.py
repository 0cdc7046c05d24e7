"""The read-only guard (SPEC section 2, `read_only`): a trigger on every replicated
table of a target that refuses local INSERT, UPDATE, DELETE and TRUNCATE with a message
naming repl and the ways out, because a local row is the usual cause of apply conflicts.

The trigger is enabled the normal way (ENABLE, not ALWAYS), so it does not fire in
PostgreSQL's apply and table-sync workers: they run with session_replication_role =
replica. repl's own writes (the TRUNCATE before a table is copied again) set
BYPASS_SETTING for their transaction, which the guard lets through: a setting any role
may set, so that it works on targets where repl is not a superuser and cannot change
session_replication_role. It is a guard against accidents, not a security boundary:
whoever may write the table may set it too (privileges are that boundary: reader roles
get SELECT only).
"""

from __future__ import annotations

from psycopg import sql

from .db import Database
from .names import QualifiedName, ident

TRIGGER_NAME = "repl_read_only"
FUNCTION = sql.Identifier("repl", "read_only_guard")
BYPASS_SETTING = "repl.read_only_bypass"

BODY = """
BEGIN
    IF pg_catalog.current_setting('""" + BYPASS_SETTING + """', true) = 'on' THEN
        RETURN NULL;  -- one of repl's own statements
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'read_only_sql_transaction',
        MESSAGE = pg_catalog.format(
            '%s on %I.%I refused: the table is replicated from production by repl and is '
            'read-only on this target. To write here, set read_only: false for this '
            'target in repl.yaml and run repl setup; repl teardown stops the replication.',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
END
"""


def bypass() -> sql.Composable:
    """The first statement of a transaction in which repl writes a replicated table."""
    return sql.SQL("SELECT pg_catalog.set_config({}, 'on', true)").format(
        sql.Literal(BYPASS_SETTING))


def create_function() -> list[sql.Composable]:
    return [
        sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql "
                "SET search_path = pg_catalog, pg_temp AS {}").format(FUNCTION,
                                                                      sql.Literal(BODY)),
        sql.SQL("COMMENT ON FUNCTION {}() IS {}").format(
            FUNCTION, sql.Literal("repl: the read-only guard of replicated tables")),
    ]


def create_trigger(relation: QualifiedName) -> list[sql.Composable]:
    """Statement-level: one check per statement, whatever the number of rows."""
    trigger = sql.Identifier(TRIGGER_NAME)
    return [
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trigger, ident(relation)),
        sql.SQL("CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(
                    trigger, ident(relation), FUNCTION),
    ]


def drop_trigger(relation: QualifiedName) -> sql.Composable:
    return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(TRIGGER_NAME),
                                                             ident(relation))


def installed_body(db: Database, revision: str | None) -> str | None:
    """The body of the guard function in the target's repl schema (when repl's), if any."""
    if revision is None:
        return None
    return db.scalar("SELECT p.prosrc FROM pg_catalog.pg_proc AS p "
                     "WHERE p.oid = pg_catalog.to_regprocedure('repl.read_only_guard()')")
