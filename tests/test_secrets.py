"""Guarantee 7 on password-authenticated servers: no password of a DSN and not the
masking secret in any output, error or log of any command, failures included; none in
repl's own tables. The subscription's stored connection string is PostgreSQL's to keep
(pg_subscription.subconninfo): with a password file on the target (`passfile=` in
`subscriber_dsn`) it holds no password either.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import tempfile
import traceback
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from replication.cli import app
from replication.cluster import LocalCluster, free_port, installations
from replication.db import Database, connect
from replication.masking_sql import padded_keys
from replication.redact import MASK, redact

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

# Distinctive, and awkward: '/' and '#' must be percent-encoded in a URI; a space and a
# quote must be quoted and escaped in key=value.
PASSWORDS = ("ZQ7pwA/#x", "KX4pwB q'y")
SECRET = "MaskKey-VX93qq"
WRONG = "WRONGpw-H5J8"
TARGET_ROLE_PASSWORD = "TgtPw-R8kW"
SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, email text, country text,
                           phone text);
INSERT INTO public.users SELECT g, 'Name ' || g, 'u' || g || '@corp.example',
       CASE WHEN g % 2 = 0 THEN 'DE' ELSE 'FR' END, '+49 170 ' || g
  FROM generate_series(1, 50) g;
"""
CONFIG = """
version: 1
source:
  dsn: ${SRC_DSN}
  subscriber_dsn: ${SUB_DSN:-}
masking: {secret: "${MASK_SECRET}"}
targets:
  analytics:
    dsn: ${ANALYTICS_DSN}
    tables:
      public.users: {columns: [country], exclude: [name, email, phone], where: "id > 2"}
  dev:
    dsn: ${DEV_DSN}
    tables:
      public.users:
        columns: [name, email, country]
        mask: {name: fake_name, email: email}
"""


def forbidden() -> list[str]:
    """Every form a secret could be printed in."""
    found = [SECRET, WRONG, "VX93qq", "H5J8", TARGET_ROLE_PASSWORD]
    for password in PASSWORDS:
        found += [password, quote(password, safe=""), password[:6],
                  password.replace("'", "\\'")]
    return found


def uri(cluster: LocalCluster, dbname: str, password: str | None = None) -> str:
    password = cluster.password if password is None else password
    return f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{cluster.port}/{dbname}"


def keyword(cluster: LocalCluster, dbname: str, password: str | None = None, **extra) -> str:
    return make_conninfo(host="127.0.0.1", port=cluster.port, dbname=dbname, user="postgres",
                         password=cluster.password if password is None else password, **extra)


def passfile_dsn(cluster: LocalCluster, dbname: str, passfile: Path) -> str:
    return make_conninfo(host="127.0.0.1", port=cluster.port, dbname=dbname, user="postgres",
                         passfile=str(passfile))


class Clusters:
    """Two password-protected clusters (the oldest and newest major available), and a
    password file readable only by the servers' account."""

    def __init__(self) -> None:
        majors = sorted({i.major for i in installations()})
        by_major = {i.major: i for i in installations()}
        self.base = Path(tempfile.mkdtemp(prefix="repl-secrets-"))
        self.clusters = [
            LocalCluster(by_major[major], self.base / f"pg{major}-{n}")
            for n, major in enumerate((majors[0], majors[-1]))
        ]
        self.passfile = self.base / "pgpass"

    def start(self) -> None:
        for cluster, password in zip(self.clusters, PASSWORDS, strict=True):
            cluster.init({"fsync": "off", "synchronous_commit": "off",
                          "wal_retrieve_retry_interval": "1s", "shared_buffers": "32MB"},
                         password=password)
            cluster.start()

        def escape(value: str) -> str:
            return value.replace("\\", "\\\\").replace(":", "\\:")

        self.passfile.write_text("".join(
            f"127.0.0.1:{c.port}:*:postgres:{escape(c.password or '')}\n"
            for c in self.clusters))
        self.passfile.chmod(0o600)  # libpq ignores a password file others may read
        user = self.clusters[0].user
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.passfile, entry.pw_uid, entry.pw_gid)

    def stop(self) -> None:
        for cluster in self.clusters:
            cluster.destroy()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def clusters():
    found = Clusters()
    try:
        found.start()
        yield found
    finally:
        found.stop()


