"""What a table's definition holds beyond its replicated columns (SPEC section 7), as
frozen values read from either side's catalog: production's indexes, a column's default,
generation expression or identity, the sequences of serial and identity columns; and
the indexes and generated columns repl makes on a target table after production's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .names import QualifiedName


@dataclass(frozen=True)
class Definition:
    """A column's default or generation expression, or its identity, as a catalog holds
    it (sql/catalog/column_definitions.sql): what the expression reads and needs decides
    whether a target can have it."""

    column: str
    expression: str | None  # pg_get_expr: outside pg_catalog, names come qualified
    generated: str = ""  # pg_attribute.attgenerated: "s" stored, "v" virtual (18+)
    identity: str = ""  # pg_attribute.attidentity: "a" always, "d" by default
    attnums: tuple[int, ...] = ()  # the other columns a generation expression reads
    sequences: tuple[QualifiedName, ...] = ()  # those a default takes values from
    requires: tuple[str, ...] = ()  # functions, operators... outside pg_catalog
    types: tuple[tuple[str, str], ...] = ()  # types outside pg_catalog
    comment: str | None = None


@dataclass(frozen=True)
class SourceIndex:
    """One of production's indexes (sql/catalog/indexes.sql says what each field holds)."""

    name: str
    unique: bool
    primary: bool
    replica_identity: bool
    deferrable: bool
    has_expressions: bool  # expressions or a predicate
    definition: str | None  # "USING ..." to the end; None: not in a form repl can copy
    attnums: tuple[int, ...]
    default_opclasses: bool
    requires: tuple[str, ...] = ()
    types: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Sequence:
    """A sequence a serial or identity column owns, on the source or a target."""

    name: QualifiedName
    column: str
    identity: str  # "a" or "d": the column's identity; "": a serial column's (OWNED BY)
    type: str
    start: int
    increment: int
    minimum: int
    maximum: int
    cache: int
    cycle: bool
    last_value: int | None = field(default=None, compare=False)  # None: never used

    @property
    def position(self) -> int:
        """The last value handed out, or the one before the first."""
        return self.last_value if self.last_value is not None else \
            self.start - self.increment


@dataclass(frozen=True)
class Index:
    """An index repl made on a target table after production's: named by a digest of
    what defines it (so a changed definition is another index), marked by its comment."""

    name: str
    definition: str = field(default="", compare=False)  # desired: "USING ..." onwards
    unique: bool = field(default=False, compare=False)
    source: str = field(default="", compare=False)  # desired: production's index


@dataclass(frozen=True)
class GeneratedColumn:
    """A generated column, computed on the target as production computes it."""

    name: str
    type: str
    expression: str | None  # actual: as recorded in its comment; None: not repl's
    kind: str = "s"  # "s" STORED, "v" VIRTUAL (PostgreSQL 18+)
    reads: tuple[str, ...] = field(default=(), compare=False)  # actual: columns it reads
