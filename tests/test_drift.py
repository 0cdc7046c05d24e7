"""Schema drift on production and on the targets (SPEC guarantee 3, 6, 8)."""

from __future__ import annotations

import json

import pytest

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, score int, note text);
INSERT INTO public.users SELECT g, 'u' || g, g, 'n' FROM generate_series(1, 20) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
targets:
  analytics:
    dsn: "{target:analytics}"
    tables:
      public.users: {columns: [name, score], exclude: [note]}
"""


def test_retyped_and_dropped_columns(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "120", config=cfg)

    # PostgreSQL itself refuses to retype a column a publication's column list names:
    # the migration must take it out of the config first (docs/schema-changes.md).
    with pytest.raises(Exception, match="publication"):
        env.run_source("ALTER TABLE public.users ALTER COLUMN score TYPE bigint")

    # A target table changed behind repl's back is drift; setup re-copies it into shape.
    with env.target("analytics") as tgt:
        tgt.execute("ALTER TABLE public.users ALTER COLUMN score TYPE text, "
                    "ADD COLUMN extra int")
    report = json.loads(repl("status", "--json", config=cfg, expect=1).stdout)
    assert any("empty table public.users" in d for d in report["targets"][0]["drift"])
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    (copy,) = planned["copies"]
    assert "score is text on the target, integer wanted" in copy["reason"]
    assert "extra is not replicated" in copy["reason"]
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'public.users'::regclass AND attnum > 0 AND NOT "
                         "attisdropped ORDER BY attnum") == \
            [("id", "integer"), ("name", "text"), ("score", "integer")]
        assert rows(tgt, "SELECT count(*), sum(score) FROM public.users") == [(20, 210)]
    assert json.loads(repl("status", "--json", config=cfg).stdout)["healthy"] is True

    # A configured column dropped on production: reported, setup refuses and explains.
    env.run_source("ALTER TABLE public.users DROP COLUMN name CASCADE")
    checked = repl("check", config=cfg, expect=2).stdout
    assert "table public.users, column name: column listed in columns does not exist on " \
           "the source (dropped or renamed there? update the config)" in checked
    repl("setup", config=cfg, expect=2)
    assert repl("status", config=cfg, expect=1).exit_code == 1
    # Once the config follows, setup converges again.
    cfg = env.write_config(CONFIG.replace("columns: [name, score]", "columns: [score]"))
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        assert [r[0] for r in rows(tgt, "SELECT attname FROM pg_attribute WHERE attrelid = "
                                        "'public.users'::regclass AND attnum > 0 AND NOT "
                                        "attisdropped ORDER BY attnum")] == ["id", "score"]
        # Copied again: the CASCADE took the table out of the publication, and the
        # subscription had to forget it for PostgreSQL to copy it anew.
        assert rows(tgt, "SELECT count(*), sum(score) FROM public.users") == [(20, 210)]
    env.run_source("UPDATE public.users SET score = -1 WHERE id = 2")
    with env.target("analytics") as tgt:
        wait_until(lambda: rows(tgt, "SELECT score FROM public.users WHERE id = 2") == [(-1,)],
                   what="streaming after the drift was resolved")
