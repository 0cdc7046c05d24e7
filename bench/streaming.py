"""Figures 3 and 4: streaming, driven by pgbench on the source.

Each pgbench transaction updates a masked column (users.email) of a random user and
inserts one event: two changed rows, one of them masked on the dev target.

3. Apply capacity: with every subscription disabled, a burst of transactions piles up
   in the slots; then each subscription is enabled alone and timed from its apply
   worker starting to the burst's last transaction being visible on its target (a
   marker event committed after the burst; apply is in commit order, so the marker
   arrives last).
4. Freshness under load: subscriptions live, pgbench at a fixed rate; every 100 ms
   the sampler reads, per target, the newest event visible there and the source's
   pg_stat_replication (bytes of WAL not yet applied, and PostgreSQL's replay_lag).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import threading
import time
from pathlib import Path

from psycopg import sql

from replication.cluster import LocalCluster

from .servers import connect, wait_for

SCRIPT = """\\set uid random(1, {users})
\\set n random(1, 1000000000)
BEGIN;
UPDATE public.users SET email = 'user' || :uid || '.' || :n || '@mail.example.org'
  WHERE id = :uid;
INSERT INTO public.events (user_id, kind, payload, created_at)
  VALUES (:uid, 'burst', md5(:n::text), clock_timestamp());
END;
"""


def subscription(target: str) -> str:
    return f"bench_{target}"


def pgbench(binary: str, cluster: LocalCluster, dbname: str, workdir: Path, users: int,
            *options: str) -> float:
    """Run the burst script; return the tps pgbench reports."""
    script = workdir / "burst.sql"
    script.write_text(SCRIPT.format(users=users))
    cmd = [binary, "-n", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
           "-f", str(script), *options, dbname]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
    match = re.search(r"tps = ([\d.]+)", done.stdout)
    if not match:
        raise RuntimeError(f"no tps in pgbench output:\n{done.stdout[-2000:]}")
    return float(match.group(1))


def _set_enabled(dsn: str, target: str, enabled: bool) -> None:
    with connect(dsn) as conn:
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} {}").format(
            sql.Identifier(subscription(target)), sql.SQL("ENABLE" if enabled else "DISABLE")))


def _apply_worker(dsn: str, target: str) -> bool:
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT pid IS NOT NULL FROM pg_catalog.pg_stat_subscription "
            "WHERE subname = %s AND relid IS NULL", (subscription(target),)).fetchone()
        return bool(row and row[0])


def _slots_inactive(source_dsn: str, targets: list[str]) -> bool:
    with connect(source_dsn) as conn:
        return not conn.execute(
            "SELECT 1 FROM pg_catalog.pg_replication_slots WHERE active AND slot_name = ANY(%s)",
            ([subscription(t) for t in targets],)).fetchone()


def apply_capacity(source: LocalCluster, source_db: str, targets: dict[str, str],
                   binary: str, workdir: Path, users: int, burst: int, log=print) -> dict:
    """`targets` = {name: dsn}. Disable all, burst, then time each alone."""
    source_dsn = source.dsn(source_db)
    for name, dsn in targets.items():
        _set_enabled(dsn, name, False)
    wait_for(lambda: _slots_inactive(source_dsn, list(targets)), 60, "walsenders to stop")
    with connect(source_dsn) as conn:
        start_lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    clients = 2
    tps = pgbench(binary, source, source_db, workdir, users, "-c", str(clients), "-j", "2",
                  "-t", str(max(1, burst // clients)))
    transactions = clients * max(1, burst // clients)
    with connect(source_dsn) as conn:
        marker = conn.execute(
            "INSERT INTO public.events (user_id, kind, payload, created_at) "
            "VALUES (0, 'marker', 'end of burst', clock_timestamp()) RETURNING id").fetchone()[0]
        wal_bytes = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint",
                                 (start_lsn,)).fetchone()[0]
    log(f"  burst: {transactions:,} transactions at {tps:,.0f} tps, "
        f"{wal_bytes / 2**20:,.0f} MiB of WAL, subscriptions disabled")
    out: dict = {"transactions": transactions, "rows": 2 * transactions,
                 "pgbench_tps": round(tps), "wal_bytes": int(wal_bytes), "targets": {}}
    for name, dsn in targets.items():
        enabled = time.perf_counter()
        _set_enabled(dsn, name, True)
        wait_for(lambda d=dsn, n=name: _apply_worker(d, n), 60, f"{name}'s apply worker")
        started = time.perf_counter()
        with connect(dsn) as conn:
            wait_for(lambda c=conn: c.execute("SELECT 1 FROM public.events WHERE id = %s",
                                              (marker,)).fetchone(),
                     3600, f"{name} to apply the burst", interval=0.02)
        done = time.perf_counter()
        seconds = done - started
        # Both processes started at ENABLE: their CPU time is this backlog's.
        worker, sender = _pids(dsn, source_dsn, name)
        out["targets"][name] = {
            "seconds": round(seconds, 3), "seconds_from_enable": round(done - enabled, 3),
            "transactions_per_s": round(transactions / seconds),
            "rows_per_s": round(2 * transactions / seconds),
            "apply_worker_cpu_us_per_txn": _cpu_us(worker, transactions),
            "walsender_cpu_us_per_txn": _cpu_us(sender, transactions)}
        log(f"  {name}: applied the backlog in {seconds:.2f} s "
            f"({2 * transactions / seconds:,.0f} rows/s); CPU per transaction: apply worker "
            f"{out['targets'][name]['apply_worker_cpu_us_per_txn']} us, walsender "
            f"{out['targets'][name]['walsender_cpu_us_per_txn']} us")
    return out


def _pids(dsn: str, source_dsn: str, target: str) -> tuple[int | None, int | None]:
    with connect(dsn) as conn:
        worker = conn.execute("SELECT pid FROM pg_catalog.pg_stat_subscription "
                              "WHERE subname = %s AND relid IS NULL",
                              (subscription(target),)).fetchone()
    with connect(source_dsn) as conn:
        sender = conn.execute("SELECT pid FROM pg_catalog.pg_stat_replication "
                              "WHERE application_name = %s", (subscription(target),)).fetchone()
    return (worker[0] if worker else None), (sender[0] if sender else None)


def _cpu_us(pid: int | None, transactions: int) -> float | None:
    """CPU time (user + system) of a local server process so far, per transaction."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    return round(ticks / os.sysconf("SC_CLK_TCK") / transactions * 1e6, 1)


