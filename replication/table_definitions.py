"""What a target table gets of production's definition besides its replicated columns
(SPEC section 7), decided from the source's catalog and the table's config: its
generated columns, computed on the target from the replicated (possibly masked) columns
they read; production's indexes whose columns and expressions the target has; the
defaults of unmasked columns; and the sequences of serial and identity columns.

Pure functions, called by `state.desired` (and `validate` for what it refuses). What is
left out for a reason other than its columns not being replicated is said in a note of
`plan`, so that nobody wonders where production's index went.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .config import TableConfig
from .model import Column, SourceColumn, SourceTable
from .names import MAX_IDENTIFIER_BYTES, OPERATIONS, QualifiedName
from .strategies import REGISTRY
from .table_model import GeneratedColumn, Index, Sequence, SourceIndex

# Every index repl builds is named "repl_<production's name>_<digest>": the digest is of
# the table and the definition, so a definition that changes on production makes another
# index (the old one is dropped). The comment (table_catalog.INDEX_MARKER) is what makes
# an index repl's; the name is what tells which definition it has.
INDEX_PREFIX = "repl_"
DIGEST_CHARS = 10


@dataclass
class Parts:
    """What one target table gets, and what `plan` says about the rest."""

    generated: tuple[GeneratedColumn, ...] = ()
    indexes: tuple[Index, ...] = ()
    defaults: tuple[tuple[str, str], ...] = ()
    sequences: tuple[Sequence, ...] = ()
    notes: list[str] = field(default_factory=list)


def table_parts(relation: QualifiedName, table: TableConfig, source: SourceTable,
                columns: tuple[Column, ...], target_major: int, target_schemas: set[str],
                existing: set[str] | None = None) -> Parts:
    """`columns`: the target's replicated columns. `existing`: when given (status reads
    the last setup's state), only the generated columns of these names are wanted under
    `columns: all`: one production added since is new, not drift."""
    parts = Parts()
    replicated = {c.name for c in columns}
    generated = []
    for column in source.columns:
        if not column.generated or not wanted(table, column.name) or (
                table.columns == "all" and existing is not None
                and column.name not in existing):
            continue
        if problem := generated_problem(column, source, replicated):
            # Listed in `columns`, validate refuses it; under `all`, it stays behind.
            parts.notes.append(f"generated column {column.name} is left out: {problem}")
            continue
        assert column.definition is not None
        kind = "v" if column.definition.generated == "v" and target_major >= 18 else "s"
        generated.append(GeneratedColumn(column.name, column.type,
                                         column.definition.expression, kind,
                                         source.names(column.definition.attnums)))
    parts.generated = tuple(generated)
    parts.sequences = tuple(_sequences(relation, table, source, replicated, target_schemas,
                                       parts.notes))
    parts.defaults = tuple(_defaults(table, source, replicated, parts))
    available = {c.name: c.type for c in columns} | {g.name: g.type for g in generated}
    parts.indexes = tuple(_indexes(relation, table, source, available, parts.notes))
    return parts


def wanted(table: TableConfig, column: str) -> bool:
    return table.columns == "all" or column in table.columns


def generated_problem(column: SourceColumn, source: SourceTable, replicated: set[str]
                      ) -> str | None:
    """Why the target cannot compute this generated column, or None."""
    found = column.definition
    if found is None or found.expression is None:
        return "its expression could not be read"
    missing = [n for n in source.names(found.attnums) if n not in replicated]
    if missing:
        return (f"it reads {', '.join(missing)}, not replicated to this target; replicate "
                f"{'it' if len(missing) == 1 else 'them'} (masked if need be) or leave "
                f"{column.name} out")
    if found.requires:
        return (f"it uses {', '.join(found.requires)}, which repl does not create on the "
                "target")
    return None


def _sequences(relation: QualifiedName, table: TableConfig, source: SourceTable,
               replicated: set[str], target_schemas: set[str], notes: list[str]
               ) -> list[Sequence]:
    out = []
    for seq in source.sequences:
        if seq.column not in replicated or seq.column in table.mask:
            continue
        if seq.name.schema != relation.schema and seq.name.schema not in target_schemas:
            notes.append(f"sequence {seq.name} of column {seq.column} is not created: its "
                         f"schema {seq.name.schema} does not exist on the target")
            continue
        out.append(seq)
    return out


def _defaults(table: TableConfig, source: SourceTable, replicated: set[str], parts: Parts
              ) -> list[tuple[str, str]]:
    """Defaults of unmasked columns (a masked column's would be production's value)."""
    types = _types_of(source, replicated)
    own = {s.name for s in parts.sequences}
    out = []
    for column in source.columns:
        found = column.definition
        if found is None or found.generated or found.expression is None \
                or column.name not in replicated or column.name in table.mask:
            continue
        why = None
        if found.requires:
            why = f"it uses {', '.join(found.requires)}, which repl does not create there"
        elif foreign := [".".join(t) for t in found.types if t not in types]:
            why = f"it uses type {', '.join(foreign)}, which no replicated column has"
        elif others := [str(s) for s in found.sequences if s not in own]:
            why = f"it takes values from {', '.join(others)}, which is not this column's own"
        if why:
            parts.notes.append(f"the default of {column.name} is not set on the target: {why}")
            continue
        out.append((column.name, found.expression))
    return out


def _indexes(relation: QualifiedName, table: TableConfig, source: SourceTable,
             available: dict[str, str], notes: list[str]) -> list[Index]:
    out = []
    for index in source.indexes:
        names = source.names(index.attnums)
        if _is_key(index, source) or not names or any(n not in available for n in names):
            continue  # the target's primary key; or it reads columns the target lacks
        if why := _unbuildable(index, source, names, available):
            notes.append(f"production's index {index.name} is not built on the target: {why}")
            continue
        assert index.definition is not None
        unique = index.unique
        if unique and (why := plain_because(index, table, names)):
            notes.append(f"production's unique index {index.name} is built as a plain index "
                         f"on the target: {why}")
            unique = False
        name = index_name(relation, unique, index.definition, index.name)
        if all(i.name != name for i in out):  # else production has it twice: built once
            out.append(Index(name, index.definition, unique, index.name))
    return out


def _is_key(index: SourceIndex, source: SourceTable) -> bool:
    """The index the target's primary key stands for (repl makes the key of the replica
    identity's columns)."""
    kind = source.identity.kind
    return (index.primary and kind == "d") or (index.replica_identity and kind == "i")


