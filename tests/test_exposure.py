"""`check` warns about leaks outside repl's control (issue 6): a source password stored in
pg_subscription, and PostgreSQL 18 logging conflicting rows' raw values."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.pg

SCHEMA = "CREATE TABLE public.users (id int PRIMARY KEY, name text, email text);"

CONFIG = """
version: 1
source: {dsn: "{source}", subscriber_dsn: "{source} %s"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.users: {columns: [name, email], mask: {email: email}}
"""


def exposure(repl, cfg) -> list[dict]:
    report = json.loads(repl("check", "--json", config=cfg).stdout)
    assert report["ok"] is True  # warnings only
    return [p for p in report["problems"] if p["kind"] == "exposure"]


def test_check_warns_about_leaks_it_cannot_prevent(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    with_password = env.write_config(CONFIG % "password=Hunter2-stored", name="pw.yaml")
    found = exposure(repl, with_password)
    stored = [p for p in found if "subconninfo" in p["message"]]
    assert len(stored) == 1 and stored[0]["where"] == "target dev"
    assert "passfile=" in stored[0]["message"]
    logged = [p for p in found if "server log" in p["message"]]
    if env.target_cluster.major >= 18:
        assert len(logged) == 1 and "public.users" in logged[0]["message"]
    else:
        assert logged == []
    human = repl("check", config=with_password)
    assert "Hunter2-stored" not in human.stdout + human.stderr
    assert "warning: target dev: the subscription will keep the source's password" \
        in human.stdout + human.stderr

    with_passfile = env.write_config(CONFIG % "passfile=/etc/repl/pgpass", name="pf.yaml")
    assert not [p for p in exposure(repl, with_passfile) if "subconninfo" in p["message"]]
    # Not a health matter: status stays quiet about it.
    assert not any("subconninfo" in w for w in
                   json.loads(repl("status", "--json", config=with_password,
                                   expect=None).stdout)["warnings"])


def test_malformed_subscriber_dsn_is_refused_before_anything_changes(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "password=two words", name="bad.yaml")
    report = json.loads(repl("check", "--json", config=cfg, expect=2).stdout)
    (problem,) = [p for p in report["problems"] if p["severity"] == "error"]
    assert problem["where"] == "source.subscriber_dsn"
    assert "not a valid connection string" in problem["message"]
    assert "words" not in problem["message"]
    assert "nothing was changed" in repl("setup", config=cfg, expect=2).stderr
    with env.source() as src:
        assert src.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
        assert src.execute("SELECT count(*) FROM pg_replication_slots "
                           "WHERE database = current_database()").fetchone() == (0,)
