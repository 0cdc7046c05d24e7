"""check, plan, setup, status end to end on real servers (both versions, both layouts)."""

from __future__ import annotations

import json

import pytest

from conftest import rows, table_syncs, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text,
    phone text,
    birth_date date,
    country text,
    plan text,
    created_at timestamptz NOT NULL DEFAULT now(),
    bio text
);
CREATE TABLE public.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL,
    kind text NOT NULL,
    payload text
);
INSERT INTO public.users (id, name, email, country, plan)
SELECT g, 'user ' || g, 'u' || g || '@example.com', CASE WHEN g % 3 = 0 THEN 'FR' ELSE 'DE' END,
       CASE WHEN g % 5 = 0 THEN 'pro' ELSE 'free' END
  FROM generate_series(1, 200) AS g;
INSERT INTO public.events (user_id, kind, payload)
SELECT g % 200 + 1, CASE WHEN g % 4 = 0 THEN 'debug' ELSE 'click' END, repeat('x', 20)
  FROM generate_series(1, 500) AS g;
"""

CONFIG = """
version: 1
source:
  dsn: "{source}"
targets:
  analytics:
    dsn: "{target:analytics}"
    tables:
      public.users:
        columns: [country, plan, created_at]
        exclude: [name, email, phone, birth_date, bio]
        where: "id % 2 = 0"
      public.events:
        columns: all
        where: "kind <> 'debug'"
        operations: [insert]
"""


def target_columns(conn, table: str) -> list[str]:
    return [r[0] for r in rows(conn, "SELECT attname FROM pg_attribute WHERE attrelid = "
                                     "%s::regclass AND attnum > 0 AND NOT attisdropped "
                                     "ORDER BY attnum", (table,))]


def test_setup_filters_streams_and_converges(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)

    repl("check", config=cfg)
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    assert any("CREATE PUBLICATION" in (s["sql"] or "") for s in planned["steps"])
    assert {c["table"] for c in planned["copies"]} == {"public.users", "public.events"}
    assert any("id added to the column list" in n for n in planned["notes"])

    repl("setup", "--wait", "--timeout", "120", config=cfg)

    with env.target("analytics") as tgt:
        # Only the configured columns (plus the replica identity) exist on the target.
        assert target_columns(tgt, "public.users") == ["id", "country", "plan", "created_at"]
        assert rows(tgt, "SELECT count(*), count(*) FILTER (WHERE id % 2 = 1) "
                         "FROM public.users") == [(100, 0)]
        assert rows(tgt, "SELECT count(*) FROM public.events WHERE kind = 'debug'") == [(0,)]
        assert rows(tgt, "SELECT count(*) FROM public.events") == [(375,)]

    # Production writes keep working, and stream.
    with env.source() as src:
        src.execute("UPDATE public.users SET plan = 'team', name = 'renamed' WHERE id <= 10")
        src.execute("DELETE FROM public.users WHERE id IN (12, 13)")
        src.execute("INSERT INTO public.users (id, name, country) VALUES (1000, 'new', 'IT'),"
                    " (1001, 'odd', 'IT')")
        src.execute("INSERT INTO public.events (user_id, kind) VALUES (1, 'buy'), (1, 'debug')")
        src.execute("UPDATE public.events SET payload = 'changed' WHERE id = 1")
        src.execute("DELETE FROM public.events WHERE id = 2")
    with env.target("analytics") as tgt:
        wait_until(lambda: rows(tgt, "SELECT count(*) FROM public.users WHERE id = 1000")
                   == [(1,)], what="insert to stream")
        wait_until(lambda: rows(tgt, "SELECT count(*) FROM public.events WHERE kind = 'buy'")
                   == [(1,)], what="event insert to stream")
        assert rows(tgt, "SELECT id, plan FROM public.users WHERE id <= 10 ORDER BY id") == \
            [(i, "team") for i in (2, 4, 6, 8, 10)]
        assert rows(tgt, "SELECT count(*) FROM public.users WHERE id IN (12, 13, 1001)") == \
            [(0,)]
        # Insert-only: the update and the delete on production are not published.
        assert rows(tgt, "SELECT payload FROM public.events WHERE id = 1") == \
            [("xxxxxxxxxxxxxxxxxxxx",)]
        assert rows(tgt, "SELECT count(*) FROM public.events WHERE id = 2") == [(1,)]

    # Idempotent: nothing left to do, a second setup copies nothing.
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    before = table_syncs(env.target("analytics"))
    assert set(before) == {"public.users", "public.events"}
    assert "Nothing to do" in repl("setup", config=cfg).stdout
    assert table_syncs(env.target("analytics")) == before
    status = json.loads(repl("status", "--json", config=cfg).stdout)
    assert status["healthy"] is True
    (target,) = status["targets"]
    assert {t["state"] for t in target["tables"]} == {"ready"}
    assert target["slot_exists"] and target["wal_status"] in ("reserved", "extended")


def test_unclassified_columns_and_strict_check(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    assert "unclassified" not in repl("check", "--strict", config=cfg).stdout
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    # A migration adds columns to production: not replicated, listed as unclassified.
    env.run_source("ALTER TABLE public.users ADD COLUMN ssn text; "
                   "ALTER TABLE public.events ADD COLUMN ip inet;")
    checked = repl("check", config=cfg).stdout  # a warning only: exit 0
    assert "table public.users, column ssn: unclassified" in checked
    # Under columns: all, a column production adds later is pending: not replicated until
    # a person accepts it (SPEC section 2).
    assert "table public.events, column ip: pending: production added this column" in checked
    strict = repl("check", "--strict", config=cfg, expect=1).stdout
    assert "error: target analytics, table public.users, column ssn: unclassified" in strict
    assert "error: target analytics, table public.events, column ip: pending" in strict
    # Each with a suggestion from its name and type.
    assert "looks like a national or tax ID, by its name: exclude it, or list it in columns " \
           "with mask: {ssn: digits}" in strict
    assert "looks like an IP address, by its type (inet)" in strict
    report = json.loads(repl("status", "--json", config=cfg).stdout)  # still healthy
    assert any("column ssn: unclassified" in w for w in report["warnings"])
    assert any("column ip: pending" in w for w in report["warnings"])
    with env.target("analytics") as tgt:
        assert "ssn" not in target_columns(tgt, "public.users")
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    assert planned["steps"] == [] and planned["copies"] == []  # nothing flows by itself
    assert any("ip pending" in n for n in planned["notes"])
    assert "Nothing to do" in repl("setup", config=cfg).stdout
    with env.target("analytics") as tgt:
        assert "ip" not in target_columns(tgt, "public.events")
    accepting = json.loads(repl("plan", "--json", "--accept-new-columns", config=cfg).stdout)
    assert [c["table"] for c in accepting["copies"]] == ["public.events"]
    repl("setup", "--accept-new-columns", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        assert "ip" in target_columns(tgt, "public.events")
    assert "pending" not in repl("check", config=cfg).stdout
    repl("check", "--strict", config=env.write_config(
        CONFIG.replace("exclude: [name, email, phone, birth_date, bio]",
                       "exclude: [name, email, phone, birth_date, bio, ssn]")
        .replace("columns: all\n", "columns: [user_id, kind, payload]\n        exclude: [ip]\n"),
        "strict.yaml"))
