"""`repl demo` end to end on a real server, and the docker-compose set-up.

No Docker engine runs in the tests: docker-compose.yaml, the Dockerfile and
examples/docker/repl.yaml are checked for agreement with each other and with the demo.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console

from replication.config_file import load_config, parse_config
from replication.demo import DATABASES, config_text, run_demo
from replication.session import Session
from replication.status import collect

from conftest import rows, wait_until

ROOT = Path(__file__).resolve().parents[1]


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


# --- docker-compose.yaml, the Dockerfile, examples/docker/repl.yaml -----------------------

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DATABASE_SERVICES = ("production", "analytics", "dev")


def compose_value(text: str) -> str:
    """`${VAR:-default}` as docker compose resolves it with VAR unset."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def settings(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")


def repl_environment() -> dict[str, str]:
    return {k: compose_value(str(v)) for k, v in SERVICES["repl"]["environment"].items()}


def test_compose_has_three_databases_and_repl():
    assert set(SERVICES) == {*DATABASE_SERVICES, "repl"}
    for name in DATABASE_SERVICES:
        service = SERVICES[name]
        assert service["image"].startswith("postgres:")
        assert service["environment"]["POSTGRES_DB"] == DATABASES[name]
        health = service["healthcheck"]
        assert "pg_isready" in health["test"] and health["retries"] > 0
        assert f"--dbname={DATABASES[name]}" in health["test"]
    host_ports = [s["ports"][0].split(":")[0] for s in map(SERVICES.get, DATABASE_SERVICES)]
    assert len(set(host_ports)) == 3


def test_compose_production_is_ready_for_logical_replication():
    production = settings(SERVICES["production"]["command"])
    assert production["wal_level"] == "logical"
    assert int(production["max_replication_slots"]) >= 4
    assert int(production["max_wal_senders"]) >= 4
    assert re.fullmatch(r"\d+[kMGT]B", production["max_slot_wal_keep_size"])


def test_compose_loads_the_demo_schema_into_production():
    mounts = [v.split(":") for v in SERVICES["production"]["volumes"]]
    init = sorted((target, source) for source, target, *_ in mounts
                  if target.startswith("/docker-entrypoint-initdb.d/"))
    assert [source for _, source in init] == ["./sql/demo/schema.sql", "./sql/demo/data.sql"]
    assert all((ROOT / source).is_file() for _, source in init)


def test_compose_repl_service_sets_up_then_watches():
    repl = SERVICES["repl"]
    assert repl["build"] == "."
    assert {name: dep["condition"] for name, dep in repl["depends_on"].items()} == \
        dict.fromkeys(DATABASE_SERVICES, "service_healthy")
    script = " ".join(repl["command"])
    assert re.search(r"repl setup --wait && (exec )?repl status --watch", script), script
    config_mount = next(v for v in repl["volumes"] if v.startswith("./examples/docker/repl.yaml:"))
    assert config_mount.split(":")[1] == repl["environment"]["REPL_CONFIG"]


def test_compose_dsns_point_at_the_services():
    env = repl_environment()
    for name, variable in [("production", "PRODUCTION_DSN"), ("analytics", "ANALYTICS_DSN"),
                           ("dev", "DEV_DSN")]:
        dsn = conninfo_to_dict(env[variable])
        service = SERVICES[dsn["host"]]
        assert dsn["host"] == name
        assert dsn["dbname"] == service["environment"]["POSTGRES_DB"]
        assert dsn["port"] == service["ports"][0].split(":")[1]
        assert dsn["password"] == compose_value(service["environment"]["POSTGRES_PASSWORD"])


def test_example_config_is_the_demo_config_with_compose_dsns():
    env = repl_environment()
    config = parse_config((ROOT / "examples/docker/repl.yaml").read_text(), env)
    assert config.source.dsn == env["PRODUCTION_DSN"]
    assert {n: t.dsn for n, t in config.targets.items()} == {
        "analytics": env["ANALYTICS_DSN"], "dev": env["DEV_DSN"]}
    demo = parse_config(config_text({n: f"dbname={db}" for n, db in DATABASES.items()}), {})
    assert config.name == demo.name
    for name, target in demo.targets.items():
        assert config.targets[name].tables == target.tables
        assert config.targets[name].roles == target.roles


def test_dockerfile_installs_the_package():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert lines[[i for i, line in enumerate(lines) if line.startswith("FROM ")][0]] == \
        "FROM python:3.11-slim"
    assert any(re.match(r"RUN pip install (--\S+ )*\.(\s|$)", line) for line in lines)
    copied = {part.rstrip("/") for line in lines if line.startswith("COPY ")
              for part in line.split()[1:-1]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {project["project"]["readme"], "pyproject.toml",
              *project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"],
              *project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]}
    assert needed <= copied, needed - copied
