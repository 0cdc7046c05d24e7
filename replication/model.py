"""The objects repl manages, as frozen values: built from the config (desired) and from
the catalogs (actual) with the same types, so that planning is a diff by name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from .config import MaskSpec
from .names import QualifiedName
from .table_model import Definition, GeneratedColumn, Index, Sequence, SourceIndex

# --- source side -------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceColumn:
    attnum: int
    name: str
    type: str
    not_null: bool
    generated: bool
    type_schema: str
    type_name: str
    type_category: str
    type_oid: int = 0  # pg_type.oid on the source
    definition: Definition | None = None  # its default, generation or identity, if any


@dataclass(frozen=True)
class ReplicaIdentity:
    """What PostgreSQL logs to find a row again: 'd' primary key, 'i' index, 'f', 'n'."""

    kind: str
    columns: tuple[str, ...] | None  # None for FULL, NOTHING, or a default without a key
    index: str | None = None
    primary: bool = False

    @property
    def usable(self) -> bool:
        """True when UPDATE/DELETE can be published with a column list."""
        return self.kind in ("d", "i") and bool(self.columns)

    def describe(self) -> str:
        if self.kind == "f":
            return "REPLICA IDENTITY FULL"
        if not self.usable:
            return "no replica identity (no primary key)" if self.kind == "d" else \
                "REPLICA IDENTITY NOTHING"
        what = "primary key" if self.primary else f"index {self.index}"
        return f"{what} ({', '.join(self.columns or ())})"


@dataclass(frozen=True)
class SourceTable:
    relation: QualifiedName
    oid: int
    relkind: str
    owner: str
    owned: bool
    estimated_rows: int | None  # None: never analyzed
    columns: tuple[SourceColumn, ...]
    identity: ReplicaIdentity
    # For a partitioned table: each leaf partition's identity, by partition name.
    partition_identities: tuple[tuple[str, ReplicaIdentity], ...] = ()
    indexes: tuple[SourceIndex, ...] = ()
    sequences: tuple[Sequence, ...] = ()  # owned by its serial and identity columns

    @property
    def partitioned(self) -> bool:
        return self.relkind == "p"

    def column(self, name: str) -> SourceColumn | None:
        return next((c for c in self.columns if c.name == name), None)

    def names(self, attnums: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.attnum in attnums)


# --- publications and subscriptions -------------------------------------------------------

@dataclass(frozen=True)
class PublishedTable:
    """One entry of a publication: a table with its column list and row filter."""

    relation: QualifiedName
    columns: tuple[str, ...]  # in the table's column order
    row_filter: str | None  # as PostgreSQL deparses it (pg_get_expr), so both sides compare

    def same_as(self, other: PublishedTable) -> bool:
        return (set(self.columns), self.row_filter) == (set(other.columns), other.row_filter)


@dataclass(frozen=True)
class Publication:
    name: str
    operations: frozenset[str]
    tables: tuple[PublishedTable, ...]
    via_root: bool = True
    # Its comment: whose it is (Owner.marker). None: unmarked (made by an older repl).
    marker: str | None = field(default=None, compare=False)

    def table(self, relation: QualifiedName) -> PublishedTable | None:
        return next((t for t in self.tables if t.relation == relation), None)


@dataclass(frozen=True)
class Owner:
    """The config and target a target database belongs to (repl.owner), and its id."""

    config: str
    target: str
    id: str

    @property
    def marker(self) -> str:
        """The comment on the publications made for this target database."""
        return f"repl: config {self.config}; target {self.target}; target database {self.id}"

    @staticmethod
    def of_marker(marker: str) -> tuple[str, str, str] | None:
        """(config, target, id) of a publication's comment, if it is a marker."""
        found = re.fullmatch(r"repl: config (\S+); target (\S+); target database (\S+)",
                             marker)
        return (found[1], found[2], found[3]) if found else None


@dataclass(frozen=True)
class ConninfoDigest:
    """What setup recorded of a subscription's connection string: enough to tell whether
    another string is the same, not enough to print it."""

    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, conninfo: str, salt: bytes | None = None) -> ConninfoDigest:
        # scrypt, not one fast hash: the string holds a password, and a weak one should
        # not fall to an offline search by whoever reads repl's schema.
        salt = salt if salt is not None else secrets.token_bytes(16)
        return cls(salt, hashlib.scrypt(conninfo.encode(), salt=salt, n=2**14, r=8, p=1,
                                        dklen=32))

    def matches(self, conninfo: str) -> bool:
        return hmac.compare_digest(self.digest, ConninfoDigest.of(conninfo, self.salt).digest)


@dataclass(frozen=True)
class RowFilter:
    """A row filter as PostgreSQL parsed it."""

    canonical: str
    columns: frozenset[str]  # referenced columns; all of them for a whole-row reference


