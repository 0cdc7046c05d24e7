"""The diff of desired and actual state: an ordered list of steps, each with its SQL.

`plan_target` states the whole order on one screen. A table is (re)copied by the way
PostgreSQL allows: drop it from its publication, wait until the subscriber has
applied everything sent before that, refresh the subscription without copying (it
forgets the table), empty and reshape the target table, add the table back with its
new column list and row filter, and refresh with copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

from .config import OPERATIONS, QualifiedName
from .db import ident
from .masking import GUARD_BODY, create_trigger, drop_trigger
from .model import Publication, PublishedTable, TargetState, TargetTable
from .redact import redact, redact_conninfo
from .roles import role_steps

SOURCE = "source"


@dataclass(frozen=True)
class Step:
    database: str  # "source" or a target's name
    summary: str
    statements: tuple[sql.Composable, ...] = ()
    transactional: bool = True  # False: must run outside a transaction block
    hazards: tuple[str, ...] = ()
    # "sql"; "migrate" (alembic upgrade); "await_slot"; "drop_slot"; "install_masking"
    # (the files of sql/masking/, then the statements)
    action: str = "sql"
    slot: str | None = None  # await_slot: until it confirms the current LSN; drop_slot
    key: tuple[bytes, bytes, str] | None = None  # install_masking: the key it stores
    sensitive: bool = False  # it stores the masking key: never shown
    display: tuple[sql.Composable, ...] = ()  # shown instead (a password masked)

    def text(self) -> str:
        """The SQL as it will run, with secrets redacted; or what the step does."""
        if self.sensitive:
            return "-- (statements not shown: they store the masking key)"
        if not self.statements:
            return f"-- {self.summary}"
        shown = self.display or self.statements
        return redact(";\n".join(s.as_string(None) for s in shown) + ";")


@dataclass(frozen=True)
class Copy:
    target: str
    relation: QualifiedName
    estimated_rows: int | None
    reason: str


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.steps

    def databases(self) -> list[str]:
        return list(dict.fromkeys(s.database for s in self.steps))


def rows_text(estimate: int | None) -> str:
    return "row count unknown" if estimate is None else f"~{estimate} rows"


def _publication_table(entry: PublishedTable) -> sql.Composable:
    parts = [ident(entry.relation),
             sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, entry.columns)))]
    if entry.row_filter is not None:
        # Canonical text PostgreSQL deparsed from the parsed filter: one expression.
        parts.append(sql.SQL(" WHERE ({})").format(sql.SQL(entry.row_filter)))
    return sql.Composed(parts)


def _publish_option(pub: Publication) -> sql.Composable:
    ops = ", ".join(op for op in OPERATIONS if op in pub.operations)
    return sql.SQL("publish = {}, publish_via_partition_root = true").format(sql.Literal(ops))


def _column_def(column) -> sql.Composable:
    return sql.SQL("{} {}{}").format(
        sql.Identifier(column.name), sql.SQL(column.type),
        sql.SQL(" NOT NULL") if column.not_null else sql.SQL(""))


def create_table(table: TargetTable) -> sql.Composable:
    items = [_column_def(c) for c in table.columns]
    if table.key:
        items.append(sql.SQL("PRIMARY KEY ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, table.key))))
    return sql.SQL("CREATE TABLE {} ({})").format(ident(table.relation),
                                                  sql.SQL(", ").join(items))


def reshape_table(want: TargetTable, have: TargetTable) -> list[sql.Composable]:
    """ALTER TABLE actions turning `have` into `want`; the table is empty when they run."""
    actions: list[sql.Composable] = []
    if have.key != want.key and have.key_name:
        actions.append(sql.SQL("DROP CONSTRAINT {}").format(sql.Identifier(have.key_name)))
    wanted = {c.name for c in want.columns}
    for column in have.columns:
        if column.name not in wanted:
            actions.append(sql.SQL("DROP COLUMN {}").format(sql.Identifier(column.name)))
    for column in want.columns:
        old = have.column(column.name)
        if old is None:
            actions.append(sql.SQL("ADD COLUMN {}").format(_column_def(column)))
            continue
        if old.type != column.type:
            actions.append(sql.SQL("ALTER COLUMN {} TYPE {} USING NULL").format(
                sql.Identifier(column.name), sql.SQL(column.type)))
        if old.not_null != column.not_null:
            actions.append(sql.SQL("ALTER COLUMN {} {} NOT NULL").format(
                sql.Identifier(column.name), sql.SQL("SET" if column.not_null else "DROP")))
    if want.key and have.key != want.key:
        actions.append(sql.SQL("ADD PRIMARY KEY ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, want.key))))
    return actions


def shape_differences(want: TargetTable, have: TargetTable) -> list[str]:
    """How the target table differs from what the source and config make it."""
    out = []
    for column in want.columns:
        old = have.column(column.name)
        if old is None:
            out.append(f"{column.name} missing on the target")
        elif old.type != column.type:
            out.append(f"{column.name} is {old.type} on the target, {column.type} wanted")
        elif old.not_null != column.not_null:
            out.append(f"{column.name} NOT NULL differs")
    wanted = {c.name for c in want.columns}
    out += [f"{c.name} is not replicated" for c in have.columns if c.name not in wanted]
    if want.key != have.key:
        out.append(f"primary key ({', '.join(have.key or ())}) instead of "
                   f"({', '.join(want.key or ())})")
    return out


def plan_target(want: TargetState, have: TargetState, target_schemas: set[str],
                resync: frozenset[QualifiedName] = frozenset()) -> Plan:
    """Steps that converge one target (and its publications and slot on the source).

    Tables in `resync` are copied again even when nothing about them changed.
    """
    plan = Plan()
    target, sub = want.target, want.subscription
    assert sub is not None

    def run(database: str, summary: str, *statements: sql.Composable, **kw) -> None:
        plan.steps.append(Step(database, summary, statements, **kw))

    sub_name = sql.Identifier(sub.name)
    existing = have.subscription
    # A subscription whose slot is gone, or was invalidated for exceeding
    # max_slot_wal_keep_size, can never stream again: recreate both, copy every table.
    lost = have.slot is not None and have.slot.wal_status == "lost"
    detached = existing is not None and existing.slot_name != sub.slot_name  # e.g. NONE
    broken = existing is not None and (have.slot is None or lost or detached)
    alive = existing is not None and not broken

    # Which tables need a (re)copy, and why.
    copies: dict[QualifiedName, str] = {}
    for table in want.tables:
        rel = table.relation
        wanted, found, current = want.publication_of(rel), have.publication_of(rel), \
            have.table(rel)
        assert wanted is not None
        if not alive:
            copies[rel] = "initial copy"
        elif rel in resync:
            copies[rel] = "resync requested"
        elif found is None:
            copies[rel] = "new table"
        elif found[0].name != wanted[0].name:
            copies[rel] = "operations changed"
        elif not found[1].same_as(wanted[1]):
            copies[rel] = "column list or row filter changed"
        elif current is None:
            copies[rel] = "target table missing"
        elif differences := shape_differences(table, current):
            copies[rel] = "target table differs: " + "; ".join(differences)
        elif existing is not None and existing.state_of(rel) is None:
            copies[rel] = "not copied yet"
        elif table.mask_function != current.mask_function:
            copies[rel] = "masking changed"
        elif table.mask_function and current.mask_trigger != "A":
            copies[rel] = ("masking trigger missing or not ENABLE ALWAYS: raw values may have "
                           "arrived")
        elif table.mask_function and want.masking_version != have.masking_version:
            copies[rel] = "masking functions changed"
        elif table.mask_function and (want.mask_keys or ())[:2] != (have.mask_keys or ())[:2]:
            copies[rel] = "masking secret changed"
    for rel, reason in copies.items():
        plan.copies.append(Copy(target, rel, want.estimated_rows.get(rel), reason))

    def kept(rel: QualifiedName) -> bool:
        """The publication entry stays as it is (no re-add needed)."""
        wanted, found = want.publication_of(rel), have.publication_of(rel)
        return (wanted is not None and found is not None and found[0].name == wanted[0].name
                and found[1].same_as(wanted[1]) and not (alive and rel in copies))

    # 1. Target: schemas, repl's own schema, subscription repairs, new tables.
    for schema in sorted({t.relation.schema for t in want.tables} - target_schemas):
        run(target, f"create schema {schema}",
            sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    if have.schema_revision != want.schema_revision:
        run(target, f"migrate the repl schema to revision {want.schema_revision}",
            action="migrate")
    if have.owner is None and want.owner is not None:
        run(target, f"record this database as target {target} of config {want.owner.config}",
            sql.SQL("INSERT INTO repl.owner (config, target, id) VALUES ({}, {}, {})").format(
                sql.Literal(want.owner.config), sql.Literal(want.owner.target),
                sql.Literal(want.owner.id)))
    if broken:
        why = "lost" if lost else "detached" if detached else "missing"
        run(target, f"drop the subscription whose slot is {why} (it is recreated below)",
            sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sub_name),
            sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(sub_name),
            sql.SQL("DROP SUBSCRIPTION {}").format(sub_name))
    if want.mask_keys and (want.masking_version != have.masking_version
                           or want.mask_keys[:2] != (have.mask_keys or ())[:2]):
        # One transaction: the library's files (sql/masking/), then the key. Re-creating
        # the key functions makes every session (the apply worker's too) read it again.
        ikey, okey, origin = want.mask_keys
        how = "from the config" if origin == "config" else "generated for this target"
        run(target, f"install the masking functions and the masking key ({how})",
            sql.SQL("CREATE OR REPLACE FUNCTION repl.masking_version() RETURNS text "
                    "LANGUAGE sql IMMUTABLE AS {}").format(sql.Literal(
                        "SELECT " + sql.Literal(want.masking_version).as_string(None))),
            action="install_masking", key=(ikey, okey, origin), sensitive=True)
    # A masked table whose trigger is missing or not ENABLE ALWAYS gets a guard before the
    # subscription can apply anything more (and before it is enabled, if it is not): a
    # trigger that stores nothing, whatever the table's shape, until step 3 empties the
    # table and puts the real trigger in place for its copy. Not the real trigger at
    # once: a setup interrupted in between would then find it in place and copy nothing,
    # leaving the raw values that arrived without it.
    for table in want.tables:
        current = have.table(table.relation)
        if table.mask_function and current is not None and current.mask_trigger != "A" \
                and existing is not None and not broken:
            run(target, f"hold back changes to {table.relation} until it is copied again",
                *create_trigger(table.relation, GUARD_BODY, []))
    if not broken and existing is not None and not existing.enabled:
        run(target, "enable the subscription",
            sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sub_name))
    for table in want.tables:
        if have.table(table.relation) is None:
            run(target, f"create table {table.relation}", create_table(table))

    # 2. Source: take every entry that is not kept as it is out of its publication.
    dropped = False
    for pub in have.publications:
        leaving = [e for e in pub.tables
                   if not kept(e.relation) or want.publication_of(e.relation)[0].name != pub.name]
        if leaving:
            dropped = True
            run(SOURCE, f"remove {len(leaving)} table(s) from publication {pub.name}",
                sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(
                    sql.Identifier(pub.name),
                    sql.SQL(", ").join(ident(e.relation) for e in leaving)))
    # The subscription must forget every table it is to copy again, and every table it
    # should no longer have, whoever took it out of the publication (a DROP COLUMN ...
    # CASCADE on production does): REFRESH PUBLICATION only copies tables it does not know.
    stale = [s.relation for s in (existing.table_states if alive and existing else ())
             if s.relation in copies or want.table(s.relation) is None]
    if alive and (dropped or stale):
        run(SOURCE, f"wait until {sub.name} has applied what was sent before",
            action="await_slot", slot=sub.slot_name)
        run(target, "forget the tables removed from the publications",
            sql.SQL("ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = false)")
            .format(sub_name), transactional=False)

    # 3. Target: empty (and reshape) every table about to be copied, and put its masking
    #    trigger in place before a single row arrives.
    for table in want.tables:
        current = have.table(table.relation)
        if table.relation not in copies:
            continue
        if current is not None:
            run(target, f"empty table {table.relation} before its copy",
                sql.SQL("TRUNCATE ONLY {}").format(ident(table.relation)),
                *(sql.SQL("ALTER TABLE {} {}").format(ident(table.relation), action)
                  for action in reshape_table(table, current)),
                hazards=(f"deletes the rows of {table.relation} on {target}",))
        if table.mask_function:
            run(target, f"masking trigger on {table.relation}",
                *create_trigger(table.relation, table.mask_function,
                                [sql.SQL(s) for s in table.mask_sql]))
        elif current is not None and current.mask_function:
            run(target, f"drop the masking trigger of {table.relation}",
                *drop_trigger(table.relation))

    # 3b. Target: reader roles (SELECT on the replicated tables, nothing else).
    for statements, summary in role_steps(want, have):
        run(target, summary, *statements)

    # 4. Source: publications with their column lists and row filters.
    for pub in want.publications:
        old = next((p for p in have.publications if p.name == pub.name), None)
        if old is None:
            run(SOURCE, f"create publication {pub.name}", sql.SQL(
                "CREATE PUBLICATION {} FOR TABLE {} WITH ({})").format(
                    sql.Identifier(pub.name),
                    sql.SQL(", ").join(_publication_table(e) for e in pub.tables),
                    _publish_option(pub)),
                _mark(pub))
            continue
        if old.marker != pub.marker:  # made by a repl older than the marks
            run(SOURCE, f"mark publication {pub.name} as this target's", _mark(pub))
        if (old.operations, old.via_root) != (pub.operations, pub.via_root):
            run(SOURCE, f"set the operations of publication {pub.name}",
                sql.SQL("ALTER PUBLICATION {} SET ({})").format(
                    sql.Identifier(pub.name), _publish_option(pub)))
        adding = [e for e in pub.tables if not kept(e.relation)]
        if adding:
            run(SOURCE, f"add {len(adding)} table(s) to publication {pub.name}",
                sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                    sql.Identifier(pub.name),
                    sql.SQL(", ").join(_publication_table(e) for e in adding)))

    # 5. Source: the slot, created before the subscription (same-cluster safe).
    if lost:
        run(SOURCE, f"drop replication slot {sub.slot_name}, invalidated (wal_status lost)",
            action="drop_slot", slot=sub.slot_name)
    if have.slot is None or lost:
        run(SOURCE, f"create replication slot {sub.slot_name}", sql.SQL(
            "SELECT pg_catalog.pg_create_logical_replication_slot({}, 'pgoutput')").format(
                sql.Literal(sub.slot_name)), transactional=False)

    # 6. Target: the subscription, and the copies.
    copy_hazards = tuple(
        f"copies {c.relation} ({rows_text(c.estimated_rows)}): {c.reason}" for c in plan.copies)
    if not alive:
        def create(conninfo: str) -> sql.Composable:
            return sql.SQL(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, "
                "slot_name = {}, copy_data = true, enabled = true, disable_on_error = {})"
            ).format(
                sub_name, sql.Literal(conninfo),
                sql.SQL(", ").join(sql.Identifier(p) for p in sorted(sub.publications)),
                sql.Literal(sub.slot_name), sql.Literal(sub.disable_on_error))
        run(target, f"create subscription {sub.name}", create(sub.conninfo),
            hazards=copy_hazards, display=(create(redact_conninfo(sub.conninfo)),))
    else:
        assert existing is not None
        if existing.conninfo is not None and existing.conninfo != sub.conninfo:
            run(target, "change the subscription's connection to the source",
                sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(
                    sub_name, sql.Literal(sub.conninfo)),
                display=(sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(
                    sub_name, sql.Literal(redact_conninfo(sub.conninfo))),))
        if existing.disable_on_error != sub.disable_on_error:
            run(target, f"set disable_on_error = {str(sub.disable_on_error).lower()}",
                sql.SQL("ALTER SUBSCRIPTION {} SET (disable_on_error = {})").format(
                    sub_name, sql.Literal(sub.disable_on_error)))
        if existing.publications != sub.publications:
            if sub.publications - existing.publications:
                # PostgreSQL < 18 fails decoding WAL older than a publication the
                # subscription names: subscribe to it only once the slot is past it.
                run(SOURCE, f"wait until {sub.name} has passed the new publications",
                    action="await_slot", slot=sub.slot_name)
            run(target, "set the subscription's publications", sql.SQL(
                "ALTER SUBSCRIPTION {} SET PUBLICATION {} WITH (refresh = false)").format(
                    sub_name,
                    sql.SQL(", ").join(sql.Identifier(p) for p in sorted(sub.publications))))
        if copies or existing.publications != sub.publications:
            run(target, "refresh the subscription: copy new and changed tables",
                sql.SQL("ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = true)")
                .format(sub_name), transactional=False, hazards=copy_hazards)

    # 7. Source: publications no longer used.
    for pub in have.publications:
        if all(p.name != pub.name for p in want.publications):
            run(SOURCE, f"drop publication {pub.name}",
                sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(pub.name)))
    return plan


def _mark(pub: Publication) -> sql.Composable:
    """Whose the publication is: another config using the same names is then refused."""
    return sql.SQL("COMMENT ON PUBLICATION {} IS {}").format(
        sql.Identifier(pub.name), sql.Literal(pub.marker))


def merge(plans: list[Plan], notes: list[str]) -> Plan:
    merged = Plan(notes=list(notes))
    for p in plans:
        merged.steps += p.steps
        merged.copies += p.copies
    return merged
