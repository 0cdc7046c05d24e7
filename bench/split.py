"""A route repl does not offer (yet), measured with plain PostgreSQL: one table copied by
several subscriptions at once, each publishing a key range of it (a row filter on the
primary key, which is safe for UPDATE and DELETE), so that the copy, and later the
apply, run in several processes.

Run on a target that repl has just set up (its tables, masking trigger, keys and the
indexes it built after production's stay, so these copies maintain them, unlike repl's):
repl's subscription is disabled, the tables emptied, and one native subscription per
part copies them again: users split into `parts` key ranges, every other table whole.
Afterwards they are dropped and repl's subscription is enabled again (the source has
not changed meanwhile, so it resumes where it was).
"""

from __future__ import annotations

import time

from psycopg import sql

from replication.guard import bypass

from .servers import connect, wait_for

POLL_S = 0.02


def _states(conn, prefix: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT s.subname, r.srsubstate::text FROM pg_catalog.pg_subscription_rel AS r "
        "JOIN pg_catalog.pg_subscription AS s ON s.oid = r.srsubid "
        "WHERE s.subname LIKE %s", (prefix + "%",)).fetchall()


def _publications(rows: int, parts: int, others: tuple[str, ...]) -> list[sql.Composable]:
    """What each part's publication holds: a key range of users, or another table."""
    bounds = [1 + rows * i // parts for i in range(parts)] + [rows + 1]
    out: list[sql.Composable] = [
        sql.SQL("public.users WHERE (id >= {} AND id < {})").format(
            sql.Literal(lo), sql.Literal(hi)) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    out += [sql.Identifier(*table.split(".")) for table in others]
    return out


def split_copy(source_dsn: str, target_dsn: str, repl_subscription: str,
               counts: dict[str, int], parts: int, log=print) -> dict:
    """Copy `counts`' tables (public.users and others) again over native subscriptions."""
    rows = counts["public.users"]
    others = tuple(t for t in counts if t != "public.users")
    contents = _publications(rows, parts, others)
    prefix = f"{repl_subscription}_part"
    names = [f"{prefix}{i}" for i in range(len(contents))]
    with connect(source_dsn) as src, connect(target_dsn) as tgt:
        tgt.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(
            sql.Identifier(repl_subscription)))
        with tgt.transaction():  # behind repl's back: past its read-only guard
            tgt.execute(bypass())
            tgt.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(
                sql.Identifier(*t.split(".")) for t in counts)))
        for name, content in zip(names, contents, strict=True):
            src.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(name), content))
        first_copy: float | None = None
        done: dict[str, float] = {}
        try:
            creating = time.perf_counter()
            for name in names:
                tgt.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} "
                                    "WITH (copy_data = true)").format(
                    sql.Identifier(name), sql.Literal(source_dsn), sql.Identifier(name)))
            created = time.perf_counter()
            deadline = time.monotonic() + 7200
            while len(done) < len(names):
                now = time.perf_counter()
                for sub, state in _states(tgt, prefix):
                    if state == "d" and first_copy is None:
                        first_copy = now
                    if state in ("f", "s", "r"):
                        done.setdefault(sub, now)
                if time.monotonic() > deadline:
                    raise RuntimeError("split copy did not finish")
                time.sleep(POLL_S)
            for table, expected in counts.items():
                got = tgt.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(*table.split(".")))).fetchone()[0]
                if got != expected:
                    raise RuntimeError(f"split copy: {table} has {got} rows, not {expected}")
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
    total = sum(counts.values())
    wall = max(done.values()) - creating
    result = {"subscriptions": len(names), "users_parts": parts, "rows": total,
              "copy_seconds": round(seconds, 3), "rows_per_s": round(total / seconds),
              "wall_seconds": round(wall, 3), "wall_rows_per_s": round(total / wall)}
    log(f"  {repl_subscription} again over {len(names)} native subscriptions (users in "
        f"{parts} key ranges): copy {seconds:.2f} s ({result['rows_per_s']:,} rows/s), "
        f"{wall:.2f} s from CREATE SUBSCRIPTION ({result['wall_rows_per_s']:,} rows/s)")
    return result
