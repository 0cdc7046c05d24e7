"""Reads the actual state from the live catalogs into the types of `model`.

Nothing here writes. The source is read once per command (its tables, repl's
publications and slots); each target likewise (its tables, repl's subscription).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from . import guard, pubsub, records, slots, table_catalog, user_types
from .db import Database
from .masking import TRIGGER_NAME
from .model import (
    Column,
    ConninfoDigest,
    InitialCopy,
    Owner,
    Publication,
    ReplicaIdentity,
    Role,
    RowFilter,
    Slot,
    SourceColumn,
    SourceTable,
    Subscription,
    TableIdentity,
    TargetTable,
    UserType,
)
from .names import QualifiedName
from .table_model import GeneratedColumn, Index


@dataclass(frozen=True)
class ServerInfo:
    version_num: int
    version: str
    wal_level: str
    max_replication_slots: int
    max_wal_senders: int
    max_slot_wal_keep_size: str
    slots_used: int
    senders_used: int
    database: str
    role: str
    superuser: bool
    replication: bool
    read_all_stats: bool  # pg_stat_replication shows walsenders' positions and lag times
    can_create_in_database: bool
    system_identifier: str
    log_statement: str = "none"  # as set for this role's sessions
    log_min_duration_statement: str = "-1"
    log_min_error_statement: str = "error"

    @property
    def logs_statements(self) -> bool:
        """Whether this server logs the DDL statements of this role's sessions: a role
        that is not a superuser cannot turn that off for itself."""
        return self.log_statement in ("ddl", "mod", "all") \
            or self.log_min_duration_statement not in ("-1", "")

    @property
    def major(self) -> int:
        return self.version_num // 10000


def server_info(db: Database) -> ServerInfo:
    (row,) = db.query("catalog/server")
    return ServerInfo(**row)


def _names(relations: Iterable[QualifiedName], oids: Iterable[int] = ()) -> dict[str, list]:
    rels = list(relations)
    return {"schemas": [r.schema for r in rels], "names": [r.name for r in rels],
            "oids": list(oids)}


def _identity(kind: str, row: dict[str, Any] | None) -> ReplicaIdentity:
    if row is None or not row.get("columns"):
        return ReplicaIdentity(kind, None)
    return ReplicaIdentity(kind, tuple(row["columns"]), row["indexname"], bool(row["is_primary"]))


def source_tables(db: Database, relations: Iterable[QualifiedName], oids: Iterable[int] = ()
                  ) -> dict[QualifiedName, SourceTable]:
    """The tables that exist on the source of those named or of those OIDs, with columns
    and replica identities."""
    rows = db.query("catalog/tables", _names(relations, oids))
    if not rows:
        return {}
    oids = [r["oid"] for r in rows]
    definitions = table_catalog.definitions(db, oids)
    columns: dict[int, list[SourceColumn]] = defaultdict(list)
    for c in db.query("catalog/columns", {"oids": oids}):
        columns[c["oid"]].append(SourceColumn(
            attnum=c["attnum"], name=c["name"], type=c["type"], not_null=c["not_null"],
            generated=bool(c["generated"]), type_schema=c["type_schema"],
            type_name=c["type_name"], type_category=c["type_category"],
            type_oid=c["type_oid"],
            definition=definitions.get((c["oid"], c["name"])),
        ))
    indexes = table_catalog.source_indexes(db, oids)
    sequences = table_catalog.sequences(db, oids, definitions)
    identities: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in db.query("catalog/replica_identity", {"oids": oids}):
        identities[r["root"]].append(r)
    tables = {}
    for r in rows:
        rel = QualifiedName(r["schema"], r["name"])
        members = identities[r["oid"]]
        own = next((m for m in members if m["relid"] == r["oid"]), None)
        leaves = tuple(
            (m["relation"], _identity(m["kind"], m))
            for m in members
            if m["relid"] != r["oid"] and m["relkind"] != "p"
        )
        tables[rel] = SourceTable(
            relation=rel, oid=r["oid"], relkind=r["relkind"], owner=r["owner"],
            owned=r["owned"], estimated_rows=r["estimated_rows"],
            columns=tuple(columns[r["oid"]]),
            identity=_identity(r["replica_identity"], own),
            partition_identities=leaves,
            indexes=indexes.get(r["oid"], ()),
            sequences=sequences.get(r["oid"], ()),
        )
    return tables


def target_tables(db: Database, relations: Iterable[QualifiedName],
                  recorded: dict[QualifiedName, TableIdentity] | None = None
                  ) -> dict[QualifiedName, TargetTable]:
    """The named target tables that exist, and those `recorded` names (production's
    identity of what they replicate, which they carry: a table or column the config
    names differently since a rename on production is found by it)."""
    recorded = recorded or {}
    rows = db.query("catalog/tables", _names(list(dict.fromkeys([*relations, *recorded]))))
    if not rows:
        return {}
    oids = [r["oid"] for r in rows]
    definitions = table_catalog.definitions(db, oids, generation=False)
    all_columns = db.query("catalog/columns", {"oids": oids})
    names = {(c["oid"], c["attnum"]): c["name"] for c in all_columns}
    columns: dict[int, list[Column]] = defaultdict(list)
    generated: dict[int, list[GeneratedColumn]] = defaultdict(list)
    for c in all_columns:
        if not c["generated"]:
            columns[c["oid"]].append(Column(c["name"], c["type"], c["not_null"]))
            continue
        found = definitions[(c["oid"], c["name"])]
        generated[c["oid"]].append(GeneratedColumn(
            c["name"], c["type"], table_catalog.generation_recorded(found.comment),
            found.generated, tuple(names[(c["oid"], n)] for n in found.attnums)))
    defaults: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for (oid, name), found in definitions.items():
        if not found.generated and found.expression is not None:
            defaults[oid].append((name, found.expression))
    sequences = table_catalog.sequences(db, oids, definitions)
    indexes = table_catalog.repl_indexes(db, oids)
    guards = {t["oid"]: t["enabled"] for t in db.query(
        "catalog/mask_triggers", {"oids": oids, "trigger": guard.TRIGGER_NAME})}
    # The target's primary key, whatever its replica identity setting: it is what
    # repl creates, and what apply uses to find rows.
    keys = {r["oid"]: (r["name"], tuple(r["columns"]))
            for r in db.query("catalog/primary_keys", {"oids": oids})}
    triggers = {t["oid"]: t for t in db.query(
        "catalog/mask_triggers", {"oids": oids, "trigger": TRIGGER_NAME})}
    result = {}
    for r in rows:
        rel = QualifiedName(r["schema"], r["name"])
        key = keys.get(r["oid"])
        trigger = triggers.get(r["oid"])
        identity = recorded.get(rel)
        attnums = {c.name: c.attnum for c in identity.columns} if identity else {}
        oid = r["oid"]
        result[rel] = TargetTable(
            rel, tuple(replace(c, attnum=attnums.get(c.name)) for c in columns[oid]),
            key[1] if key else None, key[0] if key else None,
            mask_function=trigger["body"] if trigger else None,
            mask_trigger=trigger["enabled"] if trigger else None,
            source_oid=identity.source_oid if identity else None,
            indexes=tuple(Index(name) for name in indexes.get(oid, ())),
            generated=tuple(generated[oid]),
            defaults=tuple(defaults[oid]), sequences=sequences.get(oid, ()),
            read_only=guards.get(oid))
    return result



def roles(db: Database, names: Iterable[str], relations: Iterable[QualifiedName]
          ) -> dict[str, Role]:
    """The named roles that exist, with repl's mark, members and privileges on the given
    tables."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    params = {"roles": wanted, "marker": Role.MARKER, **_names(relations)}
    return {
        r["name"]: Role(
            name=r["name"], login=r["can_login"], marked=r["marked"],
            members=frozenset(r["members"]),
            readable=frozenset(QualifiedName(s, n) for s, n in r["readable"]),
            writable=frozenset(QualifiedName(s, n) for s, n in r["writable"]),
            schemas=frozenset(r["schemas"]),
        )
        for r in db.query("catalog/roles", params)
    }