@dataclass(frozen=True)
class Slot:
    name: str
    plugin: str | None
    active: bool
    wal_status: str | None
    safe_wal_size: int | None
    retained_bytes: int | None
    lag_bytes: int | None
    replay_lag_seconds: float | None
    caught_up: bool = False  # everything flushed was sent and applied
    unsent_bytes: int | None = None  # flushed WAL its walsender has not decoded yet
    inactive_seconds: float | None = None  # PostgreSQL 17+: since its consumer left


# pg_subscription_rel.srsubstate of a table being copied: its table-sync slot is in use,
# or about to be.
COPYING = ("i", "d", "f")


@dataclass(frozen=True)
class InitialCopy:
    """One table's initial copy from an exported snapshot (repl.initial_copy)."""
    slot: str
    walsender_pid: int  # on the source: the connection holding the snapshot
    chunks: int
    chunks_done: int
    rows_copied: int
    estimated_rows: int | None
    seconds: float
    finished: bool


@dataclass(frozen=True)
class RelationSync:
    """One table of a subscription (pg_subscription_rel), with its running COPY if any."""
    relation: QualifiedName
    state: str  # srsubstate: i, d, f, s, r
    rows_copied: int | None = None
    copy_seconds: float | None = None


@dataclass(frozen=True)
class Subscription:
    name: str
    slot_name: str | None
    publications: frozenset[str]
    enabled: bool
    conninfo: str | None = None  # None when the connected role may not read it
    oid: int | None = None
    worker_pid: int | None = None
    apply_error_count: int = 0
    sync_error_count: int = 0
    disable_on_error: bool = False
    worker_age_seconds: float | None = None  # since the apply worker (re)started
    table_states: tuple[RelationSync, ...] = ()

    def sync_of(self, relation: QualifiedName) -> RelationSync | None:
        return next((s for s in self.table_states if s.relation == relation), None)

    def state_of(self, relation: QualifiedName) -> str | None:
        found = self.sync_of(relation)
        return found.state if found else None


# --- target side -------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool = False
    # The source column's attnum: desired, from the source; actual, as the last setup
    # recorded it (repl.replicated_table). Not part of the shape: a rename keeps it.
    attnum: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TargetTable:
    relation: QualifiedName
    columns: tuple[Column, ...]
    key: tuple[str, ...] | None = None  # primary key, so UPDATE/DELETE find their row
    key_name: str | None = field(default=None, compare=False)  # actual only
    mask_function: str | None = None  # body of its masking trigger function, if masked
    mask_trigger: str | None = None  # the trigger's pg_trigger.tgenabled ("A": always)
    # desired only: the statements creating its custom `sql` mask functions
    mask_sql: tuple[str, ...] = field(default=(), compare=False)
    # desired only: the masked columns and their strategies, by column name
    masks: tuple[tuple[str, MaskSpec], ...] = field(default=(), compare=False)
    # The source table's OID: desired, from the source; actual, as recorded.
    source_oid: int | None = field(default=None, compare=False)
    # desired only: the masking trigger's body as it was written for the names the last
    # setup recorded; equal to the actual body, the masking is the same but for renames.
    recorded_mask_function: str | None = field(default=None, compare=False)
    # What the table gets of production's definition (SPEC section 7): none of it is
    # copied data, so none of it makes the table copied again.
    indexes: tuple[Index, ...] = ()  # actual: repl's only
    generated: tuple[GeneratedColumn, ...] = ()
    defaults: tuple[tuple[str, str], ...] = ()  # (column, expression)
    sequences: tuple[Sequence, ...] = ()
    read_only: str | None = None  # the read-only guard's tgenabled ("O"); None: none

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class UserType:
    """A user-defined type that replicated columns need, by its structure: desired from
    production's definition, actual from the target's, compared field by field (never by
    name alone: a composite with its attributes in another order reads `(Elm,99)` as
    another value). Types are spelled as format_type spells them (qualified unless
    PostgreSQL's own)."""

    # What repl creates from a definition; other kinds must exist on the target.
    CREATABLE = ("enum", "domain", "composite", "range")  # not a field: no annotation

    name: QualifiedName
    kind: str  # enum, domain, composite, range; base, table row type (never created)
    labels: tuple[str, ...] = ()  # enum, in sort order
    attributes: tuple[tuple[str, str], ...] = ()  # composite: (name, type), in order
    base: str | None = None  # a domain's base type, a range's subtype
    not_null: bool = False  # domain
    default: str | None = None  # domain, as pg_get_expr deparses it
    checks: tuple[tuple[str, str], ...] = ()  # domain: (name, pg_get_constraintdef), by name
    collation: str | None = None  # domain, range: when not the base type's or subtype's
    subtype_opclass: str | None = None  # range: when not the subtype's default
    canonical: str | None = None  # range
    subtype_diff: str | None = None  # range
    multirange: str | None = None  # range: its multirange type
    extension: str | None = None  # the extension it belongs to
    spelled: str = field(default="", compare=False)  # format_type's spelling of its name
    # desired: its pg_type.oid on the source; actual: the source OID recorded for it
    # (repl.replicated_type), None when repl did not record it
    source_oid: int | None = field(default=None, compare=False)
    needs: tuple[QualifiedName, ...] = field(default=(), compare=False)  # user types it uses
    # functions its definition names that are not PostgreSQL's own (a range's subtype_diff)
    functions: tuple[str, ...] = field(default=(), compare=False)

    @property
    def creatable(self) -> bool:
        """repl can create it from its definition: not an extension's, not a base type
        (C code), not a table's row type, not a range with a canonical function (C) or a
        function of the user's (repl does not copy functions)."""
        return self.kind in self.CREATABLE and self.extension is None \
            and self.canonical is None and not self.functions


