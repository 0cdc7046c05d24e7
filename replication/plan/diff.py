"""What differs for one target, as facts every object kind's planner reads: whether the
subscription can stream, which tables are copied again and why, which publication
entries stay as they are.

A desired state without a subscription is a target to tear down: everything repl made
for it goes, but the target's tables (unless `drop_tables`) and its reader roles.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from ..model import PublishedTable, Subscription, TargetState, TargetTable
from ..names import QualifiedName
from ..snapshot_copy import FROM_SNAPSHOT, CopyOptions
from ..user_types import renames, respell
from .tables import shape_differences


@dataclass(frozen=True)
class Copy:
    target: str
    relation: QualifiedName
    estimated_rows: int | None
    reason: str


@dataclass(frozen=True)
class TargetDiff:
    want: TargetState
    have: TargetState
    schemas: frozenset[str]  # the schemas that exist on the target
    resync: frozenset[QualifiedName] = frozenset()  # copied again even if unchanged
    copy_options: CopyOptions = FROM_SNAPSHOT  # how a new target is copied

    @property
    def target(self) -> str:
        return self.want.target

    @property
    def sub(self) -> Subscription | None:
        """The subscription wanted; None when the target is torn down."""
        return self.want.subscription

    @property
    def existing(self) -> Subscription | None:
        return self.have.subscription

    @cached_property
    def lost(self) -> bool:
        """The slot was invalidated for exceeding max_slot_wal_keep_size."""
        return self.have.slot is not None and self.have.slot.wal_status == "lost"

    @cached_property
    def broken(self) -> bool:
        """A subscription whose slot is gone, lost or detached (slot_name NONE) can never
        stream again: it is recreated, and every table copied."""
        return self.existing is not None and self.sub is not None and (
            self.have.slot is None or self.lost or self.detached)

    @cached_property
    def detached(self) -> bool:
        return self.existing is not None and self.sub is not None \
            and self.existing.slot_name != self.sub.slot_name

    @cached_property
    def alive(self) -> bool:
        """The subscription exists, is wanted and can stream."""
        return self.existing is not None and self.sub is not None and not self.broken

    @cached_property
    def type_renames(self) -> dict[str, str]:
        """Types production renamed that the target has under the old name: their
        spelling now, and once renamed (plan/types.py renames them before any table)."""
        return renames(self.want.types, self.have.types) if self.sub is not None else {}

    def current(self, rel: QualifiedName) -> TargetTable | None:
        """The target table as it reads once its types are renamed like production's: a
        renamed type is no reason to copy a table again."""
        table = self.have.table(rel)
        if table is None or not self.type_renames:
            return table
        return replace(table, columns=tuple(
            replace(c, type=respell(c.type, self.type_renames) or c.type)
            for c in table.columns))

    @cached_property
    def copies(self) -> dict[QualifiedName, str]:
        """The tables to (re)copy, in the config's order, with the reason."""
        found: dict[QualifiedName, str] = {}
        for table in self.want.tables:
            if reason := self._copy_reason(table.relation):
                found[table.relation] = reason
        return found

    def _copy_reason(self, rel: QualifiedName) -> str | None:
        want, have = self.want, self.have
        table, current = want.table(rel), self.current(rel)
        wanted, found = want.publication_of(rel), have.publication_of(rel)
        assert table is not None and wanted is not None
        keys = (want.mask_keys or ())[:2] != (have.mask_keys or ())[:2]
        if not self.alive:
            return "initial copy"
        if rel in self.resync:
            return "resync requested"
        if found is None:
            if self.existing is not None and self.existing.state_of(rel) is not None:
                return ("it left its publication on the source (production's DROP COLUMN ... "
                        "CASCADE does that): changes since were not replicated")
            return "new table"
        if found[0].name != wanted[0].name:
            return "operations changed"
        if not found[1].same_as(wanted[1]) and rel not in self.released:
            return "column list or row filter changed"
        if current is None:
            return "target table missing"
        if differences := shape_differences(table, current):
            return "target table differs: " + "; ".join(differences)
        if self.existing is not None and self.existing.state_of(rel) is None:
            return "not copied yet"
        if table.mask_function != current.mask_function:
            return "masking changed"
        if table.mask_function and current.mask_trigger != "A":
            return "masking trigger missing or not ENABLE ALWAYS: raw values may have arrived"
        if table.mask_function and want.masking_version != have.masking_version:
            return "masking functions changed"
        if table.mask_function and keys:
            return "masking secret changed"
        return None

    def copy_list(self) -> list[Copy]:
        return [Copy(self.target, rel, self.want.estimated_rows.get(rel), reason)
                for rel, reason in self.copies.items()]

    def kept(self, rel: QualifiedName) -> bool:
        """The table's publication entry stays as it is, or only loses columns (released,
        without a copy): it is not taken out of its publication to be copied again."""
        wanted, found = self.want.publication_of(rel), self.have.publication_of(rel)
        return (wanted is not None and found is not None and found[0].name == wanted[0].name
                and (found[1].same_as(wanted[1]) or rel in self.released)
                and not (self.alive and rel in self.copies))

    @cached_property
    def released(self) -> dict[QualifiedName, tuple[str, ...]]:
        """Tables whose column list only loses columns (same publication, same row filter):
        the columns leave the publication without a copy, and production may then drop
        them or change their type (PostgreSQL refuses both while a publication uses
        them). The target keeps them, nullable, unless `drop_columns`."""
        out = {}
        for table in self.want.tables if self.alive else ():
            wanted, found = self.want.publication_of(table.relation), \
                self.have.publication_of(table.relation)
            if wanted is None or found is None or found[0].name != wanted[0].name:
                continue
            before, after = set(found[1].columns), set(wanted[1].columns)
            if found[1].row_filter == wanted[1].row_filter and after < before:
                out[table.relation] = tuple(c for c in found[1].columns if c not in after)
        return out

    @cached_property
    def leaving(self) -> dict[str, list[PublishedTable]]:
        """Per publication, the entries taken out of it: to be copied again, moved to
        another publication, or no longer configured. Also from a publication dropped
        later: the subscription must forget a table before it is published anew. A target
        torn down loses its publications as a whole."""
        out: dict[str, list[PublishedTable]] = {}
        for pub in self.have.publications if self.sub is not None else ():
            entries = [e for e in pub.tables if not self.kept(e.relation)
                       or self.want.publication_of(e.relation)[0].name != pub.name]
            if entries:
                out[pub.name] = entries
        return out
