"""Reads what `table_model` holds from a catalog: production's indexes, each column's
default, generation expression or identity, and the sequences of serial and identity
columns; on a target also the indexes repl made. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict

from .db import Database
from .names import QualifiedName
from .table_model import Definition, SourceIndex
from .table_model import Sequence as Seq

# The start of the comment on every index repl makes: how it tells its own from those a
# person made on the target, which it never touches.
INDEX_MARKER = "repl: production's index "
# The comment on a generated column repl made: production's expression as repl created
# it. The target may print it otherwise (a cast that a masked column's type makes
# redundant is left out), and a change on production must be told from a reprint.
GENERATED_MARKER = "repl: generated on production as "


def generation_recorded(comment: str | None) -> str | None:
    """The expression a generated column's comment records; None: not repl's."""
    if comment is None or not comment.startswith(GENERATED_MARKER):
        return None
    return comment[len(GENERATED_MARKER):]


def definitions(db: Database, oids: list[int], generation: bool = True
                ) -> dict[tuple[int, str], Definition]:
    """Per (table OID, column name): the column's default, generation or identity.
    Without `generation` (a target, whose generated columns repl knows by their comment),
    no table is locked to deparse a generation expression, which is then None."""
    return {(r["oid"], r["name"]): Definition(
        column=r["name"], expression=r["expression"],
        generated=r["generated"], identity=r["identity"],
        attnums=tuple(r["attnums"]),
        sequences=tuple(QualifiedName(s, n) for s, n in r["sequences"]),
        requires=tuple(r["requires"]), types=tuple((s, n) for s, n in r["types"]),
        comment=r["comment"])
        for r in db.query("catalog/column_definitions",
                          {"oids": oids, "generation": generation})}


def sequences(db: Database, oids: list[int], defs: dict[tuple[int, str], Definition]
              ) -> dict[int, tuple[Seq, ...]]:
    """Per table OID, the sequences its columns own (`defs`: the columns' definitions),
    with their last values."""
    found: dict[int, list[Seq]] = defaultdict(list)
    for r in db.query("catalog/sequences", {"oids": oids}):
        owner = defs.get((r["oid"], r["column_name"]))
        found[r["oid"]].append(Seq(
            QualifiedName(r["schema"], r["name"]), r["column_name"],
            owner.identity if owner is not None and r["is_identity"] else "",
            r["type"], r["start"], r["increment"], r["minimum"], r["maximum"], r["cache"],
            r["cycle"], r["last_value"]))
    return {oid: tuple(seqs) for oid, seqs in found.items()}


def source_indexes(db: Database, oids: list[int]) -> dict[int, tuple[SourceIndex, ...]]:
    found: dict[int, list[SourceIndex]] = defaultdict(list)
    for r in db.query("catalog/indexes", {"oids": oids}):
        found[r["oid"]].append(SourceIndex(
            name=r["name"], unique=r["is_unique"], primary=r["is_primary"],
            replica_identity=r["is_replica_identity"], deferrable=r["is_deferrable"],
            has_expressions=r["has_expressions"], definition=r["definition"],
            attnums=tuple(r["attnums"]), default_opclasses=r["default_opclasses"],
            requires=tuple(r["requires"]), types=tuple((s, n) for s, n in r["types"])))
    return {oid: tuple(indexes) for oid, indexes in found.items()}


def repl_indexes(db: Database, oids: list[int]) -> dict[int, tuple[str, ...]]:
    """Per table OID, the names of the indexes repl made on it."""
    found: dict[int, list[str]] = defaultdict(list)
    for r in db.query("catalog/repl_indexes", {"oids": oids, "marker": INDEX_MARKER}):
        found[r["oid"]].append(r["name"])
    return {oid: tuple(names) for oid, names in found.items()}
