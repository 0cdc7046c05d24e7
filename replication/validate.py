"""Validates the config's tables against the source's catalog (SPEC section 5, guarantees
1 to 3): tables and columns exist, masks fit their columns, publishing UPDATE/DELETE
cannot break production's writes, and which production columns no config mentions.

Every check that `setup` depends on is run by `Session.snapshot`, so `check` and
`setup` cannot disagree: server checks are in server_checks.py, what the servers parse
themselves in probes.py.
"""

from __future__ import annotations

from .catalog import SourceCatalog, TargetCatalog
from .columns import column_changes, pending_columns, published_columns
from .config import Config, TableConfig
from .detection import suggestion
from .masking import type_problem
from .model import RowFilter, SourceTable, TableIdentity
from .names import QualifiedName
from .problems import Problem, where
from .table_definitions import generated_problem

MUTATING = frozenset({"update", "delete"})
# The kinds of the problems a schema change on production causes (section 6).
SCHEMA_KINDS = ("renamed", "dropped table", "dropped column")
IDENTITY_WAYS_OUT = (
    "ways out: filter only on replica identity columns; give the table a unique index on "
    "NOT NULL columns and run ALTER TABLE ... REPLICA IDENTITY USING INDEX ...; or publish "
    "only inserts with `operations: [insert]`"
)


def check_table(target: str, relation: QualifiedName, table: TableConfig,
                source: SourceTable | None, source_is_superuser: bool,
                identity: TableIdentity | None = None) -> list[Problem]:
    """Everything about one configured table that can be decided without the probe (its
    columns' types: user_types.check). `identity`: what the last setup replicated of this
    table, which tells a column production renamed or dropped from one that never was."""
    if source is None:
        return [Problem("error", where(target, relation),
                        "table does not exist on the source")]
    out: list[Problem] = []
    changes = column_changes(identity, source)
    at = where(target, relation)
    if source.relkind not in ("r", "p"):
        out.append(Problem("error", at, "is not a table (views, materialized views and "
                                        "foreign tables cannot be published)"))
        return out
    if not (source.owned or source_is_superuser):
        out.append(Problem("error", at, f"the source role must own the table to publish it "
                                        f"(owner: {source.owner})"))
    names = {c.name for c in source.columns}
    listed = [] if table.columns == "all" else list(table.columns)
    for key, columns in (("columns", listed), ("exclude", list(table.exclude)),
                         ("mask", list(table.mask))):
        for column in columns:
            if column in changes.renamed:
                out.append(Problem(
                    "error", where(target, relation, column),
                    f"production renamed this column to {changes.renamed[column]} (same "
                    f"column, attnum kept); write {changes.renamed[column]} instead of "
                    f"{column} in {key} (and wherever else the config names it): setup then "
                    "renames the target's column without copying the table",
                    kind="renamed"))
            elif column in changes.dropped and key != "exclude":
                out.append(Problem(
                    "error", where(target, relation, column),
                    f"production dropped this column; remove it from {key}: setup then puts "
                    f"the table back in its publication if the drop took it out (DROP COLUMN "
                    "... CASCADE does) and copies it again; the target's copy of the column "
                    "stays until `repl setup --drop-columns`", kind="dropped column"))
            elif column not in names and key == "exclude":  # nothing flows: a warning
                out.append(Problem("warning", where(target, relation, column),
                                   "column listed in exclude does not exist on the source "
                                   "(dropped there? remove it from exclude)"))
            elif column not in names:
                out.append(Problem("error", where(target, relation, column),
                                   f"column listed in {key} does not exist on the source "
                                   "(dropped or renamed there? update the config)"))
    replicated = set(published_columns(table, source, identity))
    for column in listed:
        col = source.column(column)
        if col is not None and col.generated and (
                problem := generated_problem(col, source, replicated)):
            out.append(Problem("error", where(target, relation, column),
                               f"a generated column is computed on the target, but {problem}"))
    identity = set(source.identity.columns or ())
    for column in table.exclude:
        if column in identity:
            out.append(Problem("error", where(target, relation, column),
                               "is part of the replica identity, which is always "
                               "replicated; remove it from exclude"))
    for column, spec in table.mask.items():
        if (col := source.column(column)) is not None and col.generated:
            out.append(Problem("error", where(target, relation, column),
                               "is a generated column: the target computes it from the "
                               "replicated (masked) columns it reads; mask those instead"))
            continue
        if column in identity:
            out.append(Problem("error", where(target, relation, column),
                               "is part of the replica identity and cannot be masked: "
                               "updates and deletes would no longer find their row"))
        col = source.column(column)
        problem = type_problem(spec, col) if col is not None else None
        if problem:
            out.append(Problem("error", where(target, relation, column), problem))
    if MUTATING & table.operations:
        out.extend(identity_problems(target, relation, source))
    return out


# PostgreSQL (checked on 15 and 18) refuses UPDATE and DELETE on a table with REPLICA
# IDENTITY FULL as soon as a publication of them has a column list for it, even one naming
# every column ("Column list used by the publication does not cover the replica
# identity"); it accepts them only without a column list. repl always publishes one:
# without it, a column production adds would flow at once (deny by default) and stop the
# target, which lacks it.
FULL_IDENTITY = (
    "has REPLICA IDENTITY FULL: PostgreSQL rejects UPDATE and DELETE on a table whose "
    "identity is FULL once it is published for them with a column list, whichever columns "
    "the list names, and repl always publishes a column list (so that a column production "
    "adds does not flow before someone names it); ways out: give the table a primary key "
    "(REPLICA IDENTITY DEFAULT) or a unique index on NOT NULL columns (REPLICA IDENTITY "
    "USING INDEX ...), or publish only `operations: [insert]` or `[insert, truncate]`"
)


