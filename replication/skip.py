"""`repl skip TARGET`: get a subscription past a source transaction it cannot apply.

PostgreSQL's way out of an apply conflict without copying everything again is
`ALTER SUBSCRIPTION ... SKIP (lsn = ...)`, given the finish LSN of the failing
transaction; the apply worker logs it, but a log is not something repl can read. repl
finds it from the catalogs instead: the target's replication origin says how far the
subscription has applied (the end of its last applied transaction), and decoding the
slot on the source with pgoutput, without consuming it, shows the first transaction
after that point: the one that fails. Its BEGIN message carries the finish LSN SKIP
wants, and its RELATION messages name the tables whose changes will be missing.

Decoding needs the slot idle, so the subscription is disabled first and enabled again
at the end (also when something fails on the way).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import decoding, slots
from .diagnosis import schema_differences, watch_subscription
from .errors import SkipError
from .model import Subscription
from .names import subscription_name
from .pubsub import subscriptions
from .session import Session
from .validate import SCHEMA_KINDS

IDLE_TIMEOUT_S = 30.0


@dataclass
class Skipped:
    target: str
    subscription: str
    xid: int
    finish_lsn: str
    tables: list[str] = field(default_factory=list)
    changes: int = 0


def _subscription(session: Session, target: str) -> Subscription:
    name = subscription_name(session.config.name, target)
    sub = subscriptions(session.db(target), session.config.name, with_conninfo=False).get(name)
    if sub is None or sub.slot_name is None:
        raise SkipError(f"target {target} has no subscription {name}; run `repl setup`")
    return sub


def _confirm_failing(session: Session, target: str, sub: Subscription) -> str:
    """How the subscription is failing now, or SkipError. The error counters only grow and
    count lost connections too: skipping on a count alone could drop a transaction that
    would apply fine."""
    db, ident = session.db(target), sql.Identifier(sub.name)
    assert sub.slot_name is not None
    if not sub.apply_error_count:
        raise SkipError(f"subscription {sub.name} has no apply error to get past "
                        "(pg_stat_subscription_stats.apply_error_count is 0)")
    if not sub.enabled and not sub.disable_on_error:
        raise SkipError(f"subscription {sub.name} is disabled, not failing: `repl setup` "
                        "enables it")
    if not sub.enabled:  # stopped by disable_on_error: does the next try fail again?
        db.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(ident))
    reason = watch_subscription(session, target, sub.slot_name)(sub)
    if reason is None:
        raise SkipError(f"subscription {sub.name} is not failing now (its apply error count "
                        "did not grow for a retry interval, or it applied changes): nothing "
                        "was skipped. Errors are counted for lost connections too")
    return reason


def _refuse_schema_changes(session: Session, target: str) -> None:
    """A subscription stopped by a schema change on production fails again at the next
    transaction touching the table: skipping one would only lose its changes."""
    snap = session.snapshot(reuse_filters=True)
    found = schema_differences(session.config, target, snap.source, snap.targets[target])
    found += [p.message for p in snap.errors
              if p.kind in SCHEMA_KINDS and p.where.startswith(f"target {target},")]
    if found:
        raise SkipError(f"subscription of target {target} is stopped by a schema change on "
                        f"production, not by a conflict; nothing was skipped (every later "
                        "change to the table would fail alike). " + " ".join(found))


def skip(session: Session, target: str) -> Skipped:
    db, source = session.db(target), session.db("source")
    if not db.scalar("SELECT pg_catalog.has_table_privilege("
                     "'pg_catalog.pg_replication_origin_status', 'SELECT')"):
        raise SkipError(f"role {db.conn.info.user} may not read "
                        "pg_replication_origin_status on target "
                        f"{target}, which says how far the subscription applied: run "
                        "`repl skip` as a superuser there, or GRANT SELECT ON "
                        "pg_catalog.pg_replication_origin_status to it")
    sub = _subscription(session, target)
    _refuse_schema_changes(session, target)
    _confirm_failing(session, target, sub)
    assert sub.slot_name is not None and sub.oid is not None
    ident = sql.Identifier(sub.name)
    db.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
    try:
        if not slots.await_idle(source, sub.slot_name, IDLE_TIMEOUT_S):
            raise SkipError(f"replication slot {sub.slot_name} is still in use "
                            f"{IDLE_TIMEOUT_S:.0f} s after its subscription was disabled")
        found = decoding.first(source, sub.slot_name, sub.publications,
                               decoding.applied_position(db, sub.oid))
        if found is None:
            raise SkipError(
                f"subscription {sub.name} has applied every transaction its slot holds: the "
                "errors were not caused by a source transaction (see the target's server "
                "log); nothing was skipped")
        db.execute(sql.SQL("ALTER SUBSCRIPTION {} SKIP (lsn = {})").format(
            ident, sql.Literal(decoding.lsn_text(found.finish_lsn))))
        with contextlib.suppress(psycopg.Error):  # only a fresh count for status: optional
            db.execute("SELECT pg_catalog.pg_stat_reset_subscription_stats(%s::oid)",
                       (sub.oid,))
    finally:
        # The config wants it enabled, whoever disabled it (disable_on_error, or us).
        try:
            db.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(ident))
        except psycopg.Error as exc:
            raise SkipError(f"subscription {sub.name} is left DISABLED ({exc.diag.message_primary}"
                            "): `repl setup` enables it") from None
    return Skipped(target, sub.name, found.xid, decoding.lsn_text(found.finish_lsn),
                   found.tables, found.changes)
