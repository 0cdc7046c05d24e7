"""SPEC section 7: the tables repl creates on a target are usable. Production's indexes are
built on the target (after the copy) where the target has their columns, a unique one
over a column masked by a strategy that can map two values to one is plain; generated
columns are computed on the target from its (masked) values; identity and serial
columns, defaults; the read-only guard refuses local writes while replication goes on,
and `read_only: false` lets people insert without ever taking an id production sends.
Everything asserted in the databases, in every layout.
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from psycopg import sql

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

PEOPLE = 3000  # fake_name picks from ~100k names: a few dozen collisions are certain

SCHEMA = """
CREATE TABLE public.people (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    email       text NOT NULL,
    country     char(2) NOT NULL DEFAULT 'DE',
    score       int NOT NULL DEFAULT 0,
    note        text,
    initials    text GENERATED ALWAYS AS (left(name, 1) || '.') STORED,
    double_score int GENERATED ALWAYS AS (score * 2) STORED
);
CREATE UNIQUE INDEX people_name_key ON public.people (name);
CREATE UNIQUE INDEX people_email_key ON public.people (email);
CREATE INDEX people_country_score ON public.people (country, score DESC) WHERE score > 10;
CREATE INDEX people_lower_note ON public.people (lower(note)) INCLUDE (score);
CREATE TABLE public.orders (
    id        serial PRIMARY KEY,
    person_id bigint NOT NULL,
    total     numeric(10,2) NOT NULL DEFAULT 0,
    status    text NOT NULL DEFAULT 'new'
);
CREATE INDEX orders_person ON public.orders (person_id);
INSERT INTO public.people (name, email, country, score, note)
SELECT 'Person ' || g, 'p' || g || '@corp.example', CASE WHEN g % 3 = 0 THEN 'FR' ELSE 'DE' END,
       g % 50, 'Note ' || g
  FROM generate_series(1, 3000) g;  -- PEOPLE
INSERT INTO public.orders (person_id, total) SELECT g, g FROM generate_series(1, 500) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "staging tables secret"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.people:
        columns: [name, email, country, score, note, initials, double_score]
        mask: {name: fake_name, email: email}
      public.orders: {columns: all}
  analytics:
    dsn: "{target:analytics}"
    read_only: false
    tables:
      public.people:
        columns: [country, score, double_score]
        exclude: [name, email, note, initials]
      public.orders: {columns: all}
"""

INDEXES = """
SELECT i.indisunique, substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$')
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
"""


def indexes(conn: psycopg.Connection, table: str) -> set[tuple[bool, str]]:
    """(unique, definition from " USING" on) of the table's indexes but its key."""
    return set(rows(conn, INDEXES, (table,)))


def test_target_tables_get_indexes_generated_columns_sequences_and_the_guard(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    planned = repl("plan", config=cfg).stdout
    assert re.search(r"unique index people_name_key is built as a plain index on the target: "
                     r"masked by a strategy that can map two values to one: name \(fake_name\)",
                     planned)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []

    # Indexes: production's, but their names, where the target has every column they read.
    with env.source() as src:
        people = indexes(src, "public.people")
        orders = indexes(src, "public.orders")
    name_key = (True, " USING btree (name)")
    with env.target("dev") as dev:
        assert indexes(dev, "public.people") == people - {name_key} | {(False, name_key[1])}
        assert indexes(dev, "public.orders") == orders
        assert rows(dev, "SELECT count(*) > count(DISTINCT name) FROM public.people") == [(True,)]
    with env.target("analytics") as analytics:
        assert indexes(analytics, "public.people") == {
            (False, " USING btree (country, score DESC) WHERE (score > 10)")}
        assert indexes(analytics, "public.orders") == orders

    # Replication goes on with colliding fake names, through the plain index.
    with env.source() as src:
        src.execute("INSERT INTO public.people (name, email, score) SELECT 'Later ' || g, "
                    "'l' || g || '@corp.example', 20 FROM generate_series(1, %s) g", (PEOPLE,))
        src.execute("UPDATE public.people SET name = 'Renamed', score = 11 WHERE id = 7")
        src.execute("DELETE FROM public.people WHERE id = 8")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT count(*) FROM public.people")
                   == [(2 * PEOPLE - 1,)], timeout=120, what="later people on dev")
        wait_until(lambda: rows(dev, "SELECT double_score FROM public.people WHERE id = 7")
                   == [(22,)], what="update on dev")
        # Generated columns: computed on the target from its (masked) values.
        assert rows(dev, "SELECT count(*) FROM public.people WHERE initials IS DISTINCT FROM "
                         "left(name, 1) || '.' OR double_score IS DISTINCT FROM score * 2 "
                         "OR name LIKE 'Person %' OR name LIKE 'Later %'") == [(0,)]

    # The guard: every local write fails with its message; replication goes on.
    with env.target("dev") as dev:
        for statement in ("INSERT INTO public.people (name, email) VALUES ('me', 'me@x')",
                          "UPDATE public.people SET score = 0", "DELETE FROM public.orders",
                          "TRUNCATE public.orders"):
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as refused:
                dev.execute(statement)
            message = str(refused.value)
            assert "replicated from production by repl" in message, message
            assert "read_only: false" in message and "repl teardown" in message
    with env.source() as src:
        src.execute("UPDATE public.orders SET status = 'paid' WHERE id = 1")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT status FROM public.orders WHERE id = 1")
                   == [("paid",)], what="update after refused local writes")

    # read_only: false: local inserts take ids production will not send, and get the
    # defaults of production's columns.
    with env.target("analytics") as analytics:
        (local_person, country), = rows(analytics, "INSERT INTO public.people (score) "
                                                   "VALUES (5) RETURNING id, country")
        (local_order, status), = rows(analytics, "INSERT INTO public.orders (person_id) "
                                                 "VALUES (1) RETURNING id, status")
        assert country == "DE" and status == "new"
    with env.source() as src:
        src.execute("INSERT INTO public.people (name, email) VALUES ('Next', 'next@corp.example')")
        src.execute("INSERT INTO public.orders (person_id) SELECT 1 FROM generate_series(1, 20)")
        (last_person,), = rows(src, "SELECT max(id) FROM public.people")
        (last_order,), = rows(src, "SELECT max(id) FROM public.orders")
    assert local_person > last_person and local_order > last_order
    with env.target("analytics") as analytics:
        wait_until(lambda: rows(analytics, "SELECT count(*) FROM public.orders")
                   == [(500 + 20 + 1,)], what="production's orders next to the local one")
        assert rows(analytics, "SELECT count(*) FROM public.people WHERE id = %s",
                    (last_person,)) == [(1,)]
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    wait_until(lambda: json.loads(repl("status", "--json", config=cfg, expect=None).stdout)
               ["healthy"], what="status healthy")

    # Teardown removes repl's indexes and the guard; the table keeps what it is made of.
    repl("teardown", config=cfg)
    with env.target("dev") as dev:
        assert indexes(dev, "public.people") == set()
        assert rows(dev, "SELECT count(*) FROM pg_trigger WHERE tgname = 'repl_read_only'") \
            == [(0,)]
        assert rows(dev, "SELECT attname FROM pg_attribute WHERE attrelid = "
                         "'public.people'::regclass AND attgenerated <> '' ORDER BY 1") == \
            [("double_score",), ("initials",)]
        dev.execute("INSERT INTO public.orders (id, person_id) VALUES (-1, 1)")  # writable again


