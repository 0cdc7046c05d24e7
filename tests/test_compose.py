"""docker-compose.yaml, the Dockerfile and examples/docker/repl.yaml.

No Docker engine runs in the tests: the files are parsed and checked against what the
official `postgres` image and docker compose do with them, against each other, and
against the demo, the CLI and the README.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
import typer
import yaml
from psycopg.conninfo import conninfo_to_dict

from replication.cli import app
from replication.cluster import free_port
from replication.config_file import parse_config
from replication.demo import DATABASES, config_text
from replication.metrics import listen
from replication.service.health import Health

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
DATABASE_SERVICES = ("production", "analytics", "dev")
TARGETS = ("analytics", "dev")
EXAMPLE = ROOT / "examples/docker/repl.yaml"
# The containers section moved from the README to docs/operations.md.
README = (ROOT / "docs" / "operations.md").read_text()
SUPPORTED_MAJORS = range(15, 19)  # SPEC section 8
# PostgreSQL's defaults (the same from 15 to 18) of the settings replication needs.
DEFAULTS = {"wal_level": "replica", "max_replication_slots": 10, "max_wal_senders": 10,
            "max_worker_processes": 8, "max_logical_replication_workers": 4,
            "max_sync_workers_per_subscription": 2}
DURATION = re.compile(r"(\d+(?:\.\d+)?(?:us|ms|s|m|h))+")  # compose's duration syntax


def compose_value(text: str) -> str:
    """`${VAR:-default}` as docker compose resolves it with VAR unset."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def server_settings(service: str) -> dict:
    """The settings a database service's server runs with: PostgreSQL's defaults, then
    the `-c name=value` arguments of its command. The image's entrypoint passes them to
    the server only when the command is `postgres` followed by options."""
    command = SERVICES[service].get("command", ["postgres"])
    assert command[0] == "postgres", command
    options = command[1:]
    assert options[::2] == ["-c"] * (len(options) // 2) and len(options) % 2 == 0, options
    given = dict(option.split("=", 1) for option in options[1::2])
    return {**DEFAULTS, **{k: int(v) if v.isdigit() else v for k, v in given.items()}}


def host_port(service: str) -> int:
    (mapping,) = SERVICES[service]["ports"]
    host, container = str(mapping).split(":")
    assert container == "5432", mapping  # the image's server port
    return int(host)


def repl_environment() -> dict[str, str]:
    return {k: compose_value(str(v)) for k, v in SERVICES["repl"]["environment"].items()}


def example_config():
    return parse_config(EXAMPLE.read_text(), repl_environment())


def test_compose_has_three_databases_and_repl():
    assert set(SERVICES) == {*DATABASE_SERVICES, "repl"}
    for name in DATABASE_SERVICES:
        assert SERVICES[name]["environment"]["POSTGRES_DB"] == DATABASES[name]
    assert set(example_config().targets) == set(TARGETS)


def test_compose_runs_one_supported_postgresql_the_readme_names():
    images = {SERVICES[name]["image"] for name in DATABASE_SERVICES}
    (image,) = images
    repository, major = image.split(":")
    assert repository == "postgres" and int(major) in SUPPORTED_MAJORS
    assert f"starts three PostgreSQL {major} servers" in " ".join(README.split())


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_compose_servers_are_healthy_only_once_they_take_tcp_connections(name):
    service = SERVICES[name]
    health = service["healthcheck"]
    kind, tool, *args = health["test"]
    assert (kind, tool) == ("CMD", "pg_isready")
    # TCP: while the entrypoint initializes (and loads production's sample), its
    # temporary server listens on the Unix socket only.
    assert set(args) == {"--host=127.0.0.1", "--username=postgres",
                         f"--dbname={service['environment']['POSTGRES_DB']}"}
    assert health["retries"] > 0
    for key in ("interval", "timeout", "start_period"):
        assert DURATION.fullmatch(health[key]), (key, health[key])


def test_compose_production_is_ready_for_logical_replication():
    production = server_settings("production")
    assert production["wal_level"] == "logical"
    # Per target: its subscription's slot, and a temporary slot (and a walsender) for
    # each table copied at once.
    needed = len(TARGETS) * (1 + DEFAULTS["max_sync_workers_per_subscription"])
    assert production["max_replication_slots"] >= needed
    assert production["max_wal_senders"] >= needed
    # A stalled target must not fill the disk (README, "Slots and WAL").
    assert re.fullmatch(r"\d+[kMGT]B", production["max_slot_wal_keep_size"])


@pytest.mark.parametrize("name", TARGETS)
def test_compose_targets_can_subscribe_and_copy(name):
    target = server_settings(name)
    per_subscription = 1 + target["max_sync_workers_per_subscription"]  # apply + copies
    assert target["max_logical_replication_workers"] >= per_subscription
    # The launcher and the logical replication workers are background workers.
    assert target["max_worker_processes"] >= target["max_logical_replication_workers"] + 1
    assert target["max_replication_slots"] >= 1  # replication origins, before 18


def test_compose_passwords_ports_and_the_readme_agree():
    passwords = {SERVICES[name]["environment"]["POSTGRES_PASSWORD"]
                 for name in DATABASE_SERVICES}
    assert passwords == {"${POSTGRES_PASSWORD:-repl-demo}"}
    readme = " ".join(README.split())
    assert "password `$POSTGRES_PASSWORD`, default `repl-demo`" in readme
    ports = sorted(host_port(name) for name in DATABASE_SERVICES)
    assert ports == list(range(ports[0], ports[0] + 3))  # distinct, one range
    assert f"host ports {ports[0]}–{ports[-1]}" in readme
    # The file's own header shows how to connect from the host.
    for name in DATABASE_SERVICES:
        assert (f'psql "host=localhost port={host_port(name)} dbname={DATABASES[name]} '
                'user=postgres"') in COMPOSE_TEXT


def test_compose_loads_the_demo_schema_into_production():
    mounts = [v.split(":") for v in SERVICES["production"]["volumes"]]
    init = sorted((target, source, mode) for source, target, *mode in mounts
                  if target.startswith("/docker-entrypoint-initdb.d/"))
    # The entrypoint runs them in name order into POSTGRES_DB, on the first start only.
    assert [source for _, source, _ in init] == ["./sql/demo/schema.sql", "./sql/demo/data.sql"]
    assert all(target.endswith(".sql") and mode == ["ro"] for target, _, mode in init)
    assert all((ROOT / source).is_file() for _, source, _ in init)


def test_compose_repl_service_waits_for_healthy_servers():
    repl = SERVICES["repl"]
    assert repl["build"] == "."
    assert repl["depends_on"] == {name: {"condition": "service_healthy"}
                                  for name in DATABASE_SERVICES}
    assert repl["restart"] == "on-failure"  # a pass is idempotent: a rerun converges


def test_compose_repl_service_runs_repl_run_with_real_options():
    command = SERVICES["repl"]["command"]
    assert command[:2] == ["repl", "run"]
    cli = typer.main.get_command(app)
    options = {o for p in cli.commands["run"].params for o in p.opts}
    given = {a for a in command[2:] if a.startswith("-")}
    assert given <= options, given - options
    assert float(command[command.index("--interval") + 1]) > 0
    # Published for the host: it must listen beyond the container's loopback.
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
    port = int(command[command.index("--metrics-port") + 1])
    assert SERVICES["repl"]["ports"] == [f"{port}:{port}"]
    assert f"localhost:{port}/metrics" in COMPOSE_TEXT
    readme = " ".join(README.split())
    assert "runs `repl run` with `examples/docker/repl.yaml`" in readme
    assert f"`/metrics` is on host port {port}" in readme


def metrics_port() -> int:
    command = SERVICES["repl"]["command"]
    return int(command[command.index("--metrics-port") + 1])


def test_compose_repl_service_is_healthy_by_its_healthz():
    repl = SERVICES["repl"]
    health = repl["healthcheck"]
    kind, tool, flag, script = health["test"]
    assert (kind, tool, flag) == ("CMD", "python", "-c")  # no curl in python:3.11-slim
    assert f"http://127.0.0.1:{metrics_port()}/healthz" in script
    for key in ("interval", "timeout", "start_period"):
        assert DURATION.fullmatch(health[key]), (key, health[key])
    assert health["retries"] > 0
    # SIGTERM lets the step in hand finish: more than docker's default 10 s for it.
    grace = repl["stop_grace_period"]
    assert DURATION.fullmatch(grace) and grace.endswith("s") and int(grace[:-1]) >= 30


def test_compose_healthcheck_script_fails_on_503_and_passes_on_200():
    """The check's own Python, against repl run's /healthz as served (no database: a
    health page never collects a status)."""
    script = SERVICES["repl"]["healthcheck"]["test"][3]
    health = Health(interval=10)
    port = free_port()
    server = listen(lambda: None, "127.0.0.1", port, pages={"/healthz": health.healthz})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ask = script.replace(f":{metrics_port()}/", f":{port}/")

        def check() -> int:
            return subprocess.run([sys.executable, "-c", ask], capture_output=True,
                                  timeout=30).returncode

        assert check() != 0  # no pass yet: 503
        health.acting()
        health.passed(True, 0.1, 0, 0, alarm=False)
        assert check() == 0
        health.passed(False, 0.1, 0, 0, alarm=False, error="cannot connect to source")
        assert check() != 0
    finally:
        server.shutdown()
        server.server_close()


def test_compose_repl_service_reads_the_example_config():
    repl = SERVICES["repl"]
    (mount,) = repl["volumes"]
    source, target, mode = mount.split(":")
    assert (source, mode) == ("./examples/docker/repl.yaml", "ro")
    assert (ROOT / source) == EXAMPLE and EXAMPLE.is_file()
    assert repl["environment"]["REPL_CONFIG"] == target
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ENV REPL_CONFIG={target}" in dockerfile
    # Every variable the config uses is set by the service, and none is set for nothing.
    used = set(re.findall(r"\$\{(\w+)", EXAMPLE.read_text()))
    assert used == set(repl["environment"]) - {"REPL_CONFIG"}


def test_compose_dsns_point_at_the_services():
    env = repl_environment()
    for name, variable in [("production", "PRODUCTION_DSN"), ("analytics", "ANALYTICS_DSN"),
                           ("dev", "DEV_DSN")]:
        dsn = conninfo_to_dict(env[variable])
        service = SERVICES[name]
        # By service name on compose's network: the staging servers reach production by
        # the same DSN, so the config needs no subscriber_dsn.
        assert dsn["host"] == name and dsn["port"] == "5432" and dsn["user"] == "postgres"
        assert dsn["dbname"] == service["environment"]["POSTGRES_DB"]
        assert dsn["password"] == compose_value(service["environment"]["POSTGRES_PASSWORD"])
    assert example_config().source.subscriber_dsn is None


def test_example_config_is_the_demo_config_with_compose_dsns():
    env = repl_environment()
    config = example_config()
    assert config.source.dsn == env["PRODUCTION_DSN"]
    assert {n: t.dsn for n, t in config.targets.items()} == {
        "analytics": env["ANALYTICS_DSN"], "dev": env["DEV_DSN"]}
    assert config.masking.secret is None  # REPL_MASK_SECRET unset: one secret per target
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
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")  # repl runs unprivileged
