"""One `repl run` per config (SPEC section 3): a session-level advisory lock on the
source, held by a connection of its own for as long as the process acts; who holds it,
told to the others; and the fence every step passes first.

Why this is safe across a network partition (the holder cut off from the source, or
frozen, while another process waits):

- The lock lives exactly as long as the holder's backend on the source. The holder asks
  that backend to end itself when the holder goes silent: `idle_session_timeout`, TCP
  keepalives and `tcp_user_timeout` (set in the session, and in libpq for the client's
  side) all come to `SERVER_GRACE_S`. While the holder lives, a heartbeat queries the
  connection every `HEARTBEAT_S`, so the session is never idle that long.
- So the server frees the lock no sooner than `SERVER_GRACE_S` after the last round trip
  that found it held. The holder acts only within `FENCE_S` (less than that) of such a
  round trip: before every step it makes one (`confirm`), and a watchdog cancels the
  statements under way once `FENCE_S` passes without one. When a waiting process can
  take the lock, the former holder has stopped starting steps for several seconds.
- The check is of the lock itself (pg_locks, this backend), not only of the connection:
  a pooler in transaction mode, which would hand the session to someone else, fails it.

What remains is what no lock can take back: a statement that a server received before
the cancel reached it. Each step is one transaction or one statement, and the plan is
recomputed from the catalogs by whoever acts next (an interrupted setup converges).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..db import Database, connect
from ..errors import ReplError

# The first key of every repl run lock ("repl" in ASCII); the second is the config's name.
LOCK_CLASS = 0x7265706C
HEARTBEAT_S = 1.0
SERVER_GRACE_S = 10
FENCE_S = 5.0
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 4, 2, 3  # 4 + 2 * 3 = 10 s
PING_TIMEOUT = "5s"  # the server's bound on the lock queries
APPLICATION = re.compile(r"repl run (\d+)@(.*)")


class LockLost(ReplError):
    """This process no longer holds its config's lock (or cannot confirm it in time)."""


def lock_key(config_name: str) -> int:
    """The second key of the config's lock: a digest of its name, as a positive int4."""
    return int.from_bytes(hashlib.sha256(config_name.encode()).digest()[:4], "big") & 0x7FFFFFFF


def application_name(pid: int | None = None, host: str | None = None) -> str:
    """How the lock's session names its process to whoever finds the lock taken; within
    PostgreSQL's 63 bytes."""
    text = f"repl run {pid or os.getpid()}@{host or socket.gethostname()}"
    return text.encode()[:63].decode(errors="ignore")


@dataclass(frozen=True)
class Holder:
    """The process holding a config's lock, as the source sees it."""

    backend_pid: int
    application_name: str | None
    client_addr: str | None
    since: datetime | None

    def describe(self) -> str:
        if not self.backend_pid:
            return "a process that took and released it as repl looked"
        found = APPLICATION.fullmatch(self.application_name or "")
        who = (f"process {found[1]} on host {found[2]}" if found else
               f"a session named {self.application_name!r}" if self.application_name else
               "a session this role may not see the details of")
        where = f" (connected from {self.client_addr})" if self.client_addr else ""
        since = f", since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return f"{who}{where}{since}, backend pid {self.backend_pid} on the source"


