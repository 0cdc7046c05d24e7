"""Reader roles (guarantee 10): SELECT on the target's replicated tables and nothing
else; members added and removed; roles removed from the config lose their grants."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from conftest import rows

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, email text, country text);
CREATE TABLE public.events (id int PRIMARY KEY, kind text);
INSERT INTO public.users SELECT g, 'u' || g || '@corp.io', 'DE' FROM generate_series(1, 10) g;
INSERT INTO public.events SELECT g, 'k' FROM generate_series(1, 10) g;
"""


def config(reader: str, members: list[str], with_role: bool = True) -> str:
    roles = (f"    roles:\n      {reader}: {{privilege: read, members: [{', '.join(members)}]}}\n"
             if with_role else "")
    return ("version: 1\nsource: {dsn: \"{source}\"}\nmasking: {secret: s3cret}\n"
            "targets:\n  dev:\n    dsn: \"{target:dev}\"\n    tables:\n"
            "      public.users: {columns: all, mask: {email: email}}\n"
            "      public.events: {columns: all}\n" + roles)


def as_role(env, role: str):
    conn = env.target("dev")
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    return conn


def denied(conn, statement: str) -> bool:
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_reader_role_reads_and_cannot_write_or_see_repl(env, repl):
    env.run_source(SCHEMA)
    alice, bob = env.role("alice"), env.role("bob")
    reader = f"reader_{env.tag}"
    env.roles.append(reader)
    cfg = env.write_config(config(reader, [alice]))
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as dev:
        assert rows(dev, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (reader,)) == \
            [(False,)]
    with as_role(env, alice) as conn:
        assert rows(conn, "SELECT count(*) FROM public.users") == [(10,)]
        assert rows(conn, "SELECT count(*) FROM public.events") == [(10,)]
        for statement in ("INSERT INTO public.events VALUES (99, 'x')",
                          "UPDATE public.users SET country = 'FR'",
                          "DELETE FROM public.events", "TRUNCATE public.users",
                          "SELECT * FROM repl.secret", "SELECT repl.mask_ikey()",
                          "SELECT * FROM repl.managed_role"):
            assert denied(conn, statement), statement
    with as_role(env, bob) as conn:
        assert denied(conn, "SELECT count(*) FROM public.users")

    # Members follow the config: bob joins, alice leaves.
    cfg = env.write_config(config(reader, [bob]))
    assert "reader role" in repl("setup", config=cfg).stdout
    with as_role(env, bob) as conn:
        assert rows(conn, "SELECT count(*) FROM public.users") == [(10,)]
    with as_role(env, alice) as conn:
        assert denied(conn, "SELECT count(*) FROM public.users")
    assert "Nothing to do" in repl("setup", config=cfg).stdout

    # A grant revoked behind repl's back is drift; setup restores it.
    with env.target("dev") as dev:
        dev.execute(sql.SQL("REVOKE SELECT ON public.events FROM {}").format(
            sql.Identifier(reader)))
    status = repl("status", config=cfg, expect=1).stdout
    assert f"reader role {reader}" in status
    repl("setup", config=cfg)

    # Removed from the config: the role loses its grants (the role itself stays).
    cfg = env.write_config(config(reader, [bob], with_role=False))
    repl("setup", config=cfg)
    with as_role(env, bob) as conn:
        assert denied(conn, "SELECT count(*) FROM public.users")
        assert denied(conn, "SELECT count(*) FROM public.events")
    assert "Nothing to do" in repl("setup", config=cfg).stdout


def test_role_config_errors(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    login = env.role("loginrole")
    cfg = env.write_config(config(login, ["nobody_" + env.tag]))
    out = repl("check", config=cfg, expect=1).stdout
    assert f"target dev, role {login}: exists and can log in" in out
    assert f"member nobody_{env.tag} does not exist on the target" in out
    repl("setup", config=cfg, expect=2)
