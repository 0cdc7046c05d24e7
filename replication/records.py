"""What setups recorded in repl's own schema on a target (`repl`, see alembic/versions):
its revision, the target's owner, the masking key, reader roles repl manages, parsed
row filters, digests of connection strings, and production's identity of what is
replicated. Read only from a schema that is repl's, at a revision that made the table.
"""

from __future__ import annotations

from .db import Database
from .migrations import is_revision, newer_revision
from .model import (
    ColumnIdentity,
    ConninfoDigest,
    InitialCopy,
    Owner,
    RowFilter,
    TableIdentity,
)
from .names import QualifiedName

# The revision of the `repl` schema (alembic/versions) that made each of repl's state tables.
STATE_TABLES = {"secret": "0002", "managed_role": "0003", "row_filter": "0004",
                "subscription_conninfo": "0005", "owner": "0006", "replicated_table": "0007",
                "replicated_type": "0007", "initial_copy": "0008"}


def state_table(db: Database, revision: str | None, table: str) -> bool:
    """Whether repl's state table `table` can be read: the target's `repl` schema is
    repl's, at a revision this repl knows that made the table (a table of that name in an
    older schema is in a migration's way, not repl's state), and the table is there."""
    if revision is None or newer_revision(revision) or int(revision) < int(STATE_TABLES[table]):
        return False
    return db.scalar("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (f"repl.{table}",))


def owner(db: Database, revision: str | None) -> Owner | None:
    """The config and target this database is the target of, as its first setup recorded."""
    if not state_table(db, revision, "owner"):
        return None
    rows = db.query("catalog/owner")
    return Owner(rows[0]["config"], rows[0]["target"], str(rows[0]["id"])) if rows else None


def managed_roles(db: Database, revision: str | None) -> frozenset[str]:
    if not state_table(db, revision, "managed_role"):
        return frozenset()
    return frozenset(r[0] for r in db.conn.execute("SELECT name FROM repl.managed_role"))


def masking_state(db: Database, revision: str | None
                  ) -> tuple[tuple[bytes, bytes, str] | None, str | None]:
    """The stored masking key (ikey, okey, source) and the installed functions' version."""
    keys = None
    if state_table(db, revision, "secret"):
        rows = db.query("catalog/masking_key")
        if rows:
            keys = (bytes(rows[0]["ikey"]), bytes(rows[0]["okey"]), rows[0]["source"])
    version = None
    if revision is not None and db.scalar(
            "SELECT pg_catalog.to_regprocedure('repl.masking_version()') IS NOT NULL"):
        version = db.scalar("SELECT repl.masking_version()")
    return keys, version


def row_filters(db: Database, revision: str | None
                ) -> dict[QualifiedName, tuple[str, RowFilter]]:
    """Per table, the config's filter text at the last setup and what the source made of it."""
    if not state_table(db, revision, "row_filter"):
        return {}
    return {QualifiedName(r["schema"], r["name"]):
            (r["config_text"], RowFilter(r["canonical"], frozenset(r["columns"])))
            for r in db.query("catalog/row_filters")}


def identities(db: Database, revision: str | None) -> dict[QualifiedName, TableIdentity]:
    """Production's identity of each replicated target table, as the last setup saw it."""
    if not state_table(db, revision, "replicated_table"):
        return {}
    return {QualifiedName(r["schema"], r["name"]): TableIdentity(
                QualifiedName(r["schema"], r["name"]), r["source_oid"],
                tuple(ColumnIdentity(c, a, t) for c, a, t in
                      zip(r["columns"], r["attnums"], r["types"], strict=True)),
                r["all_columns"],
                tuple(ColumnIdentity(c, a, "") for c, a in
                      zip(r["excluded"], r["excluded_attnums"], strict=True)))
            for r in db.query("catalog/identities")}


def type_identities(db: Database, revision: str | None) -> dict[tuple[str, str], int]:
    """The source type's OID of each type repl created on the target, by its name there."""
    if not state_table(db, revision, "replicated_type"):
        return {}
    return {(r["schema"], r["name"]): r["source_oid"] for r in db.query("catalog/type_identities")}


def conninfo_digests(db: Database, revision: str | None) -> dict[str, ConninfoDigest]:
    if not state_table(db, revision, "subscription_conninfo"):
        return {}
    return {r["subscription"]: ConninfoDigest(bytes(r["salt"]), bytes(r["digest"]))
            for r in db.query("catalog/conninfo_digests")}


def repl_schema(db: Database) -> tuple[str | None, bool]:
    """The alembic revision of the target's `repl` schema (None: none made yet), and
    whether a schema of that name exists that is not repl's: one repl's role cannot use
    (repl made its own, so it owns it), without repl.alembic_version, or whose version is
    not one of repl's (numbered 0001, 0002, ...; another alembic project's is a hex id)."""
    row = db.query("catalog/repl_schema")
    if not row:
        return None, False
    if not (row[0]["usable"] and row[0]["versioned"]):
        return None, True
    revision = db.scalar("SELECT version_num FROM repl.alembic_version")
    if revision is None or not is_revision(revision):
        return None, True
    return revision, False


def initial_copies(db: Database, revision: str | None) -> dict[QualifiedName, InitialCopy]:
    """The last initial copy from a snapshot, per table (replication/snapshot_copy.py)."""
    if not state_table(db, revision, "initial_copy"):
        return {}
    return {QualifiedName(r["schema_name"], r["table_name"]): InitialCopy(
                slot=r["slot_name"], walsender_pid=r["walsender_pid"], chunks=r["chunks"],
                chunks_done=r["chunks_done"], rows_copied=r["rows_copied"],
                estimated_rows=r["estimated_rows"], seconds=r["seconds"],
                finished=r["finished"])
            for r in db.query("catalog/initial_copy")}
