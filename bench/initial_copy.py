"""Figure 1: the initial copy through repl (`repl setup TARGET --wait`), masked and not,
by PostgreSQL's table sync (`--table-sync`) or from one exported snapshot with `--jobs`
workers (repl's default for a new target).

Per copy: the wall time of `repl setup --wait` (what a user waits for: validation, DDL,
the copies, production's indexes built on the target), the CPU time (user + system) and
peak resident memory of that repl process, and per table the copy itself:

- table sync: from the table sync worker taking the table (state d, datasync) to the
  copy being done (f, s or r), polled in pg_subscription_rel every 20 ms;
- snapshot copy: pg_subscription_rel says nothing (the subscription is created after the
  copy, every table 'r' at once), so repl.initial_copy is polled instead, every 20 ms:
  from the first COPY into the table (pg_stat_progress_copy; else the copy's
  started_at) to its last chunk committed (chunks_done = chunks), its indexes not
  included; and, exact from the table, started_at -> finished_at (the copy's start to
  the table done, indexes included: the time a table waits for a worker counts).

The indexes repl built are counted.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from psycopg import sql

from .data import table_config, write_config
from .servers import Servers, connect, run_repl

POLL_S = 0.02


class SyncWatcher(threading.Thread):
    """Records when each table of a target's subscription is first seen in each state."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.seen: dict[str, dict[str, float]] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        with connect(self.dsn) as conn:
            while not self.stopping.is_set():
                now = time.perf_counter()
                for table, state in conn.execute(
                        "SELECT n.nspname || '.' || c.relname, r.srsubstate::text "
                        "FROM pg_catalog.pg_subscription_rel AS r "
                        "JOIN pg_catalog.pg_class AS c ON c.oid = r.srrelid "
                        "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
                        ).fetchall():
                    self.seen.setdefault(table, {}).setdefault(state, now)
                time.sleep(POLL_S)

    def figures(self, table: str, started: float) -> dict:
        return {"copy_seconds": round(self.copy_seconds(table, started), 3)}

    def copy_seconds(self, table: str, started: float) -> float:
        """From the copy's start (d, else the first sighting, else setup's start) to
        the first state past the copy."""
        states = self.seen.get(table, {})
        begin = states.get("d") or min(states.values(), default=started)
        done = min((states[s] for s in ("f", "s", "r") if s in states), default=None)
        if done is None:
            raise RuntimeError(f"{table}: copy end not observed ({states})")
        return max(done - begin, POLL_S)