@dataclass(frozen=True)
class ColumnIdentity:
    """A target column, and the source column it replicates as the last setup saw it."""

    name: str  # on the target
    attnum: int  # pg_attribute.attnum on the source: stays through a RENAME COLUMN
    type: str  # the source column's type then


@dataclass(frozen=True)
class TableIdentity:
    """What a target table replicates, by production's identity (repl.replicated_table):
    the source table's OID survives RENAME and SET SCHEMA, a column's attnum survives
    RENAME COLUMN, and a column added later has an attnum never recorded."""

    relation: QualifiedName  # the target table
    source_oid: int
    columns: tuple[ColumnIdentity, ...]
    all_columns: bool = False  # set up under `columns: all`: the columns it accepted
    excluded: tuple[ColumnIdentity, ...] = ()  # the columns the config excluded then

    def column(self, attnum: int) -> ColumnIdentity | None:
        return next((c for c in self.columns if c.attnum == attnum), None)

    @property
    def attnums(self) -> frozenset[int]:
        """The source columns a person classified: replicated or excluded."""
        return frozenset(c.attnum for c in (*self.columns, *self.excluded))


@dataclass(frozen=True)
class Role:
    """A reader role on a target: NOLOGIN, SELECT on the replicated tables, nothing else."""

    # The comment on the roles repl creates. Roles are cluster-wide, and so is a comment
    # on one: every target in the cluster sees which roles are repl's.
    MARKER = "managed by repl"  # not a field: no annotation

    name: str
    login: bool = False
    members: frozenset[str] = frozenset()
    readable: frozenset[QualifiedName] = frozenset()
    writable: frozenset[QualifiedName] = frozenset()
    schemas: frozenset[str] = frozenset()  # USAGE on them
    # Carries MARKER: repl created it. Desired roles always do.
    marked: bool = True


@dataclass(frozen=True)
class TargetState:
    """Everything repl owns for one target, on the source and on the target."""

    target: str
    publications: tuple[Publication, ...]
    subscription: Subscription | None
    tables: tuple[TargetTable, ...]
    slot: Slot | None = None
    # desired: the types its replicated columns need, dependencies first; actual: the
    # target's types of those names, and those recorded as production's
    types: tuple[UserType, ...] = ()
    schema_revision: str | None = None
    # ikey, okey and where the key came from ("config" or "generated")
    mask_keys: tuple[bytes, bytes, str] | None = field(default=None, repr=False)
    masking_version: str | None = None
    roles: tuple[Role, ...] = ()  # actual: only the roles that exist
    managed_roles: frozenset[str] = frozenset()  # recorded in repl.managed_role
    owner: Owner | None = None  # recorded in repl.owner
    # actual: table-sync slots the subscription's copies left behind on the source
    sync_slots: tuple[str, ...] = ()
    guard_function: str | None = None  # body of repl's read-only guard, when wanted
    read_only: bool = True  # desired: the config's; a false one keeps sequences ahead
    # desired: tables no longer wanted are dropped, not kept with their data (teardown)
    drop_tables: bool = False
    # desired: target columns no longer replicated are dropped, not kept (--drop-columns)
    drop_columns: bool = False
    estimated_rows: dict[QualifiedName, int | None] = field(
        default_factory=dict, compare=False)

    def publication_of(self, relation: QualifiedName) -> tuple[Publication, PublishedTable] | None:
        for pub in self.publications:
            entry = pub.table(relation)
            if entry is not None:
                return pub, entry
        return None

    def table(self, relation: QualifiedName) -> TargetTable | None:
        return next((t for t in self.tables if t.relation == relation), None)

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)
