"""The read-only guard of a target's replicated tables (`read_only`, default true; see
replication/guard.py): its function in repl's schema and a trigger per table, enabled
the normal way; dropped where the config says `read_only: false`, from tables no longer
replicated, and on teardown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from .. import guard
from ..names import ident
from .steps import Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def install(d: TargetDiff) -> list[Step]:
    statements: list[sql.Composable] = []
    if d.want.guard_function and d.want.guard_function != d.have.guard_function:
        statements += guard.create_function()
    guarded = []
    for table in d.want.tables:
        current = d.have.table(table.relation)
        state = current.read_only if current is not None else None
        if table.read_only is None or state == table.read_only:
            continue
        guarded.append(str(table.relation))
        if state is None:
            statements += guard.create_trigger(table.relation)
        else:  # disabled, or ENABLE ALWAYS/REPLICA, which would refuse PostgreSQL's writes
            statements.append(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(
                ident(table.relation), sql.Identifier(guard.TRIGGER_NAME)))
    if not statements:
        return []
    what = f"on {', '.join(guarded)}" if guarded else "function"
    return [Step(d.target, f"read-only guard {what}", tuple(statements))]


def drop_unwanted(d: TargetDiff) -> list[Step]:
    gone = [t.relation for t in d.have.tables if t.read_only is not None
            and ((want := d.want.table(t.relation)) is None and not d.want.drop_tables
                 or want is not None and want.read_only is None)]
    if not gone:
        return []
    return [Step(d.target, f"remove the read-only guard from {', '.join(map(str, gone))}",
                 tuple(guard.drop_trigger(rel) for rel in gone))]
