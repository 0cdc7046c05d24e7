"""The workers of an initial copy from a snapshot: threads, each with a connection to
either side, taking the largest chunk left; a chunk is one transaction on the target,
retried whole; the table's indexes built by the worker that finished it."""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from .. import guard
from ..db import APPLICATION_NAME, CONNECT_TIMEOUT_S
from ..errors import ApplyError, CopyStopped, ReplError
from ..names import QualifiedName, ident
from ..redact import redact
from .relay import relay

if TYPE_CHECKING:
    from . import Chunk

CHUNK_TRIES = 3  # a chunk is tried this often before the copy gives up
RETRY_PAUSE_S = 1.0
LOCK_TIMEOUT_S = 5.0  # a chunk waits this long for a lock production holds, then again...
LOCK_WAIT_BUDGET_S = 300.0  # ... this long in all, before the copy gives up
WAIT_S = 0.2  # how often the main thread looks at the workers and the interruptions
HALT_S = 15.0  # for the workers to end once their statements are cancelled
WORKER_APPLICATION = f"{APPLICATION_NAME} copy"
# Held by a chunk's transaction on the target (two int4 keys: the table, the chunk).
CHUNK_LOCK = sql.SQL("SELECT pg_catalog.pg_advisory_xact_lock(%s, %s)")
# As PostgreSQL's walreceiver pins them: values leave the source in a form the target
# reads back the same, whatever the roles' and databases' settings.
SESSION = {"search_path": "pg_catalog, pg_temp", "datestyle": "ISO",
           "intervalstyle": "postgres", "extra_float_digits": "3"}
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3, "tcp_user_timeout": 30_000}


class TableRewritten(ReplError):
    """A table was rewritten on production during the copy: not to be retried."""


def chunk_key(chunk: Chunk) -> tuple[int, int]:
    digest = hashlib.sha256(f"repl copy {chunk.table.relation}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True), chunk.number


def connect_worker(dsn: str, encoding: str) -> psycopg.Connection:
    """A connection of the copy, to either side: autocommit, the session pinned, the
    target's encoding as the client's (the source converts to it, or says it cannot),
    and keepalives, so that a dead network ends a wait within a minute."""
    conn = psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                           application_name=WORKER_APPLICATION, client_encoding=encoding,
                           **KEEPALIVES)
    try:
        for name, value in SESSION.items():
            conn.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
    except BaseException:
        conn.close()
        raise
    return conn


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


class Copier:
    """Runs the chunks on `jobs` threads, each with a connection to either side."""

    def __init__(self, source_dsn: str, target_dsn: str, snapshot: str, chunks: list[Chunk],
                 jobs: int, report: CopyReport | None, encoding: str):
        self.source_dsn, self.target_dsn, self.snapshot = source_dsn, target_dsn, snapshot
        self.encoding = encoding  # the target's: both sides' client encoding
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
                if self.failure is not None and not self.stop.is_set():
                    self._halt()
                    self._join(HALT_S)  # cancelled statements end at once; else abandoned
                    break
        except BaseException:  # KeyboardInterrupt, SystemExit: stop the workers first
            self._halt()
            self._join(HALT_S)
            raise
        if self.failure is not None:
            raise self.failure

    def _join(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for t in self.threads:
            t.join(max(deadline - time.monotonic(), 0))

    def _halt(self) -> None:
        """Stop taking chunks and cancel the statements under way."""
        self.stop.set()
        with self.lock:
            for conn in list(self.connections):
                with contextlib.suppress(Exception):
                    conn.cancel_safe(timeout=5)  # psycopg >= 3.2

    def _connect(self, dsn: str) -> psycopg.Connection:
        conn = connect_worker(dsn, self.encoding)
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
                attempt, locked_out = 0, 0.0
                while attempt < CHUNK_TRIES:
                    attempt += 1
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
                        if isinstance(exc, psycopg.errors.LockNotAvailable) and \
                                locked_out < LOCK_WAIT_BUDGET_S:
                            # Production holds a lock (a migration): wait, without a try.
                            attempt -= 1
                            locked_out += LOCK_TIMEOUT_S + RETRY_PAUSE_S
                        elif attempt == CHUNK_TRIES:
                            raise ApplyError(
                                f"the copy of {chunk.table.relation} (from {chunk.source}) "
                                f"failed {CHUNK_TRIES} times: {redact(str(exc)).strip()}"
                            ) from None
                        if locked_out >= LOCK_WAIT_BUDGET_S:
                            raise ApplyError(
                                f"the copy of {chunk.table.relation} (from {chunk.source}) "
                                f"waited {LOCK_WAIT_BUDGET_S:.0f} s for a lock production "
                                "holds on it (a migration?); run `repl setup` again once "
                                "it is done") from None
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
            dst.execute(CHUNK_LOCK, chunk_key(chunk))  # see _recorded
            with src.transaction():
                src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                src.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                    sql.Literal(self.snapshot)))
                # A chunk may take long; a lock production holds (a migration's ACCESS
                # EXCLUSIVE) is not waited for longer than repl's other source statements
                # wait: the chunk fails and is tried again.
                src.execute("SET LOCAL statement_timeout = 0")
                src.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
                    sql.Literal(f"{LOCK_TIMEOUT_S:.0f}s")))
                src.execute(sql.SQL("LOCK TABLE ONLY {} IN ACCESS SHARE MODE").format(
                    ident(chunk.source)))
                # A rewrite on production since the snapshot (ALTER TABLE that rewrites,
                # TRUNCATE, VACUUM FULL, CLUSTER) is not MVCC-safe: the snapshot would see
                # the table empty, or its rows at other ctids. The copy cannot go on.
                (now,) = src.execute("SELECT pg_catalog.pg_relation_filenode(%s::regclass)",
                                     (ident(chunk.source).as_string(src),)).fetchone()
                if now != chunk.filenode:
                    raise TableRewritten(
                        f"{chunk.source} was rewritten on production during the copy (an "
                        "ALTER TABLE that rewrites it, TRUNCATE, VACUUM FULL or CLUSTER): "
                        "the snapshot no longer sees its rows; run `repl setup` again")
                rows = relay(src, dst, chunk.copy_out(), chunk.table.copy_in(),
                             self.stop.is_set)
            dst.execute("UPDATE repl.initial_copy SET chunks_done = chunks_done + 1, "
                        "rows_copied = rows_copied + %s, done_chunks = done_chunks || %s "
                        "WHERE schema_name = %s AND table_name = %s",
                        (rows, chunk.number, rel.schema, rel.name))
        return rows

    @staticmethod
    def _recorded(dst: psycopg.Connection, chunk: Chunk) -> bool:
        """Whether an earlier try of the chunk committed. Its transaction held the chunk's
        advisory lock: taking it waits for a commit still under way on the target (the
        connection to it lost meanwhile), so the record read after is final."""
        rel = chunk.table.relation
        with dst.transaction():
            dst.execute(CHUNK_LOCK, chunk_key(chunk))
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
