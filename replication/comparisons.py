"""What `repl verify` computes on each side for one table, and what it concludes: row
count and checksum of the unmasked columns, raw values left in masked columns, and for a
table that does not receive DELETE or TRUNCATE, whether every source row is on the
target (extra target rows are expected there, missing ones are not).

Values are compared as the text PostgreSQL prints for them, with output settings made
equal on both sides by the caller (verify.OUTPUT_SETTINGS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql

from .config import MaskSpec
from .db import Database
from .masking import keyed, mask_expression
from .model import SourceColumn, TargetTable
from .names import QualifiedName, ident

if TYPE_CHECKING:
    from .verify import TableVerification

RAW_TABLE = sql.Identifier("pg_temp", "repl_verify_raw")
SOURCE_ROWS = sql.Identifier("pg_temp", "repl_verify_source_rows")
# Without DELETE or TRUNCATE published, rows removed on production stay on the target.
KEEPS_ROWS = ("delete", "truncate")


@dataclass
class Check:
    """One table to verify, with what the queries need."""

    spec: TargetTable  # as desired: columns, key
    result: TableVerification
    masks: dict[str, MaskSpec]
    row_filter: str | None  # canonical, as PostgreSQL deparsed it
    operations: frozenset[str]  # published
    source_columns: dict[str, SourceColumn]

    @property
    def masked(self) -> list[str]:
        return [c.name for c in self.spec.columns if c.name in self.masks]


def rows(db: Database, query: sql.Composable) -> list[tuple]:
    return db.execute_one(query)  # one statement: `sql` masks are spliced in


def aggregate(check: Check, *, source: bool) -> sql.Composable:
    """Row count and checksum: the sum of a 64-bit slice of each row's md5, a numeric that
    cannot overflow and does not depend on row order (and, unlike XOR, counts twins)."""
    row = sql.SQL("ROW({})").format(
        sql.SQL(", ").join(map(sql.Identifier, check.result.checksum_columns)))
    where = sql.SQL(check.row_filter) if source and check.row_filter else sql.SQL("true")
    return sql.SQL(
        "SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(('x' || pg_catalog.left("
        "pg_catalog.md5(({})::text), 16))::bit(64)::int8::numeric), 0)::text "
        "FROM {} WHERE ({})").format(row, ident(check.spec.relation), where)


def raw_check(source: Database, target: Database, check: Check) -> None:
    """Counts, per masked column, the target rows equal to their raw source value."""
    spec, key, masked = check.spec, check.spec.key or (), check.masked
    # Positional names: no user column can shadow the ikey/okey of the mask expressions.
    temp_columns = [(f"k{i}", spec.column(k)) for i, k in enumerate(key)] + \
        [(f"m{i}", spec.column(c)) for i, c in enumerate(masked)]
    target.execute(sql.SQL("CREATE TEMPORARY TABLE {} ({})").format(
        RAW_TABLE, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(c.type))
                                      for n, c in temp_columns)))
    copy_out = sql.SQL("COPY (SELECT {} FROM {} WHERE ({})) TO STDOUT").format(
        sql.SQL(", ").join(map(sql.Identifier, (*key, *masked))), ident(spec.relation),
        sql.SQL(check.row_filter or "true"))
    # Text out, text in: each value is converted to the target's type as the apply
    # worker converts it, and the rows stream through without being held here.
    with source.conn.cursor() as out, out.copy(copy_out) as reader, \
            target.conn.cursor() as into, \
            into.copy(sql.SQL("COPY {} FROM STDIN").format(RAW_TABLE)) as writer:
        for chunk in reader:
            writer.write(chunk)
    target.execute(sql.SQL("ANALYZE {}").format(RAW_TABLE))
    counts = []
    for i, name in enumerate(masked):
        raw, stored = sql.Identifier("r", f"m{i}"), sql.Identifier("t", name)
        mask = mask_of(raw, check.masks[name], check.source_columns[name], spec.relation,
                        spec.column(name).type)
        # CASE: the mask is evaluated only for the rows that equal their raw value.
        counts.append(sql.SQL(
            "pg_catalog.count(*) FILTER (WHERE CASE WHEN {stored} IS NOT DISTINCT FROM {raw} "
            "THEN {mask} IS DISTINCT FROM {raw} ELSE false END)").format(
                stored=stored, raw=raw, mask=mask))
    join = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("r", f"k{i}"))
        for i, k in enumerate(key))
    (found,) = rows(target, sql.SQL("SELECT {} FROM {} AS t JOIN {} AS r ON {}").format(
        sql.SQL(", ").join(counts), ident(spec.relation), RAW_TABLE, join))
    for column, count in zip(check.result.masked, found, strict=True):
        column.raw_rows = count


def mask_of(raw: sql.Composable, spec: MaskSpec, column: SourceColumn,
             relation: QualifiedName,
             target_type: str) -> sql.Composable:
    """The value the masking trigger stores for `raw`: the trigger's own expression, with
    `value` bound to the raw value and the keys from the target's key functions."""
    expression = sql.SQL(mask_expression(spec, "v.value", column, relation))
    keys = sql.SQL(", (SELECT repl.mask_ikey() AS ikey, repl.mask_okey() AS okey) AS k") \
        if keyed(spec) else sql.SQL("")
    # CAST as the trigger's assignment to the column converts the result.
    return sql.SQL("CAST((SELECT {} FROM (SELECT {} AS value) AS v{}) AS {})").format(
        expression, raw, keys, sql.SQL(target_type))