class RunLock:
    """The config's lock on the source. `try_take` until it is taken; then `confirm`
    before every step. `on_lost` is called (from another thread) when the lock is lost or
    unconfirmed for FENCE_S: stop what is under way."""

    def __init__(self, dsn: str, config_name: str, on_lost: Callable[[], None]):
        self.dsn, self.on_lost = dsn, on_lost
        self.params = {"class": LOCK_CLASS, "key": lock_key(config_name), "pid": 0}
        self.db: Database | None = None
        self.confirmed_at = 0.0  # monotonic time a round trip that found the lock was sent
        self.lost = threading.Event()
        self._threads: list[threading.Thread] = []
        self._quit = threading.Event()

    @property
    def held(self) -> bool:
        return self.db is not None and self.was_taken and not self.lost.is_set()

    @property
    def was_taken(self) -> bool:
        """Taken on this session, whether or not it is still held."""
        return bool(self.params["pid"])

    def _connect(self) -> Database:
        db = connect(self.dsn, "source", source=True,
                     application_name=application_name(), keepalives=1,
                     keepalives_idle=KEEPALIVE_IDLE_S, keepalives_interval=KEEPALIVE_INTERVAL_S,
                     keepalives_count=KEEPALIVE_COUNT, tcp_user_timeout=SERVER_GRACE_S * 1000)
        try:  # the server's side of the same bounds (SET: every one is a user setting)
            for name, value in (("idle_session_timeout", f"{SERVER_GRACE_S}s"),
                                ("tcp_keepalives_idle", str(KEEPALIVE_IDLE_S)),
                                ("tcp_keepalives_interval", str(KEEPALIVE_INTERVAL_S)),
                                ("tcp_keepalives_count", str(KEEPALIVE_COUNT)),
                                ("tcp_user_timeout", f"{SERVER_GRACE_S}s"),
                                ("statement_timeout", PING_TIMEOUT)):
                db.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
        except psycopg.Error:
            db.close()
            raise
        return db

    def try_take(self) -> Holder | None:
        """Take the lock if it is free (None), else who holds it. Raises ConnectError
        when the source cannot be reached, psycopg.Error when the connection fails."""
        if self.held:
            return None
        if self.was_taken:  # on this session, and lost: start afresh
            self.release()
        if self.db is None:
            self.db = self._connect()
        try:
            for _ in range(2):  # the holder may let go between the two queries
                sent = time.monotonic()
                (row,) = self.db.query("run/lock_take", self.params)
                if row["taken"]:
                    self.params["pid"], self.confirmed_at = row["pid"], sent
                    self.lost.clear()
                    self._start_heartbeat()
                    return None
                for h in self.db.query("run/lock_holder", self.params):
                    return Holder(h["pid"], h["application_name"], h["client_addr"],
                                  h["backend_start"])
        except psycopg.Error:
            self._drop()
            raise
        return Holder(0, None, None, None)

    def confirm(self) -> None:
        """One round trip that finds the lock held, within FENCE_S; LockLost else."""
        if not self.held:
            raise LockLost("the lock of this config on the source is lost")
        if not self._ping():
            raise LockLost("the lock of this config on the source is lost: its session "
                           "ended or cannot be reached")
        if time.monotonic() - self.confirmed_at >= FENCE_S:
            self._lose()
            raise LockLost(f"the lock of this config could not be confirmed within "
                           f"{FENCE_S:.0f} s")

    def fresh(self) -> bool:
        """Held, and confirmed less than FENCE_S ago (no round trip: for waits)."""
        return self.held and time.monotonic() - self.confirmed_at < FENCE_S

    def _ping(self) -> bool:
        db = self.db
        if db is None:
            return False
        sent = time.monotonic()
        try:
            (row,) = db.query("run/lock_held", self.params)
        except (psycopg.Error, ValueError):
            row = {"held": False}
        if not row["held"]:
            self._lose()
            return False
        self.confirmed_at = max(self.confirmed_at, sent)
        return True

    def _lose(self) -> None:
        if not self.lost.is_set():
            self.lost.set()
            self.on_lost()

    def _start_heartbeat(self) -> None:
        self._quit.clear()

        def heartbeat() -> None:  # keeps the session busy, so the server keeps it
            while not self._quit.wait(HEARTBEAT_S) and not self.lost.is_set():
                self._ping()

        def watchdog() -> None:  # a ping can hang in a partition: time says it first
            while not self._quit.wait(0.25) and not self.lost.is_set():
                if time.monotonic() - self.confirmed_at >= FENCE_S:
                    self._lose()

        self._threads = [threading.Thread(target=t, daemon=True, name=f"repl-lock-{t.__name__}")
                         for t in (heartbeat, watchdog)]
        for thread in self._threads:
            thread.start()

    def _drop(self) -> None:
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.close()  # the backend ends, and with it the lock
        self.db = None

    def release(self) -> None:
        """Give the lock back (ending its session) and stop the heartbeat."""
        self._quit.set()
        for thread in self._threads:  # a ping under way normally ends in milliseconds
            if thread is not threading.current_thread():
                thread.join(HEARTBEAT_S + 1)
        self._threads = []
        self._drop()
        self.params["pid"] = 0
