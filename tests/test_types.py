"""User-defined types on the targets (SPEC section 7, and section 6's CREATE TYPE and ALTER
TYPE rows): setup creates the types replicated columns need from production's
definitions, compares them by structure, keeps them in step with what production adds
(also after the apply worker already failed on a row that needs it), follows renames,
and refuses with exit 2 what it cannot converge. Asserted in the databases: type
definitions read on both sides, rows compared as text.
"""

from __future__ import annotations

import json

import pytest

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE SCHEMA kinds;
CREATE TYPE kinds.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN public.zip AS text CONSTRAINT zip_digits CHECK (VALUE ~ '^[0-9]{5}$');
CREATE DOMAIN public.positive AS integer NOT NULL DEFAULT 1 CHECK (VALUE > 0);
-- Attributes in a deliberate order: (zip, street), not alphabetical, not the table's.
CREATE TYPE public.address AS (zip public.zip, street text, number integer);
CREATE TYPE public.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE DOMAIN public.email_address AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE public.people (
    id integer PRIMARY KEY, mood kinds.mood, moods kinds.mood[], home public.address,
    zip public.zip, visits public.positive, span public.floatrange,
    email public.email_address);
INSERT INTO public.people
SELECT g, (ARRAY['sad', 'ok', 'happy']::kinds.mood[])[g % 3 + 1],
       ARRAY['happy', 'sad']::kinds.mood[], ROW(lpad(g::text, 5, '0'), 'Elm', g)::public.address,
       lpad((g * 7)::text, 5, '0'), g, pg_catalog.numrange(g, g + 1.5)::text::public.floatrange,
       'p' || g || '@corp.example'
  FROM generate_series(1, 40) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "types secret"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.people:
        columns: all
        mask: {email: email}