def kept_rows(check: Check) -> bool:
    """The target keeps rows production removed: containment, not equality, is the truth."""
    return any(op not in check.operations for op in KEEPS_ROWS)


def _row_hash(columns: list[str], alias: str | None = None) -> sql.Composable:
    row = sql.SQL("ROW({})").format(sql.SQL(", ").join(
        sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns))
    return sql.SQL("pg_catalog.md5(({})::text)").format(row)


def containment(source: Database, target: Database, check: Check) -> None:
    """Every source row that matches the filter, on the target: by key when the table has
    one (missing keys, and rows whose unmasked columns differ), else by identical rows
    counted (a multiset: twins count). The source's keys and row digests stream COPY to
    COPY into a temporary table of the target's transaction (rolled back)."""
    spec, result = check.spec, check.result
    key, columns = list(spec.key or ()), result.checksum_columns
    temp = [(f"k{i}", spec.column(k).type) for i, k in enumerate(key)] + [("h", "text")]
    target.execute(sql.SQL("CREATE TEMPORARY TABLE {} ({})").format(
        SOURCE_ROWS, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t))
                                        for n, t in temp)))
    copy_out = sql.SQL("COPY (SELECT {}{}{} FROM {} WHERE ({})) TO STDOUT").format(
        sql.SQL(", ").join(map(sql.Identifier, key)), sql.SQL(", ") if key else sql.SQL(""),
        _row_hash(columns), ident(spec.relation), sql.SQL(check.row_filter or "true"))
    with source.conn.cursor() as out, out.copy(copy_out) as reader, \
            target.conn.cursor() as into, \
            into.copy(sql.SQL("COPY {} FROM STDIN").format(SOURCE_ROWS)) as writer:
        for chunk in reader:
            writer.write(chunk)
    target.execute(sql.SQL("ANALYZE {}").format(SOURCE_ROWS))
    if key:
        on = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("s", f"k{i}"))
            for i, k in enumerate(key))
        ((missing, changed),) = rows(target, sql.SQL(
            "SELECT pg_catalog.count(*) FILTER (WHERE t.{} IS NULL), "
            "pg_catalog.count(*) FILTER (WHERE t.{} IS NOT NULL AND {} <> s.h) "
            "FROM {} AS s LEFT JOIN {} AS t ON {}").format(
                sql.Identifier(key[0]), sql.Identifier(key[0]), _row_hash(columns, "t"),
                SOURCE_ROWS, ident(spec.relation), on))
    else:
        ((missing,),) = rows(target, sql.SQL(
            "SELECT COALESCE(pg_catalog.sum(GREATEST(s.n - COALESCE(t.n, 0), 0)), 0)::int8 "
            "FROM (SELECT h, pg_catalog.count(*) AS n FROM {} GROUP BY h) AS s "
            "LEFT JOIN (SELECT {} AS h, pg_catalog.count(*) AS n FROM {} GROUP BY 1) AS t "
            "USING (h)").format(SOURCE_ROWS, _row_hash(columns), ident(spec.relation)))
        changed = None
    result.missing_rows, result.changed_rows = missing, changed


def compare(check: Check) -> None:
    """The verdict on one table, in whole sentences: problems, and notes for the
    differences the table's published operations explain."""
    result = check.result
    if result.problems:
        return
    src, tgt = result.source_rows or 0, result.target_rows or 0
    unreplicated = [op.upper() for op in ("update", "delete", "truncate")
                    if op not in check.operations]
    matching = " that match the row filter" if check.row_filter else ""
    if result.missing_rows is not None:  # rows production removed may stay: containment
        if result.missing_rows:
            result.problems.append(
                f"{result.missing_rows} of the source's {src} row(s){matching} are missing on "
                "the target" + (" (or were changed by an UPDATE, which this table does not "
                                "receive)" if result.changed_rows is None
                                and "UPDATE" in unreplicated else ""))
        if result.changed_rows:
            message = (f"{result.changed_rows} row(s) on the target differ from the source in "
                       f"their unmasked columns ({', '.join(result.checksum_columns)})")
            if "UPDATE" in unreplicated:
                result.notes.append(message + "; expected: this table does not receive UPDATE")
            else:
                result.problems.append(message)
        extra = tgt - (src - (result.missing_rows or 0))
        if extra > 0:
            kept = " or ".join(op for op in unreplicated if op != "UPDATE")
            result.notes.append(f"the target has {extra} row(s) more than the source; "
                                f"expected: this table does not receive {kept}")
    else:
        if src != tgt:
            # A row updated into the row filter without UPDATE published never arrives.
            explained = tgt < src and "UPDATE" in unreplicated and check.row_filter is not None
            message = f"the target has {tgt} row(s), the source {src}{matching}"
            (result.notes if explained else result.problems).append(
                message + ("; expected: this table does not receive UPDATE" if explained
                           else ""))
        if result.checksum == "mismatch":
            message = (f"the checksum of the unmasked columns "
                       f"({', '.join(result.checksum_columns)}) differs")
            (result.notes if unreplicated else result.problems).append(
                message + (f"; expected: this table does not receive "
                           f"{' or '.join(unreplicated)}" if unreplicated else ""))
    for column in result.masked:
        if column.raw_rows:
            result.problems.append(
                f"column {column.column}: {column.raw_rows} target row(s) hold the raw source "
                f"value, which masking strategy {column.strategy} would change")
