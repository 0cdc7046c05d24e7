"""Validates the config against the live catalogs (SPEC section 5, guarantees 1 and 2).

Every check that `setup` depends on lives here, so `check` and `setup` cannot
disagree. Row filters are validated by PostgreSQL itself: each is put into a
publication inside a transaction that is always rolled back, which also gives the
filter's canonical text and the columns it references.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .catalog import SourceCatalog, TargetCatalog
from .config import Config, MaskSpec, QualifiedName, TableConfig
from .db import Database
from .masking import create_sql_mask, type_problem
from .migrations import head_revision, newer_revision
from .model import Role, RowFilter, SourceColumn, SourceTable

MIN_SERVER_VERSION = 150000
PROBE_PREFIX = "repl_probe_"  # + a random suffix: concurrent runs do not collide
# A Var in a stored expression tree: {VAR :varno 1 :varattno 3 ...}
_VAR_ATTNO = re.compile(r"\{VAR :varno \d+ :varattno (-?\d+)")
MUTATING = frozenset({"update", "delete"})
IDENTITY_WAYS_OUT = (
    "ways out: filter only on replica identity columns; give the table a unique index on "
    "NOT NULL columns and run ALTER TABLE ... REPLICA IDENTITY USING INDEX ...; or publish "
    "only inserts with `operations: [insert]`"
)


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" or "warning"
    where: str  # "source", "target dev", "target dev, table public.users, column email"
    message: str
    kind: str = "problem"  # "unclassified": a column no config mentions (errors with --strict)

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"

    def as_error(self) -> Problem:
        return Problem("error", self.where, self.message, self.kind)


def where(target: str, relation: QualifiedName | None = None, column: str | None = None) -> str:
    parts = [f"target {target}"]
    if relation is not None:
        parts.append(f"table {relation}")
    if column is not None:
        parts.append(f"column {column}")
    return ", ".join(parts)


def requested_columns(table: TableConfig, source: SourceTable) -> list[str]:
    """The config's column list with `all` expanded (generated columns are not published)."""
    if table.columns == "all":
        return [c.name for c in source.columns if not c.generated]
    return list(table.columns)


def published_columns(table: TableConfig, source: SourceTable) -> tuple[str, ...]:
    """Requested columns plus the replica identity, in the table's column order."""
    wanted = set(requested_columns(table, source)) | set(source.identity.columns or ())
    return tuple(c.name for c in source.columns if c.name in wanted)


# --- servers -----------------------------------------------------------------------------

def check_source_server(cat: SourceCatalog, new_slots: int, need_publications: bool
                        ) -> list[Problem]:
    info, out = cat.info, []
    if info.version_num < MIN_SERVER_VERSION:
        out.append(Problem("error", "source", f"PostgreSQL {info.version} is too old; "
                                              "repl needs 15 or newer (row filters, column lists)"))
    if info.wal_level != "logical":
        out.append(Problem("error", "source",
                           f"wal_level is '{info.wal_level}'; run ALTER SYSTEM SET wal_level = "
                           "'logical' and restart the server"))
    if not (info.superuser or info.replication):
        out.append(Problem("error", "source",
                           f"role {info.role} can create no replication slot; grant it "
                           f"REPLICATION (ALTER ROLE {info.role} REPLICATION)"))
    if need_publications and not (info.superuser or info.can_create_in_database):
        out.append(Problem("error", "source",
                           f"role {info.role} cannot create publications in database "
                           f"{info.database}; GRANT CREATE ON DATABASE {info.database} "
                           f"TO {info.role}"))
    free_slots = info.max_replication_slots - info.slots_used
    if new_slots > free_slots:
        out.append(Problem("error", "source",
                           f"{new_slots} replication slot(s) needed but only {free_slots} of "
                           f"max_replication_slots = {info.max_replication_slots} are free"))
    free_senders = info.max_wal_senders - info.senders_used
    if new_slots > free_senders:
        out.append(Problem("error", "source",
                           f"{new_slots} WAL sender(s) needed but only {free_senders} of "
                           f"max_wal_senders = {info.max_wal_senders} are free"))
    elif new_slots and new_slots + 2 > min(free_slots, free_senders):
        out.append(Problem("warning", "source",
                           "few replication slots or WAL senders are left for the temporary "
                           "slots of initial table copies; copies will queue"))
    if not info.read_all_stats:
        out.append(Problem("warning", "source",
                           f"role {info.role} may not read the walsenders' positions and lag "
                           "times in pg_stat_replication, so status cannot tell the lag in "
                           f"seconds: GRANT pg_read_all_stats TO {info.role}"))
    if info.max_slot_wal_keep_size.strip() in ("-1", "-1MB"):
        out.append(Problem("warning", "source",
                           "max_slot_wal_keep_size is unlimited: a target that stays down makes "
                           "the source keep WAL without bound; set a limit"))
    return out