def identity_problems(target: str, relation: QualifiedName, source: SourceTable
                      ) -> list[Problem]:
    """Why publishing UPDATE/DELETE of this table would break production's writes."""
    at = where(target, relation)
    if source.identity.kind == "f":
        return [Problem("error", at, "is published for UPDATE/DELETE but " + FULL_IDENTITY)]
    if not source.identity.usable:
        return [Problem("error", at,
                        f"is published for UPDATE/DELETE but has {source.identity.describe()}: "
                        "PostgreSQL would reject every UPDATE and DELETE on production; "
                        + IDENTITY_WAYS_OUT)]
    out = []
    root_identity = set(source.identity.columns or ())
    for partition, identity in source.partition_identities:
        if identity.kind == "f":
            out.append(Problem("error", at, f"partition {partition} " + FULL_IDENTITY))
        elif not identity.usable or set(identity.columns or ()) - root_identity:
            out.append(Problem("error", at,
                               f"partition {partition} has {identity.describe()}, which is not "
                               "the partitioned table's replica identity; UPDATE/DELETE on it "
                               "would fail once published. " + IDENTITY_WAYS_OUT))
    return out


def check_filter_columns(target: str, relation: QualifiedName, table: TableConfig,
                         source: SourceTable, row_filter: RowFilter) -> list[Problem]:
    """Guarantee 2: a filter of an UPDATE/DELETE publication uses only identity columns."""
    if not (MUTATING & table.operations) or not source.identity.usable:
        return []
    out = []
    for partition, identity in source.partition_identities:
        narrower = sorted(row_filter.columns - set(identity.columns or ()))
        if identity.usable and narrower:
            out.append(Problem("error", where(target, relation),
                               f"the row filter uses {', '.join(narrower)}, which partition "
                               f"{partition} does not have in its replica identity "
                               f"({identity.describe()}); PostgreSQL would reject UPDATE and "
                               "DELETE on that partition; " + IDENTITY_WAYS_OUT))
    outside = sorted(row_filter.columns - set(source.identity.columns or ()))
    if not outside:
        return out
    return out + [Problem("error", where(target, relation),
                    f"the row filter uses {', '.join(outside)}, which "
                    f"{'is' if len(outside) == 1 else 'are'} not in the replica identity "
                    f"({source.identity.describe()}); PostgreSQL would reject every UPDATE "
                    "and DELETE on production; " + IDENTITY_WAYS_OUT)]


def check_config(config: Config, source: SourceCatalog, targets: dict[str, TargetCatalog],
                 filters: dict[tuple[str, QualifiedName], RowFilter]) -> list[Problem]:
    """All table-level problems of the config (server-level ones are checked separately)."""
    problems = []
    for target, tcfg in config.targets.items():
        cat = targets[target]
        for relation, table in tcfg.tables.items():
            src = source.tables.get(relation)
            if src is None and relation in cat.identities:
                problems.append(table_gone(target, relation, cat.identities[relation],
                                           source))
                continue
            identity = cat.identity_of(src.oid) if src is not None else None
            problems += check_table(target, relation, table, src, source.info.superuser,
                                    identity)
            row_filter = filters.get((target, relation))
            if src is not None and row_filter is not None:
                problems += check_filter_columns(target, relation, table, src, row_filter)
    return problems


def table_gone(target: str, relation: QualifiedName, identity: TableIdentity,
               source: SourceCatalog) -> Problem:
    """A configured table the source no longer has by that name, which the last setup
    replicated: renamed or moved (the same OID under another name), or dropped."""
    now = source.by_oid.get(identity.source_oid)
    if now is not None:
        return Problem(
            "error", where(target, relation),
            f"production renamed this table to {now.relation} (same table, OID "
            f"{identity.source_oid}); the subscription stops at its next change there. Write "
            f"{now.relation} instead of {relation} in the config: setup then renames the "
            "target's table without copying it, and the changes waiting on the source apply",
            kind="renamed")
    return Problem(
        "error", where(target, relation),
        "production dropped this table; the target keeps its copy (data is never dropped "
        "without `repl teardown --drop-tables`): remove the table from the config",
        kind="dropped table")

def unclassified_columns(target: str, relation: QualifiedName, table: TableConfig,
                         source: SourceTable, identity: TableIdentity | None,
                         published: tuple[str, ...] | None) -> list[Problem]:
    """Production columns the config does not classify (deny by default): under a column
    list, those it neither lists nor excludes (unclassified); under `columns: all`, those
    production added after the table's first setup that nobody accepted (pending). The
    new name of a column production renamed is neither: its rename is reported. Each
    comes with a suggestion from its name and type (detection.py): check reads no rows of
    production."""
    renamed_to = set(column_changes(identity, source).renamed.values())
    if table.columns == "all":
        return [
            Problem("warning", where(target, relation, c.name),
                    "pending: production added this column after the table's first setup; "
                    "under `columns: all` it stays in production until `repl setup "
                    "--accept-new-columns` (which copies the table again) or the config "
                    f"names it in columns, exclude or mask. Suggestion: "
                    f"{suggestion(relation, c)}", kind="pending")
            for name in pending_columns(table, source, identity, published)
            if (c := source.column(name)) is not None]
    classified = set(table.columns) | set(table.exclude) | set(source.identity.columns or ())
    return [
        Problem("warning", where(target, relation, c.name),
                "unclassified: a production column this table neither lists in columns nor "
                f"excludes; it is not replicated. Suggestion: {suggestion(relation, c)}",
                kind="unclassified")
        for c in source.columns if c.name not in classified and c.name not in renamed_to
    ]
