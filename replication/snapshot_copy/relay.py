"""COPY ... TO STDOUT on the source straight into COPY ... FROM STDIN on the target,
through libpq in non-blocking mode (one worker's chunk; replication/snapshot_copy)."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable

import psycopg
from psycopg import pq, sql

from ..errors import CopyStopped

WRITE_BYTES = 128 * 1024  # rows passed to the target's COPY this many bytes at a time
WAIT_S = 0.2  # the longest wait on a socket: a stop is noticed this soon


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