def check_roles(name: str, config: Config, targets: dict[str, TargetCatalog]) -> list[Problem]:
    """Configured reader roles: NOLOGIN roles that repl may create or created itself,
    members that exist. A role is cluster-wide: the targets of one cluster share it, so one
    may have made a role another configures, and they must agree on its members."""
    roles, cat, out = config.targets[name].roles, targets[name], []
    cluster = [n for n, c in targets.items()
               if c.info.system_identifier == cat.info.system_identifier]
    if roles and not (cat.privileges.superuser or cat.privileges.can_create_roles):
        out.append(Problem("error", where(name),
                           f"role {cat.info.role} cannot create the configured roles; it needs "
                           "CREATEROLE (or superuser)"))
    for role, spec in roles.items():
        existing = cat.roles.get(role)
        if existing is not None and existing.login:
            out.append(Problem("error", f"target {name}, role {role}",
                               "exists and can log in; repl manages NOLOGIN reader roles "
                               "only: pick another name and list login roles as members"))
        # A repl older than the mark recorded its roles only in the repl.managed_role of
        # the target whose setup created them.
        elif existing is not None and not existing.marked and not any(
                role in targets[n].managed_roles for n in cluster):
            out.append(Problem(
                "error", f"target {name}, role {role}",
                f"exists and repl did not create it (it has no comment '{Role.MARKER}'); "
                "repl would revoke from it every member the config does not list: pick "
                "another name, or, if repl is to manage this role, run COMMENT ON ROLE "
                f"{sql.Identifier(role).as_string()} IS '{Role.MARKER}'"))
        for member in spec.members:
            if member not in cat.roles:
                out.append(Problem("error", f"target {name}, role {role}",
                                   f"member {member} does not exist on the target; create "
                                   "that login role first"))
        for other in cluster[:cluster.index(name)]:
            theirs = config.targets[other].roles.get(role)
            if theirs is not None and set(theirs.members) != set(spec.members):
                out.append(Problem(
                    "error", f"target {name}, role {role}",
                    f"is also configured on target {other}, in the same cluster, with other "
                    f"members ([{', '.join(sorted(theirs.members))}] there, "
                    f"[{', '.join(sorted(spec.members))}] here); a role and its members are "
                    "the same in every database of a cluster: give both targets the same "
                    "members, or the roles different names"))
    return out


def check_distinct_databases(source: SourceCatalog, targets: dict[str, TargetCatalog]
                             ) -> list[Problem]:
    """A target must be its own database: setup empties and reshapes target tables."""
    out, seen = [], {(source.info.system_identifier, source.info.database): "the source"}
    for name, cat in targets.items():
        key = (cat.info.system_identifier, cat.info.database)
        if key in seen:
            out.append(Problem("error", where(name),
                               f"is the same database as {seen[key]} ({cat.info.database}); "
                               "setup would empty and reshape its tables: give it a database "
                               "of its own"))
        else:
            seen[key] = f"target {name}"
    return out


REPL_SCHEMA = "repl schema"  # kind of the problems that keep repl out of a target's schema


