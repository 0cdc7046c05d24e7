"""`repl preview TARGET TABLE`: the rows as that target would store them.

Rows are read from the source with the target's column list and row filter, then
masked on the target's own server by the same trigger code setup installs, inside a
transaction that is always rolled back. Nothing is written anywhere, it works before
the first setup, and the masking key never leaves the target.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from .errors import ValidationFailed
from .masking import TRIGGER_NAME, create_function, function_name, store_key
from .masking_sql import install_statements
from .names import QualifiedName, ident
from .problems import REPL_SCHEMA, where
from .session import Session, configured_table
from .state import desired

PREVIEW_TABLE = sql.Identifier("pg_temp", "repl_preview")


@dataclass
class Preview:
    target: str
    table: str
    columns: list[str]
    rows: list[tuple]
    notes: list[str]


def preview(session: Session, target: str, table: str, limit: int) -> Preview:
    relation = configured_table(session.config, target, table)
    snap = session.snapshot()
    relevant = [p for p in snap.errors if p.where.startswith("source")
                or p.where.startswith(f"target {target}, table {relation}")
                or (p.where == where(target) and p.kind == REPL_SCHEMA)]
    if relevant:
        raise ValidationFailed(relevant)
    want = desired(session.config, snap.source, snap.targets, snap.filters, [target])
    state = want.states[target]
    spec = state.table(relation)
    found = state.publication_of(relation)
    assert spec is not None and found is not None
    entry = found[1]
    notes = []
    columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in spec.columns)
    order = sql.SQL(", ").join(sql.Identifier(c) for c in (spec.key or ())) \
        if spec.key else sql.SQL("1")
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
        columns, ident(relation), sql.SQL(entry.row_filter or "true"), order, sql.Literal(limit))

    source, db = session.db("source"), session.db(target)
    with source.conn.transaction(force_rollback=True):
        source.execute("SET TRANSACTION READ ONLY")
        copy_out = sql.SQL("COPY ({}) TO STDOUT").format(query)
        with source.conn.cursor() as cur, cur.copy(copy_out) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)

    with db.conn.transaction(force_rollback=True):
        db.execute(sql.SQL("CREATE TEMPORARY TABLE {} ({})").format(
            PREVIEW_TABLE, sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type))
                for c in spec.columns)))
        if spec.mask_function:
            _install_masking(session, target, state.mask_keys, relation, spec.mask_function,
                             spec.mask_sql)
            if state.mask_keys[2] == "generated" and snap.targets[target].mask_keys is None:
                notes.append("no masking.secret is configured and this target has no key yet:"
                             " the preview uses a throwaway key, so keyed values will differ "
                             "after setup")
        with db.conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(PREVIEW_TABLE, columns)) \
                    as copy:
                copy.write(data)
            # Text, as PostgreSQL prints each value: what `psql` would show on the target.
            cur.execute(sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name))
                                   for c in spec.columns), PREVIEW_TABLE))
            rows = cur.fetchall()
    return Preview(target, str(relation), [c.name for c in spec.columns], rows, notes)


def _install_masking(session: Session, target: str, keys: tuple[bytes, bytes, str],
                     relation: QualifiedName, body: str, sql_masks: tuple[str, ...]) -> None:
    """Inside the preview's transaction: repl's masking functions, key and trigger."""
    db = session.db(target)
    db.execute("CREATE SCHEMA IF NOT EXISTS repl")
    for text in install_statements():
        db.conn.execute(text.encode())  # type: ignore[arg-type]
    if db.scalar("SELECT pg_catalog.to_regclass('repl.secret') IS NULL"):
        # Before the first setup: a stand-in with the columns the key reader uses.
        db.execute("CREATE TABLE repl.secret (only_row boolean PRIMARY KEY DEFAULT true, "
                   "ikey bytea NOT NULL, okey bytea NOT NULL, source text NOT NULL)")
    store_key(db.conn, *keys)
    for statement in sql_masks:
        db.execute_one(sql.SQL(statement))
    db.execute(create_function(relation, body))
    db.execute(sql.SQL("CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} "
                       "FOR EACH ROW EXECUTE FUNCTION {}()").format(
        sql.Identifier(TRIGGER_NAME), PREVIEW_TABLE,
        sql.Identifier("repl", function_name(relation))))
