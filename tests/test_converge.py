"""Guarantee 5 and the status exit codes: setup converges from any state, and adds
tables and targets without touching the others. (Interrupted setups: test_interrupt.py.)"""

from __future__ import annotations

import json

import pytest

from conftest import rows, table_syncs, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, country text);
CREATE TABLE public.orders (id int PRIMARY KEY, user_id int, total numeric(10,2));
INSERT INTO public.users SELECT g, 'u' || g, 'DE' FROM generate_series(1, 50) g;
INSERT INTO public.orders SELECT g, g % 50 + 1, g * 1.5 FROM generate_series(1, 80) g;
"""

# The tests write on the targets by hand (rows a re-copy would remove): read_only: false.
ONE_TABLE = """
version: 1
source: {dsn: "{source}"}
targets:
  analytics:
    dsn: "{target:analytics}"
    read_only: false
    tables:
      public.users: {columns: [name, country]}
"""

MORE = """
version: 1
source: {dsn: "{source}"}
targets:
  analytics:
    dsn: "{target:analytics}"
    read_only: false
    tables:
      public.users: {columns: [name, country]}
      public.orders: {columns: all, operations: [insert]}
  dev:
    dsn: "{target:dev}"
    read_only: false
    tables:
      public.orders: {columns: [total], where: "id > 40"}
