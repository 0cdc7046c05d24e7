"""The initial copy of a new target from one exported snapshot, by several workers
(`repl setup`'s way for a target without a subscription; `--table-sync` leaves it to
PostgreSQL's table sync instead).

PostgreSQL's table sync copies each table in one backend on the target, which runs the
masking trigger for every row: a masked table copies at a fraction of the speed of an
unmasked one (bench/README.md). Here the copy is spread over `jobs` workers instead:

1. The target's slot is created over a replication connection with SNAPSHOT 'export':
   the snapshot sees exactly what the slot will not send. That connection stays open,
   and so does the snapshot, until every chunk is copied.
2. Each table is cut into chunks: one per leaf of a partitioned table, and a table
   larger than `split_bytes` into ranges of its pages (ctid ranges, which PostgreSQL
   reads with a TID Range Scan: no index needed, and the pages are split evenly,
   whatever the keys look like).
3. A worker takes the largest chunk left and, in one transaction on each side, imports
   the snapshot on the source (SET TRANSACTION SNAPSHOT) and streams
   COPY (SELECT <published columns> FROM ONLY <table> WHERE <row filter> AND <range>)
   TO STDOUT straight into COPY <table> (<columns>) FROM STDIN on the target, in binary
   where both sides have the same built-in types. The masking trigger (ENABLE ALWAYS)
   masks every row on its way in: no raw value is ever stored. The chunk counts itself
   in repl.initial_copy in the same transaction, so a chunk is all there or not at all,
   and a failed chunk is retried whole.
4. Once a table's chunks are done, the worker that finished it builds the table's
   indexes (so indexes are built in parallel across tables, after their copy).
5. The replication connection closes and the subscription is created on the slot with
   copy_data = false: it streams from the snapshot's position, so nothing is lost and
   nothing arrives twice.

A copy that stops (Ctrl-C, SIGTERM, a chunk that keeps failing, `repl run` losing its
lock) drops its slot; one whose process was killed leaves the slot, which `status`
reports and the next `setup` drops before it starts the copy again (a snapshot cannot
be resumed by another process: the tables are emptied and copied anew).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .. import slots
from ..db import SOURCE_LOCK_TIMEOUT, SOURCE_STATEMENT_TIMEOUT, connect
from ..errors import CopyStopped
from ..names import QualifiedName, ident
from ..resources import load_sql
from .workers import Copier, CopyReport, Progress, connect_worker

__all__ = ["FROM_SNAPSHOT", "Chunk", "CopyOptions", "CopyReport", "Progress", "TableCopy",
           "copy", "drop_slot", "parse_size"]

DEFAULT_SPLIT_BYTES = 256 * 1024**2
_SIZE = re.compile(r"\s*(\d+)\s*(B|kB|MB|GB|TB)?\s*", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_size(text: str) -> int:
    """'64MB' -> bytes (PostgreSQL's units: B, kB, MB, GB, TB; a bare number is bytes)."""
    found = _SIZE.fullmatch(text)
    if not found or int(found[1]) <= 0:
        raise ValueError(f"{text!r} is not a size such as 64MB or 1GB")
    return int(found[1]) * _UNITS[(found[2] or "B").lower()]


@dataclass(frozen=True)
class CopyOptions:
    """How `setup` copies a new target (what the person asked; see the module)."""

    table_sync: bool = False  # PostgreSQL's table sync, one backend per table
    jobs: int | None = None  # None: the target server's cores, see default_jobs
    split_bytes: int = DEFAULT_SPLIT_BYTES


FROM_SNAPSHOT = CopyOptions()  # the default
@dataclass(frozen=True)
class TableCopy:
    """One table as the publication shapes it for this target."""

    relation: QualifiedName
    columns: tuple[str, ...]  # the published columns, in the table's order
    row_filter: str | None  # PostgreSQL's own text of the publication's row filter
    binary: bool  # the same built-in type on both sides, column by column
    estimated_rows: int | None
    indexes: tuple[sql.Composable, ...] = ()  # built once its copy is done

    def select(self, source: QualifiedName, first_page: int | None = None,
               end_page: int | None = None) -> sql.Composable:
        conditions: list[sql.Composable] = []
        if self.row_filter is not None:  # catalog text, as the publication has it
            conditions.append(sql.SQL("({})").format(sql.SQL(self.row_filter)))
        if first_page is not None:
            conditions.append(sql.SQL("ctid >= {}::tid").format(sql.Literal(f"({first_page},0)")))
        if end_page is not None:
            conditions.append(sql.SQL("ctid < {}::tid").format(sql.Literal(f"({end_page},0)")))
        where = sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(conditions)) \
            if conditions else sql.SQL("")
        return sql.SQL("SELECT {} FROM ONLY {}{}").format(
            sql.SQL(", ").join(map(sql.Identifier, self.columns)), ident(source), where)

    def copy_out(self, select: sql.Composable) -> sql.Composable:
        return sql.SQL("COPY ({}) TO STDOUT{}").format(select, self._format())

    def copy_in(self) -> sql.Composable:
        return sql.SQL("COPY {} ({}) FROM STDIN{}").format(
            ident(self.relation), sql.SQL(", ").join(map(sql.Identifier, self.columns)),
            self._format())

    def _format(self) -> sql.Composable:
        return sql.SQL(" (FORMAT binary)" if self.binary else "")


@dataclass(frozen=True)
class Chunk:
    table: TableCopy
    number: int  # within its table
    source: QualifiedName  # the table, or one leaf partition of it
    first_page: int | None = None  # a range of pages: [first_page, end_page)
    end_page: int | None = None  # None: to the end (pages a later insert added included)
    size: int = 0  # bytes, to take the largest first
    filenode: int = 0  # the leaf's storage as the snapshot sees it: a rewrite changes it

    def copy_out(self) -> sql.Composable:
        return self.table.copy_out(self.table.select(self.source, self.first_page,
                                                     self.end_page))


