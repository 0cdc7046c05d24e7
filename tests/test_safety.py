"""Guarantees 1 and 2: unsafe or invalid configs are refused before anything changes,
and production UPDATE/DELETE keep working on every table repl publishes."""

from __future__ import annotations

import pytest
from psycopg import sql

from replication.migrations import HEAD_REVISION

from conftest import rows

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.accounts (id int PRIMARY KEY, region text NOT NULL, email text);
CREATE TABLE public.logs (at timestamptz NOT NULL DEFAULT now(), line text);
CREATE TABLE public.wide (id int PRIMARY KEY, code text NOT NULL, note text);
CREATE UNIQUE INDEX wide_code ON public.wide (code);
ALTER TABLE public.wide REPLICA IDENTITY USING INDEX wide_code;
CREATE TABLE public.full_identity (id int PRIMARY KEY, v text);
ALTER TABLE public.full_identity REPLICA IDENTITY FULL;
INSERT INTO public.accounts SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END,
       'a' || g || '@example.com' FROM generate_series(1, 20) g;
INSERT INTO public.logs (line) SELECT 'line ' || g FROM generate_series(1, 10) g;
INSERT INTO public.wide SELECT g, 'c' || g, 'n' FROM generate_series(1, 10) g;
INSERT INTO public.full_identity SELECT g, 'v' FROM generate_series(1, 10) g;
"""


def config(tables: str) -> str:
    return ("version: 1\nsource:\n  dsn: \"{source}\"\ntargets:\n  analytics:\n"
            "    dsn: \"{target:analytics}\"\n    tables:\n" + tables)


def assert_nothing_created(env) -> None:
    with env.source() as src:
        assert rows(src, "SELECT pubname FROM pg_publication") == []
        assert rows(src, "SELECT slot_name FROM pg_replication_slots WHERE database = "
                         "current_database()") == []
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT subname FROM pg_subscription") == []
        assert rows(tgt, "SELECT nspname FROM pg_namespace WHERE nspname = 'repl'") == []
        assert rows(tgt, "SELECT relname FROM pg_class WHERE relnamespace = "
                         "'public'::regnamespace AND relkind = 'r'") == []


def assert_production_writes_work(env) -> None:
    with env.source() as src:
        for table, column in (("accounts", "id"), ("logs", "line"), ("wide", "id"),
                              ("full_identity", "id")):
            src.execute(sql.SQL("UPDATE {} SET {} = {}").format(
                sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(column)))
        src.execute("DELETE FROM public.accounts WHERE id = 20")
        src.execute("DELETE FROM public.logs WHERE line = 'line 10'")


UNSAFE = {
    "filter on a non-identity column": (
        "      public.accounts:\n        columns: [region]\n        where: \"region = 'eu'\"\n",
        ["table public.accounts", "row filter uses region", "not in the replica identity",
         "operations: [insert]", "REPLICA IDENTITY USING INDEX"]),
    "no replica identity": (
        "      public.logs:\n        columns: all\n",
        ["table public.logs", "no replica identity", "operations: [insert]"]),
    "replica identity full": (
        "      public.full_identity:\n        columns: [v]\n        operations: [update]\n",
        # PostgreSQL's actual rule (15 and 18): FULL fails with any column list.
        ["table public.full_identity", "REPLICA IDENTITY FULL", "with a column list, whichever "
         "columns the list names", "REPLICA IDENTITY USING INDEX", "`operations: [insert]`"]),
    "filter on the key of a unique-index identity table, but not on its index": (
        "      public.wide:\n        columns: [code]\n        where: \"id > 3\"\n",
        ["table public.wide", "row filter uses id", "index wide_code"]),
}


@pytest.mark.parametrize("case", UNSAFE, ids=list(UNSAFE))
def test_unsafe_config_refused_and_nothing_created(env, repl, case):
    env.run_source(SCHEMA)
    tables, expected = UNSAFE[case]
    cfg = env.write_config(config(tables))
    checked = repl("check", config=cfg, expect=2)
    for fragment in expected:
        assert fragment in checked.stdout, checked.stdout
    refused = repl("setup", config=cfg, expect=2)
    assert "nothing was changed" in refused.stderr
    for fragment in expected:
        assert fragment in refused.stderr
    repl("plan", config=cfg, expect=2)
    assert_nothing_created(env)
    assert_production_writes_work(env)


def test_safe_variants_are_accepted_and_writes_keep_working(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(config(
        "      public.accounts:\n        columns: [region]\n        where: \"id % 2 = 0\"\n"
        "      public.logs:\n        columns: all\n        operations: [insert]\n"
        "      public.wide:\n        columns: [note]\n        where: \"code <> 'c1'\"\n"
        "      public.full_identity:\n        columns: [v]\n        where: \"v = 'v'\"\n"
        "        operations: [insert, truncate]\n"))
    repl("check", config=cfg)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.accounts") == [(10,)]
        assert rows(tgt, "SELECT count(*) FROM public.logs") == [(10,)]
        assert rows(tgt, "SELECT count(*) FROM public.wide") == [(9,)]
        # The identity index's column is replicated (and keyed) though not listed.
        assert rows(tgt, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                         "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                         "WHERE i.indrelid = 'public.wide'::regclass AND i.indisprimary") == \
            [("code",)]
    assert_production_writes_work(env)


BAD_FILTERS = {
    "subquery": ("(SELECT true)", "immutable built-in functions are allowed"),
    "volatile function": ("random() > 0.5", "mutable functions are not allowed"),
    "unknown column": ("nope = 1", "nope"),
    "second statement": ("true); DROP TABLE public.accounts; --", None),
    "another table smuggled in": ("true), public.logs (line", None),
    "commit smuggled": ("true); COMMIT; DELETE FROM public.accounts; CREATE PUBLICATION pwn "
                        "FOR TABLE public.accounts WHERE (true", None),
}


@pytest.mark.parametrize("case", BAD_FILTERS, ids=list(BAD_FILTERS))
def test_row_filters_postgresql_rejects(env_any, repl, case):
    env = env_any
    env.run_source(SCHEMA)
    expression, fragment = BAD_FILTERS[case]
    cfg = env.write_config(config(
        "      public.accounts:\n        columns: [region]\n"
        f"        where: {expression!r}\n        operations: [insert]\n".replace("'", '"')
        if "'" not in expression else
        "      public.accounts:\n        columns: [region]\n"
        f"        where: \"{expression}\"\n        operations: [insert]\n"))
    out = repl("check", config=cfg, expect=2).stdout
    assert "table public.accounts" in out and "row filter" in out
    if fragment:
        assert fragment in out, out
    repl("setup", config=cfg, expect=2)
    assert_nothing_created(env)
    with env.source() as src:
        assert rows(src, "SELECT count(*) FROM public.accounts") == [(20,)]


def test_missing_objects_named(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(config(
        "      public.accounts:\n        columns: [region, nickname]\n"
        "        exclude: [email]\n        mask:\n          region: redact\n"
        "      public.missing:\n        columns: [a]\n"))
    out = repl("check", config=cfg, expect=2).stdout
    assert "target analytics, table public.accounts, column nickname: column listed in " \
           "columns does not exist on the source" in out
    assert "target analytics, table public.missing: table does not exist on the source" in out
    repl("setup", config=cfg, expect=2)
    assert_nothing_created(env)


def test_masked_identity_column_refused(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(config(
        "      public.accounts:\n        columns: [id, region]\n        mask:\n"
        "          id: {sql: 'value + 1'}\n"))
    out = repl("check", config=cfg, expect=2).stdout
    assert "table public.accounts, column id" in out and "cannot be masked" in out



def test_foreign_repl_schema_is_refused_and_left_alone(env_any, repl):
    """A target with a `repl` schema that repl did not make (no repl.alembic_version):
    nothing in it is read as repl's state, check and setup refuse with a clear message
    and change nothing, and teardown does not drop it."""
    env = env_any
    env.run_source(SCHEMA)
    with env.target("analytics") as tgt:
        tgt.execute("CREATE SCHEMA repl")
        tgt.execute("CREATE TABLE repl.secret (x int)")  # someone's, not repl's key
        tgt.execute("INSERT INTO repl.secret VALUES (1)")
    cfg = env.write_config(config(
        "      public.accounts:\n        columns: [id, region]\n        exclude: [email]\n"
        "        mask:\n          region: hash\n"))
    out = repl("check", config=cfg, expect=2).stdout
    assert "target analytics" in out and "a schema named repl exists that repl did not " \
        "create" in out and "ALTER SCHEMA repl RENAME" in out
    err = repl("setup", config=cfg, expect=2).stderr
    assert "nothing was changed" in err
    err = repl("preview", "analytics", "public.accounts", config=cfg, expect=2).stderr
    assert "a schema named repl exists that repl did not create" in err
    out = repl("teardown", config=cfg).stdout
    assert "the schema repl is not repl's" in out
    # Another alembic project's version table in it: not repl's either.
    with env.target("analytics") as tgt:
        tgt.execute("CREATE TABLE repl.alembic_version (version_num varchar(32) PRIMARY KEY)")
        tgt.execute("INSERT INTO repl.alembic_version VALUES ('3f2a1b9c0d4e')")
    out = repl("check", config=cfg, expect=2).stdout
    assert "a schema named repl exists that repl did not create" in out
    repl("teardown", config=cfg)
    # A role that may not even use the schema gets the same message, not a raw error.
    role = env.role("outsider")
    with env.target("analytics") as tgt:
        tgt.execute("REVOKE ALL ON SCHEMA repl FROM PUBLIC")
    outsider = env.write_config(config(
        "      public.accounts:\n        columns: [id, region]\n        exclude: [email]\n"
    ).replace('dsn: "{target:analytics}"', f'dsn: "{{target:analytics}} user={role}"'),
        name="outsider.yaml")
    done = repl("check", config=outsider, expect=2)
    assert "a schema named repl exists that repl did not create" in done.stdout
    assert "error: PostgreSQL" not in done.stdout + done.stderr
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT x FROM repl.secret") == [(1,)]
        assert rows(tgt, "SELECT subname FROM pg_subscription") == []
    with env.source() as src:
        assert rows(src, "SELECT pubname FROM pg_publication") == []
        assert rows(src, "SELECT slot_name FROM pg_replication_slots WHERE database = "
                         "current_database()") == []


def test_schema_migration_failure_and_newer_schema(env_any, repl):
    """A migration that fails (an object in its way) is reported with its step and
    PostgreSQL's reason, and rolls back whole; a schema a newer repl migrated is
    refused before anything changes."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(config(
        "      public.accounts:\n        columns: [id, region]\n        exclude: [email]\n"))
    repl("setup", config=cfg)
    with env.target("analytics") as tgt:  # back to 0004, with 0005's table in the way
        tgt.execute("DROP TABLE repl.subscription_conninfo")
        tgt.execute("CREATE TABLE repl.subscription_conninfo (x int)")
        tgt.execute("UPDATE repl.alembic_version SET version_num = '0004'")
    err = repl("setup", config=cfg, expect=1).stderr
    assert (f"step 1 (migrate the repl schema to revision {HEAD_REVISION}) on analytics "
            "failed") in err
    assert 'relation "subscription_conninfo" already exists' in err
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT version_num FROM repl.alembic_version") == [("0004",)]
        tgt.execute("DROP TABLE repl.subscription_conninfo")
        tgt.execute("UPDATE repl.alembic_version SET version_num = '0099'")
    out = repl("check", config=cfg, expect=2).stdout
    assert "the repl schema is at revision 0099, newer than this repl knows" in out
    repl("setup", config=cfg, expect=2)
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT version_num FROM repl.alembic_version") == [("0099",)]