class SnapshotWatcher(threading.Thread):
    """Follows a copy from a snapshot in repl.initial_copy (and pg_stat_progress_copy),
    in the target server's clock, the one started_at and finished_at are in."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.first_copy: dict[str, float] = {}  # first COPY into the table seen
        self.chunks_done: dict[str, float] = {}  # chunks_done = chunks first seen
        self.rows: dict[str, tuple] = {}  # the last row read of each table
        self.stopping = threading.Event()

    def run(self) -> None:
        with connect(self.dsn) as conn:
            while not self.stopping.is_set():
                self.poll(conn)
                time.sleep(POLL_S)
            self.poll(conn)  # the final state, once setup has returned

    def poll(self, conn) -> None:
        now, = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        for table, in conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_stat_progress_copy AS p "
                "JOIN pg_catalog.pg_class AS c ON c.oid = p.relid "
                "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
                "WHERE p.datname = current_database() AND p.command = 'COPY FROM'").fetchall():
            self.first_copy.setdefault(table, now)
        if not conn.execute("SELECT to_regclass('repl.initial_copy') IS NOT NULL").fetchone()[0]:
            return  # setup has not made it yet
        for row in conn.execute(
                "SELECT schema_name || '.' || table_name, chunks, chunks_done, rows_copied, "
                "extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8 "
                "FROM repl.initial_copy").fetchall():
            table, chunks, done = row[0], row[1], row[2]
            self.rows[table] = row
            if done >= chunks:
                self.chunks_done.setdefault(table, now)

    def figures(self, table: str, started: float) -> dict:
        if table not in self.rows:
            raise RuntimeError(f"{table}: not in repl.initial_copy (was it copied by table sync?)")
        _, chunks, done, rows, begun, finished = self.rows[table]
        if finished is None or done < chunks:
            raise RuntimeError(f"{table}: copy not finished ({done}/{chunks} chunks)")
        end = min(self.chunks_done.get(table, finished), finished)
        start = min(self.first_copy.get(table, begun), end)
        return {"copy_seconds": round(max(end - start, POLL_S), 3),
                "started_to_finished_seconds": round(finished - begun, 3),
                "chunks": chunks, "rows_copied": rows}


def copy_target(servers: Servers, workdir: Path, source_dsn: str, name: str,
                tables: tuple[str, ...], masked: bool, rows: dict[str, int],
                log=print, jobs: int | None = None, split: str | None = None) -> dict:
    """Create target `name`, run `repl setup name --wait` on it and time it: with
    `--table-sync` if `jobs` is None, else from a snapshot with `--jobs jobs` (and
    `--split-larger-than split`)."""
    dsn = servers.create_db(servers.target, name)
    config = write_config(workdir / f"{name}.yaml", source_dsn,
                          {name: (dsn, table_config(masked, tables))})
    if jobs is None:
        method, options = "table_sync", ["--table-sync"]
        watcher: SyncWatcher | SnapshotWatcher = SyncWatcher(dsn)
    else:
        method, options = "snapshot", ["--jobs", str(jobs)]
        if split:
            options += ["--split-larger-than", split]
        watcher = SnapshotWatcher(dsn)
    watcher.start()
    started = time.perf_counter()
    try:
        run = run_repl(config, "setup", name, "--wait", "--timeout", "7200", *options)
    finally:
        watcher.stopping.set()
        watcher.join()
    total = sum(rows[t] for t in tables)
    with connect(dsn) as conn:
        for table in tables:
            got = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(*table.split(".")))).fetchone()[0]
            if got != rows[table]:
                raise RuntimeError(f"{name}: {table} has {got} rows, expected {rows[table]}")
        built = conn.execute("SELECT count(*) FROM pg_catalog.pg_index AS i WHERE "
                             "pg_catalog.obj_description(i.indexrelid, 'pg_class') "
                             "LIKE 'repl: production''s index %'").fetchone()[0]
    per_table = {}
    for table in tables:
        figures = watcher.figures(table, started)
        per_table[table] = {"rows": rows[table], **figures,
                            "rows_per_s": round(rows[table] / figures["copy_seconds"])}
    result = {"target": name, "masked": masked, "method": method, "jobs": jobs,
              "split_larger_than": split if jobs is not None else None, "rows": total,
              "setup_wait_seconds": round(run.seconds, 3),
              "rows_per_s": round(total / run.seconds), "tables": per_table,
              "indexes_built": built,
              "repl_cpu_seconds": round(run.cpu_seconds, 3),
              "repl_max_rss_mb": round(run.max_rss_mb, 1)}
    how = "table sync" if jobs is None else f"snapshot, {jobs} job{'' if jobs == 1 else 's'}"
    log(f"  {name} ({how}): {total:,} rows in {run.seconds:.2f} s "
        f"({result['rows_per_s']:,} rows/s, {built} indexes built; repl CPU "
        f"{run.cpu_seconds:.2f} s, {run.max_rss_mb:.0f} MB); " + ", ".join(
            f"{t} copy {v['copy_seconds']:.2f} s ({v['rows_per_s']:,} rows/s)"
            for t, v in per_table.items()))
    return result


def teardown(servers: Servers, workdir: Path, name: str) -> None:
    """Remove a target entirely (its subscription, slot and database)."""
    run_repl(workdir / f"{name}.yaml", "teardown", name, "--drop-tables")
    servers.drop_db(servers.target, name)