def _unbuildable(index: SourceIndex, source: SourceTable, names: tuple[str, ...],
                 available: dict[str, str]) -> str | None:
    if index.definition is None:
        return "its definition is not in a form repl knows how to copy"
    if index.requires:
        return f"it uses {', '.join(index.requires)}, which repl does not create there"
    types = _types_of(source, set(available))
    if foreign := [".".join(t) for t in index.types if t not in types]:
        return f"it uses type {', '.join(foreign)}, which no replicated column has"
    retyped = [n for n in names if (col := source.column(n)) and available[n] != col.type]
    if retyped and (index.has_expressions or not index.default_opclasses):
        return (f"{', '.join(retyped)} has another type on the target (masked), which its "
                "expressions or operator classes are not written for")
    return None


def plain_because(index: SourceIndex, table: TableConfig, names: tuple[str, ...]
                  ) -> str | None:
    """Why production's unique index cannot stay unique on this target, or None.

    Production's uniqueness holds on the target only if the target's values are as
    distinct as production's and the target sees every change that kept them distinct:
    an UPDATE, DELETE or TRUNCATE the target never gets leaves a row that the next insert
    collides with, and a collision stops the whole subscription."""
    if index.deferrable:
        return "it is DEFERRABLE, and a plain unique index would check each row at once"
    if not set(OPERATIONS) <= table.operations:
        return ("the table is not replicated with every operation (update, delete, "
                "truncate), so rows production removed or changed stay on the target")
    masked = [n for n in names if n in table.mask]
    if masked and index.has_expressions:
        return f"its expressions or predicate read the masked column {', '.join(masked)}"
    lossy = [f"{n} ({table.mask[n].strategy})" for n in masked
             if not REGISTRY[table.mask[n].strategy].injective]
    if lossy:
        return (f"masked by a strategy that can map two values to one: {', '.join(lossy)}; "
                "only email and hash keep values distinct")
    return None


def index_name(relation: QualifiedName, unique: bool, definition: str, source: str) -> str:
    text = "\0".join((relation.schema, relation.name, "unique" if unique else "", definition))
    digest = hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]
    room = MAX_IDENTIFIER_BYTES - len(INDEX_PREFIX) - 1 - DIGEST_CHARS
    stem = source.encode()[:room].decode(errors="ignore")  # whole characters only
    return f"{INDEX_PREFIX}{stem}_{digest}"


def _types_of(source: SourceTable, columns: set[str]) -> set[tuple[str, str]]:
    """The types outside pg_catalog that the target has: those of its columns."""
    return {(c.type_schema, c.type_name) for c in source.columns
            if c.name in columns and c.type_schema != "pg_catalog"}