def check_target_server(name: str, cat: TargetCatalog) -> list[Problem]:
    info, privs, out = cat.info, cat.privileges, []
    if info.version_num < MIN_SERVER_VERSION:
        out.append(Problem("error", where(name),
                           f"PostgreSQL {info.version} is too old; repl needs 15 or newer"))
    may_subscribe = privs.superuser or (
        info.major >= 16 and privs.member_of_pg_create_subscription
        and privs.can_create_in_database)
    if not may_subscribe:
        how = ("a superuser" if info.major < 16 else
               "a superuser, or a member of pg_create_subscription with CREATE on the database")
        out.append(Problem("error", where(name),
                           f"role {info.role} cannot create subscriptions; it must be {how}"))
    if cat.foreign_repl_schema:
        out.append(Problem(
            "error", where(name),
            "a schema named repl exists that repl did not create (it has no "
            "repl.alembic_version); repl keeps its own state in the schema repl: rename "
            "that schema (ALTER SCHEMA repl RENAME TO ...) or drop it", kind=REPL_SCHEMA))
    elif cat.schema_revision is not None and newer_revision(cat.schema_revision):
        out.append(Problem(
            "error", where(name),
            f"the repl schema is at revision {cat.schema_revision}, newer than this repl "
            f"knows ({head_revision()}): a newer repl set this target up; use that version",
            kind=REPL_SCHEMA))
    workers = cat.workers
    # A subscription needs an apply worker for good, and a table-sync worker while a table
    # is copied: without a free one the copy waits, with an error nowhere but the log.
    if workers is not None and workers.other_subscriptions + 2 > workers.max_workers:
        exists = bool(cat.subscriptions)
        out.append(Problem(
            "warning" if exists else "error", where(name),
            f"max_logical_replication_workers is {workers.max_workers} on this target's "
            f"server and {workers.other_subscriptions} other enabled subscription(s) use "
            "that many apply workers; " + (
                "a table copied again (a resync, a changed table) would wait for a free "
                "worker" if exists else
                "repl's subscription needs one more, and one per table it copies at a "
                "time") + ": raise max_logical_replication_workers (and "
            "max_worker_processes), then restart the server"))
    return out


# --- tables ------------------------------------------------------------------------------

def check_table(target: str, relation: QualifiedName, table: TableConfig,
                source: SourceTable | None, source_is_superuser: bool,
                target_types: set[tuple[str, str]]) -> list[Problem]:
    """Everything about one configured table that can be decided without the probe."""
    if source is None:
        return [Problem("error", where(target, relation),
                        "table does not exist on the source")]
    out: list[Problem] = []
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
            if column not in names:
                out.append(Problem("error", where(target, relation, column),
                                   f"column listed in {key} does not exist on the source "
                                   "(dropped or renamed there? update the config)"))
    for column in listed:
        col = source.column(column)
        if col is not None and col.generated:
            out.append(Problem("error", where(target, relation, column),
                               "generated columns are not replicated; compute it on the "
                               "target or leave it out"))
    identity = set(source.identity.columns or ())
    for column in table.exclude:
        if column in identity:
            out.append(Problem("error", where(target, relation, column),
                               "is part of the replica identity, which is always "
                               "replicated; remove it from exclude"))
    for column, spec in table.mask.items():
        if column in identity:
            out.append(Problem("error", where(target, relation, column),
                               "is part of the replica identity and cannot be masked: "
                               "updates and deletes would no longer find their row"))
        col = source.column(column)
        problem = type_problem(spec, col) if col is not None else None
        if problem:
            out.append(Problem("error", where(target, relation, column), problem))
    if MUTATING & table.operations:
        out.extend(_identity_problems(target, relation, source))
    for column in published_columns(table, source):
        col = source.column(column)
        if col and col.type_schema != "pg_catalog" and \
                (col.type_schema, col.type_name) not in target_types:
            out.append(Problem("error", where(target, relation, column),
                               f"its type {col.type} does not exist on the target; "
                               "create it there first"))
    return out


def _identity_problems(target: str, relation: QualifiedName, source: SourceTable
                       ) -> list[Problem]:
    at = where(target, relation)
    if not source.identity.usable:
        return [Problem("error", at,
                        f"is published for UPDATE/DELETE but has {source.identity.describe()}: "
                        "PostgreSQL would reject every UPDATE and DELETE on production; "
                        + IDENTITY_WAYS_OUT)]
    out = []
    root_identity = set(source.identity.columns or ())
    for partition, identity in source.partition_identities:
        if not identity.usable or set(identity.columns or ()) - root_identity:
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


# --- row filters, parsed by the source server --------------------------------------------