class Run:
    """Runs the CLI in-process and asserts that nothing secret came out of it."""

    def __init__(self, cfg: Path, env: dict[str, str], caplog) -> None:
        self.cfg, self.env, self.caplog = cfg, env, caplog
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int | None = 0, env: dict[str, str] | None = None):
        self.caplog.clear()
        redact.reset()  # as in a process of its own: no secret known from a former command
        result = self.runner.invoke(app, ["-c", str(self.cfg), *args],
                                    env={**self.env, **(env or {})})
        texts = {"stdout": result.stdout, "stderr": result.stderr,
                 "log": "\n".join(r.getMessage() for r in self.caplog.records)}
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            texts["exception"] = "".join(traceback.format_exception(result.exception))
        for where, text in texts.items():
            leaks = [s for s in forbidden() if s in text]
            assert not leaks, f"repl {' '.join(args)}: {leaks} in {where}:\n{text}"
        if expect is not None and result.exit_code != expect:
            raise AssertionError(f"repl {' '.join(args)} exited {result.exit_code}, expected "
                                 f"{expect}\n{texts}")
        return result


def admin(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def create_databases(source: LocalCluster, target: LocalCluster, tag: str) -> dict[str, str]:
    names = {"source": f"prod_{tag}", "analytics": f"analytics_{tag}", "dev": f"dev_{tag}"}
    with admin(source.dsn()) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names["source"])))
    with admin(target.dsn()) as conn:
        for name in ("analytics", "dev"):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names[name])))
    with admin(source.dsn(names["source"])) as conn:
        conn.execute(SCHEMA)
    return names


def stored_texts(target: LocalCluster, dbname: str) -> str:
    """Everything repl keeps in a target's `repl` schema: rows and function bodies."""
    with admin(target.dsn(dbname)) as conn:
        tables = rows(conn, "SELECT c.oid::regclass::text FROM pg_class c WHERE "
                            "c.relnamespace = 'repl'::regnamespace AND c.relkind = 'r'")
        texts = [json.dumps(rows(conn, sql.SQL("SELECT row_to_json(t)::text FROM {} t")
                                 .format(sql.SQL(name))), default=str) for (name,) in tables]
        texts += [src for (src,) in rows(conn, "SELECT prosrc FROM pg_proc WHERE "
                                               "pronamespace = 'repl'::regnamespace")]
    assert len(tables) >= 3, tables  # setup_run, secret, alembic_version at least
    return "\n".join(texts)


def subconninfo(target: LocalCluster, dbname: str) -> str:
    with admin(target.dsn(dbname)) as conn:
        return rows(conn, "SELECT subconninfo FROM pg_subscription s JOIN pg_database d ON "
                          "d.oid = s.subdbid WHERE d.datname = current_database()")[0][0]


