"""Locates the SQL files and alembic scripts, in a source checkout or an installed wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`sql` or `alembic`: packaged under replication/_data in a wheel, top-level in a checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"repl is installed without its {name}/ directory")


@cache
def load_sql(name: str) -> str:
    """The text of sql/<name>.sql, e.g. load_sql("catalog/tables")."""
    return (resource_dir("sql") / f"{name}.sql").read_text()


def load_sql_for(name: str, server_version_num: int) -> str:
    """The newest variant of sql/<name>.sql whose `_post_<major>` suffix the server meets.

    Version differences live in separate files named by the lowest server version
    that needs them (`status_post_16.sql` is used from PostgreSQL 16 on).
    """
    directory = (resource_dir("sql") / name).parent
    stem = Path(name).name
    best, best_major = name, 0
    for path in directory.glob(f"{stem}_post_*.sql"):
        major = int(path.stem.rsplit("_", 1)[1])
        if best_major < major <= server_version_num // 10000:
            best, best_major = str(Path(name).parent / path.stem), major
    return load_sql(best)
