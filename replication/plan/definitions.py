"""Sequences, defaults and generated columns of target tables (SPEC section 7), kept as
production defines them. None of them makes a table copied again: a sequence or a
default is set on the table as it is, and a generated column added to a table with rows
computes its values from them. They stay with a table that teardown keeps: they are
part of its definition, not repl's machinery.

A generated column is marked by its comment (table_catalog.GENERATED_MARKER), which
records production's expression: that is what a change on production is compared with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from ..model import TargetTable
from ..names import QualifiedName, ident
from ..table_catalog import GENERATED_MARKER
from ..table_model import GeneratedColumn, Sequence
from .steps import Step
from .tables import reshape_table

if TYPE_CHECKING:
    from .diff import TargetDiff


def drop_for_reshape(d: TargetDiff, relation: QualifiedName) -> list[Step]:
    """Before a table copied again is reshaped: its generated columns that read a column
    the reshape drops or retypes, which PostgreSQL would refuse; added back after."""
    names = _reshaped(d, relation)
    if not names:
        return []
    return [Step(d.target, f"drop the generated columns of {relation} that its new shape "
                           "changes (added back below)",
                 tuple(_drop_column(relation, n) for n in names))]


def _reshaped(d: TargetDiff, relation: QualifiedName) -> list[str]:
    want, have = d.want.table(relation), d.have.table(relation)
    if want is None or have is None or relation not in d.copies:
        return []
    changing = {c.name for c in have.columns
                if (new := want.column(c.name)) is None or new.type != c.type}
    if not reshape_table(want, have):
        return []
    return [g.name for g in have.generated if g.expression is not None
            and set(g.reads) & changing]


def converge(d: TargetDiff) -> list[Step]:
    steps = []
    for table in d.want.tables:
        have = d.have.table(table.relation)
        statements = [*_generated_drops(d, table, have), *_sequences(table, have),
                      *_defaults(table, have), *_generated_adds(d, table, have)]
        if statements:
            steps.append(Step(d.target, f"sequences, defaults and generated columns of "
                                        f"{table.relation} as production's",
                              tuple(statements)))
    return steps


def _have_generated(d: TargetDiff, table: TargetTable, have: TargetTable | None
                    ) -> dict[str, GeneratedColumn]:
    dropped = set(_reshaped(d, table.relation))
    return {g.name: g for g in (have.generated if have else ()) if g.name not in dropped}


def _generated_drops(d: TargetDiff, table: TargetTable, have: TargetTable | None
                     ) -> list[sql.Composable]:
    """repl's generated columns no longer wanted, or to be made anew (another expression,
    type or kind). A person's generated column is left alone."""
    wanted = {g.name: g for g in table.generated}
    return [_drop_column(table.relation, name)
            for name, g in _have_generated(d, table, have).items()
            if g.expression is not None and wanted.get(name) != g]


def _generated_adds(d: TargetDiff, table: TargetTable, have: TargetTable | None
                    ) -> list[sql.Composable]:
    there = _have_generated(d, table, have)
    out: list[sql.Composable] = []
    for g in table.generated:
        if there.get(g.name) == g:
            continue
        out += [
            sql.SQL("ALTER TABLE {} ADD COLUMN {} {} GENERATED ALWAYS AS ({}) {}").format(
                ident(table.relation), sql.Identifier(g.name), sql.SQL(g.type),
                sql.SQL(g.expression or ""), sql.SQL("VIRTUAL" if g.kind == "v" else "STORED")),
            sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                sql.Identifier(table.relation.schema, table.relation.name, g.name),
                sql.Literal(GENERATED_MARKER + (g.expression or ""))),
        ]
    return out


def _drop_column(relation: QualifiedName, name: str) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(ident(relation),
                                                           sql.Identifier(name))


def _options(seq: Sequence) -> sql.Composable:
    return sql.SQL("START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {} {}").format(
        sql.Literal(seq.start), sql.Literal(seq.increment), sql.Literal(seq.minimum),
        sql.Literal(seq.maximum), sql.Literal(seq.cache),
        sql.SQL("CYCLE" if seq.cycle else "NO CYCLE"))


def _identity(kind: str) -> sql.Composable:
    return sql.SQL("ALWAYS" if kind == "a" else "BY DEFAULT")


def _sequences(table: TargetTable, have: TargetTable | None) -> list[sql.Composable]:
    """Identity columns as identity columns; a serial column's sequence owned by it."""
    out: list[sql.Composable] = []
    column = {s.column: s for s in (have.sequences if have else ())}
    for seq in table.sequences:
        name, col = ident(seq.name), sql.Identifier(seq.column)
        current = column.get(seq.column)
        if current is None and seq.identity:
            out.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} ADD GENERATED {} AS IDENTITY "
                               "(SEQUENCE NAME {} {})").format(
                ident(table.relation), col, _identity(seq.identity), name, _options(seq)))
        elif current is None:
            out += [sql.SQL("CREATE SEQUENCE IF NOT EXISTS {} AS {} {}").format(
                        name, sql.SQL(seq.type), _options(seq)),
                    sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(
                        name, sql.Identifier(table.relation.schema, table.relation.name,
                                             seq.column))]
        elif current != seq:
            out += _alter_sequence(table.relation, current, seq)
    return out


def _alter_sequence(relation: QualifiedName, current: Sequence, seq: Sequence
                    ) -> list[sql.Composable]:
    out: list[sql.Composable] = []
    if current.name.schema != seq.name.schema:
        out.append(sql.SQL("ALTER SEQUENCE {} SET SCHEMA {}").format(
            ident(current.name), sql.Identifier(seq.name.schema)))
    if current.name.name != seq.name.name:
        out.append(sql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(
            sql.Identifier(seq.name.schema, current.name.name), sql.Identifier(seq.name.name)))
    if current.identity and seq.identity and current.identity != seq.identity:
        out.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET GENERATED {}").format(
            ident(relation), sql.Identifier(seq.column), _identity(seq.identity)))
    # An identity sequence has its column's type; a serial one's may change.
    retype = sql.SQL("AS {} ").format(sql.SQL(seq.type)) if not seq.identity else sql.SQL("")
    out.append(sql.SQL("ALTER SEQUENCE {} {}{}").format(ident(seq.name), retype,
                                                        _options(seq)))
    return out


def _defaults(table: TargetTable, have: TargetTable | None) -> list[sql.Composable]:
    """Defaults of the replicated columns exactly as production's unmasked ones (the
    target's tables are repl's: a default set by hand is not kept)."""
    wanted, there = dict(table.defaults), dict(have.defaults if have else ())
    out: list[sql.Composable] = []
    for column in table.columns:
        new, old = wanted.get(column.name), there.get(column.name)
        if new == old:
            continue
        action = sql.SQL("SET DEFAULT {}").format(sql.SQL(new)) if new is not None \
            else sql.SQL("DROP DEFAULT")
        out.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} {}").format(
            ident(table.relation), sql.Identifier(column.name), action))
    return out
