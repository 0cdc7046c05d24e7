"""Production's indexes on target tables (SPEC section 7), named and marked as repl's
(table_definitions, table_catalog.INDEX_MARKER): built once a table's copy is done
(sync state ready), so that they do not slow the copy, and kept in step with
production's afterwards. A table copied again loses repl's indexes first and gets them
built anew once ready: a COPY that maintains indexes row by row is slower than building
them afterwards, which also makes them smaller (bench/README.md). Indexes a person made
on the target are never touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from ..names import QualifiedName, ident
from ..table_catalog import INDEX_MARKER
from ..table_model import Index
from .steps import Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def create(relation: QualifiedName, index: Index) -> list[sql.Composable]:
    name = sql.Identifier(relation.schema, index.name)
    return [
        # The definition is PostgreSQL's own text of production's index (pg_get_indexdef
        # from " USING" on), as the row filters are: catalog text, not config text.
        sql.SQL("CREATE {}INDEX {} ON {} {}").format(
            sql.SQL("UNIQUE " if index.unique else ""), sql.Identifier(index.name),
            ident(relation), sql.SQL(index.definition)),
        sql.SQL("COMMENT ON INDEX {} IS {}").format(
            name, sql.Literal(INDEX_MARKER + index.source)),
    ]


def drop(relation: QualifiedName, names: list[str]) -> sql.Composable:
    return sql.SQL("DROP INDEX {}").format(
        sql.SQL(", ").join(sql.Identifier(relation.schema, n) for n in names))


def missing(d: TargetDiff, relation: QualifiedName) -> list[Index]:
    """The wanted indexes the target table lacks."""
    want, have = d.want.table(relation), d.have.table(relation)
    if want is None:
        return []
    there = {i.name for i in have.indexes} if have is not None else set()
    return [i for i in want.indexes if i.name not in there]


def ready(d: TargetDiff, relation: QualifiedName) -> bool:
    """The table's copy is done and this plan does not copy it again."""
    return d.alive and d.existing is not None and relation not in d.copies \
        and d.existing.state_of(relation) == "r"


def build(d: TargetDiff) -> list[Step]:
    steps = []
    for table in d.want.tables:
        todo = missing(d, table.relation)
        if todo and ready(d, table.relation):
            steps.append(Step(
                d.target, f"build {len(todo)} index(es) on {table.relation} after "
                          f"production's ({', '.join(i.source for i in todo)})",
                tuple(s for index in todo for s in create(table.relation, index)),
                after_copy=True))
    return steps


def waiting(d: TargetDiff) -> dict[QualifiedName, int]:
    """Per table still to be copied, the number of indexes that wait for its copy."""
    return {t.relation: n for t in d.want.tables
            if (n := len(missing(d, t.relation))) and not ready(d, t.relation)}


def drop_for_copy(d: TargetDiff, relation: QualifiedName) -> list[Step]:
    have = d.have.table(relation)
    if have is None or not have.indexes:
        return []
    return [Step(d.target, f"drop repl's indexes on {relation} until its copy is done",
                 (drop(relation, [i.name for i in have.indexes]),))]


def drop_unwanted(d: TargetDiff) -> list[Step]:
    """repl's indexes that production no longer has (or on tables no longer replicated,
    unless they are dropped); those of tables copied again went before their copy."""
    steps = []
    for table in d.have.tables:
        want = d.want.table(table.relation)
        if (want is None and d.want.drop_tables) or table.relation in d.copies:
            continue
        wanted = {i.name for i in want.indexes} if want is not None else set()
        if gone := [i.name for i in table.indexes if i.name not in wanted]:
            steps.append(Step(d.target, f"drop {len(gone)} index(es) on {table.relation} "
                                        "that production's definition or the config no "
                                        "longer gives it" if want is not None else
                              f"drop repl's indexes on {table.relation}",
                              (drop(table.relation, gone),)))
    return steps