def probe_row_filters(db: Database, wanted: list[tuple[str, QualifiedName, TableConfig,
                                                        SourceTable]]
                      ) -> tuple[dict[tuple[str, QualifiedName], RowFilter], list[Problem]]:
    """Let the source parse each row filter, in a transaction that is always rolled back."""
    results: dict[tuple[str, QualifiedName], RowFilter] = {}
    problems: list[Problem] = []
    if not wanted:
        return results, problems
    probe_name = PROBE_PREFIX + secrets.token_hex(6)
    probe = sql.Identifier(probe_name)
    with db.conn.transaction(force_rollback=True):
        for target, relation, table, source in wanted:
            assert table.where is not None
            statement = sql.SQL(
                "CREATE PUBLICATION {probe} FOR TABLE {table} ({columns}) WHERE ({filter}\n) "
                "WITH (publish_via_partition_root = true)"
            ).format(
                probe=probe,
                table=sql.Identifier(relation.schema, relation.name),
                columns=sql.SQL(", ").join(
                    sql.Identifier(c) for c in published_columns(table, source)),
                # An expression: PostgreSQL parses it right here. The newline ends a
                # trailing `--` comment before our closing parenthesis, never after it.
                filter=sql.SQL(table.where),
            )
            try:
                with db.conn.transaction():
                    db.execute_one(statement)
                    rows = db.conn.execute(
                        "SELECT pr.prrelid::int8, pg_catalog.pg_get_expr(pr.prqual, pr.prrelid),"
                        " pr.prqual::text FROM pg_catalog.pg_publication_rel AS pr"
                        " JOIN pg_catalog.pg_publication AS p ON p.oid = pr.prpubid"
                        " WHERE p.pubname = %s", (probe_name,)).fetchall()
                    raise psycopg.Rollback()  # leaves the savepoint, undoing the publication
            except psycopg.Error as exc:
                message = ". ".join(filter(None, (exc.diag.message_primary or str(exc).strip(),
                                                 exc.diag.message_detail)))
                problems.append(Problem("error", where(target, relation),
                                        f"row filter {table.where!r} is rejected by "
                                        f"PostgreSQL: {message}"))
                continue
            if len(rows) != 1 or rows[0][0] != source.oid or rows[0][1] is None:
                problems.append(Problem("error", where(target, relation),
                                        f"row filter {table.where!r} is not a single "
                                        "boolean expression over this table"))
                continue
            _, canonical, tree = rows[0]
            attnums = {int(n) for n in _VAR_ATTNO.findall(tree)}
            referenced = frozenset(
                c.name for c in source.columns if 0 in attnums or c.attnum in attnums)
            results[(target, relation)] = RowFilter(canonical, referenced)
    return results, problems


def probe_mask_expressions(db: Database, target: str,
                           wanted: list[tuple[QualifiedName, SourceColumn, MaskSpec]]
                           ) -> list[Problem]:
    """Create each custom `sql` mask's function, as setup will, in a rolled-back
    transaction on the target: PostgreSQL parses and type-checks the expression."""
    problems: list[Problem] = []
    if not wanted:
        return problems
    with db.conn.transaction(force_rollback=True):
        for relation, column, spec in wanted:
            try:
                with db.conn.transaction():
                    db.execute_one(create_sql_mask(relation, column, spec, schema="pg_temp"))
            except psycopg.Error as exc:
                message = exc.diag.message_primary or str(exc).strip()
                problems.append(Problem("error", where(target, relation, column.name),
                                        f"sql mask {spec.param('expression')!r} is rejected by "
                                        f"the target: {message}"))
    return problems


def check_config(config: Config, source: SourceCatalog, targets: dict[str, TargetCatalog],
                 filters: dict[tuple[str, QualifiedName], RowFilter]) -> list[Problem]:
    """All table-level problems of the config (server-level ones are checked separately)."""
    problems = []
    for target, tcfg in config.targets.items():
        for relation, table in tcfg.tables.items():
            src = source.tables.get(relation)
            problems += check_table(target, relation, table, src, source.info.superuser,
                                    targets[target].types)
            row_filter = filters.get((target, relation))
            if src is not None and row_filter is not None:
                problems += check_filter_columns(target, relation, table, src, row_filter)
    return problems


def unclassified_columns(target: str, relation: QualifiedName, table: TableConfig,
                         source: SourceTable, published_now: tuple[str, ...] | None
                         ) -> list[Problem]:
    """Production columns the table's config neither lists nor excludes (deny by default).

    For `columns: all` the list is what the last setup expanded it to (the publication's
    column list); before the first setup every column counts as listed.
    """
    if table.columns == "all":
        if published_now is None:
            return []
        listed = set(published_now)
    else:
        listed = set(table.columns)
    classified = listed | set(table.exclude) | set(source.identity.columns or ())
    return [
        Problem("warning", where(target, relation, c.name),
                "unclassified: a production column this table neither lists in columns nor "
                "excludes; it is not replicated", kind="unclassified")
        for c in source.columns if c.name not in classified
    ]
