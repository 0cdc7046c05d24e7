"""status figures (issue 6): lag with its basis, the stable JSON shape, a target that
cannot be reached, `status --watch`, and the same figures in Prometheus format."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from psycopg import sql

from replication.cluster import free_port
from replication.config_file import load_config
from replication.metrics import serve
from replication.status import fresh_report

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, email text);
INSERT INTO public.users SELECT g, 'u' || g, 'u' || g || '@example.com'
  FROM generate_series(1, 200) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: s3cret-for-tests}
targets:
  analytics:
    dsn: "{target:analytics}"
    tables:
      public.users: {columns: [name], exclude: [email]}
  dev:
    dsn: "%s"
    tables:
      public.users: {columns: [name, email], mask: {email: email}}
"""

# The documented shape of `status --json` (docs/commands.md, "status --json"): fields may be added,
# never removed or renamed without a new "format".
REPORT_KEYS = {"format", "source", "source_version", "targets", "problems", "warnings",
               "healthy"}
TARGET_KEYS = {"target", "database", "reachable", "server_version", "subscription",
               "subscription_exists", "enabled", "disable_on_error", "worker_running",
               "slot_exists", "slot_active", "wal_status", "retained_bytes", "safe_wal_size",
               "lag_bytes", "lag_seconds", "lag_basis", "apply_errors", "sync_errors",
               "tables", "drift", "problems", "warnings", "healthy"}
TABLE_KEYS = {"table", "state", "rows_copied", "estimated_rows", "copy_seconds",
              "rows_per_second", "eta_seconds", "indexes_waiting"}


def status_json(repl, cfg, expect=None) -> dict:
    return json.loads(repl("status", "--json", config=cfg, expect=expect).stdout)


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(match.group(2))
    return None


def test_status_shape_lag_and_metrics(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "{target:dev}")
    repl("setup", "--wait", "--timeout", "120", config=cfg)

    # Idle and caught up: PostgreSQL blanks replay_lag, status still says 0 s and why.
    def caught_up() -> dict | None:
        r = status_json(repl, cfg)
        done = r["healthy"] and all(t["lag_basis"] == "caught up" for t in r["targets"])
        return r if done else None

    report = wait_until(caught_up, what="targets caught up")
    assert set(report) == REPORT_KEYS and report["format"] == 1
    assert [t["target"] for t in report["targets"]] == ["analytics", "dev"]
    for target in report["targets"]:
        assert set(target) == TARGET_KEYS and target["lag_seconds"] == 0.0
        assert [t["table"] for t in target["tables"]] == ["public.users"]
        assert all(set(t) == TABLE_KEYS and t["state"] == "ready" for t in target["tables"])

    text = repl("metrics", config=cfg).stdout
    assert metric(text, "repl_up") == 1 and metric(text, "repl_healthy") == 1
    for name in ("analytics", "dev"):
        assert metric(text, "repl_target_healthy", target=name) == 1
        assert metric(text, "repl_table_state", target=name, table="public.users",
                      state="ready") == 1
        assert metric(text, "repl_table_state", target=name, table="public.users",
                      state="copying") == 0
        assert metric(text, "repl_slot_retained_wal_bytes", target=name) >= 0
        # Another database's WAL (same cluster) may have arrived since: no longer 0 then.
        lag = metric(text, "repl_lag_seconds", target=name)
        assert metric(text, "repl_lag_bytes", target=name) is not None
        assert lag is None or 0 <= lag < 10
    assert "# TYPE repl_apply_errors_total counter" in text

    # Served over HTTP, one collection per scrape.
    config = load_config(cfg, os.environ)

    def collect_once():
        return fresh_report(config)

    port, ready, stop = free_port(), threading.Event(), threading.Event()
    server = threading.Thread(target=serve, args=(collect_once, "127.0.0.1", port, ready, stop),
                              daemon=True)
    server.start()
    try:
        assert ready.wait(10)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            served = resp.read().decode()
        assert metric(served, "repl_target_healthy", target="dev") == 1
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=30)
        assert missing.value.code == 404
    finally:
        stop.set()
        server.join(10)


def test_unreachable_target_is_reported_with_its_growing_slot(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "{target:dev}")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as tgt:  # the target "goes away": nothing consumes its slot
        tgt.execute("ALTER SUBSCRIPTION repl_dev DISABLE")
    with env.source() as src:
        wait_until(lambda: rows(src, "SELECT active FROM pg_replication_slots "
                                     "WHERE slot_name = 'repl_dev'") == [(False,)],
                   what="slot inactive")
    dead = env.write_config(CONFIG % f"host=127.0.0.1 port={free_port()} dbname=dev "
                            "user=postgres connect_timeout=3", name="dead.yaml")

    seen = []
    for n in range(3):
        with env.source() as src:
            src.execute("INSERT INTO public.users SELECT g, 'x', 'x' FROM "
                        "generate_series(1000 + %s * 2000, 2999 + %s * 2000) g", (n, n))
        report = status_json(repl, dead, expect=1)
        analytics, dev = report["targets"]
        assert analytics["healthy"] is True and analytics["reachable"] is True
        assert dev["reachable"] is False and dev["healthy"] is False
        assert any(p.startswith("target unreachable: cannot connect to target dev")
                   for p in dev["problems"])
        assert dev["slot_exists"] is True and dev["slot_active"] is False
        assert any("has no consumer" in w for w in dev["warnings"])
        seen.append(dev["retained_bytes"])
    assert seen[0] < seen[1] < seen[2], seen

    human = repl("status", config=dead, expect=1).stdout
    assert "UNREACHABLE" in human and "UNHEALTHY: dev" in human
    text = repl("metrics", config=dead).stdout
    assert metric(text, "repl_target_reachable", target="dev") == 0
    assert metric(text, "repl_target_reachable", target="analytics") == 1
    assert metric(text, "repl_slot_active", target="dev") == 0
    assert metric(text, "repl_healthy") == 0

    repl("setup", config=cfg)  # enables it again; the backlog arrives
    with env.target("dev") as tgt:
        wait_until(lambda: rows(tgt, "SELECT count(*) FROM public.users") == [(6200,)],
                   what="backlog applied")


