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
import queue
import re
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg import pq, sql

from . import guard, slots
from .db import APPLICATION_NAME, CONNECT_TIMEOUT_S, connect
from .errors import ApplyError, ReplError
from .names import QualifiedName, ident
from .redact import redact

DEFAULT_SPLIT_BYTES = 256 * 1024**2
CHUNK_TRIES = 3  # a chunk is tried this often before the copy gives up
RETRY_PAUSE_S = 1.0
WRITE_BYTES = 128 * 1024  # rows passed to the target's COPY this many bytes at a time
WAIT_S = 0.2  # how often the main thread looks at the workers and the interruptions
WORKER_APPLICATION = f"{APPLICATION_NAME} copy"
SNAPSHOT_APPLICATION = f"{APPLICATION_NAME} snapshot"  # the replication connection
_SIZE = re.compile(r"\s*(\d+)\s*(B|kB|MB|GB|TB)?\s*", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


class CopyStopped(ReplError):
    """The copy was stopped (a signal, `repl run` stopping or losing its lock)."""


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

    def copy_out(self) -> sql.Composable:
        return self.table.copy_out(self.table.select(self.source, self.first_page,
                                                     self.end_page))


@dataclass
class Progress:
    """What the copy reports as it goes (from the workers' threads)."""

    relation: QualifiedName
    chunks: int
    estimated_rows: int | None
    chunks_done: int = 0
    rows_copied: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None  # its indexes built too


CopyReport = Callable[[Progress], None]


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
        leaves = source.execute(
            # The table itself, or the leaves of its partition tree (which has no rows
            # for a table outside one).
            "SELECT n.nspname, c.relname, pg_catalog.pg_relation_size(c.oid), "
            "pg_catalog.current_setting('block_size')::int "
            "FROM pg_catalog.pg_class AS c "
            "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND (c.oid = %(rel)s::regclass OR c.oid IN ("
            "  SELECT relid FROM pg_catalog.pg_partition_tree(%(rel)s::regclass) "
            "   WHERE isleaf)) ORDER BY c.oid",
            {"rel": ident(table.relation).as_string(source)}).fetchall()
        number = 0
        for schema, name, size, block in leaves:
            leaf = QualifiedName(schema, name)
            pages = math.ceil(size / block)
            parts = max(1, math.ceil(size / split_bytes))
            step = math.ceil(pages / parts) if parts > 1 else max(pages, 1)
            for first in range(0, max(pages, 1), step):
                whole, last = parts == 1, first + step >= pages
                chunks.append(Chunk(table, number, leaf, None if whole else first,
                                    None if last else first + step,
                                    size=min(step, pages - first) * block))
                number += 1
    return sorted(chunks, key=lambda c: -c.size)


@contextlib.contextmanager
def exported_snapshot(dsn: str, slot: str) -> Iterator[tuple[str, int]]:
    """Create `slot` over a replication connection, exporting its snapshot; yields the
    snapshot's name and the walsender's pid while the connection holds it."""
    conn = psycopg.connect(dsn, autocommit=True, replication="database",
                           connect_timeout=CONNECT_TIMEOUT_S,
                           application_name=SNAPSHOT_APPLICATION)
    try:
        pid = conn.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()[0]
        # The replication grammar takes no parameters: the name is quoted as SQL would.
        row = conn.execute(sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput "
                                   "(SNAPSHOT 'export')").format(sql.Identifier(slot))
                           ).fetchone()
        yield row[2], pid
    finally:
        conn.close()


