"""The workers of an initial copy from a snapshot: threads, each with a connection to
either side, taking the largest chunk left; a chunk is one transaction on the target,
retried whole; the table's indexes built by the worker that finished it."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from .. import guard
from ..db import APPLICATION_NAME, CONNECT_TIMEOUT_S, SOURCE_LOCK_TIMEOUT
from ..errors import ApplyError, CopyStopped
from ..names import QualifiedName
from ..redact import redact
from .relay import relay

if TYPE_CHECKING:
    from . import Chunk

CHUNK_TRIES = 3  # a chunk is tried this often before the copy gives up
RETRY_PAUSE_S = 1.0
WAIT_S = 0.2  # how often the main thread looks at the workers and the interruptions
WORKER_APPLICATION = f"{APPLICATION_NAME} copy"


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
                # A chunk may take long; a lock production holds (a migration's ACCESS
                # EXCLUSIVE) is not waited for longer than repl's other source statements
                # wait: the chunk fails and is tried again.
                src.execute("SET LOCAL statement_timeout = 0")
                src.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
                    sql.Literal(SOURCE_LOCK_TIMEOUT)))
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
