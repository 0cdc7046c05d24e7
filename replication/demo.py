"""`repl demo`: a local PostgreSQL with sample data, replicated into two staging databases.

Owns the demo's directory (`./.repl-demo/`, or `$REPL_DEMO_DIR`): the cluster in it,
`state.json` (data directory, port, pid, binaries) by which `--stop` and the next run
find the server, and the `repl.yaml` the demo used. Each run resets the three demo
databases and reloads the sample schema and data (plain SQL in `sql/demo/`, which
docker-compose.yaml loads too); setup and status go through the same library calls as
`repl setup --wait` and `repl status`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from string import Template

import psycopg
from psycopg import sql
from rich.console import Console
from rich.text import Text

from . import render, slots, workflow
from .cluster import Installation, LocalCluster, default_installation, free_port, installations
from .config_file import load_config
from .errors import UsageError
from .names import QualifiedName
from .plan import Plan
from .plan.subscription import drop_statements
from .progress import CopyBars
from .resources import load_sql, resource_dir
from .session import Session
from .status import collect

DEFAULT_DIR = ".repl-demo"
PORT = 54329  # preferred; any free port when it is taken
DATABASES = {"production": "production_db", "analytics": "analytics_staging_db",
             "dev": "dev_staging_db"}
SETTINGS = {"wal_retrieve_retry_interval": "1s"}  # replication workers restart quickly
SYNC_TIMEOUT_S = 300.0
TABLES = [QualifiedName("public", name) for name in ("users", "events", "orders")]
SAMPLE_ROWS = {TABLES[0]: (1, 2, 3), TABLES[2]: (1, 2)}  # ids shown side by side

CONFIG = Template("""\
# The configuration `repl demo` used: production_db replicated into two staging
# databases of the same server. Edit it, then: repl -c $path plan (or setup, status).
version: 1
name: repl

source:
  dsn: "$production"

targets:
  # Analysts: no personal data, and no debug events.
  analytics:
    dsn: "$analytics"
    tables:
      public.users:
        columns: [id, country, plan, created_at]
        exclude: [name, email, phone, birth_date]
      public.orders:
        columns: [id, user_id, amount, currency, status, created_at]
        exclude: [card_number]
      public.events:
        columns: all
        where: "kind <> 'debug'"
        operations: [insert]        # an append-only log: the filter may use any column
    roles:
      analyst: read

  # Developers: the full shape of users and orders, personal data masked.
  dev:
    dsn: "$dev"
    tables:
      public.users:
        columns: [id, name, email, phone, birth_date, country, plan, created_at]
        mask:
          name: fake_name
          email: email
          phone: {partial: {keep_last: 4}}
          birth_date: {date_trunc: year}
      public.orders:
        columns: all
        mask:
          card_number: redact
    roles:
      developer: read
""")


def config_text(dsns: dict[str, str], path: str = "repl.yaml") -> str:
    """The demo's repl.yaml for DSNs keyed production, analytics, dev."""
    return CONFIG.substitute(dsns, path=path)


def run_demo(detach: bool = False, stop: bool = False, directory: Path | None = None,
             console: Console | None = None) -> int:
    """Run the demo (SPEC section 3) and return its exit code.

    Raises ReplError (and KeyboardInterrupt) after stopping the server it started or reused.
    """
    con = console or render.console()
    where = Path(directory or os.environ.get("REPL_DEMO_DIR") or DEFAULT_DIR).absolute()
    if detach and stop:
        raise UsageError("--detach and --stop cannot be combined")
    if stop:
        return _stop(where, con)
    cluster, installation = _start(where, con)
    keep = False
    # `kill` and `docker stop` send SIGTERM: clean up as for Ctrl-C.
    main = not detach and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    try:
        dsns = {name: cluster.dsn(db) for name, db in DATABASES.items()}
        _reset_databases(cluster, con)
        _load_sample(dsns["production"], con)
        config_path = where / "repl.yaml"
        config_path.write_text(config_text(dsns, str(config_path)))
        con.print(f"Wrote the configuration to {config_path}", markup=False)
        _setup(config_path, con)
        _show_rows(con, dsns)
        _show_connections(con, dsns, installation, config_path)
        if detach:
            keep = True
            env = "" if where == Path(DEFAULT_DIR).absolute() else f"REPL_DEMO_DIR={where} "
            con.print(f"\nThe demo server keeps running on port {cluster.port}. "
                      f"Stop it with: {env}repl demo --stop", markup=False)
            return 0
        con.print("\nThe demo runs until you press Ctrl-C.")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
        return 0
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        if not keep:
            cluster.stop()
            _write_state(where, cluster, installation)
            con.print(f"Stopped the demo server (its data stays in {cluster.datadir}).",
                      markup=False)


