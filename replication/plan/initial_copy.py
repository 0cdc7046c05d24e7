"""How a target's tables are first copied. A new target (no subscription that can
stream) is copied from one exported snapshot by several workers, which then hand over to
a subscription created without a copy (replication/snapshot_copy.py): the default.
`setup --table-sync` leaves it to PostgreSQL's table sync, one backend per table. A
table copied again in a running subscription (changed columns, filter or masks, a
resync, a restored trigger) always goes through PostgreSQL's table sync: it coordinates
the copy with the position the subscription applies from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..snapshot_copy import TableCopy
from . import indexes

if TYPE_CHECKING:
    from .diff import TargetDiff


def from_snapshot(d: TargetDiff) -> bool:
    return d.sub is not None and not d.alive and not d.copy_options.table_sync \
        and bool(d.copies)


def builtin(type_spelling: str) -> bool:
    """A type of pg_catalog: format_type qualifies every other (search_path is
    pg_catalog), and only built-in types read the same in binary on every server."""
    return "." not in type_spelling and '"' not in type_spelling


def tables(d: TargetDiff) -> tuple[TableCopy, ...]:
    out = []
    for rel in d.copies:
        table, published = d.want.table(rel), d.want.publication_of(rel)
        assert table is not None and published is not None
        entry = published[1]
        types = {c.name: c.type for c in table.columns}
        out.append(TableCopy(
            rel, entry.columns, entry.row_filter,
            # A masked column's type is the source's, or text from a text-like one, whose
            # binary form text reads: the types on the target tell.
            binary=all(builtin(types[c]) for c in entry.columns),
            estimated_rows=d.want.estimated_rows.get(rel),
            indexes=tuple(s for i in table.indexes for s in indexes.create(rel, i))))
    return tuple(out)
