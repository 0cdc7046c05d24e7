"""Production evolves (SPEC section 6): each change made on production while it writes,
asserting that production's statement behaves as the SPEC says, that `status` names the
change, and that the heal loses and duplicates nothing (rows compared with production)
and copies nothing where the SPEC says it does not (the target table's file is the same).
"""

from __future__ import annotations

import json
import random

import pytest
from psycopg import sql

from conftest import StreamOfWrites, relfilenode, rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       n int NOT NULL DEFAULT 0,
                       a text DEFAULT md5(random()::text),
                       b int DEFAULT (random() * 1000)::int);
CREATE TABLE public.u (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       n int NOT NULL DEFAULT 0, c text DEFAULT 'c');
INSERT INTO public.t DEFAULT VALUES; INSERT INTO public.t DEFAULT VALUES;
INSERT INTO public.u DEFAULT VALUES;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      %s: {columns: all}
      public.u: {columns: all}
"""


def writes(table: str = "public.t"):
    """Inserts and updates that name no column a test renames or drops."""
    rng = random.Random(7)
    name = sql.Identifier(*table.split("."))

    def statements() -> list[sql.Composable]:
        return [sql.SQL("INSERT INTO {} DEFAULT VALUES").format(name),
                sql.SQL("UPDATE {} SET n = n + 1 WHERE id = {}").format(
                    name, sql.Literal(rng.randint(1, 20))),
                sql.SQL("INSERT INTO public.u DEFAULT VALUES")]
    return statements


def status(repl, cfg) -> dict:
    return json.loads(repl("status", "--json", config=cfg, expect=None).stdout)


def problems(report: dict) -> str:
    return "\n".join([*report["problems"], *(p for t in report["targets"] for p in t["problems"])])


def same_rows(env, source_query: str, target_query: str | None = None) -> None:
    """Every row of production's is on the target, once, as it is on production."""
    with env.source() as src:
        wanted = rows(src, source_query)
    with env.target("dev") as tgt:
        wait_until(lambda: rows(tgt, target_query or source_query) == wanted, 60,
                   f"the target to hold production's rows of: {source_query}")


def test_renames_are_followed_without_a_copy(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "public.t")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as tgt:
        files = relfilenode(tgt, "public.t"), relfilenode(tgt, "public.u")

    with StreamOfWrites(env.source_dsn, writes()):
        # RENAME COLUMN works on production; the subscriber stops at the next change.
        env.run_source("ALTER TABLE public.t RENAME COLUMN b TO b2")
        found = wait_until(lambda: "renamed column b of public.t to b2" in problems(
            r := status(repl, cfg)) and r, 60, "status to name the rename")
        assert found["healthy"] is False
        assert "`repl setup` renames it on the target without copying" in problems(found)
        assert "duplicate key" not in problems(found)  # not mistaken for a conflict
        refused = repl("skip", "dev", config=cfg, expect=1).stderr
        assert "stopped by a schema change on production, not by a conflict; nothing was " \
               "skipped" in refused
        # Under `columns: all` the rename needs no config edit.
        out = repl("setup", config=cfg).stdout
        assert "rename, as production did, column b to b2 of public.t (no copy)" in out
    same_rows(env, "SELECT id, n, a, b2 FROM public.t ORDER BY id")
    same_rows(env, "SELECT id, n, c FROM public.u ORDER BY id")

    # A masked column renamed: the config names it (its mask), so the config follows; the
    # trigger is rewritten for the new name in the same step, and nothing is copied.
    masked = env.write_config((CONFIG % "public.t").replace(
        "public.u: {columns: all}", "public.u: {columns: all, mask: {c: hash}}"), "masked.yaml")
    repl("setup", "--wait", "--timeout", "120", config=masked)
    with env.target("dev") as tgt:
        files = relfilenode(tgt, "public.t"), relfilenode(tgt, "public.u")
    with StreamOfWrites(env.source_dsn, writes()):
        env.run_source("ALTER TABLE public.u RENAME COLUMN c TO c2")
        assert "production renamed this column to c2" in repl(
            "check", config=masked, expect=2).stdout
        remasked = env.write_config((CONFIG % "public.t").replace(
            "public.u: {columns: all}", "public.u: {columns: all, mask: {c2: hash}}"),
            "remasked.yaml")
        out = repl("setup", config=remasked).stdout
        assert "rename, as production did, column c to c2 of public.u (no copy)" in out
    with env.source() as src:
        count = rows(src, "SELECT count(*) FROM public.u")[0][0]
    with env.target("dev") as tgt:  # every row there, every value masked, none copied
        wait_until(lambda: rows(tgt, "SELECT count(*) FROM public.u") == [(count,)], 60,
                   "every row of public.u")
        assert rows(tgt, "SELECT count(*) FROM public.u WHERE c2 = 'c'") == [(0,)]
        assert rows(tgt, "SELECT count(DISTINCT c2) FROM public.u") == [(1,)]
        assert (relfilenode(tgt, "public.t"), relfilenode(tgt, "public.u")) == files
    cfg = remasked

    # RENAME TO and SET SCHEMA work on production (its application moves with them).
    env.run_source("CREATE SCHEMA app; ALTER TABLE public.t RENAME TO t2; "
                   "ALTER TABLE public.t2 SET SCHEMA app")
    with StreamOfWrites(env.source_dsn, writes("app.t2")):
        # The config still names public.t: check and setup refuse (exit 2) and say why.
        checked = repl("check", config=cfg, expect=2).stdout
        assert "production renamed this table to app.t2" in checked
        wait_until(lambda: "production renamed this table to app.t2" in problems(
            status(repl, cfg)), 30, "status to name the table's rename")
        renamed = env.write_config(cfg.read_text().replace("public.t:", "app.t2:"),
                                   "renamed.yaml")
        out = repl("setup", config=renamed).stdout
        assert "rename, as production did, table public.t to app.t2 (no copy)" in out
    same_rows(env, "SELECT id, n, a, b2 FROM app.t2 ORDER BY id")
    with env.target("dev") as tgt:  # nothing was copied again
        assert (relfilenode(tgt, "app.t2"), relfilenode(tgt, "public.u")) == files
    assert json.loads(repl("plan", "--json", config=renamed).stdout)["steps"] == []
    wait_until(lambda: status(repl, renamed)["healthy"], 60, "status healthy again")


