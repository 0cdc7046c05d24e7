"""repl's source role needs only REPLICATION, CREATE on the database and ownership of
the published tables (and pg_read_all_stats for lag figures): no superuser on production."""

from __future__ import annotations

import json

import pytest
from psycopg import sql

from conftest import rows, wait_until

pytestmark = pytest.mark.pg


def test_setup_with_a_non_superuser_source_role(env_any, repl):
    env = env_any
    owner = f"repl_src_{env.tag}"
    with env.source() as src:
        src.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION").format(sql.Identifier(owner)))
        src.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(env.source_db), sql.Identifier(owner)))
        src.execute("CREATE TABLE public.items (id int PRIMARY KEY, note text)")
        src.execute("INSERT INTO public.items SELECT g, 'n' || g FROM generate_series(1, 10) g")
        src.execute(sql.SQL("ALTER TABLE public.items OWNER TO {}").format(sql.Identifier(owner)))
        src.execute("CREATE TABLE public.foreign_owned (id int PRIMARY KEY)")
    if env.layout == "separate":  # roles are per cluster: the source's cleanup
        env.source_roles = [owner]
    else:
        env.roles.append(owner)
    dsn = env.source_dsn.replace("user=postgres", f"user={owner}")
    base = ("version: 1\nsource: {dsn: \"" + dsn + "\"}\ntargets:\n  analytics:\n"
            "    dsn: \"{target:analytics}\"\n    tables:\n")
    refused = env.write_config(base + "      public.foreign_owned: {columns: all}\n", "x.yaml")
    out = repl("check", config=refused, expect=2).stdout
    assert "table public.foreign_owned: the source role must own the table" in out

    cfg = env.write_config(base + "      public.items: {columns: [note], where: \"id > 2\"}\n")
    checked = repl("check", config=cfg).stdout
    # Without pg_read_all_stats the walsenders' lag figures are hidden from it.
    assert f"warning: source: role {owner} may not read the walsenders' positions" in checked
    with env.source() as src:
        src.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(owner)))
    assert "pg_read_all_stats" not in repl("check", config=cfg).stdout
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.source() as src:
        assert rows(src, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (owner,)) == \
            [(False,)]
        src.execute("UPDATE public.items SET note = 'changed' WHERE id = 5")
    with env.target("analytics") as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.items") == [(8,)]
        wait_until(lambda: rows(tgt, "SELECT note FROM public.items WHERE id = 5")
                   == [("changed",)], what="the update")
    report = wait_until(lambda: (r := json.loads(repl("status", "--json", config=cfg).stdout))
                        ["targets"][0]["lag_basis"] == "caught up" and r, what="lag known")
    assert report["healthy"] is True and report["targets"][0]["lag_seconds"] == 0.0
    repl("teardown", config=cfg)
