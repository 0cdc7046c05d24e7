"""A new target's initial copy from one exported snapshot by several workers
(replication/snapshot_copy.py): production writes throughout, and every row arrives
once, filtered, masked and partitioned tables alike; a worker killed mid-chunk; setup
stopped (SIGTERM) and killed (SIGKILL) mid-copy, then run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from psycopg import sql

from conftest import StreamOfWrites, admin, rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.users (
    id bigint PRIMARY KEY,
    email text,
    country text NOT NULL,
    mood public.mood,
    score int NOT NULL,
    joined date NOT NULL DEFAULT date '2024-03-01',
    ratio float8 NOT NULL DEFAULT 0.1
);
CREATE INDEX users_country_idx ON public.users (country);
INSERT INTO public.users
SELECT g, 'u' || g || '@corp.example', CASE WHEN g % 3 = 0 THEN 'FR' ELSE 'DE' END,
       (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::public.mood, g,
       date '2025-01-02' + g % 300, g / 3.0
  FROM generate_series(1, 6000) AS g;
CREATE TABLE public.events (
    id bigint NOT NULL,
    day date NOT NULL,
    kind text NOT NULL,
    payload text,
    PRIMARY KEY (id, day)
) PARTITION BY RANGE (day);
CREATE TABLE public.events_2025 PARTITION OF public.events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.events_2026 PARTITION OF public.events
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO public.events
SELECT g, date '2025-06-01' + (g % 400), CASE WHEN g % 4 = 0 THEN 'debug' ELSE 'click' END,
       repeat('p', 40)
  FROM generate_series(1, 12000) AS g;
CREATE TABLE public.ledger (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, note text);
INSERT INTO public.ledger SELECT g, g * 1.25, repeat('n', 60) FROM generate_series(1, 9000) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "snapshot copy secret"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.users:
        columns: all
        mask: {email: email}
        where: "id % 5 <> 0"
      public.events:
        columns: all
        where: "day >= '2025-09-01'"
      public.ledger: {columns: all}
"""

# Per table: the rows production has for the target, and the same read on the target.
EXPECTED = {
    "public.users": ("SELECT id, country, mood::text, score, joined, ratio FROM public.users "
                     "WHERE id % 5 <> 0 ORDER BY id",
                     "SELECT id, country, mood::text, score, joined, ratio FROM public.users "
                     "ORDER BY id"),
    "public.events": ("SELECT id, day, kind, payload FROM public.events "
                      "WHERE day >= '2025-09-01' ORDER BY id, day",
                      "SELECT id, day, kind, payload FROM public.events ORDER BY id, day"),
    "public.ledger": ("SELECT id, amount, note FROM public.ledger ORDER BY id",) * 2,
}


class ProductionWrites(StreamOfWrites):
    """Inserts, updates and deletes on every table, on both sides of every filter."""

    def __init__(self, dsn: str):
        self.n = 100_000
        super().__init__(dsn, self.statements, pause=0.005)

    def statements(self):
        self.n += 1
        n = self.n
        values = {"n": n, "email": f"w{n}@corp.example", "other": f"x{n}@corp.example",
                  "user": n % 6000 + 1, "gone_user": (n * 7) % 6000 + 1,
                  "day": n % 400, "kind": "debug" if n % 2 else "click", "payload": f"u{n}",
                  "event": n % 12000 + 1, "gone_event": (n * 13) % 12000 + 1,
                  "entry": n % 9000 + 1}
        literals = {k: sql.Literal(v) for k, v in values.items()}
        return [sql.SQL(text).format(**literals) for text in (
            "INSERT INTO public.users VALUES ({n}, {email}, 'DE', 'ok', {n})",
            "UPDATE public.users SET score = score + 1, email = {other} WHERE id = {user}",
            "DELETE FROM public.users WHERE id = {gone_user}",
            "INSERT INTO public.events VALUES ({n}, date '2025-06-01' + {day}, {kind}, 'w')",
            "UPDATE public.events SET kind = 'click', payload = {payload} WHERE id = {event}",
            "DELETE FROM public.events WHERE id = {gone_event}",
            "INSERT INTO public.ledger VALUES ({n}, {n} + 0.5, 'w')",
            "UPDATE public.ledger SET amount = amount + 1 WHERE id = {entry}",
        )]


def caught_up(env) -> bool:
    """The target has everything production committed (the slot confirmed it)."""
    with env.source() as src:
        return rows(src, "SELECT confirmed_flush_lsn >= pg_current_wal_lsn() FROM "
                         "pg_replication_slots WHERE slot_name = 'repl_dev'") == [(True,)]


def assert_same_rows(env) -> None:
    with env.source() as src, env.target("dev") as dev:
        for conn in (src, dev):  # read both as they are, whatever the databases set
            conn.execute("SET datestyle = 'ISO'; SET extra_float_digits = 3")
        for table, (production, target) in EXPECTED.items():
            want, got = rows(src, production), rows(dev, target)
            assert want, f"{table}: no rows to compare"
            assert got == want, f"{table}: {len(got)} rows on the target, {len(want)} wanted"
        # Every masked value differs from production's; none is raw.
        raw = rows(dev, "SELECT count(*) FROM public.users WHERE email LIKE '%@corp.example'")
        assert raw == [(0,)]