CASES = {
    # source dsn as a URI, subscription with the password (PostgreSQL stores it), then
    # switched to a password file.
    "oldest-to-newest-uri": (0, 1, "uri"),
    # source dsn as key=value, subscription with a password file from the start.
    "newest-to-oldest-keyword-passfile": (1, 0, "passfile"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_every_command_keeps_secrets_out(clusters, case, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    src_i, tgt_i, route = CASES[case]
    source, target = clusters.clusters[src_i], clusters.clusters[tgt_i]
    names = create_databases(source, target, f"c{src_i}")
    src_dsn = uri(source, names["source"]) if route == "uri" else keyword(source, names["source"])
    env = {
        "SRC_DSN": src_dsn,
        "SUB_DSN": passfile_dsn(source, names["source"], clusters.passfile)
        if route == "passfile" else "",
        # Targets in both forms, the other way round from the source.
        "ANALYTICS_DSN": keyword(target, names["analytics"]),
        "DEV_DSN": uri(target, names["dev"]),
        "MASK_SECRET": SECRET,
    }
    cfg = tmp_path / "repl.yaml"
    cfg.write_text(CONFIG)
    repl = Run(cfg, env, caplog)

    repl("check")
    strict = repl("check", "--strict", expect=1)
    assert "phone" in strict.stdout
    repl("check", "--json")
    planned = repl("plan").stdout
    assert "CREATE SUBSCRIPTION" in planned
    if route == "uri":
        assert f"password={MASK}" in planned  # shown, masked: it will be stored
    else:
        assert "passfile=" in planned and "password" not in planned
    repl("plan", "--json")
    repl("setup", "--wait", "--timeout", "120")
    assert json.loads(repl("status", "--json").stdout)["healthy"] is True
    repl("status")
    repl("verify")
    repl("verify", "--json")
    shown = repl("preview", "dev", "public.users", "--limit", "3").stdout
    assert "corp.example" not in shown  # masked
    repl("preview", "analytics", "public.users", "--json")
    repl("resync", "dev", "public.users", "--wait", "--timeout", "120")

    for dbname in (names["analytics"], names["dev"]):
        stored = stored_texts(target, dbname)
        assert not [s for s in forbidden() if s in stored], "a secret in the repl schema"
    if route == "uri":
        # PostgreSQL keeps the connection string as given (documented): repl's output
        # must not show it, but the catalog does.
        assert quote(source.password or "", safe="") in subconninfo(target, names["dev"])
        # The password-file route: the subscription's connection changes, and the
        # catalog no longer holds the password.
        env["SUB_DSN"] = passfile_dsn(source, names["source"], clusters.passfile)
        changed = repl("plan").stdout
        assert "ALTER SUBSCRIPTION" in changed and "passfile=" in changed
        repl("setup")
    for dbname in (names["analytics"], names["dev"]):
        stored = subconninfo(target, dbname)
        assert "passfile=" in stored and "password" not in stored
        assert source.password not in stored
    with admin(source.dsn(names["source"])) as conn:  # streaming through the password file
        conn.execute("INSERT INTO public.users VALUES (1000, 'n', 'e@corp.example', 'DE', '')")
    with admin(target.dsn(names["analytics"])) as conn:
        wait_until(lambda: rows(conn, "SELECT country FROM public.users WHERE id = 1000")
                   == [("DE",)], what="a change streamed with the password file")
    assert json.loads(repl("status", "--json").stdout)["healthy"] is True

    check_failures(repl, source, target, names)
    # teardown with the source unreachable: the target cleaned up, the rest printed.
    by_hand = repl("teardown", "analytics", expect=1, env={
        "SRC_DSN": f"postgresql://postgres:{quote(WRONG)}@127.0.0.1:{free_port()}/x"}).stderr
    assert "cannot connect to source" in by_hand and "pg_drop_replication_slot" in by_hand
    repl("teardown")
    assert "Nothing to remove" in repl("teardown").stdout


def check_failures(repl: Run, source: LocalCluster, target: LocalCluster,
                   names: dict[str, str]) -> None:
    """Failing commands, each with a DSN (or the config) wrong in another way."""
    wrong_source = {"SRC_DSN": uri(source, names["source"], WRONG)}
    out = repl("check", expect=1, env=wrong_source)
    assert "password authentication failed" in out.stderr
    for command in (("plan",), ("setup",), ("status", "--json"), ("verify",),
                    ("preview", "dev", "public.users"), ("resync", "dev", "public.users")):
        assert "cannot connect to source" in repl(*command, expect=1, env=wrong_source).stderr
    wrong_target = {"DEV_DSN": keyword(target, names["dev"], WRONG)}
    for command in (("check",), ("status",), ("teardown", "dev")):
        failed = repl(*command, expect=1, env=wrong_target)
        assert "cannot connect to target dev" in failed.stdout + failed.stderr
    closed = free_port()
    unreachable = {
        "port": {"SRC_DSN": f"postgresql://postgres:{quote(WRONG)}@127.0.0.1:{closed}/x"},
        "host": {"ANALYTICS_DSN": make_conninfo(host="repl-no-such-host.invalid",
                                                user="postgres", password=WRONG)},
        "missing database": {"DEV_DSN": uri(target, "no_such_db")},
        # A password written unquoted, with a space: libpq quotes the rest back.
        "malformed": {"SRC_DSN": f"host=127.0.0.1 port={source.port} password=pw {WRONG}"},
    }
    for what, change in unreachable.items():
        for command in (("check",), ("plan",), ("status",), ("verify",)):
            failed = repl(*command, expect=1, env=change)
            assert "cannot connect to" in failed.stdout + failed.stderr, what
    assert "cannot connect to target" in repl("teardown", expect=1,
                                              env=unreachable["missing database"]).stderr

    bad_filter = repl.cfg.read_text().replace('"id > 2"', f"\"email <> '{SECRET}x'\"")
    repl.cfg.write_text(bad_filter)  # a filter on a non-key column: refused
    assert "row filter uses email" in repl("check", expect=2).stdout
    for command in (("plan",), ("setup",), ("preview", "analytics", "public.users")):
        assert "nothing was changed" in repl(*command, expect=2).stderr
    repl.cfg.write_text(bad_filter.replace(f"email <> '{SECRET}x'", "nope = 1"))
    assert "row filter" in repl("check", expect=2).stdout

    repl.cfg.write_text(CONFIG.replace("version: 1", "version: 1\nsourc: ${SRC_DSN}")
                        .replace("${MASK_SECRET}", "${MASK_SECRET_UNSET}")
                        .replace("fake_name", "\"${MASK_SECRET}\""))
    errors = repl("check", expect=2).stderr
    assert "sourc: unknown key" in errors and "MASK_SECRET_UNSET is not set" in errors
    assert "unknown masking strategy" in errors
    repl.cfg.write_text(CONFIG)


def test_failing_subscription_statement_kept_out_of_the_server_log(clusters):
    """PostgreSQL logs a failing statement, a CREATE SUBSCRIPTION's password included;
    `statements_out_of_log` keeps it out (what apply should wrap conninfo steps in)."""
    cluster = clusters.clusters[0]
    closed = free_port()

    def create_subscription(db: Database, marker: str) -> None:
        statement = sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION p").format(
            sql.Identifier(f"sub_{marker}"), sql.Literal(make_conninfo(
                host="127.0.0.1", port=closed, dbname="x", password=marker)))
        with pytest.raises(psycopg.OperationalError, match="could not connect"):
            db.execute_one(statement)

    db = connect(cluster.dsn(), "target")
    try:
        create_subscription(db, "LoggedPw1")
        with db.statements_out_of_log():
            create_subscription(db, "QuietPw2")
        assert db.scalar("SHOW log_min_error_statement") == "error"  # restored
    finally:
        db.close()
    log = cluster.logfile.read_text()
    assert "LoggedPw1" in log  # PostgreSQL's behaviour
    assert "QuietPw2" not in log


def test_non_superuser_target_with_password_auth(clusters, tmp_path, caplog):
    """PostgreSQL 16+: a target role with CREATE on the database (and on schema public,
    where the tables go) and pg_create_subscription; its subscriptions keep
    password_required, so subscriber_dsn carries the password."""
    caplog.set_level(logging.DEBUG)
    source, target = clusters.clusters
    if target.major < 16:
        pytest.skip("pg_create_subscription is PostgreSQL 16+")
    names = create_databases(source, target, "np")
    role = "repl_target_owner"
    with admin(target.dsn()) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(TARGET_ROLE_PASSWORD)))
        conn.execute(sql.SQL("GRANT pg_create_subscription TO {}").format(sql.Identifier(role)))
        for name in ("analytics", "dev"):
            conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(names[name]), sql.Identifier(role)))
    env = {"SRC_DSN": uri(source, names["source"]), "SUB_DSN": "", "MASK_SECRET": SECRET,
           "ANALYTICS_DSN": target.dsn(names["analytics"], role, TARGET_ROLE_PASSWORD),
           "DEV_DSN": uri(target, names["dev"], TARGET_ROLE_PASSWORD).replace(
               "postgres:", f"{role}:", 1)}
    cfg = tmp_path / "repl.yaml"
    cfg.write_text(CONFIG)
    repl = Run(cfg, env, caplog)
    # Without CREATE on schema public (PostgreSQL 15+ default), and with a password file
    # instead of a password, check names what is missing, before anything changes.
    refused = repl("check", expect=2, env={"SUB_DSN": source.dsn(names["source"]).split(
        " password=")[0] + " passfile=/nonexistent/pgpass"}).stdout
    for target_name in ("analytics", "dev"):
        assert (f"error: target {target_name}: role {role} may not create tables in schema(s) "
                f"public, where repl creates this target's tables; grant it: GRANT CREATE ON "
                f"SCHEMA public TO {role}") in refused
        assert (f"error: target {target_name}: role {role} is not a superuser, so PostgreSQL "
                "requires its subscription to connect to the source with a password") in refused
    assert "nothing was changed" in repl("setup", expect=2).stderr
    with admin(target.dsn()) as conn:
        for name in ("analytics", "dev"):
            with admin(target.dsn(names[name])) as db:
                db.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(
                    sql.Identifier(role)))
        # Every statement of the role is logged, which it cannot turn off for itself.
        conn.execute(sql.SQL("ALTER ROLE {} SET log_statement = 'all'").format(
            sql.Identifier(role)))
    warned = repl("check").stdout
    assert f"this server logs role {role}'s statements (log_statement = all" in warned
    assert ("should CREATE SUBSCRIPTION fail (the source unreachable, say), PostgreSQL "
            "writes it, password included, to the target's server log "
            "(log_min_error_statement = error)") in warned
    repl("setup", "--wait", "--timeout", "120")
    # The masking key went as COPY data: the statement is in the log, the key is not.
    log = target.logfile.read_text()
    assert "COPY repl.secret (ikey, okey, source) FROM STDIN" in log
    for key in padded_keys(SECRET.encode()):
        assert key.hex() not in log
    with admin(target.dsn()) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} RESET log_statement").format(sql.Identifier(role)))
    with admin(target.dsn(names["dev"])) as conn:
        assert rows(conn, "SELECT subowner::regrole::text, subpasswordrequired FROM "
                          "pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
                          "WHERE d.datname = current_database()") == [(role, True)]
    assert json.loads(repl("status", "--json").stdout)["healthy"] is True
    repl("verify")
    # The role cannot read subconninfo, yet a changed subscriber_dsn (a rotated password,
    # here another application_name) is seen, from the digest setup recorded.
    rotated = {"SUB_DSN": env["SRC_DSN"] + "?application_name=rotated"}
    planned = json.loads(repl("plan", "--json", env=rotated).stdout)["steps"]
    assert [s["summary"] for s in planned] == ["change the subscription's connection to the "
                                               "source"] * 2
    repl("setup", env=rotated)
    assert json.loads(repl("plan", "--json", env=rotated).stdout)["steps"] == []
    # Without a digest (a subscription from before it was kept) the string is unknown:
    # setup sets it once rather than trust it.
    with admin(target.dsn(names["dev"])) as conn:
        conn.execute("DELETE FROM repl.subscription_conninfo")
    planned = json.loads(repl("plan", "--json", env=rotated).stdout)["steps"]
    assert [(s["database"], s["summary"]) for s in planned] == \
        [("dev", "change the subscription's connection to the source")]
    repl("setup", env=rotated)
    assert json.loads(repl("plan", "--json", env=rotated).stdout)["steps"] == []
    with admin(source.dsn(names["source"])) as conn:
        wait_until(lambda: rows(conn, "SELECT count(*) FROM pg_stat_replication "
                                      "WHERE application_name = 'rotated'") == [(2,)],
                   what="walsenders of the new connection strings")
    repl("teardown")
    with admin(target.dsn()) as conn:  # pg_subscription is shared by the cluster
        assert rows(conn, "SELECT count(*) FROM pg_subscription WHERE subowner = "
                          "%s::regrole", (role,)) == [(0,)]


def test_setup_keeps_a_failing_subscriptions_password_out_of_the_target_log(
        clusters, tmp_path, caplog):
    """End to end: setup's CREATE SUBSCRIPTION fails (the targets cannot reach the source
    at subscriber_dsn) and the target's server log does not get the password."""
    source, target = clusters.clusters
    names = create_databases(source, target, "log")
    marker = "SetupLogPw7"
    bad = make_conninfo(host="127.0.0.1", port=free_port(), dbname=names["source"],
                        user="postgres", password=marker)
    env = {"SRC_DSN": uri(source, names["source"]), "SUB_DSN": bad, "MASK_SECRET": SECRET,
           "ANALYTICS_DSN": target.dsn(names["analytics"]), "DEV_DSN": target.dsn(names["dev"])}
    cfg = tmp_path / "repl.yaml"
    cfg.write_text(CONFIG)
    repl = Run(cfg, env, caplog)
    failed = repl("setup", expect=1)
    assert "create subscription" in failed.stderr and marker not in failed.stderr
    assert marker not in target.logfile.read_text()
    repl("teardown")
