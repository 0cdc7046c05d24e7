"""Reader roles on a target (SPEC section 2, guarantee 10): the statements that make a
role's grants exactly what the config says — SELECT on the target's replicated tables,
USAGE on their schemas, the configured members — and take back the grants of roles the
config no longer names.

Roles are cluster-wide, grants on tables are not: targets of one cluster share a role of
the same name. repl comments the roles it creates (Role.MARKER) so that every target of
the cluster tells them from roles of others, which `check` refuses to take over."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from ..model import Role, TargetState
from ..names import ident
from .steps import Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def _names(idents: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(", ").join(idents)


def create_role(name: str) -> sql.Composable:
    """CREATE ROLE and its mark, which another target of the same cluster may have run
    earlier in this setup (every target's plan comes from one snapshot): a role that
    exists by then is fine if it is repl's (and is not commented again: on PostgreSQL 16+
    only a role's ADMIN may, which another target's role need not be); one that is not
    (made by someone since `check`) stays an error."""
    block = sql.SQL(
        "BEGIN CREATE ROLE {role} NOLOGIN; COMMENT ON ROLE {role} IS {marker}; "
        "EXCEPTION WHEN duplicate_object THEN "
        "IF pg_catalog.shobj_description((SELECT oid FROM pg_catalog.pg_roles "
        "WHERE rolname = {name}), 'pg_authid') IS DISTINCT FROM {marker} THEN RAISE; END IF; "
        "END"
    ).format(role=sql.Identifier(name), name=sql.Literal(name),
             marker=sql.Literal(Role.MARKER))
    return sql.SQL("DO {}").format(sql.Literal(block.as_string()))


def grants(d: TargetDiff) -> list[Step]:
    return [Step(d.target, summary, tuple(statements))
            for statements, summary in role_steps(d.want, d.have)]


def role_steps(want: TargetState, have: TargetState
               ) -> list[tuple[list[sql.Composable], str]]:
    """Per role, the statements that make its grants exactly the config's."""
    steps = []
    for role in want.roles:
        current = have.role(role.name)
        name = sql.Identifier(role.name)
        statements: list[sql.Composable] = []
        if current is None:
            statements.append(create_role(role.name))  # marked with it, or already
            current = Role(role.name)
        if not current.marked:  # created by a repl older than the mark
            statements.append(sql.SQL("COMMENT ON ROLE {} IS {}").format(
                name, sql.Literal(Role.MARKER)))
        if role.name not in have.managed_roles:
            statements.append(sql.SQL(
                "INSERT INTO repl.managed_role (name) VALUES ({}) ON CONFLICT DO NOTHING"
            ).format(sql.Literal(role.name)))
        if missing := sorted(role.schemas - current.schemas):
            statements.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                _names([sql.Identifier(s) for s in missing]), name))
        if missing_tables := sorted(role.readable - current.readable):
            statements.append(sql.SQL("GRANT SELECT ON {} TO {}").format(
                _names([ident(r) for r in missing_tables]), name))
        if writable := sorted(current.writable):
            # A write on a replicated table would break apply (or diverge from production).
            statements.append(sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}")
                              .format(_names([ident(r) for r in writable]), name))
        if joining := sorted(role.members - current.members):
            statements.append(sql.SQL("GRANT {} TO {}").format(
                name, _names([sql.Identifier(m) for m in joining])))
        if leaving := sorted(current.members - role.members):
            statements.append(sql.SQL("REVOKE {} FROM {}").format(
                name, _names([sql.Identifier(m) for m in leaving])))
        if statements:
            steps.append((statements, f"reader role {role.name}"))
    for gone in sorted(have.managed_roles - {r.name for r in want.roles}):
        current = have.role(gone)
        statements = []
        if current is not None and current.readable:
            statements.append(sql.SQL("REVOKE SELECT ON {} FROM {}").format(
                _names([ident(r) for r in sorted(current.readable)]), sql.Identifier(gone)))
        statements.append(sql.SQL("DELETE FROM repl.managed_role WHERE name = {}").format(
            sql.Literal(gone)))
        steps.append((statements, f"revoke the grants of role {gone}, no longer configured"))
    return steps
