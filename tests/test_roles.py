"""Reader roles (guarantee 10): SELECT on the target's replicated tables and nothing
else; members added and removed; roles removed from the config lose their grants."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from replication.plan.roles import create_role

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
    out = repl("check", config=cfg, expect=2).stdout
    assert f"target dev, role {login}: exists and can log in" in out
    assert f"member nobody_{env.tag} does not exist on the target" in out
    repl("setup", config=cfg, expect=2)


MARKER = "managed by repl"


def two_targets(reader: str, analytics: list[str], dev: list[str]) -> str:
    """Both targets in one cluster (in either layout), each configuring `reader`."""
    def target(name: str, members: list[str]) -> str:
        return (f"  {name}:\n    dsn: \"{{target:{name}}}\"\n    tables:\n"
                "      public.events: {columns: all}\n"
                f"    roles:\n      \"{reader}\": {{privilege: read, "
                f"members: [{', '.join(members)}]}}\n")
    return ("version: 1\nsource: {dsn: \"{source}\"}\ntargets:\n"
            + target("analytics", analytics) + target("dev", dev))


def role_state(env, role: str) -> tuple:
    """Whether `role` exists, its comment and its members, seen from the dev database."""
    with env.target("dev") as dev:
        found = rows(dev, "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles "
                          "WHERE rolname = %s", (role,))
        members = rows(dev, "SELECT m.rolname FROM pg_auth_members a "
                            "JOIN pg_roles m ON m.oid = a.member "
                            "JOIN pg_roles r ON r.oid = a.roleid "
                            "WHERE r.rolname = %s AND m.rolname <> current_user "
                            "ORDER BY 1", (role,))
    return (found[0][0] if found else "absent"), [m for (m,) in members]


def can_read(env, target: str, role: str) -> bool:
    with env.target(target) as conn:
        return rows(conn, "SELECT has_table_privilege(%s, 'public.events', 'SELECT')",
                    (role,))[0][0]


def test_role_shared_by_two_targets_of_one_cluster(env_any, repl):
    """Roles are cluster-wide: two targets of one cluster configuring the same role with
    the same members converge in one setup; with different members, nothing changes."""
    env = env_any
    env.run_source(SCHEMA)
    alice, bob = env.role("alice"), env.role("bob")
    reader = f"read'er$$_{env.tag}"  # quotes and dollars: the create guard quotes it twice
    env.roles.append(reader)
    cfg = env.write_config(two_targets(reader, [alice], [alice]))
    repl("setup", config=cfg)
    assert role_state(env, reader) == (MARKER, [alice])
    assert can_read(env, "analytics", alice) and can_read(env, "dev", alice)
    assert "Nothing to do" in repl("setup", config=cfg).stdout

    cfg = env.write_config(two_targets(reader, [alice], [bob]))
    out = repl("check", config=cfg, expect=2).stdout
    assert f"target dev, role {reader}: is also configured on target analytics" in out
    repl("setup", config=cfg, expect=2)
    assert role_state(env, reader) == (MARKER, [alice])


def test_foreign_role_is_refused(env_any, repl):
    """A NOLOGIN role repl did not create (a group role of another application in the
    cluster) is not taken over: its members would be revoked."""
    env = env_any
    env.run_source(SCHEMA)
    alice, bob = env.role("alice"), env.role("bob")
    group = env.role("group", login=False)
    with env.target("dev") as dev:
        dev.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group),
                                                     sql.Identifier(alice)))
    cfg = env.write_config(config(group, [bob]))
    out = repl("check", config=cfg, expect=2).stdout
    assert f"target dev, role {group}: exists and repl did not create it" in out
    assert f"COMMENT ON ROLE \"{group}\" IS '{MARKER}'" in out
    repl("setup", config=cfg, expect=2)
    assert role_state(env, group) == (None, [alice])
    # Made between check and setup, it stops setup's create step too.
    with env.target("dev") as dev, pytest.raises(psycopg.errors.DuplicateObject):
        dev.execute(create_role(group))


def test_role_of_an_older_repl_is_adopted(env_any, repl):
    """repl before the comment recorded its roles only in repl.managed_role, of the target
    whose setup created the role: it is still repl's, and setup comments it."""
    env = env_any
    env.run_source(SCHEMA)
    alice = env.role("alice")
    reader = f"reader_{env.tag}"
    env.roles.append(reader)
    cfg = env.write_config(two_targets(reader, [alice], [alice]))
    repl("setup", config=cfg)
    with env.target("dev") as dev:  # as an older repl left it: created for analytics only
        dev.execute(sql.SQL("COMMENT ON ROLE {} IS NULL").format(sql.Identifier(reader)))
        dev.execute("DELETE FROM repl.managed_role")
    assert role_state(env, reader) == (None, [alice])
    repl("check", config=cfg)
    assert f"reader role {reader}" in repl("plan", config=cfg).stdout
    repl("setup", config=cfg)
    assert role_state(env, reader) == (MARKER, [alice])
    with env.target("dev") as dev:
        assert rows(dev, "SELECT name FROM repl.managed_role") == [(reader,)]
    assert "Nothing to do" in repl("setup", config=cfg).stdout