class Copier:
    """Runs the chunks on `jobs` threads, each with a connection to either side."""

    def __init__(self, source_dsn: str, target_dsn: str, snapshot: str, chunks: list[Chunk],
                 jobs: int, report: CopyReport | None):
        self.source_dsn, self.target_dsn, self.snapshot = source_dsn, target_dsn, snapshot
        self.jobs = max(1, min(jobs, len(chunks)))
        self.todo: queue.Queue[Chunk] = queue.Queue()
        for chunk in chunks:
            self.todo.put(chunk)
        self.left = {}  # per table, chunks not done yet
        self.progress: dict[QualifiedName, Progress] = {}
        for chunk in chunks:
            rel = chunk.table.relation
            self.left[rel] = self.left.get(rel, 0) + 1
            self.progress.setdefault(rel, Progress(rel, 0, chunk.table.estimated_rows))
            self.progress[rel].chunks += 1
        self.report = report
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.retries = 0
        self.connections: set[psycopg.Connection] = set()
        self.threads = [threading.Thread(target=self._work, name=f"repl-copy-{n}", daemon=True)
                        for n in range(self.jobs)]

    def run(self, interrupted: Callable[[], str | None]) -> None:
        for thread in self.threads:
            thread.start()
        try:
            while any(t.is_alive() for t in self.threads):
                for t in self.threads:
                    t.join(WAIT_S / len(self.threads))
                if self.failure is None and (why := interrupted()):
                    self.failure = CopyStopped(why)
                if self.failure is not None:
                    self._halt()
        except BaseException:  # KeyboardInterrupt, SystemExit: stop the workers first
            self._halt()
            for t in self.threads:
                t.join(10)
            raise
        if self.failure is not None:
            raise self.failure

    def _halt(self) -> None:
        """Stop taking chunks and cancel the statements under way."""
        self.stop.set()
        with self.lock:
            for conn in list(self.connections):
                with contextlib.suppress(Exception):
                    conn.cancel_safe(timeout=5)  # psycopg >= 3.2

    def _connect(self, dsn: str) -> psycopg.Connection:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name=WORKER_APPLICATION)
        conn.execute("SET search_path = pg_catalog, pg_temp")
        with self.lock:
            self.connections.add(conn)
        return conn

    def _close(self, conn: psycopg.Connection | None) -> None:
        if conn is None:
            return
        with self.lock:
            self.connections.discard(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def _work(self) -> None:
        src = dst = None
        try:
            while not self.stop.is_set():
                try:
                    chunk = self.todo.get_nowait()
                except queue.Empty:
                    return
                for attempt in range(1, CHUNK_TRIES + 1):
                    if self.stop.is_set():
                        return
                    try:
                        src = src if src is not None and not src.closed else \
                            self._connect(self.source_dsn)
                        dst = dst if dst is not None and not dst.closed else \
                            self._connect(self.target_dsn)
                        # A failure at the target's commit leaves it unknown whether the
                        # chunk committed: its record tells.
                        rows = 0 if attempt > 1 and self._recorded(dst, chunk) else \
                            self._copy(src, dst, chunk)
                        break
                    except psycopg.Error as exc:
                        if self.stop.is_set():
                            return
                        if attempt == CHUNK_TRIES:
                            raise ApplyError(
                                f"the copy of {chunk.table.relation} (from {chunk.source}) "
                                f"failed {CHUNK_TRIES} times: {redact(str(exc)).strip()}"
                            ) from None
                        with self.lock:
                            self.retries += 1
                        # A broken connection is made anew (the snapshot imported again).
                        for conn in (src, dst):
                            if conn is not None and conn.info.transaction_status != \
                                    psycopg.pq.TransactionStatus.IDLE:
                                self._close(conn)
                        src = None if src is None or src.closed else src
                        dst = None if dst is None or dst.closed else dst
                        time.sleep(RETRY_PAUSE_S)
                self._done(dst, chunk, rows)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            if self.failure is None:
                self.failure = exc
            self.stop.set()
        finally:
            self._close(src)
            self._close(dst)

    def _copy(self, src: psycopg.Connection, dst: psycopg.Connection, chunk: Chunk) -> int:
        """One chunk, one transaction on each side; the rows it copied. The source's
        (read only) ends first: the target's commit is the chunk's last act."""
        rel = chunk.table.relation
        with dst.transaction():
            dst.execute(guard.bypass())
            with src.transaction():
                src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                src.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                    sql.Literal(self.snapshot)))
                src.execute("SET LOCAL statement_timeout = 0")
                rows = relay(src, dst, chunk.copy_out(), chunk.table.copy_in(),
                             self.stop.is_set)
            dst.execute("UPDATE repl.initial_copy SET chunks_done = chunks_done + 1, "
                        "rows_copied = rows_copied + %s, done_chunks = done_chunks || %s "
                        "WHERE schema_name = %s AND table_name = %s",
                        (rows, chunk.number, rel.schema, rel.name))
        return rows

    @staticmethod
    def _recorded(dst: psycopg.Connection, chunk: Chunk) -> bool:
        rel = chunk.table.relation
        return dst.execute("SELECT %s = ANY (done_chunks) FROM repl.initial_copy "
                           "WHERE schema_name = %s AND table_name = %s",
                           (chunk.number, rel.schema, rel.name)).fetchone()[0]

    def _done(self, dst: psycopg.Connection, chunk: Chunk, rows: int) -> None:
        rel = chunk.table.relation
        with self.lock:
            self.left[rel] -= 1
            last = self.left[rel] == 0
            progress = self.progress[rel]
            progress.chunks_done += 1
            progress.rows_copied += rows
        if self.report and not last:
            self.report(progress)
        if not last:
            return
        # The table is copied: its indexes now, on this worker (tables in parallel).
        with dst.transaction():
            for statement in chunk.table.indexes:
                dst.execute(statement)
            dst.execute("UPDATE repl.initial_copy SET finished_at = pg_catalog.now() "
                        "WHERE schema_name = %s AND table_name = %s", (rel.schema, rel.name))
        progress.finished = time.monotonic()
        if self.report:
            self.report(progress)


