"""repl's own schema on a target (`repl`, versioned by alembic): brought to the newest
revision first, the target's owner recorded in it, dropped last on teardown (with the
masking functions and everything else repl keeps there)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from .steps import Migrate, Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def migrate(d: TargetDiff) -> list[Step]:
    revision = d.want.schema_revision
    if revision is None or d.have.schema_revision == revision:
        return []
    return [Migrate(d.target, f"migrate the repl schema to revision {revision}")]


def record_owner(d: TargetDiff) -> list[Step]:
    owner = d.want.owner
    if d.have.owner is not None or owner is None:
        return []
    return [Step(d.target, f"record this database as target {d.target} of config {owner.config}",
                 (sql.SQL("INSERT INTO repl.owner (config, target, id) VALUES ({}, {}, {})")
                  .format(sql.Literal(owner.config), sql.Literal(owner.target),
                          sql.Literal(owner.id)),))]


def drop(d: TargetDiff) -> list[Step]:
    if d.want.schema_revision is not None or d.have.schema_revision is None:
        return []
    return [Step(d.target, "drop repl's schema (its functions and state)",
                 (sql.SQL("DROP SCHEMA repl CASCADE"),))]