def watch_json(cfg, reports: int) -> list[dict]:
    """The reports `status --watch --json` printed until it had printed `reports` of them
    (within a minute), then stopped with Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "replication", "-c", str(cfg), "status", "--watch", "--json",
         "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: sum(line == "}\n" for line in lines) >= reports, 60,
                   f"{reports} reports of status --watch")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(10)
        stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    stdout = "".join(lines)
    return [json.loads(chunk) for chunk in re.split(r"(?<=\n})\n(?=\{)", stdout.strip())]


def test_status_watch_streams_reports_until_interrupted(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "{target:dev}")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    reports = watch_json(cfg, 2)
    assert len(reports) >= 2 and all(r["format"] == 1 for r in reports)

    # A source that cannot be reached is a report of its own, and watching goes on.
    dead = env.write_config(CONFIG.replace('"{source}"', f'"host=127.0.0.1 port={free_port()} '
                                           'dbname=x user=postgres"') % "{target:dev}",
                            name="dead.yaml")
    frames = watch_json(dead, 2)
    assert len(frames) >= 2 and all(f["healthy"] is False for f in frames)
    assert all(f["error"].startswith("cannot connect to source") for f in frames)


SLOW_COPY = """
version: 1
source: {dsn: "{source}"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.users:
        columns: [name]
        exclude: [email]
        # A mask that sleeps 2 ms a row: the copy lasts long enough to be watched.
        mask: {name: {sql: "(SELECT value FROM pg_catalog.pg_sleep(0.002))"}}
"""


def test_status_shows_copy_progress_and_eta(env_any, repl):
    env = env_any
    env.run_source(SCHEMA + "INSERT INTO public.users SELECT g, 'u', 'e' "
                            "FROM generate_series(201, 3000) g; ANALYZE public.users;")
    cfg = env.write_config(SLOW_COPY)
    # PostgreSQL's table sync copies in the background (a copy from a snapshot is shown
    # while setup runs it: test_snapshot_copy.py).
    repl("setup", "--table-sync", config=cfg)

    def copying() -> dict | None:
        (dev,) = status_json(repl, cfg, expect=1)["targets"]
        (users,) = dev["tables"]
        return users if users["state"] == "copying" and users["rows_copied"] else None

    users = wait_until(copying, timeout=30, what="a copy in progress")
    assert users["estimated_rows"] == 3000
    assert 0 < users["rows_copied"] < 3000 and users["copy_seconds"] > 0
    assert users["rows_per_second"] == pytest.approx(users["rows_copied"]
                                                     / users["copy_seconds"])
    assert users["eta_seconds"] == pytest.approx(
        (3000 - users["rows_copied"]) / users["rows_per_second"])
    human = repl("status", config=cfg, expect=1).stdout
    assert "rows/s" in human and "ETA" in human and "copying" in human
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.users") == [(3000,)]


def test_status_watch_redraws_in_place_on_a_terminal(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "{target:dev}")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "replication", "-c", str(cfg), "status", "--watch",
         "--interval", "0.3"], stdin=terminal, stdout=terminal, stderr=terminal,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "200", "LINES": "60"})
    os.close(terminal)
    screen = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and screen.count(b"healthy: every target") < 3:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                screen += os.read(controller, 65536)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        os.close(controller)
    assert screen.count(b"healthy: every target") >= 3, screen[-2000:]
    # Redrawn, not scrolled: the cursor goes back up over the previous report.
    assert re.search(rb"\x1b\[\d*A", screen), screen[-2000:]


FILTERED = """
version: 1
source: {dsn: "{source}"}
targets:
  analytics:
    dsn: "{target:analytics}"
    tables:
      public.users: {columns: [name], exclude: [email], where: "%s"}
"""


def test_status_does_not_parse_known_row_filters_on_the_source_again(env_any, repl):
    """Parsing a filter takes a transaction ID and writes WAL on production: status
    reuses what the last setup recorded, and parses only a filter whose text changed."""
    env = env_any
    env.run_source(SCHEMA)
    with env.source() as src:  # every DDL statement of a new session goes to the log
        src.execute(sql.SQL("ALTER DATABASE {} SET log_statement = 'ddl'").format(
            sql.Identifier(env.source_db)))
    cfg = env.write_config(FILTERED % "id > 10")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    log = env.source_cluster.logfile

    def probes_during(*args: str, expect: int) -> int:
        start = log.stat().st_size
        repl(*args, config=cfg, expect=expect)
        with log.open("rb") as f:
            f.seek(start)
            return f.read().count(b'CREATE PUBLICATION "repl_probe_')

    assert probes_during("status", expect=0) == 0
    assert probes_during("metrics", expect=0) == 0
    assert probes_during("check", expect=0) == 1  # check always asks the source
    cfg.write_text(cfg.read_text().replace("id > 10", "id > 20"))
    assert probes_during("status", expect=1) == 1  # changed text: drift, found by parsing
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    assert probes_during("status", expect=0) == 0
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT config_text, canonical FROM repl.row_filter") == \
            [("id > 20", "(id > 20)")]
