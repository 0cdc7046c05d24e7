"""Masking on a target: the library and key in repl's schema, and per masked table its
trigger, in place before a single row of a copy arrives (guarantee 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from .. import masking
from ..names import QualifiedName
from .steps import InstallMasking, Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def install(d: TargetDiff) -> list[Step]:
    """The library's files and the key, in one transaction, when either changed."""
    want, have = d.want, d.have
    if not want.mask_keys or (want.masking_version == have.masking_version
                              and want.mask_keys[:2] == (have.mask_keys or ())[:2]):
        return []
    ikey, okey, origin = want.mask_keys
    how = "from the config" if origin == "config" else "generated for this target"
    version = sql.SQL("CREATE OR REPLACE FUNCTION repl.masking_version() RETURNS text "
                      "LANGUAGE sql IMMUTABLE AS {}").format(sql.Literal(
                          "SELECT " + sql.Literal(want.masking_version).as_string(None)))
    return [InstallMasking(d.target, f"install the masking functions and the masking key "
                                     f"({how})", (version,), key=(ikey, okey, origin))]


def hold_back(d: TargetDiff) -> list[Step]:
    """A masked table whose trigger is missing or not ENABLE ALWAYS gets a guard before the
    subscription can apply anything more (and before it is enabled, if it is not): a
    trigger that stores nothing, whatever the table's shape, until the table is emptied
    and gets its real trigger for its copy. Not the real trigger at once: a setup
    interrupted in between would then find it in place and copy nothing, leaving the raw
    values that arrived without it."""
    if d.existing is None or d.broken or d.sub is None:
        return []
    steps = []
    for table in d.want.tables:
        current = d.have.table(table.relation)
        if table.mask_function and current is not None and current.mask_trigger != "A":
            steps.append(Step(d.target,
                              f"hold back changes to {table.relation} until it is copied again",
                              tuple(masking.create_trigger(table.relation, masking.GUARD_BODY,
                                                           []))))
    return steps


def trigger(d: TargetDiff, rel: QualifiedName) -> list[Step]:
    """The trigger of a table about to be copied: created, or dropped when it is no
    longer masked."""
    table, current = d.want.table(rel), d.have.table(rel)
    assert table is not None
    if table.mask_function:
        return [Step(d.target, f"masking trigger on {rel}", tuple(masking.create_trigger(
            rel, table.mask_function, [sql.SQL(s) for s in table.mask_sql])))]
    if current is not None and current.mask_function:
        return [Step(d.target, f"drop the masking trigger of {rel}",
                     tuple(masking.drop_trigger(rel)))]
    return []


def drop_unwanted(d: TargetDiff) -> list[Step]:
    """The triggers of tables no longer replicated (a teardown keeping the data)."""
    if d.want.drop_tables:
        return []  # dropped with their tables
    return [Step(d.target, f"drop the masking trigger of {t.relation}",
                 tuple(masking.drop_trigger(t.relation)))
            for t in d.have.tables
            if d.want.table(t.relation) is None and t.mask_trigger is not None]
