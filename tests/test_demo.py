"""`repl demo` end to end on a real server (a server of its own: slow), and its config.
The docker-compose set-up, which runs the same demo in containers: test_compose.py."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from replication.config_file import load_config, parse_config
from replication.demo import DATABASES, config_text, run_demo
from replication.session import Session
from replication.status import collect

from conftest import rows, wait_until

# --- the demo on a real server -----------------------------------------------------------

class Demo:
    """One demo directory; every server it started is stopped at the end."""

    def __init__(self, directory: Path):
        self.directory = directory

    def run(self, **options) -> str:
        out = io.StringIO()
        code = run_demo(directory=self.directory, console=Console(file=out, width=200),
                        **options)
        assert code == 0, out.getvalue()
        return out.getvalue()

    @property
    def state(self) -> dict:
        return json.loads((self.directory / "state.json").read_text())

    def config(self):
        return load_config(self.directory / "repl.yaml", {})

    def connect(self, name: str) -> psycopg.Connection:
        config = self.config()
        dsn = config.source.dsn if name == "production" else config.targets[name].dsn
        return psycopg.connect(dsn, autocommit=True)

    def wait_healthy(self) -> None:
        with Session(self.config()) as session:
            wait_until(lambda: collect(session).healthy, timeout=90, what="a healthy status")

    def server_running(self) -> bool:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={self.state['port']} dbname=postgres "
                                 "user=postgres connect_timeout=2"):
                return True
        except psycopg.OperationalError:
            return False


@pytest.fixture
def demo(tmp_path):
    d = Demo(tmp_path / "demo")
    try:
        yield d
    finally:
        run_demo(stop=True, directory=d.directory, console=Console(file=io.StringIO()))
        datadir = Path(d.state["datadir"]) if (d.directory / "state.json").exists() else None
        if datadir and not datadir.is_relative_to(d.directory):  # root's fallback in /tmp
            shutil.rmtree(datadir.parent, ignore_errors=True)


def columns(conn: psycopg.Connection, table: str) -> list[str]:
    return [r[0] for r in rows(conn, "SELECT attname FROM pg_attribute WHERE attrelid = "
                                     "%s::regclass AND attnum > 0 AND NOT attisdropped", (table,))]


def count(conn: psycopg.Connection, query: str) -> int:
    return rows(conn, query)[0][0]


@pytest.mark.pg
@pytest.mark.slow
def test_demo_detached_replicates_and_stops(demo):
    out = demo.run(detach=True)
    with demo.connect("production") as prod, demo.connect("analytics") as analytics, \
            demo.connect("dev") as dev:
        assert count(prod, "SELECT count(*) FROM public.users") >= 10_000
        assert len(columns(analytics, "public.users")) < len(columns(prod, "public.users"))
        assert "email" not in columns(analytics, "public.users")
        wanted = count(prod, "SELECT count(*) FROM public.events WHERE kind <> 'debug'")
        assert count(analytics, "SELECT count(*) FROM public.events") == wanted
        assert wanted < count(prod, "SELECT count(*) FROM public.events")
        assert count(dev, "SELECT count(*) FROM public.users") == \
            count(prod, "SELECT count(*) FROM public.users")
        assert count(dev, "SELECT count(*) FROM public.orders") > 0
        assert "events" not in [r[0] for r in rows(dev, "SELECT tablename FROM pg_tables")]
        # Masked on the way in: no raw card number, e-mail address or birth date in dev.
        assert count(dev, "SELECT count(*) FROM public.orders WHERE card_number ~ '[0-9]{4}'") \
            == 0
        raw = {r[0] for r in rows(prod, "SELECT email FROM public.users WHERE id <= 100")}
        assert not raw & {r[0] for r in rows(dev, "SELECT email FROM public.users")}
        assert count(dev, "SELECT count(*) FROM public.users "
                          "WHERE extract(doy FROM birth_date) <> 1") == 0
    demo.wait_healthy()

    assert str(demo.directory / "repl.yaml") in out
    for database in DATABASES.values():
        assert re.search(rf'psql "host=127\.0\.0\.1 port=\d+ dbname={database} user=postgres"',
                         out), out
    assert "repl demo --stop" in out

    stopped = demo.run(stop=True)
    assert "Stopped" in stopped
    assert not demo.server_running()
    assert not (Path(demo.state["datadir"]) / "postmaster.pid").exists()
    assert "No demo server is running" in demo.run(stop=True)


@pytest.mark.pg
@pytest.mark.slow
def test_demo_second_run_resets_the_databases(demo):
    demo.run(detach=True)
    with demo.connect("production") as prod:
        system_id = count(prod, "SELECT system_identifier FROM pg_control_system()")
        prod.execute("INSERT INTO public.users (name, email, country) "
                     "VALUES ('Left Over', 'left.over@example.com', 'FR')")

    again = demo.run(detach=True)  # the server is still running: reused, databases reset
    assert "Reusing" in again and "Initializing" not in again
    with demo.connect("production") as prod, demo.connect("analytics") as analytics:
        assert count(prod, "SELECT system_identifier FROM pg_control_system()") == system_id
        assert count(prod, "SELECT count(*) FROM public.users WHERE name = 'Left Over'") == 0
        assert count(prod, "SELECT count(*) FROM pg_replication_slots "
                           "WHERE slot_name LIKE 'repl%'") == 2
        assert count(analytics, "SELECT count(*) FROM pg_subscription") == 2  # cluster-wide
        assert count(analytics, "SELECT count(*) FROM public.users") == \
            count(prod, "SELECT count(*) FROM public.users")
    demo.wait_healthy()

    demo.run(stop=True)
    restarted = demo.run(detach=True)  # stopped: started again from the same data directory
    assert "Initializing" not in restarted
    demo.wait_healthy()


@pytest.mark.pg
@pytest.mark.slow
def test_demo_in_the_foreground_stops_its_server_on_ctrl_c(demo, tmp_path):
    log = tmp_path / "demo.out"
    script = "import sys; from replication.demo import run_demo; sys.exit(run_demo())"
    env = {**os.environ, "REPL_DEMO_DIR": str(demo.directory),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(lambda: "Ctrl-C" in log.read_text() or proc.poll() is not None,
                   timeout=120, what="the demo to be ready")
        assert proc.poll() is None, log.read_text()
        assert demo.server_running()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Stopped the demo server" in log.read_text()
    assert not demo.server_running()


def test_demo_config_is_valid_and_shows_every_feature():
    dsns = {name: f"host=127.0.0.1 port=54329 dbname={db} user=postgres"
            for name, db in DATABASES.items()}
    config = parse_config(config_text(dsns), {})
    tables = [t for target in config.targets.values() for t in target.tables.values()]
    assert any(t.columns != "all" for t in tables) and any(t.where for t in tables)
    assert any(t.operations == {"insert"} for t in tables)
    strategies = {m.strategy for t in tables for m in t.mask.values()}
    assert {"fake_name", "email", "partial", "date_trunc", "redact"} <= strategies
    assert all(target.roles for target in config.targets.values())
    assert config.targets["dev"].dsn == dsns["dev"]