# --- the server ------------------------------------------------------------------------

def _recorded(directory: Path) -> tuple[dict, Path | None, Installation | None]:
    """The state file, the data directory it names, and binaries of that directory's
    major version (None when it was never initialized or they are gone)."""
    try:
        state = json.loads((directory / "state.json").read_text())
        datadir = Path(state["datadir"])
        major = int((datadir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None, None
    found = [i for i in installations() if i.major == major]
    same = [i for i in found if str(i.bindir) == state.get("bindir")]
    return state, datadir, (same or found or [None])[0]


def _write_state(directory: Path, cluster: LocalCluster, installation: Installation) -> None:
    pid = None
    with contextlib.suppress(OSError, ValueError):
        pid = int((cluster.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    state = {"datadir": str(cluster.datadir), "port": cluster.port, "pid": pid,
             "bindir": str(installation.bindir), "major": installation.major}
    (directory / "state.json").write_text(json.dumps(state, indent=2) + "\n")


def _port() -> int:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind(("127.0.0.1", PORT))
            return PORT
        except OSError:
            return free_port()


def _start(directory: Path, con: Console) -> tuple[LocalCluster, Installation]:
    """The demo's cluster, running: the recorded one when there is one, else a new one."""
    directory.mkdir(parents=True, exist_ok=True)
    state, datadir, installation = _recorded(directory)
    if datadir and installation is None:
        con.print(f"No binaries of the version of {datadir} remain; starting afresh.",
                  markup=False)
        shutil.rmtree(datadir, ignore_errors=True)
    if installation is None:
        installation = default_installation()
        cluster = LocalCluster(installation, directory / "pgdata")
        reachable = cluster.user is None or subprocess.run(
            ["test", "-x", str(directory.parent)], user=cluster.user, check=False
        ).returncode == 0
        if not reachable:  # started as root in a private home the server's account cannot enter
            digest = hashlib.sha256(str(directory).encode()).hexdigest()[:10]
            cluster = LocalCluster(installation, Path(tempfile.gettempdir()) /
                                   f"repl-demo-{digest}" / "pgdata")
    else:
        cluster = LocalCluster(installation, datadir, state.get("port"))
    if cluster.is_running():
        con.print(f"Reusing the demo server on port {cluster.port} ({cluster.datadir}).",
                  markup=False)
    else:
        cluster.port = _port()
        if not cluster.initialized:
            shutil.rmtree(cluster.datadir, ignore_errors=True)  # left by an interrupted run
            con.print(f"Initializing PostgreSQL {installation.major} in {cluster.datadir} "
                      f"({installation.bindir})", markup=False)
            cluster.init(SETTINGS)
        con.print(f"Starting PostgreSQL {installation.major} on 127.0.0.1:{cluster.port} "
                  f"(wal_level=logical; log: {cluster.logfile})", markup=False)
        cluster.start()
    _write_state(directory, cluster, installation)
    return cluster, installation


def _stop(directory: Path, con: Console) -> int:
    state, datadir, installation = _recorded(directory)
    cluster = LocalCluster(installation, datadir, state.get("port")) if installation else None
    if cluster is None or not cluster.is_running():
        con.print(f"No demo server is running (in {directory}).", markup=False)
        return 0
    cluster.stop()
    _write_state(directory, cluster, installation)
    con.print(f"Stopped the demo server on port {cluster.port} (its data stays in {datadir}; "
              "`repl demo` starts it again).", markup=False)
    return 0


# --- the data --------------------------------------------------------------------------

def _reset_databases(cluster: LocalCluster, con: Console) -> None:
    """Drop the demo databases of an earlier run: subscriptions first (keeping their
    slots, which may live in the same cluster), then the slots, then the databases."""
    names = list(DATABASES.values())
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        existing = [r[0] for r in admin.execute(
            "SELECT datname FROM pg_catalog.pg_database WHERE datname = ANY(%s)", (names,))]
        if existing:
            con.print("Resetting the demo databases of an earlier run.")
        for db in existing:
            with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
                subs = conn.execute(
                    "SELECT s.subname FROM pg_catalog.pg_subscription AS s JOIN "
                    "pg_catalog.pg_database AS d ON d.oid = s.subdbid "
                    "WHERE d.datname = current_database()").fetchall()
                for (sub,) in subs:
                    for statement in drop_statements(sub):
                        conn.execute(statement)
        slots.drop_in_databases(admin, names)
        for db in names:
            ident = sql.Identifier(db)
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def _load_sample(dsn: str, con: Console) -> None:
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(load_sql("demo/schema").encode())
        conn.execute(load_sql("demo/data").encode())
    con.print(f"Loaded the sample schema and data into production_db in "
              f"{time.monotonic() - started:.1f} s (from {resource_dir('sql') / 'demo'}).",
              markup=False)


class _SetupReport(workflow.ConsoleReport):
    title = "Setup"

    def planned(self, plan: Plan) -> None:
        self.console.print(f"\n[bold]{self.title}[/]: {len(plan.steps)} step(s)", markup=True)
        super().planned(plan)


class _AfterCopyReport(_SetupReport):
    title = "Once copied"  # production's indexes


def _setup(config_path: Path, con: Console) -> None:
    """`repl setup --wait`, then `repl status`."""
    config = load_config(config_path, os.environ)
    with Session(config) as session:
        snap = workflow.validated(session)
        with CopyBars(con) as bars:  # each new target's copy from a snapshot, as it goes
            session.copy_report = bars
            workflow.setup(session, _SetupReport(con), snap=snap)
        con.print("\n[bold]Initial copy[/]", markup=True)
        workflow.wait(session, snap, con, SYNC_TIMEOUT_S, _AfterCopyReport(con))
        report = collect(session)
    con.print("\n[bold]Status[/]", markup=True)
    render.status(con, report)


def _read(conn: psycopg.Connection, relation: QualifiedName):
    """(row count, columns, sample rows by id) of `relation`; None where it does not exist."""
    if conn.execute("SELECT pg_catalog.to_regclass(%s)", (str(relation),)).fetchone()[0] is None:
        return None
    table = sql.Identifier(relation.schema, relation.name)
    count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]
    cur = conn.execute(sql.SQL("SELECT * FROM {} WHERE id = ANY(%s) ORDER BY id").format(table),
                       (list(SAMPLE_ROWS.get(relation, ())),))
    columns = [d.name for d in cur.description]
    rows = [dict(zip(columns, row, strict=True)) for row in cur]
    return count, columns, {row["id"]: row for row in rows}


def _cell(found, row_id: int, column: str) -> Text:
    if found is None:
        return Text("(no table)", style="dim")
    _, columns, by_id = found
    if column not in columns:
        return Text("-", style="dim")
    if row_id not in by_id:
        return Text("(filtered out)", style="dim")
    value = by_id[row_id][column]
    text = "NULL" if value is None else str(value)
    return Text(text if len(text) <= 48 else text[:47] + "…", style="dim" if value is None else "")


def _show_rows(con: Console, dsns: dict[str, str]) -> None:
    """A few rows side by side as each database stores them, and the row counts."""
    found = {}
    for name, dsn in dsns.items():
        with psycopg.connect(dsn, autocommit=True) as conn:
            found.update({(name, rel): _read(conn, rel) for rel in TABLES})
    con.print("\n[bold]The same rows in each database[/] (-: column not replicated)",
              markup=True)
    for relation, ids in SAMPLE_ROWS.items():
        table = render.table(con, "id", "column", *dsns, title=str(relation))
        for n, row_id in enumerate(ids):
            if n:
                table.add_section()
            for i, column in enumerate(found["production", relation][1]):
                table.add_row(str(row_id) if i == 0 else "", column,
                              *(_cell(found[name, relation], row_id, column) for name in dsns))
        con.print(table)
    table = render.table(con, "rows", *dsns)
    for rel in TABLES:
        table.add_row(str(rel), *("-" if found[name, rel] is None else f"{found[name, rel][0]:,}"
                                  for name in dsns))
    con.print(table)


def _show_connections(con: Console, dsns: dict[str, str], installation: Installation,
                      config_path: Path) -> None:
    bundled = installation.bindir / "psql"
    psql = str(bundled) if bundled.exists() else shutil.which("psql")
    con.print("\n[bold]Connect[/] (no password: the server accepts local connections only)",
              markup=True)
    for name, dsn in dsns.items():
        con.print(f"  {name:<11} {psql or 'psql'} \"{dsn}\"", markup=False)
    if psql is None:
        con.print("  (no psql found: any PostgreSQL client takes these connection strings)")
    con.print(f"\nTry: repl -c {config_path} status", markup=False)
