"""repl's publications on the source and subscriptions on the targets, as the catalogs
have them: each publication's tables with their column lists and row filters, the source
columns those pin, and each subscription with its workers, error counts and per-table
sync states."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .db import Database
from .model import Publication, PublishedTable, RelationSync, Subscription
from .names import QualifiedName, operations_of


def publications(db: Database, prefix: str) -> dict[str, Publication]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in db.query("catalog/publications", {"prefix": prefix + "_"}):
        grouped[row["publication"]].append(row)
    result = {}
    for name, rows in grouped.items():
        first = rows[0]
        tables = tuple(
            PublishedTable(
                QualifiedName(r["schema"], r["name"]),
                tuple(r["columns"]) if r["columns"] is not None else (),
                r["row_filter"],
            )
            for r in rows
            if r["name"] is not None
        )
        result[name] = Publication(
            name=name,
            operations=operations_of(first["pubinsert"], first["pubupdate"],
                                     first["pubdelete"], first["pubtruncate"]),
            tables=tables,
            via_root=first["via_root"],
            marker=first["comment"],
        )
    return result


def subscriptions(db: Database, prefix: str, *, with_conninfo: bool) -> dict[str, Subscription]:
    rows = db.query("catalog/subscriptions", {"prefix": prefix + "_"})
    conninfo = {r["name"]: r["conninfo"] for r in db.query(
        "catalog/subscription_conninfo", {"prefix": prefix + "_"})} if with_conninfo else {}
    states: dict[int, list[RelationSync]] = defaultdict(list)
    if rows:
        for s in db.query("catalog/subscription_tables", {"subids": [r["oid"] for r in rows]}):
            states[s["subid"]].append(RelationSync(
                QualifiedName(s["schema"], s["name"]), s["state"], s["rows_copied"],
                s["copy_seconds"]))
    return {
        r["name"]: Subscription(
            name=r["name"], slot_name=r["slot_name"],
            publications=frozenset(r["publications"]), enabled=r["enabled"],
            conninfo=conninfo.get(r["name"]), oid=r["oid"], worker_pid=r["worker_pid"],
            apply_error_count=r["apply_error_count"] or 0,
            sync_error_count=r["sync_error_count"] or 0,
            disable_on_error=r["disable_on_error"],
            worker_age_seconds=r["worker_age_seconds"],
            table_states=tuple(states[r["oid"]]),
        )
        for r in rows
    }


def pinned_columns(db: Database, prefix: str) -> dict[QualifiedName, dict[str, list[str]]]:
    found: dict[QualifiedName, dict[str, list[str]]] = defaultdict(dict)
    for r in db.query("catalog/pinned_columns", {"prefix": prefix + "_"}):
        found[QualifiedName(r["schema"], r["name"])][r["column_name"]] = r["publications"]
    return dict(found)
