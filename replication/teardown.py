"""`repl teardown`: the plan against a desired state without repl in it (state.torn_down).

What this module adds to the plan is whose objects are whose: only what this target
database's setup made is removed. A database that is another config's target is left
alone; publications of this target's names that another target database marked, and a
slot another subscriber uses, stay. With the source out of reach, the target's side is
torn down and the statements to run on the source later are returned; repl's schema
stays until then (its record tells this target's leftovers from another config's).
"""

from __future__ import annotations

from dataclasses import replace

from psycopg import sql

from . import slots
from .catalog import SourceCatalog, read_source, read_target
from .names import publication_name, subscription_name
from .ownership import theirs
from .plan import Plan, merge, plan_target
from .session import Session
from .state import actual, torn_down


def teardown_plan(session: Session, drop_tables: bool) -> tuple[Plan, list[str]]:
    """The steps, and the statements to run on the source by hand when it is unreachable
    (its slots keep WAL until they are dropped)."""
    config = session.config
    source = read_source(session.db("source"), config.name, session.relations()) \
        if session.source is not None else None
    plans, notes, manual = [], [], []
    for name in session.target_names:
        cat = read_target(session.db(name), config.name, session.relations(name))
        if cat.owner is not None and (cat.owner.config, cat.owner.target) != (config.name, name):
            notes.append(f"target {name}: this database is the target {cat.owner.target} of "
                         f"another config (name {cat.owner.config}); nothing of it removed")
            continue
        have = actual(config, source, {name: cat}, [name])[name]
        sub = have.subscription
        if source is None:
            manual += _by_hand(session, name, sub.oid if sub else None,
                               cat.info.system_identifier)
        else:
            have = _ours(source, have, cat.info.system_identifier, notes)
        if source is None and cat.schema_revision is not None:
            notes.append(f"target {name}: repl's schema stays until `repl teardown` can reach "
                         "the source: it tells repl which publications and slot there are "
                         "this target's")
        elif cat.foreign_repl_schema:
            notes.append(f"target {name}: the schema repl is not repl's (it has no "
                         "repl.alembic_version of repl's); left as it is")
        want = torn_down(have, drop_tables, keep_schema=source is None)
        plans.append(plan_target(want, have, cat.schemas))
    return merge(plans, notes), manual


def _ours(source: SourceCatalog, have, system_identifier: str, notes: list[str]):
    """`have` without what is not this target database's to remove."""
    target, owner, sub = have.target, have.owner, have.subscription
    others = [p for p in have.publications if theirs(p, owner)]
    for pub in others:
        notes.append(f"target {target}: publication {pub.name} is another target "
                     "database's (its comment says whose); left as it is")
    slot = have.slot
    if slot is not None and (others or (sub is None and slot.active)):
        why = (f"publication(s) {', '.join(p.name for p in others)} of that name are another "
               "target database's" if others else "a subscriber that is not this target's "
               "subscription is using it")
        notes.append(f"target {target}: replication slot {slot.name} left alone: {why}")
        slot = None
    # Every table-sync slot of the subscription, also one a copy still uses: once the
    # subscription is dropped, its sync workers let go of them.
    sync = tuple(s for s in sorted(source.slots) if sub is not None and sub.oid is not None
                 and slots.is_sync_slot(s, sub.oid, system_identifier))
    return replace(have, publications=tuple(p for p in have.publications if p not in others),
                   slot=slot, sync_slots=sync)


def _by_hand(session: Session, target: str, subscription_oid: int | None,
             system_identifier: str) -> list[str]:
    """What to run on the source for `target` once it can be reached again."""
    config = session.config
    lines = [slots.drop_by_hand(subscription_name(config.name, target))]
    if subscription_oid is not None:
        lines.append(slots.drop_sync_slots_by_hand(subscription_oid, system_identifier))
    ops_sets = {t.operations for t in config.targets[target].tables.values()}
    lines += [sql.SQL("DROP PUBLICATION IF EXISTS {};").format(
        sql.Identifier(publication_name(config.name, target, ops))).as_string(None)
        for ops in sorted(ops_sets, key=sorted)]
    return lines