def copies(env) -> dict[str, tuple[int, int, bool]]:
    with env.target("dev") as dev:
        return {t: (chunks, done, finished) for t, chunks, done, finished in rows(
            dev, "SELECT schema_name || '.' || table_name, chunks, chunks_done, "
                 "finished_at IS NOT NULL FROM repl.initial_copy")}


def test_copy_from_a_snapshot_while_production_writes(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    # Sessions on either side that print dates and floats their own way: users is copied
    # as text (its enum), and must arrive as production has it.
    with admin(env.source_cluster.dsn()) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET datestyle = 'SQL, DMY'").format(
            sql.Identifier(env.source_db)))
        conn.execute(sql.SQL("ALTER DATABASE {} SET extra_float_digits = 0").format(
            sql.Identifier(env.source_db)))
    with admin(env.target_cluster.dsn()) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET datestyle = 'SQL, MDY'").format(
            sql.Identifier(env.target_dbs["dev"])))
    planned = repl("plan", config=cfg).stdout
    assert "CREATE_REPLICATION_SLOT \"repl_dev\" LOGICAL pgoutput (SNAPSHOT 'export')" in planned
    assert "copy_data = false" in planned

    with ProductionWrites(env.source_dsn) as writes:
        before = writes.committed
        result = repl("setup", "--jobs", "3", "--split-larger-than", "64kB", config=cfg)
        during = writes.committed - before
        time.sleep(0.5)
    assert during > 0, "production wrote nothing while the copy ran"
    assert "from a snapshot of the source" in result.stdout
    assert "public.ledger copied" in result.stdout

    # Big tables were cut into page ranges, the partitioned one by partition; all done.
    done = copies(env)
    assert done["public.ledger"][0] > 1 and done["public.events"][0] >= 2
    assert all(chunks == finished_chunks and finished
               for chunks, finished_chunks, finished in done.values())
    with env.target("dev") as dev:
        # The subscription streams from the snapshot's position: no table sync at all.
        assert rows(dev, "SELECT DISTINCT srsubstate FROM pg_subscription_rel") == [("r",)]
        # Production's index, built after the copy.
        assert rows(dev, "SELECT count(*) FROM pg_indexes WHERE tablename = 'users' "
                         "AND indexdef LIKE '%(country)%'") == [(1,)]
    wait_until(lambda: caught_up(env), 90, "the target to catch up")
    assert_same_rows(env)
    repl("verify", config=cfg)
    with env.source() as src:
        assert rows(src, "SELECT slot_name FROM pg_replication_slots ORDER BY 1") == [
            ("repl_dev",)]
    assert "Nothing to do" in repl("setup", config=cfg).stdout
    status = json.loads(repl("status", "--json", config=cfg).stdout)
    assert {t["state"] for t in status["targets"][0]["tables"]} == {"ready"}


def test_a_worker_killed_mid_chunk_is_retried(env_any, repl):
    env = env_any
    env.run_source(SCHEMA + "INSERT INTO public.ledger SELECT g, g, repeat('m', 200) "
                            "FROM generate_series(9001, 60000) g;")
    cfg = env.write_config(CONFIG)
    killed: list[int] = []
    stop = threading.Event()

    def kill_one_worker() -> None:
        with env.target("dev") as dev:
            while not stop.is_set() and not killed:
                # A worker inside a chunk: its COPY running, or its transaction open.
                for (pid,) in rows(dev, "SELECT pid FROM pg_stat_activity WHERE "
                                        "application_name = 'repl copy' AND state <> 'idle' "
                                        "AND query LIKE 'COPY%%' LIMIT 1"):
                    if rows(dev, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]:
                        killed.append(pid)
                time.sleep(0.005)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    try:
        repl("setup", "--jobs", "2", "--split-larger-than", "64kB", config=cfg)
    finally:
        stop.set()
        killer.join(10)
    assert killed, "no worker was caught in a chunk"
    wait_until(lambda: caught_up(env), 90, "the target to catch up")
    assert_same_rows(env)