REFUSED = """
version: 1
source: {dsn: "{source}"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.people:
        columns: [country, score, initials, double_score]
        mask: {double_score: {noise: 0.1}}
"""


def test_definitions_kept_in_step_and_what_cannot_be_computed_is_refused(env_any, repl):
    """Production adds and drops an index, a person drops one of repl's, adds one of their
    own and disables the guard: status names each, setup restores production's and leaves
    the person's index alone. A generated column reading a column the target does not get,
    or masked, is refused before anything is created."""
    env = env_any
    env.run_source(SCHEMA)
    refused = env.write_config(REFUSED, "refused.yaml")
    out = repl("check", config=refused, expect=2).stdout
    assert re.search(r"column initials: a generated column is computed on the target, but "
                     r"it reads name, not replicated to this target", out), out
    assert "column double_score: is a generated column" in out
    assert "nothing was changed" in repl("setup", config=refused, expect=2).stderr
    with env.target("dev") as dev:
        assert rows(dev, "SELECT count(*) FROM pg_class WHERE relname = 'people'") == [(0,)]

    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    env.run_source("CREATE INDEX people_score ON public.people (score); "
                   "DROP INDEX public.people_lower_note")
    with env.target("dev") as dev:
        (repl_email,), = rows(dev, "SELECT c.relname FROM pg_index i JOIN pg_class c ON "
                                   "c.oid = i.indexrelid WHERE i.indrelid = "
                                   "'public.people'::regclass AND i.indisunique "
                                   "AND NOT i.indisprimary")
        dev.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier("public", repl_email)))
        dev.execute("CREATE INDEX mine ON public.people (country)")
        dev.execute("ALTER TABLE public.people DISABLE TRIGGER repl_read_only")
    with env.target("analytics") as analytics:  # read_only: false; production caught up
        analytics.execute("SELECT setval('public.orders_id_seq', 3)")
    report = json.loads(repl("status", "--json", config=cfg, expect=1).stdout)
    dev_status, analytics_status = report["targets"]
    assert any("build 2 index(es) on public.people" in d for d in dev_status["drift"])
    assert any("drop 1 index(es) on public.people" in d for d in dev_status["drift"])
    assert any("read-only guard on public.people" in d for d in dev_status["drift"])
    assert any("sequence public.orders_id_seq fell behind production's" in p
               for p in analytics_status["problems"]), analytics_status["problems"]

    repl("setup", config=cfg)
    with env.source() as src:
        people = indexes(src, "public.people")
    with env.target("dev") as dev:
        assert indexes(dev, "public.people") == people - {(True, " USING btree (name)")} | {
            (False, " USING btree (name)"), (False, " USING btree (country)")}  # and mine
        assert rows(dev, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'repl_read_only' "
                         "AND tgrelid = 'public.people'::regclass") == [("O",)]
    with env.target("analytics") as analytics:
        assert rows(analytics, "SELECT last_value > 2^30 FROM pg_sequences WHERE "
                               "sequencename = 'orders_id_seq'") == [(True,)]
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
