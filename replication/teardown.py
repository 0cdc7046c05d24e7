"""`repl teardown`: remove what repl made, subscriptions first (and so their slots).

Order: on each target the subscription is disabled, detached from its slot and
dropped (so nothing depends on the target reaching the source); then on the source
the slot and any table-sync slots left behind by that subscription are dropped, and
the target's publications; then repl's triggers, functions and schema on the target.
Target tables and their data stay unless `drop_tables`.
"""

from __future__ import annotations

import time

from psycopg import sql

from .catalog import read_target, slots
from .db import Database
from .errors import ApplyError
from .masking import drop_trigger
from .model import is_sync_slot, publication_name, subscription_name, sync_slot_pattern
from .ownership import theirs_marker
from .plan import SOURCE, Plan, Step, ident
from .session import Session
from .state import owns_publication

SLOT_RELEASE_TIMEOUT_S = 30.0


def teardown_plan(session: Session, drop_tables: bool) -> tuple[Plan, list[str]]:
    """The steps, and the statements to run on the source by hand when it is unreachable
    (its slots keep WAL until they are dropped)."""
    plan, manual = Plan(), []
    config = session.config
    reachable = session.source is not None
    source_slots = slots(session.db(SOURCE), config.name) if reachable else {}
    publications = session.db(SOURCE).query(
        "catalog/publications", {"prefix": config.name + "_"}) if reachable else []
    for name in session.target_names:
        db = session.db(name)
        cat = read_target(db, config.name, session.relations(name))
        if cat.owner is not None and (cat.owner.config, cat.owner.target) != (config.name, name):
            plan.notes.append(
                f"target {name}: this database is the target {cat.owner.target} of another "
                f"config (name {cat.owner.config}); nothing of it removed")
            continue
        sub_name = subscription_name(config.name, name)
        sub = cat.subscriptions.get(sub_name)
        ident_sub = sql.Identifier(sub_name)
        if sub is not None:
            plan.steps.append(Step(name, f"drop subscription {sub_name}", (
                sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident_sub),
                sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident_sub),
                sql.SQL("DROP SUBSCRIPTION {}").format(ident_sub),
            )))  # one transaction: detached from its slot, a subscription drops locally
        if not reachable:
            manual += _by_hand(session, name, sub, cat.info.system_identifier)
        others = sorted(r["publication"] for r in publications
                        if owns_publication(config.name, name, r["publication"])
                        and theirs_marker(r["comment"], cat.owner))
        mine_slot = source_slots.get(sub_name)
        if others or (sub is None and mine_slot is not None and mine_slot.active):
            why = (f"publication(s) {', '.join(others)} of that name are another target "
                   "database's" if others else "a subscriber that is not this target's "
                   "subscription is using it")
            plan.notes.append(f"target {name}: replication slot {sub_name} left alone: {why}")
            source_slots = {k: v for k, v in source_slots.items() if k != sub_name}
        leftovers = [s for s in source_slots
                     if s == sub_name or (sub is not None and sub.oid is not None
                                          and is_sync_slot(s, sub.oid,
                                                           cat.info.system_identifier))]
        for slot in leftovers:
            plan.steps.append(Step(SOURCE, f"drop replication slot {slot}",
                                   action="drop_slot", slot=slot))
        pubs = sorted({r["publication"] for r in publications
                       if owns_publication(config.name, name, r["publication"])
                       and not theirs_marker(r["comment"], cat.owner)})
        for pub in sorted({r["publication"] for r in publications
                           if owns_publication(config.name, name, r["publication"])} - set(pubs)):
            plan.notes.append(f"target {name}: publication {pub} is another target "
                              "database's (its comment says whose); left as it is")
        for pub in pubs:
            plan.steps.append(Step(SOURCE, f"drop publication {pub}", (
                sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(pub)),)))
        statements: list[sql.Composable] = []
        for rel, table in cat.tables.items():
            if drop_tables:
                statements.append(sql.SQL("DROP TABLE {}").format(ident(rel)))
            elif table.mask_trigger is not None:
                statements.extend(drop_trigger(rel))
        # With the source out of reach, repl's schema stays: its record of this target
        # (repl.owner) is what tells the publications and slot left on the source from
        # another config's of the same names when teardown runs again.
        drops_schema = cat.schema_revision is not None and reachable
        if drops_schema:
            statements.append(sql.SQL("DROP SCHEMA repl CASCADE"))
        elif cat.schema_revision is not None:
            plan.notes.append(f"target {name}: repl's schema stays until `repl teardown` "
                              "can reach the source: it tells repl which publications and "
                              "slot there are this target's")
        elif cat.foreign_repl_schema:
            plan.notes.append(f"target {name}: the schema repl is not repl's (it has no "
                              "repl.alembic_version of repl's); left as it is")
        if statements:
            what = "the replicated tables and " if drop_tables else ""
            mine = "triggers, functions and schema" if drops_schema else "triggers"
            plan.steps.append(Step(name, f"drop {what}repl's {mine}",
                                   tuple(statements),
                                   hazards=("drops the replicated tables and their data",)
                                   if drop_tables else ()))
    return plan, manual


def _by_hand(session: Session, target: str, sub, system_identifier: str) -> list[str]:
    """What to run on the source for `target` once it can be reached again."""
    config = session.config
    lines = [sql.SQL("SELECT pg_drop_replication_slot({});").format(
        sql.Literal(subscription_name(config.name, target))).as_string(None)]
    if sub is not None and sub.oid is not None:
        lines.append(sql.SQL("SELECT pg_drop_replication_slot(slot_name) FROM "
                             "pg_replication_slots WHERE slot_name LIKE {};").format(
            sql.Literal(sync_slot_pattern(sub.oid, system_identifier))).as_string(None))
    ops_sets = {t.operations for t in config.targets[target].tables.values()}
    lines += [sql.SQL("DROP PUBLICATION IF EXISTS {};").format(
        sql.Identifier(publication_name(config.name, target, ops))).as_string(None)
        for ops in sorted(ops_sets, key=sorted)]
    return lines


def drop_slot(source: Database, slot: str, timeout: float = SLOT_RELEASE_TIMEOUT_S) -> None:
    """Drop a slot once its walsender has let go of it (it does after DROP SUBSCRIPTION)."""
    deadline = time.monotonic() + timeout
    while True:
        active = source.scalar("SELECT active FROM pg_catalog.pg_replication_slots "
                               "WHERE slot_name = %s", (slot,))
        if active is None:
            return
        if not active:
            source.execute("SELECT pg_catalog.pg_drop_replication_slot(%s)", (slot,))
            return
        if time.monotonic() > deadline:
            raise ApplyError(f"replication slot {slot} is still in use after {timeout:.0f} s; "
                             f"drop it by hand: SELECT pg_drop_replication_slot('{slot}');")
        time.sleep(0.2)
