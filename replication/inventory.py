"""What `repl init` reads of production: the tables of the chosen schemas with their
columns and replica identities (catalog.source_tables), and a bounded sample of the
values of the columns that can hold personal data, judged by value_shapes and dropped.

Production is only read: the session is read-only (`default_transaction_read_only`),
each sample is one statement of at most `SAMPLE_ROWS` rows under a short
`statement_timeout` and `lock_timeout`, and a large table is read through
`TABLESAMPLE SYSTEM`, which reads only the pages it picks (never a scan of the table). A
sample that fails or times out leaves that table to the rules on names and types. No
value is kept, logged, or put into an error message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from .catalog import ServerInfo, server_info, source_tables
from .db import Database
from .errors import UsageError
from .model import SourceTable
from .names import QualifiedName, ident
from .value_shapes import Verdict, classify

SAMPLE_ROWS = 200
SAMPLE_CHARS = 1000  # of each value: an address in a note is near its start
SAMPLE_TIMEOUT = "2s"  # per table
SAMPLE_LOCK_TIMEOUT = "500ms"  # a migration holding a table's lock is not waited for
# Above this many rows, read pages picked at random rather than the first rows; ask for
# more rows than needed, since SYSTEM picks whole pages and the estimate may be stale.
TABLESAMPLE_ABOVE = 10_000
OVERSAMPLE = 4
# Columns whose values can have a shape value_shapes knows: text, and numbers wide enough
# for a card number.
SAMPLED_NUMBERS = {"int8", "numeric"}
_SQLSTATE_WORDS = {"57014": "statement timeout", "55P03": "lock timeout",
                   "42501": "permission denied"}


@dataclass(frozen=True)
class TableFacts:
    source: SourceTable
    unlogged: bool
    # Per sampled column, what its values show (None: nothing personal).
    seen: dict[str, Verdict | None] = field(default_factory=dict)
    not_sampled: str | None = None  # why no sample was read, in words


@dataclass(frozen=True)
class Inventory:
    info: ServerInfo
    schemas: tuple[str, ...]  # as asked; () for every schema
    tables: tuple[TableFacts, ...]


def _relations(db: Database, schemas: Sequence[str]) -> list[tuple[QualifiedName, dict]]:
    if schemas:
        found = {r["schema"] for r in db.query("init/schemas", {"schemas": list(schemas)})}
        missing = [s for s in schemas if s not in found]
        if missing:
            raise UsageError(f"schema(s) {', '.join(missing)} do not exist on the source")
    rows = db.query("init/tables", {"schemas": list(schemas)})
    return [(QualifiedName(r["schema"], r["name"]), r) for r in rows]


def sampled_columns(table: SourceTable) -> list[str]:
    return [c.name for c in table.columns
            if c.type_category == "S" or c.type_name in SAMPLED_NUMBERS]


def sample_query(table: SourceTable, columns: list[str], tablesample: bool) -> sql.Composed:
    values = sql.SQL(", ").join(
        sql.SQL("pg_catalog.left({}::text, {})").format(sql.Identifier(c),
                                                       sql.Literal(SAMPLE_CHARS))
        for c in columns)
    how = sql.SQL("")
    if tablesample and table.estimated_rows:
        percent = min(100.0, 100.0 * SAMPLE_ROWS * OVERSAMPLE / table.estimated_rows)
        how = sql.SQL(" TABLESAMPLE SYSTEM ({}) REPEATABLE (0)").format(
            sql.Literal(round(percent, 6)))
    return sql.SQL("SELECT {} FROM {}{} LIMIT {}").format(
        values, ident(table.relation), how, sql.Literal(SAMPLE_ROWS))


def _read(db: Database, query: sql.Composed) -> list[tuple]:
    with db.conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def sample(db: Database, table: SourceTable) -> tuple[dict[str, Verdict | None], str | None]:
    """What the values of each sampled column show, or why none were read."""
    columns = sampled_columns(table)
    if not columns:
        return {}, None
    big = (table.estimated_rows or 0) > TABLESAMPLE_ABOVE
    try:
        rows = _read(db, sample_query(table, columns, tablesample=big))
        if big and len(rows) < SAMPLE_ROWS // 4:  # a stale estimate: far fewer rows
            rows = _read(db, sample_query(table, columns, tablesample=False))
    except psycopg.Error as exc:
        # Only the condition's name: a server message could quote a value.
        return {}, _SQLSTATE_WORDS.get(exc.sqlstate or "", f"SQLSTATE {exc.sqlstate}")
    except (UnicodeError, ValueError):  # text the client cannot decode (SQL_ASCII)
        return {}, "values not readable as text"
    return {name: classify(row[i] for row in rows) for i, name in enumerate(columns)}, None


def read(db: Database, schemas: Sequence[str], with_samples: bool = True) -> Inventory:
    """Every table of the schemas, sampled unless `with_samples` is off (or the role
    cannot read it)."""
    db.execute("SET default_transaction_read_only = on")
    relations = _relations(db, schemas)
    found = source_tables(db, [rel for rel, _ in relations])
    db.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(SAMPLE_TIMEOUT)))
    db.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(SAMPLE_LOCK_TIMEOUT)))
    facts = []
    for rel, row in relations:
        table = found.get(rel)
        if table is None:  # dropped since the list was read
            continue
        if row["unlogged"]:
            facts.append(TableFacts(table, unlogged=True))
        elif not with_samples:
            facts.append(TableFacts(table, False, not_sampled="sampling turned off"))
        elif not row["readable"]:
            facts.append(TableFacts(table, False, not_sampled="no SELECT privilege"))
        else:
            seen, why_not = sample(db, table)
            facts.append(TableFacts(table, False, seen, why_not))
    return Inventory(server_info(db), tuple(schemas), tuple(facts))