def default_jobs(target: psycopg.Connection, local: bool) -> int:
    """The target server's cores as far as max_worker_processes allows, at least 2. SQL
    does not tell a server's cores: when the target runs on this host they are counted
    here, else max_parallel_workers stands for them (a DBA sets it to the cores)."""
    max_workers, parallel = target.execute(
        "SELECT pg_catalog.current_setting('max_worker_processes')::int, "
        "pg_catalog.current_setting('max_parallel_workers')::int").fetchone()
    cores = (os.cpu_count() or 2) if local else parallel
    return max(2, min(cores, max_workers))


def is_local(dsn: str) -> bool:
    host = psycopg.conninfo.conninfo_to_dict(dsn).get("host") or ""
    return host == "" or host.startswith("/") or host in ("localhost", "127.0.0.1", "::1")


def plan_chunks(source: psycopg.Connection, tables: tuple[TableCopy, ...],
                split_bytes: int) -> list[Chunk]:
    """Every table's chunks, the largest first. `source` is in a transaction on the
    snapshot: the partitions and sizes are those the copy reads."""
    chunks = []
    for table in tables:
        leaves = source.execute(load_sql("catalog/copy_leaves").encode(),  # type: ignore[arg-type]
                                {"rel": ident(table.relation).as_string(source)}).fetchall()
        number = 0
        for schema, name, size, block, filenode in leaves:
            leaf = QualifiedName(schema, name)
            pages = math.ceil(size / block)
            parts = max(1, math.ceil(size / split_bytes))
            step = math.ceil(pages / parts) if parts > 1 else max(pages, 1)
            for first in range(0, max(pages, 1), step):
                whole, last = parts == 1, first + step >= pages
                chunks.append(Chunk(table, number, leaf, None if whole else first,
                                    None if last else first + step,
                                    size=min(step, pages - first) * block, filenode=filenode))
                number += 1
    return sorted(chunks, key=lambda c: -c.size)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the copy as Ctrl-C does (the slot is dropped): in a command, where
    SIGTERM would end the process at once. `repl run` has its own handler, which stops
    the copy through `interrupted`; and signals reach the main thread only."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, _frame) -> None:
        raise CopyStopped(f"{signal.Signals(signum).name} received")

    saved = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


def copy(source_dsn: str, target: psycopg.Connection, target_dsn: str, slot: str,
         tables: tuple[TableCopy, ...], options: CopyOptions,
         interrupted: Callable[[], str | None] = lambda: None,
         report: CopyReport | None = None) -> None:
    """Create `slot` with an exported snapshot and copy `tables` from it into the target
    (`target`: an autocommit connection for the bookkeeping). On return the slot is
    idle at the snapshot's position: the subscription is to be created on it without a
    copy. On failure the slot is dropped."""
    jobs = options.jobs or default_jobs(target, is_local(target_dsn))
    (encoding,) = target.execute("SHOW server_encoding").fetchone()
    created = False
    try:
        with _terminate_as_interrupt(), slots.exported_snapshot(source_dsn, slot) as (name, pid):
            created = True
            chunks = _plan(source_dsn, encoding, name, tables, options.split_bytes)
            record_start(target, slot, pid, tables, chunks)
            copier = Copier(source_dsn, target_dsn, name, chunks, jobs, report, encoding)
            copier.run(interrupted)
            for table in tables:  # a table without a leaf to copy (no partition yet)
                if table.relation not in copier.progress:
                    target.execute("UPDATE repl.initial_copy SET finished_at = pg_catalog.now()"
                                   " WHERE schema_name = %s AND table_name = %s",
                                   (table.relation.schema, table.relation.name))
    except BaseException:
        if created:  # (a slot of that name this copy did not make is not its to drop)
            drop_slot(source_dsn, slot)
        raise


def _plan(source_dsn: str, encoding: str, snapshot: str, tables: tuple[TableCopy, ...],
          split_bytes: int) -> list[Chunk]:
    """The chunks, read in the snapshot; bounded as repl's other source statements are
    (it takes ACCESS SHARE on each table it sizes, until it ends)."""
    with contextlib.closing(connect_worker(source_dsn, encoding)) as planner, \
            planner.transaction():
        planner.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        planner.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        for name, value in (("lock_timeout", SOURCE_LOCK_TIMEOUT),
                            ("statement_timeout", SOURCE_STATEMENT_TIMEOUT)):
            planner.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))
        return plan_chunks(planner, tables, split_bytes)


def record_start(target: psycopg.Connection, slot: str, walsender_pid: int,
                 tables: tuple[TableCopy, ...], chunks: list[Chunk]) -> None:
    counts: dict[QualifiedName, int] = {}
    for chunk in chunks:
        counts[chunk.table.relation] = counts.get(chunk.table.relation, 0) + 1
    with target.transaction():
        target.execute("DELETE FROM repl.initial_copy")
        for table in tables:
            target.execute(
                "INSERT INTO repl.initial_copy (schema_name, table_name, slot_name, "
                "walsender_pid, chunks, estimated_rows) VALUES (%s, %s, %s, %s, %s, %s)",
                (table.relation.schema, table.relation.name, slot, walsender_pid,
                 counts.get(table.relation, 0), table.estimated_rows))


def drop_slot(source_dsn: str, slot: str) -> None:
    """After a failed copy: the slot would keep production's WAL for nothing."""
    with contextlib.suppress(Exception), contextlib.closing(
            connect(source_dsn, "source", source=True)) as db:
        slots.drop(db, slot, timeout=10)
