"""Figure 5: repl's own cost on a large schema: 200 empty tables, 2 targets (one with
every column, one with a column list and masks). Times `repl plan`, `repl setup`
(no data to copy, and without --wait: what repl itself does), `repl status` once every
table is ready, a second (no-op) `setup`, and the peak resident memory of each repl
process.
"""

from __future__ import annotations

import time
from pathlib import Path

from psycopg import sql

from .data import write_config
from .servers import Servers, connect, run_repl, wait_for

DB = "ctl"
TARGETS = ("ctl_all", "ctl_masked")


def _table(i: int) -> str:
    return f"t{i:03d}"


def _schema(dsn: str, tables: int) -> None:
    with connect(dsn) as conn:
        for i in range(1, tables + 1):
            conn.execute(sql.SQL(
                "CREATE TABLE {} (id bigint PRIMARY KEY, name text, email text, "
                "amount numeric, note text, created_at timestamptz)").format(
                    sql.Identifier("public", _table(i))))


def _all_ready(dsns: list[str], tables: int) -> bool:
    for dsn in dsns:
        with connect(dsn) as conn:
            ready = conn.execute("SELECT count(*) FILTER (WHERE srsubstate = 'r') "
                                 "FROM pg_catalog.pg_subscription_rel").fetchone()[0]
        if ready < tables:
            return False
    return True


def control_plane(servers: Servers, workdir: Path, tables: int, log=print) -> dict:
    source_dsn = servers.create_db(servers.source, DB)
    _schema(source_dsn, tables)
    dsns = {name: servers.create_db(servers.target, name) for name in TARGETS}
    names = [f"public.{_table(i)}" for i in range(1, tables + 1)]
    masked = {"columns": ["id", "name", "email", "created_at"], "exclude": ["amount", "note"],
              "mask": {"name": "fake_name", "email": "email"}}
    config = write_config(workdir / "control.yaml", source_dsn, {
        "ctl_all": (dsns["ctl_all"], {t: {"columns": "all"} for t in names}),
        "ctl_masked": (dsns["ctl_masked"], {t: dict(masked) for t in names}),
    })
    runs = {"plan": run_repl(config, "plan"), "setup": run_repl(config, "setup")}
    started = time.perf_counter()
    wait_for(lambda: _all_ready(list(dsns.values()), tables), 1800, "empty tables to sync",
             interval=0.5)
    synced = time.perf_counter() - started
    runs["status"] = run_repl(config, "status", "--json", check=False)
    runs["setup_again"] = run_repl(config, "setup")
    runs["plan_again"] = run_repl(config, "plan")
    out = {"tables": tables, "targets": len(TARGETS),
           "empty_table_sync_seconds": round(synced, 1),
           "status_exit_code": runs["status"].exit_code}
    for name, run in runs.items():
        out[f"{name}_seconds"] = round(run.seconds, 3)
        out[f"{name}_max_rss_mb"] = round(run.max_rss_mb, 1)
    out["plan_plus_setup_seconds"] = round(runs["plan"].seconds + runs["setup"].seconds, 3)
    out["max_rss_mb"] = max(out[f"{n}_max_rss_mb"] for n in runs)
    log(f"  {tables} tables x {len(TARGETS)} targets: plan {runs['plan'].seconds:.2f} s, "
        f"setup {runs['setup'].seconds:.2f} s, status {runs['status'].seconds:.2f} s "
        f"(exit {runs['status'].exit_code}), second setup {runs['setup_again'].seconds:.2f} s, "
        f"peak RSS {out['max_rss_mb']:.0f} MB; empty-table syncs took {synced:.1f} s")
    return out