def test_setup_stopped_and_killed_mid_copy_then_run_again(env_any, repl, tmp_path):
    env = env_any
    # Big enough that the copy is still under way when it is interrupted.
    env.run_source(SCHEMA + "INSERT INTO public.ledger SELECT g, g, repeat('m', 300) "
                            "FROM generate_series(9001, 150000) g; ANALYZE public.ledger;")
    cfg = env.write_config(CONFIG)

    def setup_process() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "replication", "-c", str(cfg), "setup", "--jobs", "2",
             "--split-larger-than", "256kB"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def walsenders() -> set[int]:
        with env.target("dev") as dev:
            return {pid for (pid,) in rows(dev, "SELECT walsender_pid FROM repl.initial_copy")}

    def mid_copy(before: frozenset[int] = frozenset()) -> bool:
        """A copy (not one of those before) has committed chunks and is not done."""
        try:
            done, pids = copies(env), walsenders()
        except psycopg.errors.UndefinedTable:
            return False
        return not pids & before and any(d > 0 for _, d, _ in done.values()) and not all(
            f for _, _, f in done.values())

    # SIGTERM: the copy stops, its slot is dropped, status says what happened.
    proc = setup_process()
    try:
        wait_until(mid_copy, 120, "the copy under way")
        status = json.loads(repl("status", "--json", config=cfg, expect=1).stdout)
        (ledger,) = [t for t in status["targets"][0]["tables"] if t["table"] == "public.ledger"]
        assert ledger["state"] == "copying" and ledger["rows_copied"] > 0, ledger
        assert ledger["rows_per_second"] > 0 and ledger["eta_seconds"] is not None
        assert any("the initial copy from a snapshot of the source is under way" in p
                   for p in status["targets"][0]["problems"])
        # A second setup meanwhile changes nothing (it would empty the tables copied).
        second = repl("setup", config=cfg, expect=1)
        assert "target dev: another repl setup is converging it: backend pid" in \
            second.stderr, second.stderr
        with env.target("dev") as dev:  # nothing emptied: what was copied is there
            assert rows(dev, "SELECT count(*) FROM public.ledger")[0][0] >= \
                ledger["rows_copied"] > 0
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode not in (0, None) and "SIGTERM" in err, err
    with env.source() as src:
        assert rows(src, "SELECT count(*) FROM pg_replication_slots") == [(0,)]
    status = repl("status", config=cfg, expect=1).stdout
    assert "the initial copy from a snapshot stopped at" in status

    # A rewrite of a table on production during the copy (VACUUM FULL here): the
    # snapshot no longer sees its rows where they were; the copy stops and says so.
    before = frozenset(walsenders())
    proc = setup_process()
    try:
        wait_until(lambda: mid_copy(before), 120, "the copy under way again")
        with env.source() as src:
            src.execute("VACUUM FULL public.ledger")
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "public.ledger was rewritten on production during " \
        "the copy" in err, err
    with env.source() as src:
        assert rows(src, "SELECT count(*) FROM pg_replication_slots") == [(0,)]

    # SIGKILL: nothing is cleaned up; the slot stays, and status says why.
    first = frozenset(walsenders())
    proc = setup_process()
    try:
        wait_until(lambda: mid_copy(first), 120, "the copy under way again")
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    wait_until(lambda: "stopped at" in repl("status", config=cfg, expect=1).stdout, 30,
               "status to tell the copy stopped")
    with env.source() as src:
        assert rows(src, "SELECT slot_name FROM pg_replication_slots") == [("repl_dev",)]

    # setup again: a new slot and snapshot, the tables emptied and copied anew.
    result = repl("setup", "--wait", "--timeout", "120", config=cfg)
    assert "drop replication slot repl_dev: a new one is made" in result.stdout
    wait_until(lambda: caught_up(env), 90, "the target to catch up")
    assert_same_rows(env)
    assert "Nothing to do" in repl("setup", config=cfg).stdout


def test_table_sync_on_request(env_any, repl):
    """`--table-sync`: PostgreSQL's table sync copies, as before; the same rows."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    result = repl("setup", "--table-sync", "--wait", "--timeout", "120", config=cfg)
    assert "create replication slot repl_dev" in result.stdout
    assert "from a snapshot" not in result.stdout
    with env.target("dev") as dev:
        assert rows(dev, "SELECT to_regclass('repl.initial_copy') IS NOT NULL AND NOT EXISTS "
                         "(SELECT FROM repl.initial_copy)") == [(True,)]
    wait_until(lambda: caught_up(env), 90, "the target to catch up")
    assert_same_rows(env)


def test_slot_creation_waits_for_running_transactions_within_a_bound(env_any, repl,
                                                                     monkeypatch):
    """A logical slot starts where no transaction runs: one left open on production makes
    the slot's creation wait, which stops at its bound with the cause and the way out;
    production's transaction is untouched, and nothing is left behind."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    monkeypatch.setattr("replication.slots.CREATE_TIMEOUT_S", 3.0)
    with env.source() as open_txn:
        open_txn.execute("BEGIN")
        open_txn.execute("INSERT INTO public.ledger VALUES (-1, 1, 'open')")
        failed = repl("setup", config=cfg, expect=1)
        open_txn.execute("COMMIT")
    assert "creating replication slot repl_dev waited 3 s for the transactions running " \
           "on the source to end" in failed.stderr, failed.stderr
    with env.source() as src:
        assert rows(src, "SELECT count(*) FROM public.ledger WHERE id = -1") == [(1,)]
        assert rows(src, "SELECT count(*) FROM pg_replication_slots") == [(0,)]
    repl("setup", config=cfg)
    wait_until(lambda: caught_up(env), 90, "the target to catch up")
    assert_same_rows(env)
