"""A route repl does not offer (yet), measured with plain PostgreSQL: one table copied by
several subscriptions at once, each publishing a key range of it (a row filter on the
primary key, which is safe for UPDATE and DELETE), so that the copy, and later the
apply, run in several processes.

Run on a target that repl has just set up (its table, masking trigger and keys stay):
repl's subscription is disabled, the table emptied, and `parts` native subscriptions
copy it again; afterwards they are dropped and repl's subscription enabled again.
"""

from __future__ import annotations

import time

from psycopg import sql

from .servers import connect, wait_for

POLL_S = 0.02


def _states(conn, prefix: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT s.subname, r.srsubstate::text FROM pg_catalog.pg_subscription_rel AS r "
        "JOIN pg_catalog.pg_subscription AS s ON s.oid = r.srsubid "
        "WHERE s.subname LIKE %s", (prefix + "%",)).fetchall()


def split_copy(source_dsn: str, target_dsn: str, repl_subscription: str, rows: int,
               parts: int, log=print) -> dict:
    prefix = f"{repl_subscription}_part"
    names = [f"{prefix}{i}" for i in range(parts)]
    bounds = [1 + rows * i // parts for i in range(parts)] + [rows + 1]
    with connect(source_dsn) as src, connect(target_dsn) as tgt:
        tgt.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(
            sql.Identifier(repl_subscription)))
        tgt.execute("TRUNCATE public.users")
        for name, lo, hi in zip(names, bounds, bounds[1:], strict=False):
            src.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE public.users "
                                "WHERE (id >= {} AND id < {})").format(
                sql.Identifier(name), sql.Literal(lo), sql.Literal(hi)))
        first_copy: float | None = None
        done: dict[str, float] = {}
        try:
            for name in names:
                tgt.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} "
                                    "WITH (copy_data = true)").format(
                    sql.Identifier(name), sql.Literal(source_dsn), sql.Identifier(name)))
            created = time.perf_counter()
            deadline = time.monotonic() + 7200
            while len(done) < parts:
                now = time.perf_counter()
                for sub, state in _states(tgt, prefix):
                    if state == "d" and first_copy is None:
                        first_copy = now
                    if state in ("f", "s", "r"):
                        done.setdefault(sub, now)
                if time.monotonic() > deadline:
                    raise RuntimeError("split copy did not finish")
                time.sleep(POLL_S)
            got = tgt.execute("SELECT count(*) FROM public.users").fetchone()[0]
            if got != rows:
                raise RuntimeError(f"split copy: {got} rows, expected {rows}")
        finally:
            for name in names:
                tgt.execute(sql.SQL("DROP SUBSCRIPTION IF EXISTS {}").format(
                    sql.Identifier(name)))
                src.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(
                    sql.Identifier(name)))
            tgt.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(
                sql.Identifier(repl_subscription)))
        wait_for(lambda: not src.execute(
            "SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name LIKE %s",
            (prefix + "%",)).fetchone(), 60, "split slots to go")
    seconds = max(max(done.values()) - (first_copy or created), POLL_S)
    result = {"parts": parts, "rows": rows, "copy_seconds": round(seconds, 3),
              "rows_per_s": round(rows / seconds)}
    log(f"  {repl_subscription} users over {parts} subscriptions: {seconds:.2f} s "
        f"({result['rows_per_s']:,} rows/s)")
    return result
