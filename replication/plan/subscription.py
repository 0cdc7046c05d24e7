"""The target's subscription: created on the slot made for it, kept enabled and pointed
at the target's publications; refreshed to copy new and changed tables, after it forgot
the ones taken out of its publications; dropped (detached from its slot, so that dropping
needs nothing of the source) when it can never stream again or the target is torn down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from ..redact import redact_conninfo
from . import initial_copy
from .steps import SOURCE, AwaitSlot, SnapshotCopy, Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def drop_statements(name: str) -> tuple[sql.Composable, ...]:
    """Drops a subscription without touching its slot: in one transaction, detached from
    its slot, a subscription drops locally whether or not the source can be reached."""
    ident = sql.Identifier(name)
    return (sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident),
            sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident),
            sql.SQL("DROP SUBSCRIPTION {}").format(ident))


def drop(d: TargetDiff) -> list[Step]:
    existing = d.existing
    if existing is None or not (d.broken or d.sub is None):
        return []
    if d.sub is None:
        return [Step(d.target, f"drop subscription {existing.name}",
                     drop_statements(existing.name))]
    why = "lost" if d.lost else "detached" if d.detached else "missing"
    return [Step(d.target, f"drop the subscription whose slot is {why} (it is recreated below)",
                 drop_statements(existing.name))]


def enable(d: TargetDiff) -> list[Step]:
    if not d.alive or d.existing is None or d.existing.enabled:
        return []
    return [Step(d.target, "enable the subscription", (
        sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sql.Identifier(d.existing.name)),))]


def forget(d: TargetDiff) -> list[Step]:
    """The subscription must forget every table it is to copy again, and every table it
    should no longer have, whoever took it out of the publication (a DROP COLUMN ...
    CASCADE on production does): REFRESH PUBLICATION only copies tables it does not know.
    It forgets them once it has applied what was sent before they left."""
    if not d.alive or d.existing is None or d.sub is None:
        return []
    stale = [s.relation for s in d.existing.table_states
             if s.relation in d.copies or d.want.table(s.relation) is None]
    if not (d.leaving or stale):
        return []
    return [AwaitSlot(SOURCE, f"wait until {d.sub.name} has applied what was sent before",
                      slot=d.sub.slot_name, subscriber=d.target),
            Step(d.target, "forget the tables removed from the publications", (
                sql.SQL("ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = false)")
                .format(sql.Identifier(d.sub.name)),), transactional=False)]


def create_or_alter(d: TargetDiff) -> list[Step]:
    sub, existing = d.sub, d.existing
    if sub is None:
        return []
    name = sql.Identifier(sub.name)
    copy_hazards = tuple(f"copies {c.relation} ({rows_text(c.estimated_rows)}): {c.reason}"
                         for c in d.copy_list())
    if not d.alive:
        snapshot = initial_copy.from_snapshot(d)

        def create(conninfo: str) -> sql.Composable:
            return sql.SQL(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, "
                "slot_name = {}, copy_data = {}, enabled = true, disable_on_error = {})"
            ).format(
                name, sql.Literal(conninfo),
                sql.SQL(", ").join(sql.Identifier(p) for p in sorted(sub.publications)),
                sql.Literal(sub.slot_name), sql.Literal(not snapshot),
                sql.Literal(sub.disable_on_error))
        if snapshot:
            return [SnapshotCopy(
                d.target, f"copy {len(d.copies)} table(s) from a snapshot of the source, "
                          f"then create subscription {sub.name} on its slot",
                (create(sub.conninfo),), hazards=copy_hazards,
                display=(create(redact_conninfo(sub.conninfo)),), slot=sub.slot_name,
                tables=initial_copy.tables(d), options=d.copy_options)]
        return [Step(d.target, f"create subscription {sub.name}", (create(sub.conninfo),),
                     hazards=copy_hazards, display=(create(redact_conninfo(sub.conninfo)),))]
    assert existing is not None
    steps: list[Step] = []
    if existing.conninfo is not None and existing.conninfo != sub.conninfo:
        def connect(conninfo: str) -> sql.Composable:
            return sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(
                name, sql.Literal(conninfo))
        steps.append(Step(d.target, "change the subscription's connection to the source",
                          (connect(sub.conninfo),),
                          display=(connect(redact_conninfo(sub.conninfo)),)))
    if existing.disable_on_error != sub.disable_on_error:
        steps.append(Step(d.target, f"set disable_on_error = {str(sub.disable_on_error).lower()}",
                          (sql.SQL("ALTER SUBSCRIPTION {} SET (disable_on_error = {})").format(
                              name, sql.Literal(sub.disable_on_error)),)))
    if existing.publications != sub.publications:
        if sub.publications - existing.publications:
            # PostgreSQL < 18 fails decoding WAL older than a publication the subscription
            # names: subscribe to it only once the slot is past it.
            steps.append(AwaitSlot(SOURCE, f"wait until {sub.name} has passed the new "
                                           "publications", slot=sub.slot_name, subscriber=d.target))
        steps.append(Step(d.target, "set the subscription's publications", (sql.SQL(
            "ALTER SUBSCRIPTION {} SET PUBLICATION {} WITH (refresh = false)").format(
                name, sql.SQL(", ").join(sql.Identifier(p) for p in sorted(sub.publications))),
        )))
    if d.copies or existing.publications != sub.publications:
        steps.append(Step(d.target, "refresh the subscription: copy new and changed tables", (
            sql.SQL("ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = true)")
            .format(name),), transactional=False, hazards=copy_hazards))
    return steps


def rows_text(estimate: int | None) -> str:
    return "row count unknown" if estimate is None else f"~{estimate} rows"
