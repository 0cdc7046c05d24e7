"""Which columns of a source table flow to a target: the config's list (or every column
for `columns: all`), and always the replica identity, in the table's column order.
Generated columns never flow: the target computes them (table_definitions).
"""

from __future__ import annotations

from .config import TableConfig
from .model import SourceTable


def requested_columns(table: TableConfig, source: SourceTable) -> list[str]:
    """The config's column list with `all` expanded (generated columns are not published)."""
    if table.columns == "all":
        return [c.name for c in source.columns if not c.generated]
    return list(table.columns)


def published_columns(table: TableConfig, source: SourceTable) -> tuple[str, ...]:
    """Requested columns plus the replica identity, in the table's column order; not the
    generated ones."""
    wanted = set(requested_columns(table, source)) | set(source.identity.columns or ())
    return tuple(c.name for c in source.columns if c.name in wanted and not c.generated)
