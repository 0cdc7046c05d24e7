"""Config text the servers themselves judge: each row filter is put into a publication on
the source, each custom `sql` mask's function is created on its target, inside
transactions that are always rolled back. PostgreSQL's parser is the only one that
knows what it accepts; the probe also gives a filter's canonical text and the columns
it references.
"""

from __future__ import annotations

import re
import secrets

import psycopg
from psycopg import sql

from .columns import published_columns
from .config import MaskSpec, TableConfig
from .db import Database
from .masking import create_sql_mask
from .model import RowFilter, SourceColumn, SourceTable
from .names import QualifiedName
from .problems import Problem, where

PROBE_PREFIX = "repl_probe_"  # + a random suffix: concurrent runs do not collide
# A Var in a stored expression tree: {VAR :varno 1 :varattno 3 ...}
_VAR_ATTNO = re.compile(r"\{VAR :varno \d+ :varattno (-?\d+)")


def probe_row_filters(db: Database, wanted: list[tuple[str, QualifiedName, TableConfig,
                                                        SourceTable]]
                      ) -> tuple[dict[tuple[str, QualifiedName], RowFilter], list[Problem]]:
    """Let the source parse each row filter, in a transaction that is always rolled back."""
    results: dict[tuple[str, QualifiedName], RowFilter] = {}
    problems: list[Problem] = []
    if not wanted:
        return results, problems
    probe_name = PROBE_PREFIX + secrets.token_hex(6)
    probe = sql.Identifier(probe_name)
    with db.conn.transaction(force_rollback=True):
        for target, relation, table, source in wanted:
            assert table.where is not None
            statement = sql.SQL(
                "CREATE PUBLICATION {probe} FOR TABLE {table} ({columns}) WHERE ({filter}\n) "
                "WITH (publish_via_partition_root = true)"
            ).format(
                probe=probe,
                table=sql.Identifier(relation.schema, relation.name),
                columns=sql.SQL(", ").join(
                    sql.Identifier(c) for c in published_columns(table, source)),
                # An expression: PostgreSQL parses it right here. The newline ends a
                # trailing `--` comment before our closing parenthesis, never after it.
                filter=sql.SQL(table.where),
            )
            try:
                with db.conn.transaction():
                    db.execute_one(statement)
                    rows = db.conn.execute(
                        "SELECT pr.prrelid::int8, pg_catalog.pg_get_expr(pr.prqual, pr.prrelid),"
                        " pr.prqual::text FROM pg_catalog.pg_publication_rel AS pr"
                        " JOIN pg_catalog.pg_publication AS p ON p.oid = pr.prpubid"
                        " WHERE p.pubname = %s", (probe_name,)).fetchall()
                    raise psycopg.Rollback()  # leaves the savepoint, undoing the publication
            except psycopg.Error as exc:
                message = ". ".join(filter(None, (exc.diag.message_primary or str(exc).strip(),
                                                 exc.diag.message_detail)))
                problems.append(Problem("error", where(target, relation),
                                        f"row filter {table.where!r} is rejected by "
                                        f"PostgreSQL: {message}"))
                continue
            if len(rows) != 1 or rows[0][0] != source.oid or rows[0][1] is None:
                problems.append(Problem("error", where(target, relation),
                                        f"row filter {table.where!r} is not a single "
                                        "boolean expression over this table"))
                continue
            _, canonical, tree = rows[0]
            attnums = {int(n) for n in _VAR_ATTNO.findall(tree)}
            referenced = frozenset(
                c.name for c in source.columns if 0 in attnums or c.attnum in attnums)
            results[(target, relation)] = RowFilter(canonical, referenced)
    return results, problems


def probe_mask_expressions(db: Database, target: str,
                           wanted: list[tuple[QualifiedName, SourceColumn, MaskSpec]]
                           ) -> list[Problem]:
    """Create each custom `sql` mask's function, as setup will, in a rolled-back
    transaction on the target: PostgreSQL parses and type-checks the expression."""
    problems: list[Problem] = []
    if not wanted:
        return problems
    with db.conn.transaction(force_rollback=True):
        for relation, column, spec in wanted:
            try:
                with db.conn.transaction():
                    db.execute_one(create_sql_mask(relation, column, spec, schema="pg_temp"))
            except psycopg.Error as exc:
                message = exc.diag.message_primary or str(exc).strip()
                problems.append(Problem("error", where(target, relation, column.name),
                                        f"sql mask {spec.param('expression')!r} is rejected by "
                                        f"the target: {message}"))
    return problems
