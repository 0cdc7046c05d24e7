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
import struct
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import slots
from .catalog import subscriptions
from .db import Database
from .diagnosis import watch_subscription
from .errors import SkipError
from .model import Subscription
from .names import subscription_name
from .session import Session

IDLE_TIMEOUT_S = 30.0
PEEK_BATCH = 10_000  # changes decoded per round while looking for the failing transaction


@dataclass
class Skipped:
    target: str
    subscription: str
    xid: int
    finish_lsn: str
    tables: list[str] = field(default_factory=list)
    changes: int = 0


def _lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def _lsn_int(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _cstring(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode(), end + 1


def _publication_list(names: frozenset[str]) -> str:
    # pgoutput splits publication_names like a list of SQL identifiers.
    return ",".join('"' + n.replace('"', '""') + '"' for n in sorted(names))


def failing_transaction(source: Database, slot: str, publications: frozenset[str],
                        applied_up_to: int) -> tuple[int, int, set[str], int] | None:
    """(xid, finish LSN, tables, changes) of the first transaction the slot would send
    that ends after `applied_up_to`, or None when there is none.

    Decoding stops after `limit` changes (whole transactions), raised while nothing is
    found: peeking always starts at the slot's confirmed position.
    """
    limit = PEEK_BATCH
    while True:
        changes = slots.peek_changes(source, slot, _publication_list(publications), limit)
        with contextlib.closing(changes):  # ends its transaction before going on
            found, seen = _first_after(changes, applied_up_to)
        if found is not None or seen < limit:
            return found
        limit *= 4


def _first_after(rows, applied_up_to: int) -> tuple[tuple[int, int, set[str], int] | None,
                                                      int]:
    """Parse pgoutput messages up to the first transaction finishing after
    `applied_up_to`; also how many messages were read."""
    relations: dict[int, str] = {}
    current: tuple[int, int] | None = None
    tables: set[str] = set()
    changes = seen = 0
    for data in rows:
        seen += 1
        kind = chr(data[0])
        if kind == "B":
            final_lsn, _, xid = struct.unpack_from("!QqI", data, 1)
            current = (xid, final_lsn) if final_lsn >= applied_up_to else None
            tables, changes = set(), 0
        elif kind == "R":
            (relid,) = struct.unpack_from("!I", data, 1)
            schema, at = _cstring(data, 5)
            name, _ = _cstring(data, at)
            relations[relid] = f"{schema}.{name}"
        elif kind in "IUD" and current:
            (relid,) = struct.unpack_from("!I", data, 1)
            tables.add(relations.get(relid, f"relation {relid}"))
            changes += 1
        elif kind == "T" and current:
            (count,) = struct.unpack_from("!I", data, 1)
            for i in range(count):
                (relid,) = struct.unpack_from("!I", data, 6 + 4 * i)
                tables.add(relations.get(relid, f"relation {relid}"))
            changes += 1
        elif kind == "C" and current:
            return (current[0], current[1], tables, changes), seen
    return None, seen


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
    _confirm_failing(session, target, sub)
    assert sub.slot_name is not None and sub.oid is not None
    ident = sql.Identifier(sub.name)
    db.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
    try:
        if not slots.await_idle(source, sub.slot_name, IDLE_TIMEOUT_S):
            raise SkipError(f"replication slot {sub.slot_name} is still in use "
                            f"{IDLE_TIMEOUT_S:.0f} s after its subscription was disabled")
        applied = db.scalar("SELECT remote_lsn::text FROM pg_catalog.pg_replication_origin_status"
                            " WHERE external_id = %s", (f"pg_{sub.oid}",))
        found = failing_transaction(source, sub.slot_name, sub.publications,
                                    _lsn_int(applied) if applied else 0)
        if found is None:
            raise SkipError(
                f"subscription {sub.name} has applied every transaction its slot holds: the "
                "errors were not caused by a source transaction (see the target's server "
                "log); nothing was skipped")
        xid, finish, tables, changes = found
        db.execute(sql.SQL("ALTER SUBSCRIPTION {} SKIP (lsn = {})").format(
            ident, sql.Literal(_lsn(finish))))
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
    return Skipped(target, sub.name, xid, _lsn(finish), sorted(tables), changes)