"""

# A type's structure as the catalog has it, spelled the same way on every server.
DEFINITION = """
SELECT t.typtype,
       ARRAY(SELECT enumlabel::text FROM pg_enum WHERE enumtypid = t.oid ORDER BY enumsortorder),
       ARRAY(SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = t.typrelid AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
       format_type(NULLIF(t.typbasetype, 0), t.typtypmod), t.typnotnull, t.typdefault,
       ARRAY(SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
              WHERE contypid = t.oid AND contype = 'c' ORDER BY conname),
       (SELECT format_type(rngsubtype, NULL) || ' ' || rngsubdiff::regproc::text
               || ' ' || format_type(rngmultitypid, NULL) FROM pg_range WHERE rngtypid = t.oid)
  FROM pg_type t WHERE t.oid = to_regtype(%s)
"""

PEOPLE = ("SELECT id, mood::text, moods::text, home::text, zip::text, visits::text, span::text "
          "FROM public.people ORDER BY id")


def definition(conn, name: str) -> list[tuple]:
    return rows(conn, DEFINITION, (name,))


def recorded(conn) -> list[tuple]:
    return rows(conn, "SELECT schema_name || '.' || type_name, source_oid::int8 "
                      "FROM repl.replicated_type ORDER BY 1")


def source_oids(conn, *names: str) -> list[tuple]:
    return sorted((n, conn.execute("SELECT %s::regtype::oid::int8", (n,)).fetchone()[0])
                  for n in names)


def same_rows(env, query: str = PEOPLE) -> bool:
    with env.source() as src, env.target("dev") as dev:
        return rows(src, query) == rows(dev, query)


CREATED = ("kinds.mood", "public.zip", "public.positive", "public.address", "public.floatrange")


def test_setup_creates_the_types_replicated_columns_need(env, repl):
    """Every layout: in one cluster the target database still has none of the source's
    types; across versions the definitions compare equal as each server deparses them."""
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)["steps"]
    creates = [s["summary"] for s in planned if s["summary"].startswith(
        ("create enum", "create domain", "create composite", "create range"))]
    # In the order of the columns, what a type needs first: zip before address.
    assert creates == ["create enum type kinds.mood", "create domain public.zip",
                       "create composite type public.address", "create domain public.positive",
                       "create range type public.floatrange"], creates
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.source() as src, env.target("dev") as dev:
        for name in CREATED:
            assert definition(dev, name) == definition(src, name) != [], name
        # The masked column holds text: its domain stays on production.
        assert rows(dev, "SELECT to_regtype('public.email_address')") == [(None,)]
        assert rows(dev, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'public.people'::regclass AND attname = 'email'") \
            == [("text",)]
        assert recorded(dev) == source_oids(src, *CREATED)
    assert same_rows(env)
    assert "Nothing to do" in repl("setup", config=cfg).stdout
    repl("verify", config=cfg)


WRONG_ORDER = """
CREATE TYPE public.address AS (street text, zip text);
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.homes (id integer PRIMARY KEY, address public.address, mood public.mood);
INSERT INTO public.homes VALUES (1, ROW('Elm', '99'), 'ok'), (2, ROW('Oak', '12'), 'happy');
"""

HOMES = """
version: 1
source: {dsn: "{source}"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.homes: {columns: all}
"""


def test_a_target_type_with_another_structure_is_refused(env_any, repl):
    """A composite made by hand on the target with its attributes in another order would
    read production's (Elm,99) as zip=Elm, street=99: check and setup refuse it (exit 2,
    nothing changed); the way out the message gives works. An enum made by hand with
    production's structure is taken as production's."""
    env = env_any
    env.run_source(WRONG_ORDER)
    with env.target("dev") as dev:
        dev.execute("CREATE TYPE public.address AS (zip text, street text)")
        dev.execute("CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy')")
    cfg = env.write_config(HOMES)
    refused = repl("check", config=cfg, expect=2).stdout
    assert "error: target dev, type public.address: differs from production's (attributes " \
           "(zip text, street text) on the target, (street text, zip text) on production) " \
           "and was not made by repl" in refused
    assert "DROP TYPE public.address CASCADE" in refused
    assert "public.mood" not in refused
    assert "nothing was changed" in repl("setup", config=cfg, expect=2).stderr
    with env.source() as src, env.target("dev") as dev:
        assert rows(src, "SELECT count(*) FROM pg_publication") == [(0,)]
        assert rows(dev, "SELECT to_regclass('public.homes'), to_regnamespace('repl')") == \
            [(None, None)]
        dev.execute("DROP TYPE public.address CASCADE")  # the way out
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    query = "SELECT id, (address).street, (address).zip, mood::text FROM public.homes ORDER BY id"
    assert same_rows(env, query)
    with env.target("dev") as dev:
        assert rows(dev, query)[0] == (1, "Elm", "99", "ok")
    with env.source() as src, env.target("dev") as dev:
        assert recorded(dev) == source_oids(src, "public.address", "public.mood")


def test_types_production_changes_are_kept_in_step(env_any, repl):
    """ALTER TYPE ... ADD VALUE and a row using the label stop the target's apply; the
    next setup adds the label and the stalled apply resumes with nothing lost. Renames
    (RENAME TO, SET SCHEMA) are followed without a copy; a domain's constraints and a
    composite's new attribute are brought in step; a label production renamed is refused
    with the way out, which works."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "120", config=cfg)

    # ADD VALUE, and a row that needs it: the apply worker fails on it until setup.
    env.run_source("ALTER TYPE kinds.mood ADD VALUE 'ecstatic' BEFORE 'happy'")
    env.run_source("INSERT INTO public.people (id, mood, moods, visits) "
                   "VALUES (100, 'ecstatic', '{ecstatic,sad}', 3)")
    env.run_source("UPDATE public.people SET mood = 'sad' WHERE id = 1")

    def apply_errors() -> int:
        with env.target("dev") as dev:
            return rows(dev, "SELECT coalesce(sum(apply_error_count), 0)::int "
                             "FROM pg_stat_subscription_stats")[0][0]

    wait_until(lambda: apply_errors() > 0, 60, "the apply worker to fail on 'ecstatic'")

    def failing() -> str | None:
        out = repl("status", config=cfg, expect=1).stdout
        return out if "is failing" in out else None

    status = wait_until(failing, 90, "status to see apply failing")
    assert "drift: dev: bring enum type kinds.mood in step with production: add label(s) " \
           "'ecstatic'" in status
    # The cause named, and no advice to skip the transaction that holds the row.
    assert "most likely on a row that uses what production added to a type the target " \
           "lacks (enum type kinds.mood: add label(s) 'ecstatic'); `repl setup` adds it" \
        in status
    assert "repl skip" not in status
    repl("setup", config=cfg)
    wait_until(lambda: same_rows(env), 60, "the stalled change to apply")
    with env.source() as src, env.target("dev") as dev:
        assert definition(dev, "kinds.mood") == definition(src, "kinds.mood")
        table = rows(dev, "SELECT pg_relation_filenode('public.people')")

    # Renames: followed, not created twice, no copy.
    env.run_source("ALTER TYPE kinds.mood RENAME TO feeling; "
                   "ALTER TYPE public.floatrange SET SCHEMA kinds")
    env.run_source("INSERT INTO public.people (id, mood, visits) VALUES (101, 'happy', 1)")
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    assert [s["summary"] for s in planned["steps"]] == [
        "rename enum type kinds.mood to kinds.feeling, as production did",
        "rename range type public.floatrange to kinds.floatrange, as production did"]
    repl("setup", config=cfg)
    with env.source() as src, env.target("dev") as dev:
        assert rows(dev, "SELECT to_regtype('kinds.mood'), to_regtype('public.floatrange')") \
            == [(None, None)]
        assert rows(dev, "SELECT count(*) FROM pg_enum WHERE enumlabel = 'ecstatic'") == [(1,)]
        for name in ("kinds.feeling", "kinds.floatrange"):
            assert definition(dev, name) == definition(src, name) != [], name
        assert rows(dev, "SELECT pg_relation_filenode('public.people')") == table
        assert recorded(dev) == source_oids(src, "kinds.feeling", "public.zip",
                                            "public.positive", "public.address",
                                            "kinds.floatrange")
    wait_until(lambda: same_rows(env), 60, "rows after the renames")

    # A domain loosened and tightened, an attribute added: each with a row needing it.
    # (PostgreSQL refuses ALTER DOMAIN ... ADD CONSTRAINT on zip: a composite uses it.)
    env.run_source("ALTER DOMAIN public.positive DROP CONSTRAINT positive_check; "
                   "ALTER DOMAIN public.positive ADD CONSTRAINT below CHECK (VALUE < 1000); "
                   "ALTER DOMAIN public.positive SET DEFAULT 7; "
                   "ALTER TYPE public.address ADD ATTRIBUTE city text")
    env.run_source("INSERT INTO public.people (id, home, visits) "
                   "VALUES (102, ROW('75001', 'Rivoli', 1, 'Paris'), -5)")
    repl("setup", config=cfg)
    wait_until(lambda: same_rows(env), 60, "rows after the domain and attribute changes")
    with env.source() as src, env.target("dev") as dev:
        for name in ("public.positive", "public.address"):
            assert definition(dev, name) == definition(src, name), name

    # A label renamed on production: refused with the way out, which works.
    env.run_source("ALTER TYPE kinds.feeling RENAME VALUE 'sad' TO 'blue'")
    refused = repl("check", config=cfg, expect=2).stdout
    assert "error: target dev, type kinds.feeling: labels ('sad', 'ok', 'ecstatic', 'happy') " \
           "on the target, ('blue', 'ok', 'ecstatic', 'happy') on production" in refused
    assert "do the same on the target (ALTER TYPE kinds.feeling RENAME VALUE 'sad' TO " \
           "'blue')" in refused
    with env.target("dev") as dev:
        dev.execute("ALTER TYPE kinds.feeling RENAME VALUE 'sad' TO 'blue'")
    repl("setup", config=cfg)
    env.run_source("UPDATE public.people SET mood = 'blue' WHERE id = 2")
    wait_until(lambda: same_rows(env), 60, "rows after the label rename")
    repl("verify", config=cfg)
