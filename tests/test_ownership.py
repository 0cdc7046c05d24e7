"""Two configs whose names meet: repl tells its objects from another config's by what each
target database recorded at its first setup (repl.owner) and the publications' comments,
not by names alone (docs/operations.md, "Several configs on one source")."""

from __future__ import annotations

import json

import pytest

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.people (id int PRIMARY KEY, email text, country text);
INSERT INTO public.people SELECT g, 'p' || g || '@corp.example', 'DE'
  FROM generate_series(1, 20) g;
"""


def config(name: str, target: str, database: str) -> str:
    return (f"version: 1\nname: {name}\nsource: {{dsn: \"{{source}}\"}}\n"
            f"masking: {{secret: \"same secret\"}}\ntargets:\n  {target}:\n"
            f"    dsn: \"{{target:{database}}}\"\n    tables:\n      public.people:\n"
            "        columns: all\n        mask: {email: hash}\n")


def source_objects(env) -> tuple[list, list]:
    with env.source() as src:
        return (rows(src, "SELECT pubname, obj_description(oid, 'pg_publication') "
                          "FROM pg_publication ORDER BY 1"),
                rows(src, "SELECT slot_name, active FROM pg_replication_slots WHERE "
                          "database = current_database() ORDER BY 1"))


def test_same_names_from_two_configs_are_refused(env_any, repl):
    """Two teams, each with the default name and a target `dev`, replicate one source into
    two staging databases: the second is refused, and the first keeps streaming."""
    env = env_any
    env.run_source(SCHEMA)
    first = env.write_config(config("repl", "dev", "dev"), name="first.yaml")
    second = env.write_config(config("repl", "dev", "third"), name="second.yaml")
    repl("setup", "--wait", "--timeout", "120", config=first)
    before = source_objects(env)
    assert before[0][0][0] == "repl_dev_iudt" and before[0][0][1].startswith(
        "repl: config repl; target dev; target database ")
    out = repl("check", config=second, expect=2).stdout
    assert ("error: target dev: publication repl_dev_iudt on the source belongs to config "
            "repl, target dev, in another target database") in out
    assert "nothing was changed" in repl("setup", config=second, expect=2).stderr
    assert source_objects(env) == before
    # The second team's teardown takes nothing of the first's.
    torn = repl("teardown", config=second).stdout
    assert "replication slot repl_dev left alone: publication(s) repl_dev_iudt of that " \
        "name are another target database's" in torn
    assert source_objects(env) == before
    with env.target("third") as third:
        assert rows(third, "SELECT count(*) FROM pg_subscription s JOIN pg_database d ON "
                           "d.oid = s.subdbid WHERE d.datname = current_database()") == [(0,)]
    with env.source() as src:
        src.execute("INSERT INTO public.people VALUES (21, 'new@corp.example', 'FR')")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT count(*) FROM public.people") == [(21,)],
                   what="the first config to keep streaming")
    # The first config's own status does not count the second's attempt as anything.
    assert json.loads(repl("status", "--json", config=first).stdout)["healthy"] is True


def test_one_database_is_the_target_of_one_config(env_any, repl):
    """A second config pointed at a database that already is another's target is refused,
    and its teardown removes nothing there (the first config's masking stays)."""
    env = env_any
    env.run_source(SCHEMA)
    first = env.write_config(config("orders", "dev", "dev"), name="first.yaml")
    second = env.write_config(config("users", "staging", "dev"), name="second.yaml")
    repl("setup", "--wait", "--timeout", "120", config=first)
    out = repl("check", config=second, expect=2).stdout
    assert ("error: target staging: this database is the target dev of another repl config "
            "(name orders)") in out
    assert "nothing was changed" in repl("setup", config=second, expect=2).stderr
    torn = repl("teardown", config=second).stdout
    assert "this database is the target dev of another config (name orders); nothing of " \
        "it removed" in torn
    with env.target("dev") as dev:
        assert rows(dev, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'repl_mask'") == \
            [("A",)]
        assert rows(dev, "SELECT config, target FROM repl.owner") == [("orders", "dev")]
    with env.source() as src:
        src.execute("UPDATE public.people SET email = 'raw@corp.example' WHERE id = 3")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT email LIKE '%corp.example' FROM public.people "
                                     "WHERE id = 3") == [(False,)],
                   what="the change, masked")
        assert rows(dev, "SELECT count(*) FROM public.people WHERE email LIKE "
                         "'%corp.example'") == [(0,)]


def test_prefix_of_another_config_is_not_taken_for_orphans(env_any, repl):
    """`name: repl_eu` with a target `dev` makes slot repl_eu_dev; the config `name: repl`
    must not call it an orphan of its own (status healthy, nothing to drop)."""
    env = env_any
    env.run_source(SCHEMA)
    other = env.write_config(config("repl_eu", "dev", "dev"), name="other.yaml")
    mine = env.write_config(config("repl", "analytics", "analytics"), name="mine.yaml")
    repl("setup", "--wait", "--timeout", "120", config=other)
    repl("setup", "--wait", "--timeout", "120", config=mine)
    out = repl("check", config=mine).stdout
    assert "repl_eu_dev" not in out
    report = json.loads(repl("status", "--json", config=mine).stdout)
    assert report["healthy"] is True, report
    assert "repl_eu_dev" not in json.dumps(report)


def test_objects_of_an_older_repl_are_marked(env_any, repl):
    """A target set up before owners were recorded (no repl.owner, unmarked publications)
    is recorded and its publications marked by the next setup, which copies nothing."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(config("repl", "dev", "dev"))
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as dev:
        dev.execute("DELETE FROM repl.owner")
    with env.source() as src:
        src.execute("COMMENT ON PUBLICATION repl_dev_iudt IS NULL")
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    assert [s["summary"] for s in planned["steps"]] == [
        "record this database as target dev of config repl",
        "mark publication repl_dev_iudt as this target's"]
    assert planned["copies"] == []
    repl("setup", config=cfg)
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    with env.target("dev") as dev:
        (owner_id,) = rows(dev, "SELECT id::text FROM repl.owner")[0]
    assert source_objects(env)[0] == [
        ("repl_dev_iudt", f"repl: config repl; target dev; target database {owner_id}")]
