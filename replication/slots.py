"""Replication slots on the source: every query and action on them, in patroni's manner
(load what exists, compare with what is wanted, create or drop with a guard so that
repeating is safe).

A slot is the one thing repl leaves on production that costs production something: it
keeps WAL until its subscriber confirms it. So waits on a slot are bounded, a slot is
dropped only once its walsender let go of it, and the statement that drops one by hand
is spelled here for every message that gives it.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg import sql

from .db import APPLICATION_NAME, CONNECT_TIMEOUT_S, Database
from .errors import ApplyError
from .model import Slot

RELEASE_TIMEOUT_S = 30.0  # for a walsender to let go of a slot after its subscriber left
AWAIT_TIMEOUT_S = 300.0  # for a subscriber to confirm the source's current position
POLL_S = 0.2
SNAPSHOT_APPLICATION = f"{APPLICATION_NAME} snapshot"  # exported_snapshot's connection
CREATE_TIMEOUT_S = 60.0  # for a slot's creation: as repl's other source statements
STALL_CHECK_S = 3.0  # how often a wait asks whether what it waits for can still happen


# --- names -------------------------------------------------------------------------------

def is_sync_slot(slot: str, subscription_oid: int, system_identifier: str) -> bool:
    """Table-sync slots are named pg_<subscription oid>_sync_<relid>_<system id of the
    subscriber>: the oid alone could be another target server's subscription's."""
    return re.fullmatch(rf"pg_{subscription_oid}_sync_\d+_{re.escape(system_identifier)}",
                        slot) is not None


def sync_slot_pattern(subscription_oid: int, system_identifier: str) -> str:
    """The LIKE pattern of those slot names (underscores escaped: LIKE's any-character)."""
    return f"pg\\_{subscription_oid}\\_sync\\_%\\_{system_identifier}"


def drop_by_hand(slot: str) -> str:
    """The statement a person runs on the source to drop `slot`."""
    return sql.SQL("SELECT pg_drop_replication_slot({});").format(
        sql.Literal(slot)).as_string(None)


def drop_sync_slots_by_hand(subscription_oid: int, system_identifier: str) -> str:
    return sql.SQL("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                   "WHERE slot_name LIKE {};").format(
        sql.Literal(sync_slot_pattern(subscription_oid, system_identifier))).as_string(None)


# --- reading -----------------------------------------------------------------------------

def read(db: Database, prefix: str) -> dict[str, Slot]:
    """repl's slots of this database (named `<prefix>_...`) and its table-sync slots."""
    return {
        r["slot_name"]: Slot(
            name=r["slot_name"], plugin=r["plugin"], active=r["active"],
            wal_status=r["wal_status"], safe_wal_size=r["safe_wal_size"],
            retained_bytes=r["retained_bytes"], lag_bytes=r["lag_bytes"],
            replay_lag_seconds=r["replay_lag_seconds"], caught_up=r["caught_up"],
            unsent_bytes=r["unsent_bytes"],
            inactive_seconds=r["inactive_seconds"],
        )
        for r in db.query("slots/slots", {"prefix": prefix + "_"})
    }


def elsewhere(db: Database, names: list[str]) -> dict[str, str]:
    """Of `names`, the slots that belong to another database of the cluster (slot names
    are cluster-wide): slot name -> that database ('(physical)' for a physical slot)."""
    return {r["slot_name"]: r["database"] for r in db.query("slots/elsewhere", {"names": names})}


def confirmed_lsn(db: Database, slot: str) -> str | None:
    rows = db.query("slots/state", {"slot": slot})
    return rows[0]["confirmed_flush_lsn"] if rows else None


def snapshot_holders(db: Database, application: str) -> frozenset[int]:
    """The pids of the walsenders that hold an initial copy's snapshot (snapshot_copy)."""
    return frozenset(r["pid"] for r in db.query("slots/snapshot_holders",
                                                {"application": application}))


def current_lsn(db: Database) -> str:
    return db.query("slots/current_lsn")[0]["lsn"]


def confirmed_up_to(db: Database, slot: str, lsn: str) -> tuple[bool | None, int | None]:
    """Whether the slot's subscriber has applied everything up to `lsn`, and how many
    bytes it is behind; (None, None) when the slot is missing or confirmed nothing."""
    rows = db.query("slots/confirmed", {"lsn": lsn, "slot": slot})
    if not rows or rows[0]["caught_up"] is None:
        return None, None
    return rows[0]["caught_up"], rows[0]["behind_bytes"]


# --- actions -----------------------------------------------------------------------------

def create_statement(slot: str) -> sql.Composable:
    """The statement making a subscription's slot, before the subscription: a subscription
    to a database of the same cluster would wait forever for its own slot to be made."""
    return sql.SQL(
        "SELECT pg_catalog.pg_create_logical_replication_slot({}, 'pgoutput')").format(
            sql.Literal(slot))


def export_statement(slot: str) -> sql.Composable:
    """The replication command making `slot` with its snapshot exported (the replication
    grammar takes no parameters: the name is quoted as SQL would)."""
    return sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')").format(
        sql.Identifier(slot))