"""


def wait_ready(repl, cfg) -> dict:
    return wait_until(
        lambda: (r := json.loads(repl("status", "--json", config=cfg, expect=None).stdout))
        ["healthy"] and r, timeout=90, what="status healthy")


def test_status_reports_disabled_subscription_and_setup_repairs_it(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(ONE_TABLE)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    repl("status", config=cfg)
    with env.target("analytics") as tgt:
        tgt.execute("ALTER SUBSCRIPTION repl_analytics DISABLE")
    wait_until(lambda: repl("status", config=cfg, expect=None).exit_code == 1,
               what="status to fail")
    report = json.loads(repl("status", "--json", config=cfg, expect=1).stdout)
    (target,) = report["targets"]
    assert report["healthy"] is False and target["enabled"] is False
    assert any("disabled" in p for p in target["problems"])
    assert any("enable the subscription" in d for d in target["drift"])
    human = repl("status", config=cfg, expect=1).stdout
    assert "DISABLED" in human and "UNHEALTHY" in human

    with env.source() as src:
        src.execute("INSERT INTO public.users VALUES (51, 'while disabled', 'FR')")
    setup = repl("setup", config=cfg)
    assert "enable the subscription" in setup.stdout
    wait_ready(repl, cfg)
    with env.target("analytics") as tgt:
        wait_until(lambda: rows(tgt, "SELECT name FROM public.users WHERE id = 51")
                   == [("while disabled",)], what="change made while disabled")


def test_missing_slot_makes_status_fail_and_setup_recreates(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(ONE_TABLE)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        tgt.execute("ALTER SUBSCRIPTION repl_analytics DISABLE")
    with env.source() as src:
        wait_until(lambda: rows(src, "SELECT active FROM pg_replication_slots WHERE "
                                     "slot_name = 'repl_analytics'") == [(False,)],
                   what="slot inactive")
        src.execute("SELECT pg_drop_replication_slot('repl_analytics')")
    report = json.loads(repl("status", "--json", config=cfg, expect=1).stdout)
    assert report["targets"][0]["slot_exists"] is False
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    wait_ready(repl, cfg)
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.users") == [(50,)]


def test_adding_tables_and_targets_leaves_the_others_alone(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(ONE_TABLE)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        # A row only the target has: a re-copy of users would remove it.
        tgt.execute("INSERT INTO public.users VALUES (-1, 'target only', 'XX')")

    cfg = env.write_config(MORE)
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    assert {(c["target"], c["table"]) for c in planned["copies"]} == \
        {("analytics", "public.orders"), ("dev", "public.orders")}
    assert not any("users" in (s["sql"] or "") for s in planned["steps"])
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT name FROM public.users WHERE id = -1") == [("target only",)]
        assert rows(tgt, "SELECT count(*) FROM public.orders") == [(80,)]
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT count(*), min(id) FROM public.orders") == [(40, 41)]
    with env.source() as src:
        src.execute("INSERT INTO public.users VALUES (60, 'later', 'IT')")
        src.execute("INSERT INTO public.orders VALUES (100, 60, 9.99)")
    for target in ("analytics", "dev"):
        with env.target(target) as tgt:
            wait_until(lambda t=tgt: rows(t, "SELECT total FROM public.orders WHERE id = 100")
                       != [], what=f"order on {target}")
    wait_ready(repl, cfg)


def test_changing_a_tables_columns_recopies_only_that_table(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(MORE)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        tgt.execute("INSERT INTO public.orders VALUES (-1, 0, 0)")  # marks: not re-copied
    with env.target("dev") as tgt:
        tgt.execute("INSERT INTO public.orders VALUES (-1, 0)")
    cfg = env.write_config(MORE.replace("public.users: {columns: [name, country]}",
                                        "public.users: {columns: [name], where: \"id < 10\"}"))
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    assert [(c["target"], c["table"]) for c in planned["copies"]] == \
        [("analytics", "public.users")]
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.users") == [(9,)]
        assert [r[0] for r in rows(tgt, "SELECT attname FROM pg_attribute WHERE attrelid = "
                                        "'public.users'::regclass AND attnum > 0 AND NOT "
                                        "attisdropped ORDER BY attnum")] == ["id", "name"]
        assert rows(tgt, "SELECT count(*) FROM public.orders WHERE id = -1") == [(1,)]
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.orders WHERE id = -1") == [(1,)]
    with env.source() as src:
        src.execute("UPDATE public.users SET name = 'changed' WHERE id = 5")
    with env.target("analytics") as tgt:
        wait_until(lambda: rows(tgt, "SELECT name FROM public.users WHERE id = 5")
                   == [("changed",)], what="update after re-copy")


def test_resync_recopies_only_the_named_tables(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(MORE)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        tgt.execute("DELETE FROM public.orders WHERE id <= 10")  # drifted data
        tgt.execute("INSERT INTO public.users VALUES (-1, 'target only', 'XX')")
    with env.target("dev") as tgt:
        tgt.execute("DELETE FROM public.orders WHERE id = 50")
    before = {target: table_syncs(env.target(target)) for target in ("analytics", "dev")}
    assert {t: set(tables) for t, tables in before.items()} == {
        "analytics": {"public.users", "public.orders"}, "dev": {"public.orders"}}
    repl("resync", "analytics", "public.orders", "--wait", "--timeout", "120", config=cfg)
    after = {target: table_syncs(env.target(target)) for target in ("analytics", "dev")}
    # Copied again: emptied (a TRUNCATE gives the table new storage), synced anew.
    (old_node, _, old_lsn) = before["analytics"]["public.orders"]
    (new_node, state, new_lsn) = after["analytics"]["public.orders"]
    assert new_node != old_node and new_lsn != old_lsn and state == "r"
    # Everything else untouched: same storage, same sync state and LSN.
    assert after["analytics"]["public.users"] == before["analytics"]["public.users"]
    assert after["dev"] == before["dev"]
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.orders") == [(80,)]
        assert rows(tgt, "SELECT count(*) FROM public.users WHERE id = -1") == [(1,)]
    with env.target("dev") as tgt:  # the other target was not touched
        assert rows(tgt, "SELECT count(*) FROM public.orders") == [(39,)]
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    err = repl("resync", "analytics", "public.nosuch", config=cfg, expect=2).stderr
    assert "public.nosuch is not configured for target analytics" in err


def test_removing_a_table_stops_its_replication_and_keeps_its_data(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(MORE)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    fewer = env.write_config(MORE.replace(
        "      public.orders: {columns: all, operations: [insert]}\n", ""), "fewer.yaml")
    planned = json.loads(repl("plan", "--json", config=fewer).stdout)
    assert planned["copies"] == []
    assert any("DROP TABLE" in (s["sql"] or "") and s["database"] == "source"
               for s in planned["steps"])
    repl("setup", config=fewer)
    assert json.loads(repl("plan", "--json", config=fewer).stdout)["steps"] == []
    with env.source() as src:
        assert rows(src, "SELECT count(*) FROM pg_publication_tables WHERE tablename = "
                         "'orders' AND pubname LIKE 'repl_analytics%'") == [(0,)]
        src.execute("INSERT INTO public.orders VALUES (500, 1, 1)")
        src.execute("INSERT INTO public.users VALUES (500, 'after', 'DE')")
    with env.target("analytics") as tgt:
        wait_until(lambda: rows(tgt, "SELECT count(*) FROM public.users WHERE id = 500")
                   == [(1,)], what="users still streaming")
        assert rows(tgt, "SELECT count(*) FROM public.orders") == [(80,)]  # data kept
        assert rows(tgt, "SELECT count(*) FROM pg_subscription_rel WHERE srrelid = "
                         "'public.orders'::regclass") == [(0,)]
    with env.target("dev") as tgt:  # the other target still has it
        wait_until(lambda: rows(tgt, "SELECT count(*) FROM public.orders WHERE id = 500")
                   == [(1,)], what="orders on dev")
    assert json.loads(repl("status", "--json", config=fewer).stdout)["healthy"] is True
