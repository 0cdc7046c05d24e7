"""The benchmark's throw-away clusters (source and targets on separate servers), its
databases, and repl run as a child process with its peak memory measured.

Every cluster started here is stopped on the way out, also on failure or Ctrl-C
(try/finally in the caller plus an atexit hook).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from replication.cluster import Installation, LocalCluster, installations

# Throw-away clusters: durability is not what is measured (fsync off makes a flush a
# mere write()). Both sides get the same settings, so comparisons stay fair.
# synchronous_commit stays on: a walsender sends only flushed WAL, so with it off every
# commit would reach the targets up to 3 x wal_writer_delay late, which a production
# source (default: on) does not do.
SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_retrieve_retry_interval": "1s",
    "autovacuum": "off",
    "max_slot_wal_keep_size": "16GB",
}


def installation(major: int) -> Installation:
    for inst in installations():
        if inst.major == major:
            return inst
    found = ", ".join(str(i.major) for i in installations()) or "none"
    raise SystemExit(f"PostgreSQL {major} not found (found: {found})")


def pgbench_path(inst: Installation) -> str:
    """The installation's pgbench, else the one on PATH (Debian's /usr/bin/pgbench)."""
    own = inst.bindir / "pgbench"
    if own.exists():
        return str(own)
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found")
    return found


class Servers:
    """A source cluster and a target cluster of one major version."""

    def __init__(self, major: int, workdir: Path | None = None) -> None:
        self.inst = installation(major)
        self.base = Path(tempfile.mkdtemp(prefix="repl-bench-", dir=workdir))
        self.source = LocalCluster(self.inst, self.base / "source")
        self.target = LocalCluster(self.inst, self.base / "target")
        self._started: list[LocalCluster] = []
        atexit.register(self.stop)

    def start(self) -> None:
        for cluster in (self.source, self.target):
            cluster.init(SETTINGS)
            cluster.start()
            self._started.append(cluster)

    def stop(self) -> None:
        for cluster in self._started:
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
        self._started.clear()
        shutil.rmtree(self.base, ignore_errors=True)

    def version(self) -> str:
        with connect(self.source.dsn()) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def create_db(self, cluster: LocalCluster, name: str) -> str:
        with connect(cluster.dsn()) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return cluster.dsn(name)

    def drop_db(self, cluster: LocalCluster, name: str) -> None:
        with connect(cluster.dsn()) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


@dataclass
class Run:
    """One finished child process: its wall time, exit code, peak resident memory and
    CPU time (user + system, all its threads)."""

    seconds: float
    exit_code: int
    max_rss_mb: float
    output: str
    cpu_seconds: float = 0.0


def repl_command() -> list[str]:
    """repl as installed next to this interpreter, else through its module."""
    script = Path(sys.executable).with_name("repl")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "replication.cli"]


def run_repl(config: Path, *args: str, check: bool = True, timeout: float = 3600) -> Run:
    """Run `repl -c config args...` as a child; measure its wall time, peak memory and
    CPU time.

    Peak memory is the child's VmHWM, polled from /proc while it runs (it only grows).
    Not ru_maxrss: Linux starts a child's ru_maxrss at the high-water mark of the
    address space it was forked from, so wait4() and RUSAGE_CHILDREN would report
    this benchmark's own size (hundreds of MB after the trigger profile) for repl.
    CPU time is wait4()'s rusage of the child (ru_utime + ru_stime): unlike ru_maxrss
    it starts at zero in the child.
    """
    log = config.with_name(f"repl-{args[0]}-{time.monotonic_ns()}.log")
    with open(log, "w+b") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([*repl_command(), "-c", str(config), *args], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        deadline = started + timeout
        peak_kb = 0
        while True:
            peak_kb = max(peak_kb, _hwm_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"repl {' '.join(args)} timed out after {timeout:.0f} s")
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    log.unlink(missing_ok=True)
    run = Run(seconds, proc.returncode, peak_kb / 1024, text,
              usage.ru_utime + usage.ru_stime)
    if check and run.exit_code != 0:
        raise RuntimeError(f"repl {' '.join(args)} exited {run.exit_code}:\n{text[-3000:]}")
    return run


def _hwm_kb(pid: int) -> int:
    """The peak resident set size of a running process, in kB (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
