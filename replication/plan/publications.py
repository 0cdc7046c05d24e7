"""Publications on the source: one per distinct operation set of a target, each table with
its column list and row filter (the "filtered view" the target receives). A table is
copied again by taking it out of its publication and adding it back, since PostgreSQL
copies only tables a subscription does not know yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from ..model import Publication, PublishedTable
from ..names import OPERATIONS, ident
from .steps import SOURCE, Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def remove_entries(d: TargetDiff) -> list[Step]:
    return [Step(SOURCE, f"remove {len(entries)} table(s) from publication {name}", (
        sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(
            sql.Identifier(name), sql.SQL(", ").join(ident(e.relation) for e in entries)),))
            for name, entries in d.leaving.items()]


def create_or_alter(d: TargetDiff) -> list[Step]:
    steps = []
    for pub in d.want.publications:
        old = next((p for p in d.have.publications if p.name == pub.name), None)
        if old is None:
            steps.append(Step(SOURCE, f"create publication {pub.name}", (sql.SQL(
                "CREATE PUBLICATION {} FOR TABLE {} WITH ({})").format(
                    sql.Identifier(pub.name),
                    sql.SQL(", ").join(_entry(e) for e in pub.tables),
                    _publish_option(pub)), _mark(pub))))
            continue
        if old.marker != pub.marker:  # made by a repl older than the marks
            steps.append(Step(SOURCE, f"mark publication {pub.name} as this target's",
                              (_mark(pub),)))
        if (old.operations, old.via_root) != (pub.operations, pub.via_root):
            steps.append(Step(SOURCE, f"set the operations of publication {pub.name}", (
                sql.SQL("ALTER PUBLICATION {} SET ({})").format(
                    sql.Identifier(pub.name), _publish_option(pub)),)))
        for entry in pub.tables:
            if entry.relation in d.released and entry.relation not in d.copies:
                columns = ", ".join(d.released[entry.relation])
                steps.append(Step(SOURCE, f"release {columns} of {entry.relation} from "
                                          f"publication {pub.name} (no copy)", (
                    sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(
                        sql.Identifier(pub.name), ident(entry.relation)),
                    sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                        sql.Identifier(pub.name), _entry(entry)))))
        adding = [e for e in pub.tables if not d.kept(e.relation)]
        if adding:
            steps.append(Step(SOURCE, f"add {len(adding)} table(s) to publication {pub.name}", (
                sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                    sql.Identifier(pub.name), sql.SQL(", ").join(_entry(e) for e in adding)),)))
    return steps


def drop_unused(d: TargetDiff) -> list[Step]:
    wanted = {p.name for p in d.want.publications}
    return [Step(SOURCE, f"drop publication {pub.name}",
                 (sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(pub.name)),))
            for pub in d.have.publications if pub.name not in wanted]


def _entry(entry: PublishedTable) -> sql.Composable:
    parts = [ident(entry.relation),
             sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, entry.columns)))]
    if entry.row_filter is not None:
        # Canonical text PostgreSQL deparsed from the parsed filter: one expression.
        parts.append(sql.SQL(" WHERE ({})").format(sql.SQL(entry.row_filter)))
    return sql.Composed(parts)


def _publish_option(pub: Publication) -> sql.Composable:
    ops = ", ".join(op for op in OPERATIONS if op in pub.operations)
    return sql.SQL("publish = {}, publish_via_partition_root = true").format(sql.Literal(ops))


def _mark(pub: Publication) -> sql.Composable:
    """Whose the publication is: another config using the same names is then refused."""
    return sql.SQL("COMMENT ON PUBLICATION {} IS {}").format(
        sql.Identifier(pub.name), sql.Literal(pub.marker))