def test_new_columns_and_tables_wait_for_a_person(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "public.t")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as tgt:
        file = relfilenode(tgt, "public.t")
    with StreamOfWrites(env.source_dsn, writes()):
        # ADD COLUMN and CREATE TABLE work on production; neither flows by itself.
        env.run_source("ALTER TABLE public.t ADD COLUMN secret text DEFAULT 'x'; "
                       "CREATE TABLE public.audit (id int PRIMARY KEY, who text)")
        checked = repl("check", config=cfg).stdout  # warnings only
        assert "table public.t, column secret: pending: production added this column" in checked
        assert "table public.audit is in no target of the config" in checked
        strict = repl("check", "--strict", config=cfg, expect=1).stdout
        assert "error: target dev, table public.t, column secret: pending" in strict
        assert "error: source: table public.audit is in no target" in strict
        report = status(repl, cfg)
        assert any("column secret: pending" in w for w in report["warnings"])
        assert any("public.audit is in no target" in w for w in report["warnings"])
        assert "Nothing to do" in repl("setup", config=cfg).stdout
    same_rows(env, "SELECT id, n, a, b FROM public.t ORDER BY id")
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                         "'public.t'::regclass AND attname = 'secret'") == [(0,)]
        assert relfilenode(tgt, "public.t") == file
    # Accepted: the table is copied again with the column.
    out = repl("setup", "--accept-new-columns", "--wait", "--timeout", "120", config=cfg).stdout
    assert "copy" in out
    same_rows(env, "SELECT id, n, a, b, secret FROM public.t ORDER BY id")
    # The new table acknowledged as production's own: check --strict passes.
    kept = env.write_config(cfg.read_text().replace(
        "source: {dsn: ", "source: {exclude: [public.audit], dsn: "), "kept.yaml")
    assert "public.audit" not in repl("check", "--strict", config=kept).stdout


def test_dropped_columns_and_tables(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "public.t")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as tgt:
        file_u = relfilenode(tgt, "public.u")
    with StreamOfWrites(env.source_dsn, writes()):
        # What Django's RemoveField runs: it works, and silently takes the table out of
        # the publication (a plain DROP COLUMN is refused while the column is published).
        with pytest.raises(Exception, match="publication"):
            env.run_source("ALTER TABLE public.t DROP COLUMN a")
        env.run_source("ALTER TABLE public.t DROP COLUMN a CASCADE")
        found = wait_until(lambda: "table public.t is not in its publication (production "
                           "dropped a with CASCADE" in problems(r := status(repl, cfg)) and r,
                           30, "status to name the dropped column")
        assert found["healthy"] is False
        # Under columns: all nothing to edit: setup puts the table back and copies it.
        planned = json.loads(repl("plan", "--json", config=cfg).stdout)
        assert [(c["table"], c["reason"].split(" (")[0]) for c in planned["copies"]] == \
            [("public.t", "it left its publication on the source")]
        repl("setup", "--wait", "--timeout", "120", config=cfg)
    same_rows(env, "SELECT id, n, b FROM public.t ORDER BY id")
    same_rows(env, "SELECT id, n, c FROM public.u ORDER BY id")
    with env.target("dev") as tgt:
        assert relfilenode(tgt, "public.u") == file_u  # only public.t was copied again

    # DROP TABLE works on production; the target keeps its copy.
    with env.target("dev") as tgt:
        kept = rows(tgt, "SELECT count(*) FROM public.u")
    env.run_source("DROP TABLE public.u")
    checked = repl("check", config=cfg, expect=2).stdout
    assert "table public.u: production dropped this table; the target keeps its copy" in checked
    assert "production dropped this table" in problems(status(repl, cfg))
    fixed = env.write_config(CONFIG.replace("      public.u: {columns: all}\n", "")
                             % "public.t", "fixed.yaml")
    repl("setup", config=fixed)
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.u") == kept
    wait_until(lambda: status(repl, fixed)["healthy"], 60, "healthy without the table")
