"""Tables and columns production renamed, followed on the target without a copy.

The subscriber matches tables and columns by name, production's publication by OID and
attnum: after `RENAME COLUMN`, `RENAME TO` or `SET SCHEMA` on production, apply stops at
the next change to that table until the target has the new names. The target's records
(repl.replicated_table) say which source table and column each target table and column
replicates, so a desired table whose name the target lacks is found under its old name
by the source table's OID, a column by its attnum. Renaming them is all it takes: the
changes waiting on the source then apply, and nothing is copied.

A masked table's trigger function is written for its column names (and named after its
table): when its masks are the same but for the names, the rename step replaces it in
the same transaction, so no change is ever applied without its masking.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from psycopg import sql

from .. import decoding, masking, slots
from ..errors import ApplyError
from ..model import TargetState, TargetTable
from ..names import QualifiedName, ident
from .steps import SOURCE, Databases, Step

if TYPE_CHECKING:
    from .diff import TargetDiff

FOLLOW_TIMEOUT_S = 300.0  # for the subscriber to reach the point of the rename


@dataclass(frozen=True)
class Rename:
    old: QualifiedName  # the target table's name now
    new: QualifiedName  # the name the desired state gives it
    columns: tuple[tuple[str, str], ...]  # (name now, desired name)
    remask: bool  # its masking trigger is written anew for the new names


def find(want: TargetState, have: TargetState) -> list[Rename]:
    found = []
    recorded = {t.source_oid: t for t in have.tables if t.source_oid is not None}
    for table in want.tables:
        current = have.table(table.relation)
        if current is None and table.source_oid in recorded:
            moved = recorded[table.source_oid]
            if want.table(moved.relation) is None:  # its old name is not wanted for another
                current = moved
        if current is None:
            continue
        names = {c.name for c in current.columns}
        by_attnum = {c.attnum: c.name for c in current.columns if c.attnum is not None}
        columns = tuple((by_attnum[c.attnum], c.name) for c in table.columns
                        if c.attnum in by_attnum and by_attnum[c.attnum] != c.name
                        and c.name not in names)
        if current.relation == table.relation and not columns:
            continue
        remask = bool(table.mask_function and current.mask_function in (
            table.mask_function, table.recorded_mask_function))
        found.append(Rename(current.relation, table.relation, columns, remask))
    return found


def applied(have: TargetState, want: TargetState, renames: list[Rename]) -> TargetState:
    """`have` as it will be once the renames ran: the view the rest of the plan diffs."""
    if not renames:
        return have
    by_old = {r.old: r for r in renames}

    def renamed(table: TargetTable) -> TargetTable:
        r = by_old.get(table.relation)
        if r is None:
            return table
        columns = dict(r.columns)
        desired = want.table(r.new)
        assert desired is not None
        # The sequences a table owns move with it to another schema (SET SCHEMA).
        sequences = tuple(replace(s, name=QualifiedName(r.new.schema, s.name.name))
                          for s in table.sequences) if r.old.schema != r.new.schema \
            else table.sequences
        return replace(table, relation=r.new,
                       columns=tuple(replace(c, name=columns.get(c.name, c.name))
                                     for c in table.columns),
                       mask_function=desired.mask_function if r.remask else table.mask_function,
                       sequences=sequences)

    def name(rel: QualifiedName) -> QualifiedName:
        return by_old[rel].new if rel in by_old else rel

    sub = have.subscription
    if sub is not None:
        sub = replace(sub, table_states=tuple(replace(s, relation=name(s.relation))
                                              for s in sub.table_states))
    # Grants belong to the table, not its name: a reader keeps SELECT through a rename.
    roles = tuple(replace(r, readable=frozenset(map(name, r.readable)),
                          writable=frozenset(map(name, r.writable))) for r in have.roles)
    return replace(have, tables=tuple(renamed(t) for t in have.tables), subscription=sub,
                   roles=roles)


def steps(d: TargetDiff, renames: list[Rename]) -> list[Step]:
    out: list[Step] = []
    for r in renames:
        statements: list[sql.Composable] = []
        if r.old.name != r.new.name:
            statements.append(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                ident(r.old), sql.Identifier(r.new.name)))
        if r.old.schema != r.new.schema:
            statements.append(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(r.old.schema, r.new.name), sql.Identifier(r.new.schema)))
        statements += [sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
            ident(r.new), sql.Identifier(old), sql.Identifier(new)) for old, new in r.columns]
        desired = d.want.table(r.new)
        if r.remask and desired is not None and desired.mask_function:
            statements += masking.create_trigger(
                r.new, desired.mask_function, [sql.SQL(s) for s in desired.mask_sql])
            if r.old != r.new:  # the old table's function, named after it
                statements.append(masking.drop_trigger(r.old)[1])
        what = [f"table {r.old} to {r.new}"] if r.old != r.new else []
        what += [f"column {old} to {new}" for old, new in r.columns]
        summary = (f"rename, as production did, {', '.join(what)}"
                   + (f" of {r.new}" if r.old == r.new else "") + " (no copy)")
        if d.alive and d.sub is not None and d.existing is not None:
            out.append(FollowRename(d.target, summary, tuple(statements), rename=r,
                                    subscription=d.sub.name, slot=d.sub.slot_name or "",
                                    publications=tuple(sorted(d.existing.publications))))
        else:  # nothing streams into the table: no point in the stream to wait for
            out.append(Step(d.target, summary, tuple(statements)))
    return out


@dataclass(frozen=True)
class FollowRename(Step):
    """Renames on the target what production renamed, at the point of the stream where
    production did: changes made before the rename name the old table and columns, and
    apply must have passed them all; changes after name the new ones, and stop apply
    until the target has them. The subscription is paused while the changes it has not
    applied are read from the slot (decoding.py) and the target is renamed."""

    kind: ClassVar[str] = "follow_rename"
    rename: Rename | None = field(default=None, kw_only=True)
    subscription: str = field(default="", kw_only=True)
    slot: str = field(default="", kw_only=True)
    publications: tuple[str, ...] = field(default=(), kw_only=True)

    def run(self, dbs: Databases) -> None:
        target, source = dbs.db(self.database), dbs.db(SOURCE)
        name = sql.Identifier(self.subscription)
        deadline = time.monotonic() + FOLLOW_TIMEOUT_S
        stalled = dbs.stall_check(self.database)
        while True:
            _until_idle_or_stuck(source, self.slot, stalled, deadline)
            target.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(name))
            try:
                if not slots.await_idle(source, self.slot):
                    raise ApplyError(f"replication slot {self.slot} stays in use after its "
                                     "subscription was disabled")
                oid = target.scalar("SELECT oid FROM pg_catalog.pg_subscription WHERE "
                                    "subname = %s AND subdbid = (SELECT oid FROM "
                                    "pg_catalog.pg_database WHERE datname = "
                                    "pg_catalog.current_database())", (self.subscription,))
                before = decoding.first(source, self.slot, self.publications,
                                        decoding.applied_position(target, oid), self._before)
                if before is None:
                    super().run(dbs)
                    return
            finally:
                target.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(name))
            # Changes made before the rename wait behind others: let apply pass them.
            slots.await_confirmed(source, self.slot, max(1.0, deadline - time.monotonic()),
                                  stalled, decoding.lsn_text(before.finish_lsn))

    def _before(self, transaction: decoding.Transaction) -> bool:
        """The transaction changes the renamed table as it was before the rename."""
        r = self.rename
        assert r is not None
        new_columns = {new for _, new in r.columns}
        return any(
            (rel.schema, rel.name) == (r.old.schema, r.old.name) and r.old != r.new
            or ((rel.schema, rel.name) == (r.new.schema, r.new.name)
                and not new_columns <= set(rel.columns))
            for rel in transaction.relations.values())


def _until_idle_or_stuck(source, slot: str, stalled, deadline: float) -> None:
    """Until the subscriber applied everything sent so far, or stopped (on a change made
    after the rename, most likely: `FollowRename` checks)."""
    lsn = slots.current_lsn(source)
    while time.monotonic() < deadline:
        caught_up, _ = slots.confirmed_up_to(source, slot, lsn)
        if caught_up or stalled() is not None:
            return
        time.sleep(slots.STALL_CHECK_S)
    raise ApplyError(f"subscription of slot {slot} neither caught up nor stopped within "
                     f"{FOLLOW_TIMEOUT_S:.0f} s; `repl status` shows why")