def relay(src: psycopg.Connection, dst: psycopg.Connection, copy_out: sql.Composable,
          copy_in: sql.Composable, stopping: Callable[[], bool]) -> int:
    """COPY ... TO STDOUT on the source straight into COPY ... FROM STDIN on the target;
    the rows copied. Through libpq (psycopg.pq) in non-blocking mode: the source sends a
    message per row, and psycopg's Copy objects cost 2 to 4 times the CPU per row that
    this loop does (bench/README.md), which on a small server is CPU the servers lack.
    Every wait is a select() on the sockets (which lets the other workers' threads run)
    of at most WAIT_S, so a stop is noticed. On failure the target's COPY is ended, and
    the error raised is PostgreSQL's, as psycopg raises it."""
    sp, dp = src.pgconn, dst.pgconn
    sp.send_query(copy_out.as_bytes(src))
    _expect(src, _result(sp, stopping), pq.ExecStatus.COPY_OUT)
    # (Should the target refuse, the source is left in its COPY: the caller closes it.)
    dp.send_query(copy_in.as_bytes(dst))
    _expect(dst, _result(dp, stopping), pq.ExecStatus.COPY_IN)
    try:
        batch = bytearray()
        while True:
            n, data = sp.get_copy_data(1)
            if n > 0:
                batch += data
                if len(batch) >= WRITE_BYTES:
                    _put(dp, batch, stopping)
                    batch = bytearray()
            elif n == -1:  # the end (or an error: its result follows)
                break
            else:
                _wait(sp, stopping, read=True)
                sp.consume_input()
        _expect(src, _result(sp, stopping), pq.ExecStatus.COMMAND_OK)
        _drain(sp)
        if batch:
            _put(dp, batch, stopping)
        _end(dp, None, stopping)
    except BaseException:
        with contextlib.suppress(Exception):  # the target's COPY fails, its rows go
            if dp.transaction_status == pq.TransactionStatus.ACTIVE:
                _end(dp, b"the copy from the source failed", stopping)
                _drain(dp)
        raise
    done = _result(dp, stopping)
    _expect(dst, done, pq.ExecStatus.COMMAND_OK)
    _drain(dp)
    return int(done.command_tuples or 0)


def _wait(pgconn: pq.abc.PGconn, stopping: Callable[[], bool], read: bool = False,
          write: bool = False) -> None:
    if stopping():
        raise CopyStopped("the copy is stopping")
    fd = pgconn.socket
    select.select([fd] if read else [], [fd] if write else [], [], WAIT_S)


def _result(pgconn: pq.abc.PGconn, stopping: Callable[[], bool]) -> pq.abc.PGresult | None:
    while pgconn.is_busy():
        _wait(pgconn, stopping, read=True)
        pgconn.consume_input()
    return pgconn.get_result()


def _drain(pgconn: pq.abc.PGconn) -> None:
    """The results left of a query (a NULL one ends them)."""
    while pgconn.get_result() is not None:
        pass


def _expect(conn: psycopg.Connection, result: pq.abc.PGresult | None,
            status: pq.ExecStatus) -> None:
    if result is None or result.status != status:
        if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        raise psycopg.OperationalError(
            f"unexpected result of a COPY: {result.status if result else 'none'}")


def _put(pgconn: pq.abc.PGconn, data: bytes | bytearray, stopping: Callable[[], bool]) -> None:
    while pgconn.put_copy_data(data) == 0:  # libpq's buffer is full
        _wait(pgconn, stopping, write=True)
    _flush(pgconn, stopping)


def _end(pgconn: pq.abc.PGconn, error: bytes | None, stopping: Callable[[], bool]) -> None:
    while pgconn.put_copy_end(error) == 0:
        _wait(pgconn, stopping, write=True)
    _flush(pgconn, stopping)


def _flush(pgconn: pq.abc.PGconn, stopping: Callable[[], bool]) -> None:
    while pgconn.flush() == 1:  # more to send: the server may be sending too
        _wait(pgconn, stopping, read=True, write=True)
        pgconn.consume_input()


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
    try:
        with _terminate_as_interrupt(), exported_snapshot(source_dsn, slot) as (name, pid):
            with psycopg.connect(source_dsn, connect_timeout=CONNECT_TIMEOUT_S,
                                 application_name=WORKER_APPLICATION) as planner:
                planner.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                planner.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                    sql.Literal(name)))
                chunks = plan_chunks(planner, tables, options.split_bytes)
                planner.rollback()
            record_start(target, slot, pid, tables, chunks)
            copier = Copier(source_dsn, target_dsn, name, chunks, jobs, report)
            copier.run(interrupted)
            for table in tables:  # a table without a leaf to copy (no partition yet)
                if table.relation not in copier.progress:
                    target.execute("UPDATE repl.initial_copy SET finished_at = pg_catalog.now()"
                                   " WHERE schema_name = %s AND table_name = %s",
                                   (table.relation.schema, table.relation.name))
    except BaseException:
        drop_slot(source_dsn, slot)
        raise


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