@contextlib.contextmanager
def exported_snapshot(dsn: str, slot: str) -> Iterator[tuple[str, int]]:
    """Create `slot` over a replication connection, exporting its snapshot; yields the
    snapshot's name and the walsender's pid while the connection holds both (an initial
    copy from a snapshot: snapshot_copy)."""
    conn = psycopg.connect(dsn, autocommit=True, replication="database",
                           connect_timeout=CONNECT_TIMEOUT_S,
                           application_name=SNAPSHOT_APPLICATION)
    try:
        pid = conn.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()[0]
        # The walsender holds the snapshot "idle in transaction" for the whole copy: a
        # timeout production sets for idle sessions must not end it.
        for setting in ("idle_in_transaction_session_timeout", "idle_session_timeout"):
            # (no parameters: a replication connection takes the simple protocol only)
            conn.execute(sql.SQL("SET {} = 0").format(sql.Identifier(setting)))
        # A logical slot starts at a point where no transaction is running on the source:
        # its creation waits for those under way to end. Bounded, and told.
        watchdog = threading.Timer(CREATE_TIMEOUT_S, conn.cancel_safe)
        watchdog.start()
        try:
            row = conn.execute(export_statement(slot)).fetchone()
        except BaseException as exc:
            if not isinstance(exc, psycopg.errors.QueryCanceled):
                # (a signal: the walsender would go on waiting, then make the slot)
                with contextlib.suppress(Exception):
                    conn.cancel_safe()
                raise
            raise ApplyError(
                f"creating replication slot {slot} waited {CREATE_TIMEOUT_S:.0f} s for the "
                "transactions running on the source to end (a logical slot starts where "
                "none runs); the oldest are in pg_stat_activity (ORDER BY xact_start): end "
                "them or wait, then run `repl setup` again") from None
        finally:
            watchdog.cancel()
        yield row[2], pid
    finally:
        conn.close()


def drop(db: Database, slot: str, timeout: float = RELEASE_TIMEOUT_S) -> None:
    """Drop a slot once its walsender has let go of it (it does after DROP SUBSCRIPTION);
    nothing to do when it is gone already."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db.query("slots/state", {"slot": slot})
        if not rows:
            return
        if not rows[0]["active"]:
            try:
                db.query("slots/drop", {"slot": slot})
                return
            except psycopg.errors.ObjectInUse:
                pass  # a walsender took it again meanwhile: wait for it as before
        if time.monotonic() > deadline:
            raise ApplyError(f"replication slot {slot} is still in use after {timeout:.0f} s; "
                             f"drop it by hand: {drop_by_hand(slot)}")
        time.sleep(POLL_S)


def await_confirmed(db: Database, slot: str, timeout: float = AWAIT_TIMEOUT_S,
                    stalled: Callable[[], str | None] | None = None,
                    lsn: str | None = None) -> None:
    """Wait until `slot` has confirmed `lsn`, by default the source's current WAL
    position: everything committed before it has then been applied by the subscriber.
    `stalled` is asked every few seconds whether that cannot happen (and why): the wait
    then stops."""
    lsn = lsn or current_lsn(db)
    started = time.monotonic()
    deadline, asked = started + timeout, started
    while True:
        caught_up, _ = confirmed_up_to(db, slot, lsn)
        if caught_up:
            return
        if caught_up is None and confirmed_lsn(db, slot) is None:
            raise ApplyError(f"replication slot {slot} disappeared while waiting for it")
        if stalled is not None and time.monotonic() - asked > STALL_CHECK_S:
            asked = time.monotonic()
            if reason := stalled():
                raise ApplyError(f"waited {asked - started:.0f} s for subscription {slot} to "
                                 f"apply the source's changes up to {lsn}, which cannot "
                                 f"happen: {reason}")
        if time.monotonic() > deadline:
            raise ApplyError(
                f"subscription {slot} has not applied the source's changes up to {lsn} within "
                f"{timeout:.0f} s; `repl status` shows why (a stopped worker, an apply error)")
        time.sleep(POLL_S)


def await_idle(db: Database, slot: str, timeout: float = RELEASE_TIMEOUT_S) -> bool:
    """Wait until no walsender holds `slot`; False when one still does at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db.query("slots/state", {"slot": slot})
        if not rows or not rows[0]["active"]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)


def peek_changes(db: Database, slot: str, publications: str, limit: int) -> Iterator[bytes]:
    """The pgoutput messages the slot would send next (at most `limit` changes, whole
    transactions), without consuming them, through a server-side cursor: a large
    transaction is read, not held. The slot must be idle. Decoding a long backlog may take
    longer than repl's usual statement timeout on the source: it gets 10 minutes."""
    query = db.sql_text("slots/peek_changes")
    with db.conn.transaction():
        db.execute("SET LOCAL statement_timeout = '10min'")
        with db.conn.cursor(name="repl_peek_changes") as cur:
            cur.itersize = 1000
            cur.execute(query, {"slot": slot, "limit": limit, "publications": publications})
            for (data,) in cur:
                yield bytes(data)


def drop_in_databases(conn: psycopg.Connection, databases: list[str],
                      timeout: float = RELEASE_TIMEOUT_S) -> None:
    """Drop every slot of those databases of the cluster, ending their walsenders (for
    databases about to be dropped: the demo's reset)."""
    db = Database("cluster", conn, conn.info.server_version)
    deadline = time.monotonic() + timeout
    while True:
        db.query("slots/terminate_in_databases", {"databases": databases})
        try:
            db.query("slots/drop_in_databases", {"databases": databases})
            return
        except psycopg.errors.ObjectInUse:  # a walsender may hold its slot a moment longer
            if time.monotonic() > deadline:
                raise ApplyError(f"the replication slots of {', '.join(databases)} stay in "
                                 f"use after {timeout:.0f} s") from None
            time.sleep(POLL_S)
