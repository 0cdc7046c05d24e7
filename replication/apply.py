"""Runs a plan's steps, then plans again: a converged setup leaves nothing to do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psycopg
from psycopg import sql

from . import __version__, migrations
from .errors import ApplyError
from .model import ConninfoDigest
from .names import subscription_name
from .plan import Plan, Step
from .redact import redact
from .session import AS_CONFIGURED, Asked, Session, Snapshot
from .state import subscriber_conninfo


def run_step(session: Session, step: Step) -> None:
    step.run(session)


def apply(session: Session, plan: Plan,
          on_step: Callable[[int, Step], None] | None = None, record: bool = True) -> None:
    for number, step in enumerate(plan.steps, 1):
        if on_step:
            on_step(number, step)
        try:
            run_step(session, step)
        except (psycopg.Error, migrations.MigrationError) as exc:
            raise ApplyError(
                f"step {number} ({step.summary}) on {step.database} failed: "
                f"{redact(str(exc)).strip()}\nthe databases are left as far as the plan got; "
                "run `repl setup` again once the cause is fixed") from None
    for name in session.target_names if record else ():
        if any(s.database == name for s in plan.steps):
            session.db(name).execute_one(sql.SQL(
                "INSERT INTO repl.setup_run (target, steps, repl_version) VALUES ({}, {}, {})"
            ).format(sql.Literal(name),
                     sql.Literal(sum(s.database in (name, "source") for s in plan.steps)),
                     sql.Literal(__version__)))


def converge(session: Session, plan: Plan,
             on_step: Callable[[int, Step], None] | None = None,
             asked: Asked = AS_CONFIGURED) -> Plan:
    """Apply, then plan again; returns the leftover plan (empty when converged)."""
    apply(session, plan, on_step)
    snap = session.snapshot()
    if snap.errors:
        raise ApplyError("after setup, validation fails: " +
                         "; ".join(str(p) for p in snap.errors))
    keep_row_filters(session, snap)
    keep_conninfo_digests(session, snap, plan)
    keep_identities(session, snap, asked)
    return session.plan(snap, replace(asked, resync=frozenset()))  # copied: not again


def keep_identities(session: Session, snap: Snapshot, asked: Asked) -> None:
    """Record on each target production's identity of what it replicates now (source
    table OID; per column its attnum and type), which tells a later rename on production
    from a drop and an add, and under `columns: all` which columns were accepted."""
    want, _ = session.states(snap, asked)
    for name in session.target_names:
        cat = snap.targets[name]
        if cat.schema_revision is None or int(cat.schema_revision) < 7:
            continue
        rows = []
        for table in want.states[name].tables:
            source = snap.source.tables[table.relation]
            config = session.config.targets[name].tables[table.relation]
            types = {c.attnum: c.type for c in source.columns}
            excluded = [c for c in source.columns if c.name in config.exclude]
            rows.append((table.relation.schema, table.relation.name, source.oid,
                         [c.name for c in table.columns], [c.attnum for c in table.columns],
                         [types[c.attnum] for c in table.columns], config.columns == "all",
                         [c.name for c in excluded], [c.attnum for c in excluded]))
        recorded = sorted((i.relation.schema, i.relation.name, i.source_oid,
                           [c.name for c in i.columns], [c.attnum for c in i.columns],
                           [c.type for c in i.columns], i.all_columns,
                           [c.name for c in i.excluded], [c.attnum for c in i.excluded])
                          for i in cat.identities.values())
        if sorted(rows) == recorded:
            continue
        db = session.db(name)
        with db.conn.transaction():
            db.execute("DELETE FROM repl.replicated_table")
            for row in rows:
                db.execute("INSERT INTO repl.replicated_table (schema_name, table_name, "
                           "source_oid, columns, attnums, types, all_columns, excluded, "
                           "excluded_attnums) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                           row)


def keep_conninfo_digests(session: Session, snap: Snapshot, applied: Plan) -> None:
    """Record on each target a digest of the connection string its subscription has, so
    that a change is seen without reading it: known when the role can read it, or when
    this setup set it (the steps shown with another text are those carrying it)."""
    wanted = subscriber_conninfo(session.config)
    for name in session.target_names:
        cat = snap.targets[name]
        sub_name = subscription_name(session.config.name, name)
        sub, recorded = cat.subscriptions.get(sub_name), cat.conninfo_digests.get(sub_name)
        known = sub is not None and (sub.conninfo == wanted or any(
            s.database == name and s.display for s in applied.steps))
        if cat.schema_revision is None or not known or (
                recorded is not None and recorded.matches(wanted)):
            continue
        digest = cat.conninfo_digests[sub_name] = ConninfoDigest.of(wanted)  # plan sees it
        session.db(name).execute(
            "INSERT INTO repl.subscription_conninfo (subscription, salt, digest) "
            "VALUES (%s, %s, %s) ON CONFLICT (subscription) DO UPDATE "
            "SET salt = EXCLUDED.salt, digest = EXCLUDED.digest",
            (sub_name, digest.salt, digest.digest))


def keep_row_filters(session: Session, snap: Snapshot) -> None:
    """Record on each target its row filters as the source parsed them (`status` reads
    them instead of asking the source again), when they changed."""
    for name in session.target_names:
        if snap.targets[name].schema_revision is None:
            continue
        tables = session.config.targets[name].tables
        parsed = {rel: (tables[rel].where, found) for (target, rel), found in snap.filters.items()
                  if target == name and tables[rel].where is not None}
        if parsed == snap.targets[name].row_filters:
            continue
        db = session.db(name)
        with db.conn.transaction():
            db.execute("DELETE FROM repl.row_filter")
            for rel, (text, found) in parsed.items():
                db.execute("INSERT INTO repl.row_filter (schema_name, table_name, config_text,"
                           " canonical, columns) VALUES (%s, %s, %s, %s, %s)",
                           (rel.schema, rel.name, text, found.canonical, sorted(found.columns)))