@dataclass(frozen=True)
class TargetPrivileges:
    superuser: bool
    can_create_roles: bool
    can_create_in_database: bool
    member_of_pg_create_subscription: bool


@dataclass(frozen=True)
class ApplyWorkers:
    max_workers: int  # max_logical_replication_workers
    max_sync_workers: int  # max_sync_workers_per_subscription
    other_subscriptions: int  # enabled, in the whole cluster, not repl's here


def apply_workers(db: Database, prefix: str) -> ApplyWorkers:
    (row,) = db.query("catalog/apply_workers", {"prefix": prefix + "_"})
    return ApplyWorkers(**row)


def target_privileges(db: Database) -> TargetPrivileges:
    (row,) = db.query("catalog/target_privileges")
    return TargetPrivileges(**row)


@dataclass
class SourceCatalog:
    info: ServerInfo
    tables: dict[QualifiedName, SourceTable]  # those the config names
    publications: dict[str, Publication]
    slots: dict[str, Slot]  # repl's and the table-sync slots (slots.read)
    # By OID, those the config names and those the targets' records name (a table renamed
    # on production since the last setup; an OID no longer there: a dropped table).
    by_oid: dict[int, SourceTable] = field(default_factory=dict)
    # Columns repl's publications pin (PostgreSQL refuses to drop them or change their
    # type), per table: column -> the publications that use it.
    pinned: dict[QualifiedName, dict[str, list[str]]] = field(default_factory=dict)

    def add_recorded(self, db: Database, oids: Iterable[int]) -> None:
        """Read the tables of those OIDs too, unless known already."""
        wanted = [o for o in oids if o not in self.by_oid]
        if wanted:
            self.by_oid.update((t.oid, t) for t in source_tables(db, (), wanted).values())
    # The user types of the tables' columns and those they need, by OID (an array's or a
    # multirange's OID maps to the type it stands for): user_types.read
    types: dict[int, UserType] = field(default_factory=dict)
    # The walsenders holding the snapshot an initial copy reads (a copy under way).
    snapshot_holders: frozenset[int] = frozenset()