class LagSampler(threading.Thread):
    """Every `interval` s: per target, the age of its newest event and the bytes of WAL
    the source has but the target has not applied."""

    def __init__(self, source_dsn: str, targets: dict[str, str], interval: float = 0.1):
        super().__init__(daemon=True)
        self.source_dsn, self.targets, self.interval = source_dsn, targets, interval
        self.samples: list[dict] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by the caller
            self.error = exc

    def _run(self) -> None:
        subs = {subscription(t): t for t in self.targets}
        with connect(self.source_dsn) as src:
            conns = {t: connect(dsn) for t, dsn in self.targets.items()}
            try:
                while not self.stopping.is_set():
                    tick = time.perf_counter()
                    for row in src.execute(
                            "SELECT application_name, "
                            "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, "
                            "extract(epoch FROM replay_lag)::float8 "
                            "FROM pg_catalog.pg_stat_replication "
                            "WHERE application_name = ANY(%s)", (list(subs),)).fetchall():
                        self.samples.append({"target": subs[row[0]], "kind": "wal",
                                             "bytes": row[1], "replay_lag": row[2]})
                    for target, conn in conns.items():
                        now, newest = conn.execute(
                            "SELECT extract(epoch FROM clock_timestamp())::float8, "
                            "(SELECT extract(epoch FROM created_at)::float8 FROM public.events "
                            " ORDER BY id DESC LIMIT 1)").fetchone()
                        self.samples.append({"target": target, "kind": "fresh", "now": now,
                                             "newest": newest})
                    time.sleep(max(0.0, self.interval - (time.perf_counter() - tick)))
            finally:
                for conn in conns.values():
                    conn.close()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def lag_under_load(source: LocalCluster, source_db: str, targets: dict[str, str],
                   binary: str, workdir: Path, users: int, rate: int, seconds: int,
                   log=print) -> dict:
    source_dsn = source.dsn(source_db)
    sampler = LagSampler(source_dsn, targets)
    with connect(source_dsn) as conn:
        begin = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
    sampler.start()
    try:
        tps = pgbench(binary, source, source_db, workdir, users, "-c", "8", "-j", "2",
                      "-R", str(rate), "-T", str(seconds))
    finally:
        with connect(source_dsn) as conn:
            end = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8"
                               ).fetchone()[0]
        sampler.stopping.set()
        sampler.join()
    if sampler.error:
        raise sampler.error
    out: dict = {"target_tps": rate, "pgbench_tps": round(tps), "seconds": seconds,
                 "sample_interval_s": sampler.interval, "targets": {}}
    for target in targets:
        # Staleness at time t: t minus the creation time of the newest event visible
        # there, but never counted from before the burst began.
        fresh = [s["now"] - max(begin, s["newest"] or begin) for s in sampler.samples
                 if s["target"] == target and s["kind"] == "fresh" and begin <= s["now"] <= end]
        wal = [s for s in sampler.samples if s["target"] == target and s["kind"] == "wal"]
        nbytes = [float(s["bytes"]) for s in wal if s["bytes"] is not None]
        replay = [s["replay_lag"] for s in wal if s["replay_lag"] is not None]
        figures = {
            "samples": len(fresh),
            "lag_p50_s": _round(_pct(fresh, 50), 3), "lag_p99_s": _round(_pct(fresh, 99), 3),
            "lag_max_s": _round(max(fresh, default=None), 3),
            "lag_p50_bytes": _round(_pct(nbytes, 50), 0),
            "lag_p99_bytes": _round(_pct(nbytes, 99), 0),
            "replay_lag_p50_s": _round(_pct(replay, 50), 3),
            "replay_lag_p99_s": _round(_pct(replay, 99), 3)}
        out["targets"][target] = figures
        log(f"  {target}: lag p50 {figures['lag_p50_s']} s, p99 {figures['lag_p99_s']} s; "
            f"bytes p50 {figures['lag_p50_bytes']}, p99 {figures['lag_p99_bytes']} "
            f"(pgbench {tps:,.0f} tps)")
    return out


def _round(value: float | None, digits: int):
    if value is None:
        return None
    return int(round(value)) if digits == 0 else round(value, digits)
