"""Which columns of a source table flow to a target, and what production did to them since
the last setup, told by identity (attnum), not by name.

The config's list flows, or for `columns: all` every column the table had when it was
first set up plus those accepted since (`setup --accept-new-columns`): a column
production adds later is *pending* until a person names or accepts it (SPEC section 2).
The replica identity always flows. What the last setup replicated is recorded on the
target (`model.TableIdentity`); a table set up by a repl older than that record falls
back to its publication's column list. Generated columns never flow: the target computes
them (table_definitions).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TableConfig
from .model import SourceTable, TableIdentity


def _accepted(table: TableConfig, source: SourceTable, identity: TableIdentity | None,
              published: tuple[str, ...] | None) -> set[str] | None:
    """For `columns: all`, the columns a person classified so far (replicated or excluded
    at the last setup); None: every column (the first setup under `columns: all`, which
    accepts every column the table has then)."""
    if identity is not None:
        if not identity.all_columns:
            return None  # listed until now: switching to `all` accepts them all
        return {c.name for c in source.columns if c.attnum in identity.attnums}
    if published is not None:  # set up by a repl older than the records
        return set(published) | set(table.exclude)
    return None


def requested_columns(table: TableConfig, source: SourceTable,
                      identity: TableIdentity | None = None,
                      published: tuple[str, ...] | None = None,
                      accept_new: bool = False) -> list[str]:
    """The config's column list; `all` is every column accepted so far (every column with
    `accept_new`) or named in `mask`, but those excluded. Generated columns are not
    published."""
    if table.columns != "all":
        return list(table.columns)
    accepted = None if accept_new else _accepted(table, source, identity, published)
    # An excluded column production renamed since stays excluded by its identity.
    renamed_excluded = {c.attnum for c in (identity.excluded if identity else ())
                        if source.column(c.name) is None}
    return [c.name for c in source.columns
            if not c.generated and c.name not in table.exclude
            and c.attnum not in renamed_excluded
            and (accepted is None or c.name in accepted or c.name in table.mask)]


def published_columns(table: TableConfig, source: SourceTable,
                      identity: TableIdentity | None = None,
                      published: tuple[str, ...] | None = None,
                      accept_new: bool = False) -> tuple[str, ...]:
    """Requested columns plus the replica identity, in the table's column order; not the
    generated ones."""
    wanted = set(requested_columns(table, source, identity, published, accept_new)) \
        | set(source.identity.columns or ())
    return tuple(c.name for c in source.columns if c.name in wanted and not c.generated)


def pending_columns(table: TableConfig, source: SourceTable, identity: TableIdentity | None,
                    published: tuple[str, ...] | None) -> list[str]:
    """Under `columns: all`, the columns production added after the table's first setup
    that nobody classified yet: they stay in production until accepted
    (`setup --accept-new-columns`) or named in exclude or mask."""
    if table.columns != "all":
        return []
    accepted = _accepted(table, source, identity, published)
    if accepted is None:
        return []
    named = set(table.exclude) | set(table.mask) | set(source.identity.columns or ())
    return [c.name for c in source.columns
            if not c.generated and c.name not in accepted and c.name not in named]


@dataclass(frozen=True)
class ColumnChanges:
    """What production did to the columns the last setup replicated."""

    renamed: dict[str, str]  # name on the target (as recorded) -> name on the source now
    dropped: tuple[str, ...]  # names on the target whose source column is gone


def column_changes(identity: TableIdentity | None, source: SourceTable) -> ColumnChanges:
    if identity is None:
        return ColumnChanges({}, ())
    by_attnum = {c.attnum: c.name for c in source.columns}
    renamed = {c.name: by_attnum[c.attnum] for c in identity.columns
               if c.attnum in by_attnum and by_attnum[c.attnum] != c.name}
    dropped = tuple(c.name for c in identity.columns if c.attnum not in by_attnum)
    return ColumnChanges(renamed, dropped)
