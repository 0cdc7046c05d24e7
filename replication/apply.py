"""Runs a plan's steps, then plans again: a converged setup leaves nothing to do."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from . import __version__, migrations
from .db import Database
from .errors import ApplyError
from .masking import store_key
from .masking_sql import install_statements
from .model import ConninfoDigest, subscription_name
from .plan import Plan, Step
from .redact import redact
from .session import Session, Snapshot
from .state import subscriber_conninfo
from .teardown import drop_slot

AWAIT_SLOT_TIMEOUT_S = 300.0
POLL_S = 0.2


def execute(db: Database, statement: sql.Composable) -> None:
    db.execute_one(statement)


def await_slot(source: Database, slot: str, timeout: float = AWAIT_SLOT_TIMEOUT_S) -> None:
    """Wait until `slot` has confirmed the source's current WAL position.

    Everything committed before this call has then been applied by the subscriber.
    """
    lsn = source.scalar("SELECT pg_catalog.pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    while True:
        passed = source.scalar(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_catalog.pg_replication_slots "
            "WHERE slot_name = %s", (lsn, slot))
        if passed:
            return
        if passed is None:
            raise ApplyError(f"replication slot {slot} disappeared while waiting for it")
        if time.monotonic() > deadline:
            raise ApplyError(
                f"subscription {slot} has not applied the source's changes up to {lsn} within "
                f"{timeout:.0f} s; `repl status` shows why (a stopped worker, an apply error)")
        time.sleep(POLL_S)


def run_step(session: Session, step: Step) -> None:
    if step.action == "migrate":
        migrations.upgrade(session.dsn(step.database))
        return
    if step.action == "await_slot":
        assert step.slot is not None
        await_slot(session.db("source"), step.slot)
        return
    if step.action == "drop_slot":
        assert step.slot is not None
        drop_slot(session.db("source"), step.slot)
        return
    db = session.db(step.database)
    # A step shown with a different text (display) carries a password in its statements:
    # PostgreSQL would log it with the statement if the statement failed.
    quiet = db.statements_out_of_log() if step.display else contextlib.nullcontext()
    with quiet:
        if step.transactional:
            with db.conn.transaction():
                if step.action == "install_masking":
                    for text in install_statements():  # repl's own files: trusted SQL
                        db.conn.execute(text.encode())  # type: ignore[arg-type]
                for statement in step.statements:
                    execute(db, statement)
                if step.key is not None:
                    store_key(db.conn, *step.key)
        else:
            for statement in step.statements:
                execute(db, statement)


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
            execute(session.db(name), sql.SQL(
                "INSERT INTO repl.setup_run (target, steps, repl_version) VALUES ({}, {}, {})"
            ).format(sql.Literal(name),
                     sql.Literal(sum(s.database in (name, "source") for s in plan.steps)),
                     sql.Literal(__version__)))


def converge(session: Session, plan: Plan,
             on_step: Callable[[int, Step], None] | None = None) -> Plan:
    """Apply, then plan again; returns the leftover plan (empty when converged)."""
    apply(session, plan, on_step)
    snap = session.snapshot()
    if snap.errors:
        raise ApplyError("after setup, validation fails: " +
                         "; ".join(str(p) for p in snap.errors))
    keep_row_filters(session, snap)
    keep_conninfo_digests(session, snap, plan)
    return session.plan(snap)


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
