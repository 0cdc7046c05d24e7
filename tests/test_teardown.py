"""`repl teardown`: nothing of repl's is left (slots included); data stays unless asked."""

from __future__ import annotations

import json

import pytest

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, email text);
CREATE TABLE public.events (id int PRIMARY KEY, kind text);
INSERT INTO public.users SELECT g, 'u' || g, 'u' || g || '@corp.io' FROM generate_series(1, 30) g;
INSERT INTO public.events SELECT g, 'k' FROM generate_series(1, 30) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
targets:
  analytics:
    dsn: "{target:analytics}"
    tables:
      public.events: {columns: all, operations: [insert]}
  dev:
    dsn: "{target:dev}"
    tables:
      public.users:
        columns: all
        mask: {email: email, name: fake_name}
"""


def repl_objects(env) -> dict:
    found = {}
    with env.source() as src:
        found["slots"] = rows(src, "SELECT slot_name FROM pg_replication_slots WHERE "
                                   "database = current_database()")
        found["publications"] = rows(src, "SELECT pubname FROM pg_publication")
    for target in ("analytics", "dev"):
        with env.target(target) as tgt:
            found[target] = {
                "subscriptions": rows(tgt, "SELECT subname FROM pg_subscription s JOIN "
                                           "pg_database d ON d.oid = s.subdbid "
                                           "AND d.datname = current_database()"),
                "schema": rows(tgt, "SELECT nspname FROM pg_namespace WHERE nspname = 'repl'"),
                "triggers": rows(tgt, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"),
                "tables": rows(tgt, "SELECT relname FROM pg_class WHERE relkind = 'r' AND "
                                    "relnamespace = 'public'::regnamespace ORDER BY 1"),
            }
    return found


def test_teardown_removes_everything_but_data(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    repl("teardown", config=cfg)
    left = repl_objects(env)
    assert left["slots"] == [] and left["publications"] == []
    for target, table in (("analytics", "events"), ("dev", "users")):
        assert left[target]["subscriptions"] == [] and left[target]["schema"] == []
        assert left[target]["triggers"] == []
        assert left[target]["tables"] == [(table,)]
    with env.target("dev") as dev:
        assert rows(dev, "SELECT count(*) FROM public.users WHERE email LIKE '%@example.%'") \
            == [(30,)]
    assert "Nothing to remove" in repl("teardown", config=cfg).stdout

    # Setup again from there: existing target tables are emptied and copied anew.
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.events") == [(30,)]

    repl("teardown", "--drop-tables", config=cfg)
    left = repl_objects(env)
    assert left["slots"] == [] and left["publications"] == []
    assert left["analytics"]["tables"] == [] and left["dev"]["tables"] == []


def test_teardown_of_one_target_leaves_the_other_streaming(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    repl("teardown", "analytics", config=cfg)
    left = repl_objects(env)
    assert left["slots"] == [("repl_dev",)]
    assert left["publications"] == [("repl_dev_iudt",)]
    assert left["dev"]["subscriptions"] == [("repl_dev",)]
    report = json.loads(repl("status", "dev", "--json", config=cfg).stdout)
    assert report["healthy"] is True


def test_target_removed_from_config_is_reported(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    only_dev = env.write_config(CONFIG.replace(
        "  analytics:\n    dsn: \"{target:analytics}\"\n    tables:\n"
        "      public.events: {columns: all, operations: [insert]}\n", ""), "dev-only.yaml")
    out = repl("check", config=only_dev).stdout
    assert "replication slot repl_analytics belongs to no configured target" in out
    assert "pg_drop_replication_slot('repl_analytics')" in out
    assert "publication repl_analytics_i belongs to no configured target" in out
    report = json.loads(repl("status", "--json", config=only_dev).stdout)
    assert any("repl_analytics" in w for w in report["warnings"])  # still consumed
    with env.target("analytics") as tgt:  # the forgotten target stops consuming
        tgt.execute("ALTER SUBSCRIPTION repl_analytics DISABLE")
    wait_until(lambda: repl("status", config=only_dev, expect=None).exit_code == 1,
               what="status to fail on the abandoned slot")
    report = json.loads(repl("status", "--json", config=only_dev, expect=1).stdout)
    assert any("repl_analytics" in p and "growing" in p for p in report["problems"])


def test_teardown_with_the_source_unreachable_says_what_to_drop(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    gone = env.write_config(CONFIG.replace('dsn: "{source}"',
                                           'dsn: "host=127.0.0.1 port=1 dbname=x '
                                           'password=pw-never-shown connect_timeout=2"'),
                            "gone.yaml")
    result = repl("teardown", "dev", config=gone, expect=1)
    assert "cannot connect to source" in result.stderr
    assert "SELECT pg_drop_replication_slot('repl_dev');" in result.stderr
    assert 'DROP PUBLICATION IF EXISTS "repl_dev_iudt";' in result.stderr
    assert "pw-never-shown" not in result.stdout + result.stderr
    assert "repl's schema stays until `repl teardown` can reach the source" in result.stdout
    left = repl_objects(env)
    assert left["dev"]["subscriptions"] == [] and left["dev"]["schema"] == [("repl",)]
    assert ("repl_dev",) in left["slots"]  # on the source, as the message says
    # Once the source is back, teardown knows them for this target's (repl.owner and the
    # publications' marks) and removes the rest.
    repl("teardown", "dev", config=cfg)
    left = repl_objects(env)
    assert ("repl_dev",) not in left["slots"] and left["dev"]["schema"] == []
    with env.source() as src:
        assert rows(src, "SELECT pubname FROM pg_publication WHERE pubname LIKE "
                         "'repl\\_dev\\_%'") == []


def test_leftover_table_sync_slot_is_unhealthy_and_torn_down(env_any, repl):
    """A table-sync slot no copy uses (PostgreSQL drops it when the copy is done; one
    left behind keeps WAL without bound) makes status fail with the way out, and
    teardown drops it; a slot named for the same subscription OID on another target
    server (another system identifier) is not taken for it."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as dev:
        oid, sysid = rows(dev, "SELECT s.oid, (SELECT system_identifier::text FROM "
                               "pg_control_system()) FROM pg_subscription s WHERE subname = "
                               "'repl_dev'")[0]
    leftover = f"pg_{oid}_sync_16384_{sysid}"
    elsewhere = f"pg_{oid}_sync_16384_{int(sysid) + 1}"
    with env.source() as src:
        for name in (leftover, elsewhere):
            src.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
    done = repl("status", "--json", config=cfg, expect=1)
    dev_status = next(t for t in json.loads(done.stdout)["targets"] if t["target"] == "dev")
    found = [p for p in dev_status["problems"] if "table-sync slot" in p]
    assert len(found) == 1, dev_status["problems"]
    assert found[0].startswith(f"table-sync slot {leftover} on the source is left over from "
                               "a copy and keeps ")
    assert found[0].endswith(f"SELECT pg_drop_replication_slot('{leftover}');")
    repl("teardown", config=cfg)
    with env.source() as src:
        assert rows(src, "SELECT slot_name FROM pg_replication_slots WHERE database = "
                         "current_database()") == [(elsewhere,)]
        src.execute("SELECT pg_drop_replication_slot(%s)", (elsewhere,))
