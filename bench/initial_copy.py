"""Figure 1: the initial copy through repl (`repl setup TARGET --wait`), masked and not.

Two figures per copy: the wall time of `repl setup --wait` (what a user waits for:
validation, DDL, worker start, the copies, then production's indexes built on the
target), and per table the copy itself, from the table sync worker taking the table
(state d, datasync) to the copy being done (f, s or r), as seen by polling
pg_subscription_rel on the target every 20 ms. The indexes repl built are counted.
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

    def copy_seconds(self, table: str, started: float) -> float:
        """From the copy's start (d, else the first sighting, else setup's start) to
        the first state past the copy."""
        states = self.seen.get(table, {})
        begin = states.get("d") or min(states.values(), default=started)
        done = min((states[s] for s in ("f", "s", "r") if s in states), default=None)
        if done is None:
            raise RuntimeError(f"{table}: copy end not observed ({states})")
        return max(done - begin, POLL_S)


def copy_target(servers: Servers, workdir: Path, source_dsn: str, name: str,
                tables: tuple[str, ...], masked: bool, rows: dict[str, int],
                log=print) -> dict:
    """Create target `name`, run `repl setup name --wait` on it and time it."""
    dsn = servers.create_db(servers.target, name)
    config = write_config(workdir / f"{name}.yaml", source_dsn,
                          {name: (dsn, table_config(masked, tables))})
    watcher = SyncWatcher(dsn)
    watcher.start()
    started = time.perf_counter()
    try:
        run = run_repl(config, "setup", name, "--wait", "--timeout", "7200")
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
        seconds = watcher.copy_seconds(table, started)
        per_table[table] = {"rows": rows[table], "copy_seconds": round(seconds, 3),
                            "rows_per_s": round(rows[table] / seconds)}
    result = {"target": name, "masked": masked, "rows": total,
              "setup_wait_seconds": round(run.seconds, 3),
              "rows_per_s": round(total / run.seconds), "tables": per_table,
              "indexes_built": built,
              "repl_max_rss_mb": round(run.max_rss_mb, 1)}
    log(f"  {name}: {total:,} rows in {run.seconds:.2f} s "
        f"({result['rows_per_s']:,} rows/s, {built} indexes built); " + ", ".join(
            f"{t} copy {v['copy_seconds']:.2f} s ({v['rows_per_s']:,} rows/s)"
            for t, v in per_table.items()))
    return result


def teardown(servers: Servers, workdir: Path, name: str) -> None:
    """Remove a target entirely (its subscription, slot and database)."""
    run_repl(workdir / f"{name}.yaml", "teardown", name, "--drop-tables")
    servers.drop_db(servers.target, name)
