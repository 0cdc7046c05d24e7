"""Target tables: their schemas, their creation, and emptying (and reshaping) a table
before PostgreSQL's table sync copies it again. Data is dropped only on request
(`teardown --drop-tables`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from .. import guard
from ..model import Column, TargetTable
from ..names import QualifiedName, ident
from .steps import SOURCE, AwaitSlot, Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def create_schemas(d: TargetDiff) -> list[Step]:
    """The schemas of the target's tables, and of the types they use."""
    wanted = {t.relation.schema for t in d.want.tables} | {t.name.schema for t in d.want.types}
    return [Step(d.target, f"create schema {schema}",
                 (sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)),))
            for schema in sorted(wanted - d.schemas)]


def create(d: TargetDiff) -> list[Step]:
    return [Step(d.target, f"create table {table.relation}", (create_table(table),))
            for table in d.want.tables if d.have.table(table.relation) is None]


def empty(d: TargetDiff, rel: QualifiedName) -> list[Step]:
    """A table about to be copied again loses its rows first, and takes its new shape."""
    table, current = d.want.table(rel), d.current(rel)
    if current is None or table is None:
        return []
    return [Step(d.target, f"empty table {rel} before its copy", (
        guard.bypass(),  # repl's own write: the read-only guard lets it through
        sql.SQL("TRUNCATE ONLY {}").format(ident(rel)),
        *(sql.SQL("ALTER TABLE {} {}").format(ident(rel), action)
          for action in reshape_table(table, current))),
        hazards=(f"deletes the rows of {rel} on {d.target}",))]


def keep_released(d: TargetDiff) -> list[Step]:
    """A target column no longer replicated keeps its values, and becomes nullable before
    rows without it arrive (unless it is dropped after: `drop_columns`)."""
    steps = []
    for table in d.want.tables:
        current = d.have.table(table.relation)
        if current is None or table.relation in d.copies:
            continue
        extra = [c for c in current.columns if table.column(c.name) is None and c.not_null]
        if extra:
            steps.append(Step(d.target, f"keep {', '.join(c.name for c in extra)} of "
                                        f"{table.relation}, no longer replicated, nullable",
                              tuple(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL")
                                    .format(ident(table.relation), sql.Identifier(c.name))
                                    for c in extra)))
    return steps


def drop_released(d: TargetDiff) -> list[Step]:
    """With `drop_columns`, target columns no longer replicated are dropped, once the
    subscriber applied every change sent with them."""
    if not d.want.drop_columns or d.sub is None:
        return []
    steps: list[Step] = []
    for table in d.want.tables:
        current = d.have.table(table.relation)
        if current is None or table.relation in d.copies:
            continue
        if extra := [c.name for c in current.columns if table.column(c.name) is None]:
            steps.append(Step(d.target, f"drop {', '.join(extra)} of {table.relation}, no "
                                        "longer replicated", (
                sql.SQL("ALTER TABLE {} {}").format(ident(table.relation), sql.SQL(", ").join(
                    sql.SQL("DROP COLUMN {}").format(sql.Identifier(c)) for c in extra)),),
                hazards=(f"drops {', '.join(extra)} of {table.relation} and their data on "
                         f"{d.target}",)))
    if steps and d.alive:
        steps.insert(0, AwaitSlot(SOURCE, f"wait until {d.sub.name} has applied the changes "
                                          "sent with those columns", slot=d.sub.slot_name,
                                  subscriber=d.target))
    return steps


def drop_unwanted(d: TargetDiff) -> list[Step]:
    """Tables no longer wanted stay with their data, unless the desired state says drop."""
    if not d.want.drop_tables:
        return []
    gone = [t.relation for t in d.have.tables if d.want.table(t.relation) is None]
    return [Step(d.target, f"drop table {rel}", (sql.SQL("DROP TABLE {}").format(ident(rel)),),
                 hazards=(f"drops {rel} and its data on {d.target}",)) for rel in gone]


def _column_def(column: Column) -> sql.Composable:
    return sql.SQL("{} {}{}").format(
        sql.Identifier(column.name), sql.SQL(column.type),
        sql.SQL(" NOT NULL") if column.not_null else sql.SQL(""))


def create_table(table: TargetTable) -> sql.Composable:
    items = [_column_def(c) for c in table.columns]
    if table.key:
        items.append(sql.SQL("PRIMARY KEY ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, table.key))))
    return sql.SQL("CREATE TABLE {} ({})").format(ident(table.relation),
                                                  sql.SQL(", ").join(items))


def reshape_table(want: TargetTable, have: TargetTable) -> list[sql.Composable]:
    """ALTER TABLE actions turning `have` into `want`; the table is empty when they run."""
    actions: list[sql.Composable] = []
    if have.key != want.key and have.key_name:
        actions.append(sql.SQL("DROP CONSTRAINT {}").format(sql.Identifier(have.key_name)))
    wanted = {c.name for c in want.columns}
    for column in have.columns:
        if column.name not in wanted:
            actions.append(sql.SQL("DROP COLUMN {}").format(sql.Identifier(column.name)))
    for column in want.columns:
        old = have.column(column.name)
        if old is None:
            actions.append(sql.SQL("ADD COLUMN {}").format(_column_def(column)))
            continue
        if old.type != column.type:
            actions.append(sql.SQL("ALTER COLUMN {} TYPE {} USING NULL").format(
                sql.Identifier(column.name), sql.SQL(column.type)))
        if old.not_null != column.not_null:
            actions.append(sql.SQL("ALTER COLUMN {} {} NOT NULL").format(
                sql.Identifier(column.name), sql.SQL("SET" if column.not_null else "DROP")))
    if want.key and have.key != want.key:
        actions.append(sql.SQL("ADD PRIMARY KEY ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, want.key))))
    return actions


def shape_differences(want: TargetTable, have: TargetTable) -> list[str]:
    """How the target table differs from what the source and config make it."""
    out = []
    for column in want.columns:
        old = have.column(column.name)
        if old is None:
            out.append(f"{column.name} missing on the target")
        elif old.type != column.type:
            out.append(f"{column.name} is {old.type} on the target, {column.type} wanted")
        elif old.not_null != column.not_null:
            out.append(f"{column.name} NOT NULL differs")
    # A target column no longer replicated is kept (keep_released), not a difference.
    if want.key != have.key:
        out.append(f"primary key ({', '.join(have.key or ())}) instead of "
                   f"({', '.join(want.key or ())})")
    return out