@dataclass
class TargetCatalog:
    info: ServerInfo
    privileges: TargetPrivileges
    tables: dict[QualifiedName, TargetTable]
    subscriptions: dict[str, Subscription]
    schema_revision: str | None
    # A schema named repl that repl did not make: nothing in it is read as repl's state,
    # check refuses to go on and teardown leaves it alone.
    foreign_repl_schema: bool
    schemas: set[str]
    creatable_schemas: set[str]  # where the connected role may create tables
    mask_keys: tuple[bytes, bytes, str] | None
    masking_version: str | None
    roles: dict[str, Role]  # configured, managed and member roles that exist
    managed_roles: frozenset[str]
    owner: Owner | None = None
    # The target's types of the names asked for and of the names repl recorded, by name;
    # source_oid is the production type's OID recorded for it (repl.replicated_type).
    user_types: dict[QualifiedName, UserType] = field(default_factory=dict)
    workers: ApplyWorkers | None = None
    row_filters: dict[QualifiedName, tuple[str, RowFilter]] = field(default_factory=dict)
    conninfo_digests: dict[str, ConninfoDigest] = field(default_factory=dict)
    # Production's identity of what is replicated, as the last setup recorded it.
    identities: dict[QualifiedName, TableIdentity] = field(default_factory=dict)
    type_identities: dict[tuple[str, str], int] = field(default_factory=dict)
    guard_function: str | None = None  # body of repl.read_only_guard(), if installed
    # The last initial copy from a snapshot, per table (repl.initial_copy).
    initial_copies: dict[QualifiedName, InitialCopy] = field(default_factory=dict)

    def identity_of(self, source_oid: int) -> TableIdentity | None:
        """The record of the target table that replicates the source table `source_oid`."""
        return next((i for i in self.identities.values() if i.source_oid == source_oid), None)


def target_types(db: Database, names: Iterable[QualifiedName],
                 recorded: dict[tuple[str, str], int]) -> dict[QualifiedName, UserType]:
    """The target's types of these names and of the names repl recorded, with the
    production type's OID recorded for each."""
    wanted = set(names) | {QualifiedName(s, n) for s, n in recorded}
    if not wanted:
        return {}
    found = {t.name: t for t in user_types.read(db, names=sorted(wanted)).values()}
    return {name: replace(t, source_oid=recorded.get((name.schema, name.name)))
            for name, t in found.items() if name in wanted}


def read_source(db: Database, prefix: str, relations: Iterable[QualifiedName]) -> SourceCatalog:
    tables = source_tables(db, relations)
    oids = {c.type_oid for t in tables.values() for c in t.columns}
    return SourceCatalog(
        info=server_info(db),
        tables=tables,
        publications=pubsub.publications(db, prefix),
        slots=slots.read(db, prefix),
        by_oid={t.oid: t for t in tables.values()},
        pinned=pubsub.pinned_columns(db, prefix),
        types=user_types.read(db, oids=sorted(oids)) if oids else {},
        snapshot_holders=slots.snapshot_holders(db, slots.SNAPSHOT_APPLICATION),
    )


def read_target(db: Database, prefix: str, relations: Iterable[QualifiedName],
                types: Iterable[QualifiedName] = (), role_names: Iterable[str] = ()
                ) -> TargetCatalog:
    info = server_info(db)
    schemas = db.query("catalog/schemas")
    revision, foreign = records.repl_schema(db)
    keys, version = records.masking_state(db, revision)
    managed = records.managed_roles(db, revision)
    relations = list(relations)
    identities = records.identities(db, revision)
    recorded_types = records.type_identities(db, revision)
    return TargetCatalog(
        info=info,
        privileges=target_privileges(db),
        tables=target_tables(db, relations, identities),
        subscriptions=pubsub.subscriptions(db, prefix, with_conninfo=info.superuser),
        schema_revision=revision,
        foreign_repl_schema=foreign,
        schemas={r["schema"] for r in schemas},
        creatable_schemas={r["schema"] for r in schemas if r["can_create"]},
        mask_keys=keys,
        masking_version=version,
        roles=roles(db, set(role_names) | managed, [*relations, *identities]),
        managed_roles=managed,
        owner=records.owner(db, revision),
        guard_function=guard.installed_body(db, revision),
        user_types=target_types(db, types, recorded_types),
        workers=apply_workers(db, prefix),
        row_filters=records.row_filters(db, revision),
        conninfo_digests=records.conninfo_digests(db, revision),
        identities=identities,
        type_identities=recorded_types,
        initial_copies=records.initial_copies(db, revision),
    )
